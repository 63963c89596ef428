// precis/nn/kv_cache.hpp — the typed KV caches over one index (nn/kv_index.hpp):
// PagedKvCache<Store> (several sequences sharing a pool of fixed-size pages; what the models and
// the host backends use) and KvCache<Store> (one sequence: the same cache with one page of max_seq
// positions). Both are a KvIndex (positions, block tables, rings, free pages) over a HostKvPool
// (the K/V memory); the CUDA backend pairs the same index with a device pool. Attention kernels
// read a sequence's layer through KvSequenceView<E>.
//
// Seed bug 1 (dtype-bugs §0): gpt-oss's MXFP4 kernels were missing, transformers fell back to
// dequantizing to bf16, and the bf16 K/V met an f32 "virtual" KV workspace:
// `RuntimeError: expected scalar type Float but found BFloat16`. Related: litgpt's f32 cache
// under a bf16 model (E5), torchtune's default-f32 cache (E6), fp8 caches read by bf16 kernels
// (E8), bf16 bits read back as f16 (E9). The rules (class C2):
//
//   - `append(..., k, v)` compiles only if K and V are tensors of exactly `Store`
//     (kv_append_matches_store). A bf16 activation appended to a KvCache<f32> does not compile;
//     the fix is an explicit cast<f32> or, better, a cache made for the compute type by the
//     backend: `make_kv_cache<Act>()` returns kv_cache<Act> (backends/backend.hpp).
//   - a store other than the compute type is spelled `quantized_kv<Store, Quantizer>`
//     (core/precision_policy.hpp); such a cache accepts only the quantizer's own output
//     (`QuantizedKv<Store, Q>`, nn/kv_quantizer.hpp) and is read only through
//     `dequantize_keys<Act>` / `dequantize_values<Act>` or the raw, separately named
//     `key_codes` + `key_scales` views. A bf16 tensor cannot be appended to it.
//   - there is no `view<Other>()` and no reinterpretation: `keys(layer)` and `sequence(...)`
//     return views of the store's own dtype, and a reader wanting another dtype calls cast<To>.
//
// Layouts (nn/kv_index.hpp): per layer, blocks of slots — pool pages for full layers, one ring of
// window − 1 + max_append slots per sequence for sliding layers (gpt-oss alternates, model-
// semantics §1a). Page exhaustion, a ring overrun and (KvCache) appending past max_seq are
// range_errors naming the sequence, the layer and the counts, and nothing is written.
//
// Readers: KvSequenceView<E> is the retained positions [first, length) of one sequence in one
// layer as runs of consecutive positions stored contiguously (KvSegment): one per page for a full
// layer, at most two for a ring. Kernels address keys by absolute position, so every layout gives
// bit-identical attention (tests/unit/attention). A view points into the cache: it is invalidated
// by the next append to its layer.
#pragma once

#include <algorithm>  // std::max, std::min
#include <concepts>   // std::same_as
#include <cstddef>    // std::size_t
#include <cstring>    // std::memcpy
#include <span>       // std::span
#include <utility>    // std::move
#include <vector>     // std::vector

#include <precis/core/dtype.hpp>             // precis::ActivationDtype, same_dtype_no_implicit_cast
#include <precis/core/error.hpp>             // precis::range_error, shape_error, config_error
#include <precis/core/precision_policy.hpp>  // precis::quantized_kv, is_quantized_kv
#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/nn/kv_format.hpp>           // precis::KvFormat, KvCacheFormat, kv_encode_row_reference
#include <precis/nn/kv_index.hpp>            // precis::KvIndex, KvLayerPlan, PagedKvSize, KvSeqId, KvRun
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

// ---------------------------------------------------------------------------------------------
// KvStoredView: the same positions as stored, in the cache's run-time K/V formats
// ---------------------------------------------------------------------------------------------

/// Rows of one run of positions in one layer, as bytes: row(i, h) is position `position + i` of
/// kv head h, kv_row_bytes(format, head_dim) bytes.
struct KvStoredRows {
  const std::uint8_t* data = nullptr;  ///< row 0 of kv head 0
  index_t row_stride = 0;              ///< bytes from one position to the next
  index_t head_stride = 0;             ///< bytes from one kv head to the next

  [[nodiscard]] const std::uint8_t* row(index_t i, index_t h) const noexcept {
    return data + i * row_stride + h * head_stride;
  }
};

