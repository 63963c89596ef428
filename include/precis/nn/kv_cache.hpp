// precis/nn/kv_cache.hpp — the typed KV caches: KvCache<Store> (one sequence; per layer a
// contiguous store or a sliding-window ring) and PagedKvCache<Store> (several sequences sharing a
// pool of fixed-size pages). Attention kernels read both through KvSequenceView<E>.
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
//   - there is no `view<Other>()` and no reinterpretation: `keys(layer)` and `sequence(layer)`
//     return views of the store's own dtype, and a reader wanting another dtype calls cast<To>.
//
// Layouts, chosen per layer by a KvLayerPlan (gpt-oss alternates: even layers slide with a
// 128-token window, odd layers are full — model-semantics §1a):
//   full layer     positions [0, L) in slots 0..L−1 of one allocation per layer, stored
//                  head-major [Hkv, max_seq, Dh] (FlashInfer's "HND"): a decode task reads one kv
//                  head's keys as one contiguous stream, which measured 1.6× faster than the
//                  token-major [max_seq, Hkv, Dh] of llama2.c's `key_cache (layer, seq_len, dim)`
//                  (docs/performance.md). Views still index [token, head, dim] through strides.
//                  Appending past max_seq throws range_error naming the layer and the counts.
//   sliding layer  a ring of C = window − 1 + max_append slots, position p in slot p mod C.
//                  Key j is visible to query i iff i − window < j ≤ i (the window counts the
//                  current token, §1a), so after T ≤ max_append new tokens at positions L.. the
//                  first of them needs keys from L − window + 1 on, and the ring still holds
//                  every position from L + T − C = L − window + 1 − (max_append − T) on. Memory is
//                  bounded by the window, not by the sequence (llama.cpp's SWA cache sizes its
//                  ring as window + ubatch the same way).
//   paged          PagedKvCache: full layers take pages of P tokens ([Hkv, P, Dh] each) from one
//                  pool shared by all live sequences; each sequence's block table maps page p / P to a pool page
//                  (vLLM's PagedAttention block table); one table serves every full layer.
//                  Sliding layers keep one ring per sequence slot. add_sequence / remove_sequence
//                  allocate and free; page exhaustion is a range_error naming the sequence, the
//                  layer and the counts, and nothing is written.
//
// Readers: KvSequenceView<E> is the retained positions [first, length) of one sequence in one
// layer as runs of consecutive positions stored contiguously (KvSegment): one run for a full
// layer, at most two for a ring, one per page for a paged layer. Kernels address keys by
// absolute position, so every layout gives bit-identical attention (tests/unit/attention).
// A view points into the cache: it is invalidated by the next append to its layer.
#pragma once

#include <algorithm>  // std::max, std::min
#include <concepts>   // std::same_as
#include <cstdint>    // std::uint64_t
#include <span>       // std::span
#include <utility>    // std::move
#include <vector>     // std::vector

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

// ---------------------------------------------------------------------------------------------
// Which layers slide: KvLayerPlan
// ---------------------------------------------------------------------------------------------

/// A named rule giving each layer's attention window (0: full causal attention).
template <class P>
concept LayerWindowPattern = requires(const P& p, index_t layer) {
  { p.window_of(layer) } -> std::same_as<index_t>;
};

/// Every layer attends to the whole prefix (Llama, Qwen3-MoE: `use_sliding_window false`, §1b).
struct full_attention_layers {
  [[nodiscard]] constexpr index_t window_of(index_t) const noexcept { return 0; }
};

/// Every layer slides with one window.
struct sliding_attention_layers {
  index_t window = 0;
  [[nodiscard]] constexpr index_t window_of(index_t) const noexcept { return window; }
};

/// gpt-oss (§1a): even layers slide with a 128-token window, odd layers are full
/// (OAI `sliding_window = 128 if layer_idx % 2 == 0 else 0`; HF `layer_types`).
struct gpt_oss_alternating_layers {
  index_t window = 128;
  [[nodiscard]] constexpr index_t window_of(index_t layer) const noexcept { return layer % 2 == 0 ? window : 0; }
};

/// The window of every layer of a model, as the cache needs it: 0 = full, w > 0 = sliding.
class KvLayerPlan {
 public:
  template <LayerWindowPattern P>
  KvLayerPlan(const P& pattern, index_t n_layers) {
    PRECIS_CHECK(n_layers >= 0, config_error, "[KvLayerPlan] negative layer count ", n_layers);
    windows_.reserve(static_cast<std::size_t>(n_layers));
    for (index_t l = 0; l < n_layers; ++l) windows_.push_back(pattern.window_of(l));
    check();
  }
  /// One window per layer, e.g. from config.json `layer_types` + `sliding_window`.
  explicit KvLayerPlan(std::vector<index_t> windows) : windows_(std::move(windows)) { check(); }

