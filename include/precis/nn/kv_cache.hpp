// precis/nn/kv_cache.hpp — KvCache<Store>: contiguous per-layer K/V storage whose element type
// is one template parameter shared by the writer and every reader.
//
// Seed bug 1 (dtype-bugs §0): gpt-oss's MXFP4 kernels were missing, transformers fell back to
// dequantizing to bf16, and the bf16 K/V met an f32 "virtual" KV workspace:
// `RuntimeError: expected scalar type Float but found BFloat16`. Related: litgpt's f32 cache
// under a bf16 model (E5), torchtune's default-f32 cache (E6), fp8 caches read by bf16 kernels
// (E8), bf16 bits read back as f16 (E9). The rules (class C2):
//
//   - `append(layer, k, v)` compiles only if K and V are tensors of exactly `Store`
//     (kv_append_matches_store). A bf16 activation appended to a KvCache<f32> does not compile;
//     the fix is an explicit cast<f32> or, better, a cache made by the layer that produces K/V:
//     `Attention<B, Act>::make_cache()` returns KvCache<Act> (nn/attention.hpp).
//   - a store other than the compute type is spelled `quantized_kv<Store, Quantizer>`
//     (core/precision_policy.hpp); such a cache accepts only the quantizer's own output
//     (`QuantizedKv<Store, Q>`, nn/kv_quantizer.hpp) and is read only through
//     `dequantize_keys<Act>` / `dequantize_values<Act>` or the raw, separately named
//     `key_codes` + `key_scales` views. A bf16 tensor cannot be appended to it.
//   - there is no `view<Other>()` and no reinterpretation: `keys(layer)` returns
//     TensorView<const Store, 3>, and a reader wanting another dtype calls cast<To> (a copy).
//
// Layout: K and V are each one allocation [n_layers][max_seq][n_kv_heads][head_dim]
// (llama2.c's `key_cache (layer, seq_len, dim)` with heads split out); fp8 stores add
// f32 scales [n_layers][max_seq][n_kv_heads]. Capacity is fixed at construction: appending past
// max_seq throws range_error naming the layer and the counts.
#pragma once

#include <concepts>  // std::same_as
#include <vector>    // std::vector

#include <precis/core/dtype.hpp>             // precis::ActivationDtype, same_dtype_no_implicit_cast
#include <precis/core/error.hpp>             // precis::range_error, shape_error, config_error
#include <precis/core/precision_policy.hpp>  // precis::quantized_kv, is_quantized_kv
#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/nn/kv_quantizer.hpp>        // precis::QuantizedKv, KvQuantizer, kv_fp8_store
#include <precis/ops/host_tensor.hpp>        // precis::HostTensorOfRank, format_extents

namespace precis {

namespace detail {
template <class Store>
struct kv_element {
  using type = Store;
};
template <class S, class Q>
struct kv_element<quantized_kv<S, Q>> {
  using type = S;
};
template <class Store>
inline constexpr bool valid_quantized_kv = false;
template <class S, class Q>
inline constexpr bool valid_quantized_kv<quantized_kv<S, Q>> = kv_fp8_store<S> && KvQuantizer<Q, S>;
}  // namespace detail

/// A KV store: the compute (activation) dtype itself, or an fp8 store behind a named quantizer.
template <class Store>
concept KvStore = ActivationDtype<Store> || detail::valid_quantized_kv<Store>;

/// The element dtype the cache memory holds (Store, or S for quantized_kv<S, Q>).
template <class Store>
using kv_element_t = typename detail::kv_element<Store>::type;

namespace detail {
/// What an append argument is, as far as the store is concerned: the dtype of a rank-3 host
/// tensor appended to an unquantized store, otherwise the argument's own type.
template <class Arg, class Store>
struct kv_append_key {
  using type = std::remove_cvref_t<Arg>;
};
template <class Arg, class Store>
  requires(!is_quantized_kv<Store> && HostTensorOfRank<Arg, 3>)
struct kv_append_key<Arg, Store> {
  using type = dtype_of<Arg>;
};
/// What a store expects: its own dtype, or its quantizer's output for quantized_kv<S, Q>.
template <class Store>
struct kv_append_expected {
  using type = Store;
};
template <class S, class Q>
struct kv_append_expected<quantized_kv<S, Q>> {
  using type = QuantizedKv<S, Q>;
};
}  // namespace detail

/// What `append` accepts for a cache of `Store`: a rank-3 host tensor of exactly `Store`, or —
/// for quantized_kv<S, Q> — the output of quantizer Q in S codes, nothing else (seed bug 1).
/// One `same_as`, so the diagnostic shows both sides ("_Tp = bf16; _Up = f32").
template <class Arg, class Store>
concept kv_append_matches_store =
    std::same_as<typename detail::kv_append_key<Arg, Store>::type, typename detail::kv_append_expected<Store>::type>;

template <class Store>
  requires KvStore<Store>
class KvCache {
 public:
  using store_type = Store;
  using element_dtype = kv_element_t<Store>;
  static constexpr bool quantized = is_quantized_kv<Store>;