/// Consecutive positions [position, position + n) of K and V.
struct KvStoredSegment {
  index_t position = 0;
  index_t n = 0;
  KvStoredRows k, v;

  [[nodiscard]] index_t size() const noexcept { return n; }
};

/// What attention kernels read from a cache whose K or V is not stored in the compute dtype
/// (nn/kv_format.hpp): positions [first, length) of one sequence in one layer, with the formats
/// the rows were written in. Kernels decode rows through these formats only.
class KvStoredView {
 public:
  KvStoredView(index_t n_kv_heads, index_t head_dim, index_t window, KvCacheFormat format,
               std::vector<KvStoredSegment> segments)
      : n_kv_heads_(n_kv_heads), head_dim_(head_dim), window_(window), format_(format) {
    PRECIS_CHECK(n_kv_heads > 0 && head_dim > 0 && window >= 0, config_error,
                 "[KvStoredView] n_kv_heads and head_dim must be positive and window ≥ 0, got ", n_kv_heads, ", ",
                 head_dim, ", ", window);
    check_kv_format(format, head_dim, "KvStoredView");
    segments_.reserve(segments.size());
    for (KvStoredSegment& s : segments) {
      if (s.size() == 0) continue;
      const index_t expected = segments_.empty() ? s.position : length();
      PRECIS_CHECK(s.position >= 0 && s.position == expected && s.k.data != nullptr && s.v.data != nullptr,
                   shape_error, "[KvStoredView] segment at position ", s.position,
                   " does not continue the previous one (expected position ", expected, ") or has no rows");
      segments_.push_back(s);
    }
  }

  [[nodiscard]] index_t first() const noexcept { return segments_.empty() ? 0 : segments_.front().position; }
  [[nodiscard]] index_t length() const noexcept {
    return segments_.empty() ? 0 : segments_.back().position + segments_.back().size();
  }
  [[nodiscard]] index_t window() const noexcept { return window_; }
  [[nodiscard]] index_t n_kv_heads() const noexcept { return n_kv_heads_; }
  [[nodiscard]] index_t head_dim() const noexcept { return head_dim_; }
  [[nodiscard]] KvCacheFormat format() const noexcept { return format_; }
  [[nodiscard]] std::span<const KvStoredSegment> segments() const noexcept { return segments_; }

 private:
  index_t n_kv_heads_, head_dim_, window_;
  KvCacheFormat format_;
  std::vector<KvStoredSegment> segments_;
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

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// HostKvPool<Store>: the K/V storage a KvIndex addresses, in host memory
// ---------------------------------------------------------------------------------------------

/// Per layer l, K and V as [blocks(l), Hkv, block_slots(l), Dh]: head-major within a block
/// (FlashInfer's "HND"), so a decode task reads one kv head's keys of a page as one contiguous
/// stream — measured 1.6× faster than the token-major [slots, Hkv, Dh] of llama2.c's
/// `key_cache (layer, seq_len, dim)` (docs/performance.md). Views still index [slot, head, dim]
/// through strides. A quantized store adds f32 scales [blocks, block_slots, Hkv] for K and for V.
/// An unquantized store may keep K and/or V in another run-time format (nn/kv_format.hpp): that
/// half is then bytes [blocks, Hkv, block_slots, row_bytes], encoded as rows are written and read
/// only through key_rows / value_rows (the typed keys / values refuse it).
template <class Store>
  requires KvStore<Store>
class HostKvPool {
 public:
  using element_dtype = kv_element_t<Store>;
  static constexpr bool quantized = is_quantized_kv<Store>;

  /// The format a half is in when it stores the element dtype itself.
  [[nodiscard]] static constexpr KvCacheFormat native_format() noexcept {
    if constexpr (quantized) return {};
    else return {native_kv_format<element_dtype>(), native_kv_format<element_dtype>()};
  }