  [[nodiscard]] index_t n_layers() const noexcept { return static_cast<index_t>(windows_.size()); }
  [[nodiscard]] index_t window(index_t layer) const {
    PRECIS_CHECK(layer >= 0 && layer < n_layers(), range_error, "[KvLayerPlan::window] layer ", layer,
                 " outside [0, ", n_layers(), ")");
    return windows_[static_cast<std::size_t>(layer)];
  }

 private:
  void check() const {
    for (std::size_t l = 0; l < windows_.size(); ++l)
      PRECIS_CHECK(windows_[l] >= 0, config_error, "[KvLayerPlan] layer ", l, ": negative window ", windows_[l]);
  }
  std::vector<index_t> windows_;  // [n_layers]
};

// ---------------------------------------------------------------------------------------------
// KvSequenceView: what attention kernels read
// ---------------------------------------------------------------------------------------------

/// Consecutive positions [position, position + size()) stored contiguously.
template <ActivationDtype E>
struct KvSegment {
  index_t position = 0;      ///< absolute position of row 0
  TensorView<const E, 3> k;  ///< [n, Hkv, Dh]
  TensorView<const E, 3> v;  ///< [n, Hkv, Dh]

  [[nodiscard]] index_t size() const noexcept { return k.extent(0); }
};

/// The cached keys and values of one sequence in one layer: positions [first(), length()) in
/// position order, and the window the layer's store was built for (0: it keeps every position).
template <ActivationDtype E>
class KvSequenceView {
 public:
  using dtype = E;

  /// Segments must be consecutive in position, of shape [n, n_kv_heads, head_dim] with
  /// contiguous head_dim rows (what SIMD kernels load).
  KvSequenceView(index_t n_kv_heads, index_t head_dim, index_t window, std::vector<KvSegment<E>> segments)
      : n_kv_heads_(n_kv_heads), head_dim_(head_dim), window_(window) {
    PRECIS_CHECK(n_kv_heads > 0 && head_dim > 0 && window >= 0, config_error,
                 "[KvSequenceView] n_kv_heads and head_dim must be positive and window ≥ 0, got ", n_kv_heads, ", ",
                 head_dim, ", ", window);
    segments_.reserve(segments.size());
    for (KvSegment<E>& s : segments) {
      const extents_t<3> want = {s.k.extent(0), n_kv_heads, head_dim};
      PRECIS_CHECK(s.k.extents() == want && s.v.extents() == want, shape_error, "[KvSequenceView] segment at position ",
                   s.position, ": k ", format_extents(s.k.extents()), ", v ", format_extents(s.v.extents()),
                   ", expected ", format_extents(want));
      PRECIS_CHECK(s.k.stride(2) == 1 && s.v.stride(2) == 1, shape_error, "[KvSequenceView] segment at position ",
                   s.position, ": head_dim rows must be contiguous, strides k ", format_extents(s.k.strides()), ", v ",
                   format_extents(s.v.strides()));
      if (s.size() == 0) continue;
      const index_t expected = segments_.empty() ? s.position : length();
      PRECIS_CHECK(s.position >= 0 && s.position == expected, shape_error, "[KvSequenceView] segment at position ",
                   s.position, " does not continue the previous one, expected position ", expected);
      segments_.push_back(std::move(s));
    }
  }

  /// Plain K/V [S, Hkv, Dh] holding positions 0..S−1.
  [[nodiscard]] static KvSequenceView whole(TensorView<const E, 3> k, TensorView<const E, 3> v) {
    return KvSequenceView(k.extent(1), k.extent(2), 0, {KvSegment<E>{0, k, v}});
  }

  [[nodiscard]] index_t first() const noexcept { return segments_.empty() ? 0 : segments_.front().position; }
  [[nodiscard]] index_t length() const noexcept {
    return segments_.empty() ? 0 : segments_.back().position + segments_.back().size();
  }
  [[nodiscard]] index_t window() const noexcept { return window_; }
  [[nodiscard]] index_t n_kv_heads() const noexcept { return n_kv_heads_; }
  [[nodiscard]] index_t head_dim() const noexcept { return head_dim_; }
  [[nodiscard]] std::span<const KvSegment<E>> segments() const noexcept { return segments_; }

 private:
  index_t n_kv_heads_, head_dim_, window_;
  std::vector<KvSegment<E>> segments_;
};