  KvCache(index_t n_layers, index_t max_seq, index_t n_kv_heads, index_t head_dim)
      : k_(checked_extents(n_layers, max_seq, n_kv_heads, head_dim)),
        v_({n_layers, max_seq, n_kv_heads, head_dim}),
        k_scale_(scale_extents(n_layers, max_seq, n_kv_heads)),
        v_scale_(scale_extents(n_layers, max_seq, n_kv_heads)),
        length_(static_cast<std::size_t>(n_layers), 0) {}

  [[nodiscard]] index_t n_layers() const noexcept { return k_.extent(0); }
  [[nodiscard]] index_t max_seq() const noexcept { return k_.extent(1); }
  [[nodiscard]] index_t n_kv_heads() const noexcept { return k_.extent(2); }
  [[nodiscard]] index_t head_dim() const noexcept { return k_.extent(3); }
  /// Tokens cached so far in `layer`.
  [[nodiscard]] index_t length(index_t layer) const {
    check_layer("length", layer);
    return length_[static_cast<std::size_t>(layer)];
  }

  /// Appends k, v [T, n_kv_heads, head_dim] to `layer` (quantized stores: the quantizer's output).
  template <class K, class V>
    requires kv_append_matches_store<K, Store> && kv_append_matches_store<V, Store>
  void append(index_t layer, const K& k, const V& v) {
    check_layer("append", layer);
    if constexpr (quantized) {
      append_rows(layer, k.codes(), v.codes());
      const index_t start = length_[static_cast<std::size_t>(layer)];
      copy_rows(k_scale_.view()[layer], start, k.scales());
      copy_rows(v_scale_.view()[layer], start, v.scales());
    } else {
      append_rows(layer, as_const_view(k), as_const_view(v));
    }
    length_[static_cast<std::size_t>(layer)] += extents_of(k)[0];
  }

  /// Cached keys of `layer`: [length(layer), n_kv_heads, head_dim], the store's own dtype.
  [[nodiscard]] TensorView<const element_dtype, 3> keys(index_t layer) const
    requires(!quantized)
  {
    return cached(k_, "keys", layer);
  }
  /// Cached values of `layer`: [length(layer), n_kv_heads, head_dim].
  [[nodiscard]] TensorView<const element_dtype, 3> values(index_t layer) const
    requires(!quantized)
  {
    return cached(v_, "values", layer);
  }

  /// Quantized stores: keys of `layer` dequantized by the store's quantizer to `Act`.
  template <ActivationDtype Act>
    requires quantized
  [[nodiscard]] Tensor<Act, 3> dequantize_keys(index_t layer) const {
    return Store::quantizer::template dequantize<Act>(key_codes(layer), key_scales(layer));
  }
  template <ActivationDtype Act>
    requires quantized
  [[nodiscard]] Tensor<Act, 3> dequantize_values(index_t layer) const {
    return Store::quantizer::template dequantize<Act>(value_codes(layer), value_scales(layer));
  }
  /// Quantized stores, for kernels that dequantize on the fly: the raw codes and their scales.
  [[nodiscard]] TensorView<const element_dtype, 3> key_codes(index_t layer) const
    requires quantized
  {
    return cached(k_, "key_codes", layer);
  }
  [[nodiscard]] TensorView<const element_dtype, 3> value_codes(index_t layer) const
    requires quantized
  {
    return cached(v_, "value_codes", layer);
  }
  [[nodiscard]] TensorView<const f32, 2> key_scales(index_t layer) const
    requires quantized
  {
    return cached(k_scale_, "key_scales", layer);
  }
  [[nodiscard]] TensorView<const f32, 2> value_scales(index_t layer) const
    requires quantized
  {
    return cached(v_scale_, "value_scales", layer);
  }