  explicit HostKvPool(const KvIndex& index, KvCacheFormat format = native_format()) : format_(format) {
    PRECIS_CHECK(!quantized || format == native_format(), config_error,
                 "[kv cache] a quantized_kv store keeps its own fp8 codes; it takes no other cache type (", format.describe(),
                 ")");
    check_kv_format(format, index.head_dim(), "kv cache");
    head_dim_ = index.head_dim();
    encoded_k_ = !quantized && format.k != native_format().k;
    encoded_v_ = !quantized && format.v != native_format().v;
    layers_.reserve(static_cast<std::size_t>(index.n_layers()));
    index_t k_arena_bytes = 0, v_arena_bytes = 0;
    try {
      for (index_t l = 0; l < index.n_layers(); ++l) {
        const index_t b = index.blocks(l), n = index.block_slots(l), h = index.n_kv_heads(), d = index.head_dim();
        const extents_t<3> scales = quantized ? extents_t<3>{b, n, h} : extents_t<3>{0, 0, 0};
        const auto typed = [&](bool encoded) {
          return encoded ? extents_t<4>{0, 0, 0, 0} : extents_t<4>{b, h, n, d};
        };
        const auto rows = [&](bool encoded, KvFormat f, index_t& arena) {
          const index_t at = arena;
          if (encoded) arena += b * h * n * static_cast<index_t>(kv_row_bytes(f, d));
          return at;
        };
        const index_t k_at = rows(encoded_k_, format.k, k_arena_bytes), v_at = rows(encoded_v_, format.v, v_arena_bytes);
        layers_.push_back({Tensor<element_dtype, 4>(typed(encoded_k_)), Tensor<element_dtype, 4>(typed(encoded_v_)),
                           Tensor<f32, 3>(scales), Tensor<f32, 3>(scales), k_at, v_at, h, n});
      }
      // One arena per encoded half over every layer: large enough to be mapped lazily
      // (core/tensor.hpp), so only the positions written are resident.
      k_arena_ = Tensor<u8, 1>({k_arena_bytes});
      v_arena_ = Tensor<u8, 1>({v_arena_bytes});
    } catch (const resource_error& e) {
      // Say what needed the memory: the pool is reserved for every sequence's whole context (and
      // committed only as positions are written), so the remedy is fewer positions or sequences.
      double total = 0;
      const double per_slot = quantized ? 2.0 * static_cast<double>(index.head_dim()) * sizeof(storage_t<element_dtype>)
                                        : static_cast<double>(format.bytes_per_position(1, index.head_dim()));
      for (index_t l = 0; l < index.n_layers(); ++l)
        total += static_cast<double>(index.blocks(l)) * static_cast<double>(index.block_slots(l)) *
                 static_cast<double>(index.n_kv_heads()) * per_slot;
      fail<resource_error>("[kv cache] ", index.n_layers(), " layers × ", index.max_sequences(), " sequence(s) × ",
                           index.n_kv_heads(), " kv heads × ", index.head_dim(), " dims need ",
                           total / (1024.0 * 1024.0 * 1024.0), " GiB of address space for ",
                           quantized ? std::string(dtype_name<element_dtype>) : format.describe(), " K/V: ", e.what(),
                           "; load with a smaller max_context (-c), fewer sequences (-np) or a smaller cache type");
    }
  }

  /// The K and V formats (quantized stores: meaningless, their codes are element_dtype).
  [[nodiscard]] KvCacheFormat format() const noexcept { return format_; }
  /// True if K or V is not stored as the element dtype (read through key_rows / value_rows).
  [[nodiscard]] bool encoded() const noexcept { return encoded_k_ || encoded_v_; }

  /// Block `b` of layer `l`'s keys / values as [block_slots, Hkv, Dh] (slot, head, dim).
  [[nodiscard]] TensorView<const element_dtype, 3> keys(index_t l, index_t b) const {
    check_typed(encoded_k_, "keys");
    return tokens(layer(l).k, b);
  }
  [[nodiscard]] TensorView<const element_dtype, 3> values(index_t l, index_t b) const {
    check_typed(encoded_v_, "values");
    return tokens(layer(l).v, b);
  }
  /// Block `b` of layer `l`'s keys / values as stored rows, from `slot` on (any format).
  [[nodiscard]] KvStoredRows key_rows(index_t l, index_t b, index_t slot) const
    requires(!quantized)
  {
    return stored(layer(l), true, b, slot);
  }
  [[nodiscard]] KvStoredRows value_rows(index_t l, index_t b, index_t slot) const
    requires(!quantized)
  {
    return stored(layer(l), false, b, slot);
  }
  /// Block `b` of layer `l`'s key / value scales as [block_slots, Hkv] (quantized stores).
  [[nodiscard]] TensorView<const f32, 2> key_scales(index_t l, index_t b) const
    requires quantized
  {
    return layer(l).k_scale.cview()[b];
  }
  [[nodiscard]] TensorView<const f32, 2> value_scales(index_t l, index_t b) const
    requires quantized
  {
    return layer(l).v_scale.cview()[b];
  }