namespace detail {

/// dst[start + i, ...] = src[i, ...] for every leading index i of src.
template <class E, std::size_t R>
void kv_copy_rows(TensorView<E, R> dst, index_t start, TensorView<const E, R> src) {
  const TensorView<E, R> rows = dst.slice(0, start, start + src.extent(0));
  if constexpr (R == 3) {
    if (rows.stride(2) == 1 && src.stride(2) == 1) {  // [token, head, dim] with contiguous dim rows
      const auto row_bytes = static_cast<std::size_t>(src.extent(2)) * sizeof(storage_t<std::remove_const_t<E>>);
      for (index_t i = 0; i < src.extent(0); ++i)
        for (index_t h = 0; h < src.extent(1); ++h)
          std::memcpy(&rows(i, h, 0), &src(i, h, 0), row_bytes);
      return;
    }
  }
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

/// Head-major storage [Hkv, slots, Dh] at `base` seen as [slots, Hkv, Dh] (token, head, dim).
template <class E>
[[nodiscard]] TensorView<E, 3> kv_tokens(typename TensorView<E, 3>::element_type* base, index_t slots, index_t n_kv_heads,
                                         index_t head_dim) noexcept {
  return TensorView<E, 3>(base, {slots, n_kv_heads, head_dim}, {head_dim, slots * head_dim, 1});
}

/// Positions [begin, end) of a store of `capacity` slots holding position p in slot
/// p mod capacity, as runs of consecutive slots: f(position, slot, count). A full layer
/// (end ≤ capacity) is one run; a ring at most two.
template <class F>
void for_each_slot_run(index_t begin, index_t end, index_t capacity, F&& f) {
  for (index_t p = begin; p < end;) {
    const index_t slot = p % capacity;
    const index_t n = std::min(end - p, capacity - slot);
    f(p, slot, n);
    p += n;
  }
}

/// Slots a layer of window w needs: every position for a full layer, w − 1 + max_append for a ring.
[[nodiscard]] inline index_t kv_capacity(index_t window, index_t max_seq, index_t max_append) noexcept {
  return window == 0 ? max_seq : window - 1 + max_append;
}

/// After truncating a layer to `new_length`, the next query (position new_length) attends to
/// max(0, new_length − w + 1) on; those positions must still be held (oldest retained ≤ them).
[[nodiscard]] inline bool kv_truncation_keeps_window(index_t new_length, index_t window, index_t oldest) noexcept {
  if (new_length == 0 || window == 0) return true;
  return std::max<index_t>(0, new_length - window + 1) >= oldest;
}

}  // namespace detail

/// Sizes of a KvCache.
struct KvCacheSize {
  index_t n_kv_heads = 0;
  index_t head_dim = 0;
  index_t max_seq = 0;     ///< positions a full-attention layer holds
  index_t max_append = 1;  ///< most tokens one append brings (the prefill chunk): a sliding layer
                           ///< of window w keeps a ring of w − 1 + max_append positions
};

// ---------------------------------------------------------------------------------------------
// KvCache<Store>: one sequence
// ---------------------------------------------------------------------------------------------

template <class Store>
  requires KvStore<Store>
class KvCache {
 public:
  using store_type = Store;
  using element_dtype = kv_element_t<Store>;
  static constexpr bool quantized = is_quantized_kv<Store>;

  /// `n_layers` full-attention layers of `max_seq` positions.
  KvCache(index_t n_layers, index_t max_seq, index_t n_kv_heads, index_t head_dim)
      : KvCache(KvLayerPlan(full_attention_layers{}, std::max<index_t>(n_layers, 0)),
                KvCacheSize{.n_kv_heads = n_kv_heads, .head_dim = head_dim, .max_seq = max_seq, .max_append = 1},
                n_layers) {}

  /// One store per layer of `plan`: full layers hold max_seq positions, sliding layers a ring of
  /// window − 1 + max_append.
  KvCache(const KvLayerPlan& plan, const KvCacheSize& size) : KvCache(plan, size, plan.n_layers()) {}

  [[nodiscard]] index_t n_layers() const noexcept { return static_cast<index_t>(layers_.size()); }
  [[nodiscard]] index_t max_seq() const noexcept { return size_.max_seq; }
  [[nodiscard]] index_t max_append() const noexcept { return size_.max_append; }
  [[nodiscard]] index_t n_kv_heads() const noexcept { return size_.n_kv_heads; }
  [[nodiscard]] index_t head_dim() const noexcept { return size_.head_dim; }
  /// The window `layer`'s store was built for (0: full).
  [[nodiscard]] index_t window(index_t layer) const { return at("window", layer).window; }
  /// Positions `layer`'s memory holds: max_seq, or the ring's window − 1 + max_append.
  [[nodiscard]] index_t capacity(index_t layer) const { return at("capacity", layer).capacity(); }
  /// Tokens cached so far in `layer` (the position of the next one).
  [[nodiscard]] index_t length(index_t layer) const { return at("length", layer).length; }
  /// The oldest position `layer` still holds (0 unless a ring has wrapped).
  [[nodiscard]] index_t first(index_t layer) const { return at("first", layer).oldest; }