  /// Drops tokens [new_length, length) of `layer` (e.g. rejected speculative tokens).
  void truncate(index_t layer, index_t new_length) {
    check_layer("truncate", layer);
    PRECIS_CHECK(new_length >= 0 && new_length <= length_[static_cast<std::size_t>(layer)], range_error,
                 "[KvCache::truncate] layer ", layer, ": new length ", new_length, " outside [0, ",
                 length_[static_cast<std::size_t>(layer)], "]");
    length_[static_cast<std::size_t>(layer)] = new_length;
  }
  /// Forgets every cached token of every layer.
  void clear() noexcept {
    for (auto& n : length_) n = 0;
  }

 private:
  static extents_t<4> checked_extents(index_t n_layers, index_t max_seq, index_t n_kv_heads, index_t head_dim) {
    PRECIS_CHECK(n_layers > 0 && max_seq > 0 && n_kv_heads > 0 && head_dim > 0, config_error,
                 "[KvCache] layers, max_seq, n_kv_heads and head_dim must be positive, got ", n_layers, ", ", max_seq,
                 ", ", n_kv_heads, ", ", head_dim);
    return {n_layers, max_seq, n_kv_heads, head_dim};
  }
  static extents_t<3> scale_extents(index_t n_layers, index_t max_seq, index_t n_kv_heads) {
    if constexpr (quantized) return {n_layers, max_seq, n_kv_heads};
    else return {0, 0, 0};  // unquantized stores carry no scales
  }

  template <class A>
  static extents_t<3> extents_of(const A& a) {
    if constexpr (is_quantized_kv_block<std::remove_cvref_t<A>>) return a.codes().extents();
    else return as_const_view(a).extents();
  }

  void check_layer(const char* op, index_t layer) const {
    PRECIS_CHECK(layer >= 0 && layer < n_layers(), range_error, "[KvCache::", op, "] layer ", layer,
                 " outside [0, ", n_layers(), ")");
  }

  void append_rows(index_t layer, TensorView<const element_dtype, 3> k, TensorView<const element_dtype, 3> v) {
    const extents_t<3> want = {k.extent(0), n_kv_heads(), head_dim()};
    PRECIS_CHECK(k.extents() == want, shape_error, "[KvCache::append] k ", format_extents(k.extents()), ", expected ",
                 format_extents(want));
    PRECIS_CHECK(v.extents() == want, shape_error, "[KvCache::append] v ", format_extents(v.extents()),
                 " does not match k ", format_extents(k.extents()));
    const index_t start = length_[static_cast<std::size_t>(layer)];
    PRECIS_CHECK(start + k.extent(0) <= max_seq(), range_error, "[KvCache::append] layer ", layer, ": ", start,
                 " cached + ", k.extent(0), " new tokens exceed max_seq ", max_seq());
    copy_rows(k_.view()[layer], start, k);
    copy_rows(v_.view()[layer], start, v);
  }

  /// dst[start + i, ...] = src[i, ...] for every leading index i of src.
  template <class E, std::size_t R>
  static void copy_rows(TensorView<E, R> dst, index_t start, TensorView<const E, R> src) {
    const TensorView<E, R> rows = dst.slice(0, start, start + src.extent(0));
    extents_t<R> idx{};
    for_each_offset(src, [&](index_t, index_t off) {
      index_t d_off = 0;
      for (std::size_t d = 0; d < R; ++d) d_off += idx[d] * rows.stride(d);
      rows.data()[d_off] = src.data()[off];
      for (std::size_t d = R; d-- > 0;) {
        if (++idx[d] < src.extent(d)) break;
        idx[d] = 0;
      }
    });
  }

  template <class E, std::size_t R>
  TensorView<const E, R - 1> cached(const Tensor<E, R>& all, const char* op, index_t layer) const {
    check_layer(op, layer);
    return all.cview()[layer].slice(0, 0, length_[static_cast<std::size_t>(layer)]);
  }

  Tensor<element_dtype, 4> k_;  // [n_layers, max_seq, n_kv_heads, head_dim]
  Tensor<element_dtype, 4> v_;  // [n_layers, max_seq, n_kv_heads, head_dim]
  Tensor<f32, 3> k_scale_;      // [n_layers, max_seq, n_kv_heads] (quantized stores; else empty)
  Tensor<f32, 3> v_scale_;      // [n_layers, max_seq, n_kv_heads] (quantized stores; else empty)
  std::vector<index_t> length_; // [n_layers] tokens cached per layer
};

}  // namespace precis