  /// Rows [offset, offset + run.n) of k, v [T, Hkv, Dh] into the run's slots of layer l (encoded
  /// halves through their format's encoder).
  void write(index_t l, const KvRun& run, index_t offset, TensorView<const element_dtype, 3> k,
             TensorView<const element_dtype, 3> v) {
    auto& s = layer(l);
    if (encoded_k_) encode_rows(k_arena_.data() + s.k_rows, s, format_.k, run, k.slice(0, offset, offset + run.n));
    else detail::kv_copy_rows(tokens(s.k, run.block), run.slot, k.slice(0, offset, offset + run.n));
    if (encoded_v_) encode_rows(v_arena_.data() + s.v_rows, s, format_.v, run, v.slice(0, offset, offset + run.n));
    else detail::kv_copy_rows(tokens(s.v, run.block), run.slot, v.slice(0, offset, offset + run.n));
  }
  /// Rows [offset, offset + run.n) of the scales k, v [T, Hkv] into the run's slots of layer l.
  void write_scales(index_t l, const KvRun& run, index_t offset, TensorView<const f32, 2> k,
                    TensorView<const f32, 2> v)
    requires quantized
  {
    auto& s = layer(l);
    detail::kv_copy_rows(s.k_scale.view()[run.block], run.slot, k.slice(0, offset, offset + run.n));
    detail::kv_copy_rows(s.v_scale.view()[run.block], run.slot, v.slice(0, offset, offset + run.n));
  }

  /// Bytes of K, V (and scales) of every layer.
  [[nodiscard]] std::size_t bytes() const noexcept {
    std::size_t n = k_arena_.bytes() + v_arena_.bytes();
    for (const auto& s : layers_) n += s.k.bytes() + s.v.bytes() + s.k_scale.bytes() + s.v_scale.bytes();
    return n;
  }

 private:
  struct layer_store {
    Tensor<element_dtype, 4> k;  // [blocks, Hkv, block_slots, Dh] (empty when K is encoded)
    Tensor<element_dtype, 4> v;  // [blocks, Hkv, block_slots, Dh] (empty when V is encoded)
    Tensor<f32, 3> k_scale;      // [blocks, block_slots, Hkv] (quantized stores; else empty)
    Tensor<f32, 3> v_scale;      // [blocks, block_slots, Hkv]
    index_t k_rows = 0;          // encoded K: offset of [blocks, Hkv, block_slots, row_bytes] in k_arena_
    index_t v_rows = 0;          // encoded V: the same in v_arena_
    index_t n_heads = 0, slots = 0;
  };
  [[nodiscard]] static TensorView<element_dtype, 3> tokens(Tensor<element_dtype, 4>& t, index_t b) noexcept {
    return detail::kv_tokens<element_dtype>(t.data() + b * t.extent(1) * t.extent(2) * t.extent(3), t.extent(2),
                                            t.extent(1), t.extent(3));
  }
  [[nodiscard]] static TensorView<const element_dtype, 3> tokens(const Tensor<element_dtype, 4>& t,
                                                                 index_t b) noexcept {
    return detail::kv_tokens<const element_dtype>(t.data() + b * t.extent(1) * t.extent(2) * t.extent(3),
                                                  t.extent(2), t.extent(1), t.extent(3));
  }
  static void check_typed(bool encoded, const char* what) {
    PRECIS_CHECK(!encoded, config_error, "[kv cache] ", what,
                 " are stored in a run-time cache type, not as the element dtype: read them through "
                 "key_rows / value_rows (a KvStoredView), never as typed rows (dtype-bugs E9)");
  }
  /// Rows of block b from `slot` of one half (keys or values) of layer s, in any format.
  [[nodiscard]] KvStoredRows stored(const layer_store& s, bool keys, index_t b, index_t slot) const noexcept {
    const index_t h = s.n_heads, n = s.slots;
    if (keys ? encoded_k_ : encoded_v_) {
      const index_t rb = static_cast<index_t>(kv_row_bytes(keys ? format_.k : format_.v, head_dim_));
      const std::uint8_t* base = (keys ? k_arena_ : v_arena_).data() + (keys ? s.k_rows : s.v_rows);
      return {base + (b * h * n + slot) * rb, rb, n * rb};
    }
    constexpr auto es = static_cast<index_t>(sizeof(storage_t<element_dtype>));
    const Tensor<element_dtype, 4>& t = keys ? s.k : s.v;
    return {reinterpret_cast<const std::uint8_t*>(t.data() + (b * h * n + slot) * head_dim_), head_dim_ * es,
            n * head_dim_ * es};
  }
  /// Encodes src [run.n, Hkv, Dh] into the run's rows of one encoded half of layer s, whose
  /// [blocks, Hkv, block_slots, row_bytes] start at `base`.
  void encode_rows(std::uint8_t* base, const layer_store& s, KvFormat f, const KvRun& run,
                   TensorView<const element_dtype, 3> src) const {
    if constexpr (!quantized) {
      const index_t h_n = s.n_heads, n = s.slots, rb = static_cast<index_t>(kv_row_bytes(f, head_dim_));
      std::uint8_t* block = base + run.block * h_n * n * rb;
      std::vector<storage_t<element_dtype>> tmp;
      for (index_t i = 0; i < src.extent(0); ++i)
        for (index_t h = 0; h < h_n; ++h) {
          const storage_t<element_dtype>* x = &src(i, h, 0);
          if (src.stride(2) != 1) {  // gather a strided row first
            tmp.resize(static_cast<std::size_t>(head_dim_));
            for (index_t d = 0; d < head_dim_; ++d) tmp[static_cast<std::size_t>(d)] = src(i, h, d);
            x = tmp.data();
          }
          kv_encode_row_reference<element_dtype>(f, x, head_dim_, block + (h * n + run.slot + i) * rb);
        }
    }
  }
  layer_store& layer(index_t l) { return layers_[static_cast<std::size_t>(l)]; }
  const layer_store& layer(index_t l) const { return layers_[static_cast<std::size_t>(l)]; }