  /// Appends k, v [T, n_kv_heads, head_dim] to `layer` (quantized stores: the quantizer's output).
  template <class K, class V>
    requires kv_append_matches_store<K, Store> && kv_append_matches_store<V, Store>
  void append(index_t layer, const K& k, const V& v) {
    layer_store& s = at("append", layer);
    if constexpr (quantized) {
      check_append(s, layer, k.codes(), v.codes());
      write_rows(s, layer_store::tokens(s.k), k.codes());
      write_rows(s, layer_store::tokens(s.v), v.codes());
      write_rows(s, s.k_scale.view(), k.scales());
      write_rows(s, s.v_scale.view(), v.scales());
      advance(s, k.codes().extent(0));
    } else {
      const TensorView<const element_dtype, 3> kv = as_const_view(k), vv = as_const_view(v);
      check_append(s, layer, kv, vv);
      write_rows(s, layer_store::tokens(s.k), kv);
      write_rows(s, layer_store::tokens(s.v), vv);
      advance(s, kv.extent(0));
    }
  }

  /// Cached keys of `layer`: [length(layer), n_kv_heads, head_dim], the store's own dtype. A
  /// ring that has wrapped no longer holds position 0: read it through sequence().
  [[nodiscard]] TensorView<const element_dtype, 3> keys(index_t layer) const
    requires(!quantized)
  {
    return contiguous("keys", layer, layer_store::tokens(at("keys", layer).k));
  }
  /// Cached values of `layer`: [length(layer), n_kv_heads, head_dim].
  [[nodiscard]] TensorView<const element_dtype, 3> values(index_t layer) const
    requires(!quantized)
  {
    return contiguous("values", layer, layer_store::tokens(at("values", layer).v));
  }

  /// What attention kernels read: positions [first(layer), length(layer)) of `layer`.
  /// (A template only so that the return type is not formed for quantized stores.)
  template <class E = element_dtype>
    requires(!quantized && std::same_as<E, element_dtype>)
  [[nodiscard]] KvSequenceView<E> sequence(index_t layer) const {
    const layer_store& s = at("sequence", layer);
    std::vector<KvSegment<E>> segs;
    const TensorView<const E, 3> k = layer_store::tokens(s.k), v = layer_store::tokens(s.v);
    detail::for_each_slot_run(s.oldest, s.length, s.capacity(), [&](index_t p, index_t slot, index_t n) {
      segs.push_back({p, k.slice(0, slot, slot + n), v.slice(0, slot, slot + n)});
    });
    return KvSequenceView<E>(n_kv_heads(), head_dim(), s.window, std::move(segs));
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
    return contiguous("key_codes", layer, layer_store::tokens(at("key_codes", layer).k));
  }
  [[nodiscard]] TensorView<const element_dtype, 3> value_codes(index_t layer) const
    requires quantized
  {
    return contiguous("value_codes", layer, layer_store::tokens(at("value_codes", layer).v));
  }
  [[nodiscard]] TensorView<const f32, 2> key_scales(index_t layer) const
    requires quantized
  {
    return contiguous("key_scales", layer, at("key_scales", layer).k_scale.cview());
  }
  [[nodiscard]] TensorView<const f32, 2> value_scales(index_t layer) const
    requires quantized
  {
    return contiguous("value_scales", layer, at("value_scales", layer).v_scale.cview());
  }

  /// Drops tokens [new_length, length) of `layer` (e.g. rejected speculative tokens). A ring can
  /// go back only as far as it still holds the window of the next query.
  void truncate(index_t layer, index_t new_length) {
    layer_store& s = at("truncate", layer);
    PRECIS_CHECK(new_length >= 0 && new_length <= s.length, range_error, "[KvCache::truncate] layer ", layer,
                 ": new length ", new_length, " outside [0, ", s.length, "]");
    PRECIS_CHECK(detail::kv_truncation_keeps_window(new_length, s.window, s.oldest), range_error,
                 "[KvCache::truncate] layer ", layer, " (window ", s.window, "): the ring no longer holds position ",
                 new_length - s.window + 1, " that position ", new_length, " attends to (oldest held: ", s.oldest, ")");
    s.length = new_length;
    if (new_length == 0) s.oldest = 0;
  }
  /// Forgets every cached token of every layer.
  void clear() noexcept {
    for (auto& s : layers_) s.length = s.oldest = 0;
  }