  KvCacheFormat format_;
  bool encoded_k_ = false, encoded_v_ = false;
  index_t head_dim_ = 0;
  std::vector<layer_store> layers_;  // [n_layers]
  Tensor<u8, 1> k_arena_, v_arena_;  // encoded K / V rows of every layer (empty when typed)
};

// ---------------------------------------------------------------------------------------------
// PagedKvCache<Store>: several sequences, one page pool (KvIndex + HostKvPool)
// ---------------------------------------------------------------------------------------------

template <class Store>
  requires KvStore<Store>
class PagedKvCache {
 public:
  using store_type = Store;
  using element_dtype = kv_element_t<Store>;
  static constexpr bool quantized = is_quantized_kv<Store>;

  PagedKvCache(const KvLayerPlan& plan, const PagedKvSize& size, const char* owner = "PagedKvCache")
      : index_(plan, size, owner), pool_(index_) {}
  /// K and V stored in `format` (nn/kv_format.hpp; unquantized stores): rows are encoded as they
  /// are appended and read through stored(). The element dtype's own format is the typed cache.
  PagedKvCache(const KvLayerPlan& plan, const PagedKvSize& size, KvCacheFormat format,
               const char* owner = "PagedKvCache")
    requires(!quantized)
      : index_(plan, size, owner), pool_(index_, format) {}

  /// The K and V formats (the element dtype's own unless made with another).
  [[nodiscard]] KvCacheFormat format() const noexcept { return pool_.format(); }
  /// True if K or V is not stored as the element dtype: read through stored(), not sequence().
  [[nodiscard]] bool encoded() const noexcept { return pool_.encoded(); }
  /// Bytes one position takes in one full-attention layer (K and V rows of every kv head).
  [[nodiscard]] std::size_t bytes_per_position() const noexcept {
    if constexpr (quantized)
      return 2 * static_cast<std::size_t>(n_kv_heads()) *
             (static_cast<std::size_t>(head_dim()) * sizeof(storage_t<element_dtype>) + sizeof(float));
    else return format().bytes_per_position(n_kv_heads(), head_dim());
  }

  [[nodiscard]] const KvIndex& index() const noexcept { return index_; }
  /// The storage, for kernels that address it through index() runs.
  [[nodiscard]] const HostKvPool<Store>& pool() const noexcept { return pool_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return pool_.bytes(); }

  [[nodiscard]] index_t n_layers() const noexcept { return index_.n_layers(); }
  [[nodiscard]] index_t n_kv_heads() const noexcept { return index_.n_kv_heads(); }
  [[nodiscard]] index_t head_dim() const noexcept { return index_.head_dim(); }
  [[nodiscard]] index_t page_size() const noexcept { return index_.page_size(); }
  [[nodiscard]] index_t n_pages() const noexcept { return index_.n_pages(); }
  [[nodiscard]] index_t free_pages() const noexcept { return index_.free_pages(); }
  [[nodiscard]] index_t window(index_t layer) const { return index_.window(layer); }
  [[nodiscard]] index_t live_sequences() const noexcept { return index_.live_sequences(); }