 private:
  struct layer_store {
    Tensor<element_dtype, 3> k;  // [n_kv_heads, capacity, head_dim] (head-major)
    Tensor<element_dtype, 3> v;  // [n_kv_heads, capacity, head_dim]
    Tensor<f32, 2> k_scale;      // [capacity, n_kv_heads] (quantized stores; else empty)
    Tensor<f32, 2> v_scale;      // [capacity, n_kv_heads] (quantized stores; else empty)
    index_t window = 0;          // 0: full layer; w > 0: ring
    index_t length = 0;          // positions appended
    index_t oldest = 0;          // oldest position still held

    [[nodiscard]] index_t capacity() const noexcept { return k.extent(1); }
    /// K or V as [capacity, n_kv_heads, head_dim] (slot, head, dim).
    [[nodiscard]] static TensorView<element_dtype, 3> tokens(Tensor<element_dtype, 3>& t) noexcept {
      return detail::kv_tokens<element_dtype>(t.data(), t.extent(1), t.extent(0), t.extent(2));
    }
    [[nodiscard]] static TensorView<const element_dtype, 3> tokens(const Tensor<element_dtype, 3>& t) noexcept {
      return detail::kv_tokens<const element_dtype>(t.data(), t.extent(1), t.extent(0), t.extent(2));
    }
  };

  KvCache(const KvLayerPlan& plan, const KvCacheSize& size, index_t n_layers_given) : size_(size) {
    PRECIS_CHECK(n_layers_given > 0 && size.max_seq > 0 && size.n_kv_heads > 0 && size.head_dim > 0, config_error,
                 "[KvCache] layers, max_seq, n_kv_heads and head_dim must be positive, got ", n_layers_given, ", ",
                 size.max_seq, ", ", size.n_kv_heads, ", ", size.head_dim);
    PRECIS_CHECK(size.max_append > 0, config_error, "[KvCache] max_append must be positive, got ", size.max_append);
    layers_.reserve(static_cast<std::size_t>(plan.n_layers()));
    for (index_t l = 0; l < plan.n_layers(); ++l) {
      const index_t w = plan.window(l);
      const index_t cap = detail::kv_capacity(w, size.max_seq, size.max_append);
      layer_store s{Tensor<element_dtype, 3>({size.n_kv_heads, cap, size.head_dim}),
                    Tensor<element_dtype, 3>({size.n_kv_heads, cap, size.head_dim}),
                    Tensor<f32, 2>(scale_extents(cap, size.n_kv_heads)),
                    Tensor<f32, 2>(scale_extents(cap, size.n_kv_heads)), w, 0, 0};
      layers_.push_back(std::move(s));
    }
  }

  static extents_t<2> scale_extents(index_t cap, index_t n_kv_heads) {
    if constexpr (quantized) return {cap, n_kv_heads};
    else return {0, 0};  // unquantized stores carry no scales
  }

  layer_store& at(const char* op, index_t layer) {
    check_layer(op, layer);
    return layers_[static_cast<std::size_t>(layer)];
  }
  const layer_store& at(const char* op, index_t layer) const {
    check_layer(op, layer);
    return layers_[static_cast<std::size_t>(layer)];
  }
  void check_layer(const char* op, index_t layer) const {
    PRECIS_CHECK(layer >= 0 && layer < n_layers(), range_error, "[KvCache::", op, "] layer ", layer,
                 " outside [0, ", n_layers(), ")");
  }

  template <class E>
  void check_append(const layer_store& s, index_t layer, TensorView<const E, 3> k, TensorView<const E, 3> v) const {
    const extents_t<3> want = {k.extent(0), n_kv_heads(), head_dim()};
    PRECIS_CHECK(k.extents() == want, shape_error, "[KvCache::append] k ", format_extents(k.extents()), ", expected ",
                 format_extents(want));
    PRECIS_CHECK(v.extents() == want, shape_error, "[KvCache::append] v ", format_extents(v.extents()),
                 " does not match k ", format_extents(k.extents()));
    const index_t n_new = k.extent(0);
    if (s.window == 0)
      PRECIS_CHECK(s.length + n_new <= max_seq(), range_error, "[KvCache::append] layer ", layer, ": ", s.length,
                   " cached + ", n_new, " new tokens exceed max_seq ", max_seq());
    else
      PRECIS_CHECK(n_new <= max_append(), range_error, "[KvCache::append] layer ", layer, " (sliding window ", s.window,
                   ", ring of ", s.capacity(), " positions): ", n_new, " new tokens in one append exceed max_append ",
                   max_append(), " — the first of them attends to keys the ring would overwrite");
  }