  /// A new, empty sequence; range_error when max_sequences are live.
  [[nodiscard]] KvSeqId add_sequence() { return index_.add_sequence(); }
  /// Frees `seq`: its pages return to the pool and its id becomes stale.
  void remove_sequence(KvSeqId seq) { index_.remove_sequence(seq); }
  /// Forgets every position of `seq`; the id stays live.
  void clear(KvSeqId seq) { index_.clear(seq); }
  [[nodiscard]] index_t length(KvSeqId seq, index_t layer) const { return index_.length(seq, layer); }
  [[nodiscard]] index_t first(KvSeqId seq, index_t layer) const { return index_.first(seq, layer); }
  /// Pool pages of `seq` in position order (its block table).
  [[nodiscard]] std::span<const index_t> page_table(KvSeqId seq) const { return index_.page_table(seq); }
  void truncate(KvSeqId seq, index_t layer, index_t new_length) { index_.truncate(seq, layer, new_length); }

  /// Appends k, v [T, n_kv_heads, head_dim] of `seq` to `layer` (quantized stores: the quantizer's
  /// output). A full layer takes the pages it needs from the pool first; if the pool cannot supply
  /// them, or a ring would overrun, nothing is written.
  template <class K, class V>
    requires kv_append_matches_store<K, Store> && kv_append_matches_store<V, Store>
  void append(KvSeqId seq, index_t layer, const K& k, const V& v) {
    if constexpr (quantized) {
      append_rows(seq, layer, k.codes(), v.codes(), [&](const KvRun& r, index_t off) {
        pool_.write_scales(layer, r, off, k.scales(), v.scales());
      });
    } else {
      append_rows(seq, layer, as_const_view(k), as_const_view(v), [](const KvRun&, index_t) {});
    }
  }

  /// What attention kernels read: positions [first, length) of `seq` in `layer` (one segment per
  /// page for a full layer, at most two for a ring). (A template only so that the return type is
  /// not formed for quantized stores.)
  template <class E = element_dtype>
    requires(!quantized && std::same_as<E, element_dtype>)
  [[nodiscard]] KvSequenceView<E> sequence(KvSeqId seq, index_t layer) const {
    PRECIS_CHECK(!encoded(), config_error, "[", index_.owner(), "::sequence] the cache stores ", format().describe(),
                 ", not ", dtype_name<E>, " rows: read it through stored()");
    std::vector<KvSegment<E>> segs;
    index_.for_each_run(seq, layer, [&](const KvRun& r) {
      segs.push_back({r.position, pool_.keys(layer, r.block).slice(0, r.slot, r.slot + r.n),
                      pool_.values(layer, r.block).slice(0, r.slot, r.slot + r.n)});
    });
    return KvSequenceView<E>(n_kv_heads(), head_dim(), window(layer), std::move(segs));
  }

  /// Positions [first, length) of `seq` in `layer` as stored, with their formats (any
  /// unquantized store; what attention reads when encoded()).
  [[nodiscard]] KvStoredView stored(KvSeqId seq, index_t layer) const
    requires(!quantized)
  {
    std::vector<KvStoredSegment> segs;
    index_.for_each_run(seq, layer, [&](const KvRun& r) {
      segs.push_back({r.position, r.n, pool_.key_rows(layer, r.block, r.slot), pool_.value_rows(layer, r.block, r.slot)});
    });
    return KvStoredView(n_kv_heads(), head_dim(), window(layer), format(), std::move(segs));
  }

  /// Quantized stores: keys / values [length − first, Hkv, Dh] of `seq` in `layer`, dequantized by
  /// the store's quantizer to `Act`.
  template <ActivationDtype Act>
    requires quantized
  [[nodiscard]] Tensor<Act, 3> dequantize_keys(KvSeqId seq, index_t layer) const {
    return gather_dequantize<Act>(seq, layer, true);
  }
  template <ActivationDtype Act>
    requires quantized
  [[nodiscard]] Tensor<Act, 3> dequantize_values(KvSeqId seq, index_t layer) const {
    return gather_dequantize<Act>(seq, layer, false);
  }