  /// Writes rows for positions [length, length + T) into their slots.
  template <class E, std::size_t R>
  static void write_rows(const layer_store& s, TensorView<E, R> dst, TensorView<const E, R> src) {
    const index_t start = s.length;
    detail::for_each_slot_run(start, start + src.extent(0), dst.extent(0), [&](index_t p, index_t slot, index_t n) {
      detail::kv_copy_rows(dst, slot, src.slice(0, p - start, p - start + n));
    });
  }

  static void advance(layer_store& s, index_t n_new) noexcept {
    s.length += n_new;
    s.oldest = std::max(s.oldest, s.length - s.capacity());
  }

  /// Positions [0, length) of `layer` as one view: only while the layer holds all of them.
  template <class E, std::size_t R>
  TensorView<const E, R> contiguous(const char* op, index_t layer, TensorView<const E, R> all) const {
    const layer_store& s = at(op, layer);
    PRECIS_CHECK(s.oldest == 0 && s.length <= all.extent(0), range_error, "[KvCache::", op, "] layer ", layer,
                 " is a sliding-window ring (window ", s.window, ") holding positions [", s.oldest, ", ", s.length,
                 ") only; read it through sequence(", layer, ")");
    return all.slice(0, 0, s.length);
  }

  KvCacheSize size_;
  std::vector<layer_store> layers_;  // [n_layers]
};

// ---------------------------------------------------------------------------------------------
// PagedKvCache<Store>: several sequences, one page pool
// ---------------------------------------------------------------------------------------------

/// A live sequence of a PagedKvCache. The generation makes an id stale once its sequence is
/// removed, so a freed id cannot read or write the slot's next owner.
struct KvSeqId {
  index_t slot = -1;
  std::uint64_t generation = 0;
  friend bool operator==(const KvSeqId&, const KvSeqId&) = default;
};

/// Sizes of a PagedKvCache.
struct PagedKvSize {
  index_t n_kv_heads = 0;
  index_t head_dim = 0;
  index_t page_size = 16;     ///< positions per page
  index_t n_pages = 0;        ///< pages in the pool the full-attention layers of all sequences share
  index_t max_sequences = 1;  ///< sequences alive at once (each sliding layer keeps a ring per sequence)
  index_t max_append = 1;     ///< most tokens one append brings (sizes the sliding-layer rings)
};

template <class Store>
  requires ActivationDtype<Store>
class PagedKvCache {
 public:
  using store_type = Store;
  using element_dtype = Store;

  PagedKvCache(const KvLayerPlan& plan, const PagedKvSize& size) : size_(size) {
    PRECIS_CHECK(plan.n_layers() > 0 && size.n_kv_heads > 0 && size.head_dim > 0 && size.page_size > 0 &&
                     size.max_sequences > 0 && size.max_append > 0 && size.n_pages >= 0,
                 config_error,
                 "[PagedKvCache] layers, n_kv_heads, head_dim, page_size, max_sequences and max_append must be "
                 "positive and n_pages ≥ 0, got ",
                 plan.n_layers(), ", ", size.n_kv_heads, ", ", size.head_dim, ", ", size.page_size, ", ",
                 size.max_sequences, ", ", size.max_append, ", ", size.n_pages);
    for (index_t l = 0; l < plan.n_layers(); ++l) {
      const index_t w = plan.window(l);
      // Full layers: pages [n_pages, Hkv, page_size, Dh]; sliding layers: one ring per sequence
      // slot [max_sequences, Hkv, ring, Dh]. Head-major, as KvCache.
      const extents_t<4> e = w == 0 ? extents_t<4>{size.n_pages, size.n_kv_heads, size.page_size, size.head_dim}
                                    : extents_t<4>{size.max_sequences, size.n_kv_heads, w - 1 + size.max_append,
                                                   size.head_dim};
      layers_.push_back({Tensor<Store, 4>(e), Tensor<Store, 4>(e), w});
    }
    slots_.resize(static_cast<std::size_t>(size.max_sequences));
    for (auto& s : slots_) {
      s.length.assign(layers_.size(), 0);
      s.oldest.assign(layers_.size(), 0);
    }
    for (index_t p = size.n_pages; p-- > 0;) free_.push_back(p);  // pop_back hands out page 0 first
  }

  [[nodiscard]] index_t n_layers() const noexcept { return static_cast<index_t>(layers_.size()); }
  [[nodiscard]] index_t n_kv_heads() const noexcept { return size_.n_kv_heads; }
  [[nodiscard]] index_t head_dim() const noexcept { return size_.head_dim; }
  [[nodiscard]] index_t page_size() const noexcept { return size_.page_size; }
  [[nodiscard]] index_t n_pages() const noexcept { return size_.n_pages; }
  [[nodiscard]] index_t free_pages() const noexcept { return static_cast<index_t>(free_.size()); }
  [[nodiscard]] index_t window(index_t layer) const { return at("window", layer).window; }
  [[nodiscard]] index_t live_sequences() const noexcept {
    index_t n = 0;
    for (const auto& s : slots_) n += s.live ? 1 : 0;
    return n;
  }

  /// A new, empty sequence; range_error when max_sequences are live.
  [[nodiscard]] KvSeqId add_sequence() {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].live) continue;
      slots_[i].live = true;
      return KvSeqId{static_cast<index_t>(i), slots_[i].generation};
    }
    fail<range_error>("[PagedKvCache::add_sequence] all ", size_.max_sequences, " sequence slots are live");
  }

  /// Frees `seq`: its pages return to the pool and its id becomes stale.
  void remove_sequence(KvSeqId seq) {
    slot_state& s = live("remove_sequence", seq);
    for (auto it = s.pages.rbegin(); it != s.pages.rend(); ++it) free_.push_back(*it);
    s.pages.clear();
    std::fill(s.length.begin(), s.length.end(), 0);
    std::fill(s.oldest.begin(), s.oldest.end(), 0);
    s.live = false;
    ++s.generation;
  }

  [[nodiscard]] index_t length(KvSeqId seq, index_t layer) const {
    const slot_state& s = live("length", seq);
    at("length", layer);
    return s.length[static_cast<std::size_t>(layer)];
  }
  /// Pool pages of `seq` in position order (its block table).
  [[nodiscard]] std::span<const index_t> page_table(KvSeqId seq) const { return live("page_table", seq).pages; }

  /// Appends k, v [T, n_kv_heads, head_dim] of `seq` to `layer`. A full layer takes the pages it
  /// needs from the pool first; if the pool cannot supply them nothing is written.
  template <class K, class V>
    requires kv_append_matches_store<K, Store> && kv_append_matches_store<V, Store>
  void append(KvSeqId seq, index_t layer, const K& k, const V& v) {
    slot_state& s = live("append", seq);
    layer_store& ls = at("append", layer);
    const TensorView<const Store, 3> kv = as_const_view(k), vv = as_const_view(v);
    const extents_t<3> want = {kv.extent(0), n_kv_heads(), head_dim()};
    PRECIS_CHECK(kv.extents() == want, shape_error, "[PagedKvCache::append] k ", format_extents(kv.extents()),
                 ", expected ", format_extents(want));
    PRECIS_CHECK(vv.extents() == want, shape_error, "[PagedKvCache::append] v ", format_extents(vv.extents()),
                 " does not match k ", format_extents(kv.extents()));
    const auto l = static_cast<std::size_t>(layer);
    const index_t start = s.length[l], n_new = kv.extent(0), end = start + n_new;
    if (ls.window == 0) {
      const index_t need = (end + page_size() - 1) / page_size();
      const index_t more = need - static_cast<index_t>(s.pages.size());
      PRECIS_CHECK(more <= free_pages(), range_error, "[PagedKvCache::append] page pool exhausted: sequence ",
                   seq.slot, ", layer ", layer, " needs ", more, " more page(s) of ", page_size(),
                   " positions for positions [", start, ", ", end, "), ", free_pages(), " of ", n_pages(), " free");
      for (index_t i = 0; i < more; ++i) {
        s.pages.push_back(free_.back());
        free_.pop_back();
      }
      for (index_t p = start; p < end;) {
        const index_t page = s.pages[static_cast<std::size_t>(p / page_size())], off = p % page_size();
        const index_t n = std::min(end - p, page_size() - off);
        detail::kv_copy_rows(ls.tokens(ls.k, page), off, kv.slice(0, p - start, p - start + n));
        detail::kv_copy_rows(ls.tokens(ls.v, page), off, vv.slice(0, p - start, p - start + n));
        p += n;
      }
    } else {
      PRECIS_CHECK(n_new <= size_.max_append, range_error, "[PagedKvCache::append] sequence ", seq.slot, ", layer ",
                   layer, " (sliding window ", ls.window, "): ", n_new, " new tokens in one append exceed max_append ",
                   size_.max_append, " — the first of them attends to keys the ring would overwrite");
      const TensorView<Store, 3> kr = ls.tokens(ls.k, seq.slot), vr = ls.tokens(ls.v, seq.slot);
      detail::for_each_slot_run(start, end, kr.extent(0), [&](index_t p, index_t slot, index_t n) {
        detail::kv_copy_rows(kr, slot, kv.slice(0, p - start, p - start + n));
        detail::kv_copy_rows(vr, slot, vv.slice(0, p - start, p - start + n));
      });
      s.oldest[l] = std::max(s.oldest[l], end - kr.extent(0));
    }
    s.length[l] = end;
  }

  /// What attention kernels read: positions [first, length) of `seq` in `layer` (one segment per
  /// page for a full layer, at most two for a ring).
  [[nodiscard]] KvSequenceView<Store> sequence(KvSeqId seq, index_t layer) const {
    const slot_state& s = live("sequence", seq);
    const layer_store& ls = at("sequence", layer);
    const auto l = static_cast<std::size_t>(layer);
    const index_t len = s.length[l];
    std::vector<KvSegment<Store>> segs;
    if (ls.window == 0) {
      segs.reserve(static_cast<std::size_t>((len + page_size() - 1) / page_size()));
      for (index_t p = 0; p < len; p += page_size()) {
        const index_t page = s.pages[static_cast<std::size_t>(p / page_size())], n = std::min(page_size(), len - p);
        segs.push_back({p, ls.tokens(ls.k, page).slice(0, 0, n), ls.tokens(ls.v, page).slice(0, 0, n)});
      }
    } else {
      const TensorView<const Store, 3> kr = ls.tokens(ls.k, seq.slot), vr = ls.tokens(ls.v, seq.slot);
      detail::for_each_slot_run(s.oldest[l], len, kr.extent(0), [&](index_t p, index_t slot, index_t n) {
        segs.push_back({p, kr.slice(0, slot, slot + n), vr.slice(0, slot, slot + n)});
      });
    }
    return KvSequenceView<Store>(n_kv_heads(), head_dim(), ls.window, std::move(segs));
  }

 private:
  struct layer_store {
    Tensor<Store, 4> k;  // full: [n_pages, Hkv, page_size, Dh]; sliding: [max_sequences, Hkv, ring, Dh]
    Tensor<Store, 4> v;
    index_t window = 0;

    /// Page (full layer) or ring (sliding layer) i of K or V as [slots, Hkv, Dh].
    [[nodiscard]] static TensorView<Store, 3> tokens(Tensor<Store, 4>& t, index_t i) noexcept {
      return detail::kv_tokens<Store>(t.data() + i * t.extent(1) * t.extent(2) * t.extent(3), t.extent(2), t.extent(1),
                                      t.extent(3));
    }
    [[nodiscard]] static TensorView<const Store, 3> tokens(const Tensor<Store, 4>& t, index_t i) noexcept {
      return detail::kv_tokens<const Store>(t.data() + i * t.extent(1) * t.extent(2) * t.extent(3), t.extent(2),
                                            t.extent(1), t.extent(3));
    }
  };
  struct slot_state {
    bool live = false;
    std::uint64_t generation = 0;
    std::vector<index_t> pages;   // block table of the full layers: page i holds positions [i·P, (i+1)·P)
    std::vector<index_t> length;  // [n_layers]
    std::vector<index_t> oldest;  // [n_layers] oldest position a sliding layer's ring still holds
  };

  const layer_store& at(const char* op, index_t layer) const {
    PRECIS_CHECK(layer >= 0 && layer < n_layers(), range_error, "[PagedKvCache::", op, "] layer ", layer,
                 " outside [0, ", n_layers(), ")");
    return layers_[static_cast<std::size_t>(layer)];
  }
  layer_store& at(const char* op, index_t layer) {
    return const_cast<layer_store&>(static_cast<const PagedKvCache&>(*this).at(op, layer));
  }
  const slot_state& live(const char* op, KvSeqId seq) const {
    PRECIS_CHECK(seq.slot >= 0 && seq.slot < size_.max_sequences &&
                     slots_[static_cast<std::size_t>(seq.slot)].live &&
                     slots_[static_cast<std::size_t>(seq.slot)].generation == seq.generation,
                 range_error, "[PagedKvCache::", op, "] sequence (slot ", seq.slot, ", generation ", seq.generation,
                 ") is not live: removed, or never added");
    return slots_[static_cast<std::size_t>(seq.slot)];
  }
  slot_state& live(const char* op, KvSeqId seq) {
    return const_cast<slot_state&>(static_cast<const PagedKvCache&>(*this).live(op, seq));
  }

  PagedKvSize size_;
  std::vector<layer_store> layers_;  // [n_layers]
  std::vector<slot_state> slots_;    // [max_sequences]
  std::vector<index_t> free_;        // free pool pages (a stack)
};

}  // namespace precis