 private:
  template <class Scales>
  void append_rows(KvSeqId seq, index_t layer, TensorView<const element_dtype, 3> k,
                   TensorView<const element_dtype, 3> v, Scales&& scales) {
    const extents_t<3> want = {k.extent(0), n_kv_heads(), head_dim()};
    PRECIS_CHECK(k.extents() == want, shape_error, "[", index_.owner(), "::append] k ", format_extents(k.extents()),
                 ", expected ", format_extents(want));
    PRECIS_CHECK(v.extents() == want, shape_error, "[", index_.owner(), "::append] v ", format_extents(v.extents()),
                 " does not match k ", format_extents(k.extents()));
    const index_t start = index_.length(seq, layer);
    index_.append(seq, layer, k.extent(0), [&](const KvRun& r) {
      pool_.write(layer, r, r.position - start, k, v);
      scales(r, r.position - start);
    });
  }

  template <ActivationDtype Act>
  [[nodiscard]] Tensor<Act, 3> gather_dequantize(KvSeqId seq, index_t layer, bool keys) const {
    const index_t n = length(seq, layer) - first(seq, layer), from = first(seq, layer);
    Tensor<element_dtype, 3> codes({n, n_kv_heads(), head_dim()});
    Tensor<f32, 2> scales({n, n_kv_heads()});
    index_.for_each_run(seq, layer, [&](const KvRun& r) {
      const auto c = keys ? pool_.keys(layer, r.block) : pool_.values(layer, r.block);
      const auto s = keys ? pool_.key_scales(layer, r.block) : pool_.value_scales(layer, r.block);
      detail::kv_copy_rows(codes.view(), r.position - from, c.slice(0, r.slot, r.slot + r.n));
      detail::kv_copy_rows(scales.view(), r.position - from, s.slice(0, r.slot, r.slot + r.n));
    });
    return Store::quantizer::template dequantize<Act>(codes.cview(), scales.cview());
  }

  KvIndex index_;
  HostKvPool<Store> pool_;
};

// ---------------------------------------------------------------------------------------------
// KvCache<Store>: one sequence (a PagedKvCache of one sequence and one page of max_seq positions)
// ---------------------------------------------------------------------------------------------

/// Sizes of a KvCache.
struct KvCacheSize {
  index_t n_kv_heads = 0;
  index_t head_dim = 0;
  index_t max_seq = 0;     ///< positions a full-attention layer holds
  index_t max_append = 1;  ///< most tokens one append brings (the prefill chunk): a sliding layer
                           ///< of window w keeps a ring of w − 1 + max_append positions
};

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
                KvCacheSize{.n_kv_heads = n_kv_heads, .head_dim = head_dim, .max_seq = max_seq, .max_append = 1}) {}

  /// Full layers hold max_seq positions (one page of max_seq: positions [0, L) in slots 0..L−1),
  /// sliding layers a ring of window − 1 + max_append.
  KvCache(const KvLayerPlan& plan, const KvCacheSize& size)
      : paged_(plan,
               PagedKvSize{.n_kv_heads = size.n_kv_heads, .head_dim = size.head_dim, .page_size = size.max_seq,
                           .n_pages = 1, .max_sequences = 1, .max_append = size.max_append},
               "KvCache"),
        seq_(paged_.add_sequence()) {}

  [[nodiscard]] index_t n_layers() const noexcept { return paged_.n_layers(); }
  [[nodiscard]] index_t max_seq() const noexcept { return paged_.page_size(); }
  [[nodiscard]] index_t max_append() const noexcept { return paged_.index().max_append(); }
  [[nodiscard]] index_t n_kv_heads() const noexcept { return paged_.n_kv_heads(); }
  [[nodiscard]] index_t head_dim() const noexcept { return paged_.head_dim(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return paged_.bytes(); }
  /// The window `layer`'s store was built for (0: full).
  [[nodiscard]] index_t window(index_t layer) const { return paged_.window(layer); }
  /// Positions `layer`'s memory holds: max_seq, or the ring's window − 1 + max_append.
  [[nodiscard]] index_t capacity(index_t layer) const { return paged_.index().block_slots(layer); }
  /// Tokens cached so far in `layer` (the position of the next one).
  [[nodiscard]] index_t length(index_t layer) const { return paged_.length(seq_, layer); }
  /// The oldest position `layer` still holds (0 unless a ring has wrapped).
  [[nodiscard]] index_t first(index_t layer) const { return paged_.first(seq_, layer); }

  /// Appends k, v [T, n_kv_heads, head_dim] to `layer` (quantized stores: the quantizer's output).
  template <class K, class V>
    requires kv_append_matches_store<K, Store> && kv_append_matches_store<V, Store>
  void append(index_t layer, const K& k, const V& v) {
    index_t n_new = 0;
    if constexpr (quantized) n_new = k.codes().extent(0);
    else n_new = as_const_view(k).extent(0);
    const index_t len = length(layer);
    if (window(layer) == 0)
      PRECIS_CHECK(len + n_new <= max_seq(), range_error, "[KvCache::append] layer ", layer, ": ", len, " cached + ",
                   n_new, " new tokens exceed max_seq ", max_seq());
    paged_.append(seq_, layer, k, v);
  }

  /// Cached keys of `layer`: [length(layer), n_kv_heads, head_dim], the store's own dtype. A
  /// ring that has wrapped no longer holds position 0: read it through sequence().
  [[nodiscard]] TensorView<const element_dtype, 3> keys(index_t layer) const
    requires(!quantized)
  {
    return contiguous("keys", layer, [&] { return paged_.pool().keys(layer, 0); });
  }
  /// Cached values of `layer`: [length(layer), n_kv_heads, head_dim].
  [[nodiscard]] TensorView<const element_dtype, 3> values(index_t layer) const
    requires(!quantized)
  {
    return contiguous("values", layer, [&] { return paged_.pool().values(layer, 0); });
  }

  /// What attention kernels read: positions [first(layer), length(layer)) of `layer`.
  template <class E = element_dtype>
    requires(!quantized && std::same_as<E, element_dtype>)
  [[nodiscard]] KvSequenceView<E> sequence(index_t layer) const {
    return paged_.sequence(seq_, layer);
  }

  /// Quantized stores: keys of `layer` dequantized by the store's quantizer to `Act`.
  template <ActivationDtype Act>
    requires quantized
  [[nodiscard]] Tensor<Act, 3> dequantize_keys(index_t layer) const {
    return paged_.template dequantize_keys<Act>(seq_, layer);
  }
  template <ActivationDtype Act>
    requires quantized
  [[nodiscard]] Tensor<Act, 3> dequantize_values(index_t layer) const {
    return paged_.template dequantize_values<Act>(seq_, layer);
  }
  /// Quantized stores, for kernels that dequantize on the fly: the raw codes and their scales.
  [[nodiscard]] TensorView<const element_dtype, 3> key_codes(index_t layer) const
    requires quantized
  {
    return contiguous("key_codes", layer, [&] { return paged_.pool().keys(layer, 0); });
  }
  [[nodiscard]] TensorView<const element_dtype, 3> value_codes(index_t layer) const
    requires quantized
  {
    return contiguous("value_codes", layer, [&] { return paged_.pool().values(layer, 0); });
  }
  [[nodiscard]] TensorView<const f32, 2> key_scales(index_t layer) const
    requires quantized
  {
    return contiguous("key_scales", layer, [&] { return paged_.pool().key_scales(layer, 0); });
  }
  [[nodiscard]] TensorView<const f32, 2> value_scales(index_t layer) const
    requires quantized
  {
    return contiguous("value_scales", layer, [&] { return paged_.pool().value_scales(layer, 0); });
  }

  /// Drops tokens [new_length, length) of `layer` (e.g. rejected speculative tokens). A ring can
  /// go back only as far as it still holds the window of the next query.
  void truncate(index_t layer, index_t new_length) { paged_.truncate(seq_, layer, new_length); }
  /// Forgets every cached token of every layer.
  void clear() { paged_.clear(seq_); }

 private:
  /// Positions [0, length) of `layer` as one view: only while the layer holds all of them (its
  /// single page, or a ring that has not wrapped — both in block 0 from slot 0).
  /// (`block` is called only after `layer` is checked.)
  template <class F>
  auto contiguous(const char* op, index_t layer, F&& block_of) const {
    const index_t len = length(layer), from = first(layer);
    const auto block = block_of();
    PRECIS_CHECK(from == 0 && len <= block.extent(0), range_error, "[KvCache::", op, "] layer ", layer,
                 " is a sliding-window ring (window ", window(layer), ") holding positions [", from, ", ", len,
                 ") only; read it through sequence(", layer, ")");
    return block.slice(0, 0, len);
  }

  PagedKvCache<Store> paged_;
  KvSeqId seq_;
};

}  // namespace precis
