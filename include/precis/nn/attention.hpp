// precis/nn/attention.hpp — AttentionConfig and the reference attention (GQA, causal, sliding
// window, sinks): the math spec every backend's `attend` is diffed against.
//
// Math (model-semantics §1a), per query head h, query token at absolute position p:
//   s_j  = (q · k_j) · scale                       for visible keys j, computed in f32
//   visible: j ≤ p (causal) and, with a sliding window w > 0, p − w < j (the window counts the
//            current token: 128 means the current token and the 127 before it)
//   sink:  optional per-query-head logit s_h — unscaled, unmasked, no value:
//          p_j = exp(s_j − m) / (Σ_k exp(s_k − m) + exp(s_h − m)),  m = max(max_j s_j, s_h)
//   o    = Σ_j p_j · v_j accumulated in f32, rounded once to the activation dtype
// GQA: query head h reads KV head h / (n_heads / n_kv_heads). Queries are the *last* T positions
// of the S keys (prefill: T = S; decode: T = 1 after appending to the cache).
//
// Cached attention reads a KvSequenceView (nn/kv_cache.hpp): the positions [first, length) a
// layer's store still holds — all of them for a full layer, the last window − 1 + max_append for
// a sliding-window ring. The kernel checks that every key a query can see is still held, and that
// a ring is read with the window it was built for (a gpt-oss sliding layer's ring read with a
// full-attention config would silently attend to a truncated prefix).
//
// Type rules:
//   - scores and softmax are f32 whatever the activation dtype (E19 f16 KQ overflow, E20).
//   - sinks are f32 logits [n_heads] (role::sinks is pinned; a checkpoint's bf16 sinks are widened
//     once at load). Backends take them only as f32 (attention_sinks_are_f32,
//     backends/backend.hpp; E23: an f32 sink concatenated to bf16 scores promoted the whole row,
//     trtllm_mha requires f32 sinks).
//   - q, k, v are one activation dtype; which dtypes a backend's attention accepts is part of the
//     Backend concept (backend_attend<B, Act>), so a kernel that takes bf16 only does not make a
//     backend an f32 model can run on (E30: "FlashAttention only supports fp16 and bf16").
#pragma once

#include <algorithm>  // std::max
#include <cmath>     // std::exp, std::sqrt
#include <limits>    // std::numeric_limits
#include <optional>  // std::optional
#include <vector>    // std::vector

#include <precis/core/dtype.hpp>       // precis::f32, bf16, ActivationDtype
#include <precis/core/error.hpp>       // precis::config_error, shape_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>      // precis::to_compute, from_compute
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/nn/kv_cache.hpp>      // precis::KvSequenceView, KvSegment, detail::kv_copy_rows
#include <precis/ops/host_tensor.hpp>  // precis::format_extents

namespace precis {

// ---------------------------------------------------------------------------------------------
// Configuration and the reference kernel
// ---------------------------------------------------------------------------------------------

struct AttentionConfig {
  index_t n_heads = 0;         ///< query heads
  index_t n_kv_heads = 0;      ///< key/value heads (GQA: divides n_heads)
  index_t head_dim = 0;
  index_t sliding_window = 0;  ///< 0: full causal; w > 0: keys p − w < j ≤ p are visible
  std::optional<double> scale = std::nullopt;  ///< softmax scale; head_dim^-0.5 when absent

  [[nodiscard]] double softmax_scale() const { return scale ? *scale : 1.0 / std::sqrt(static_cast<double>(head_dim)); }
};

namespace detail {
inline void check_attention_config(const AttentionConfig& c) {
  PRECIS_CHECK(c.n_heads > 0 && c.n_kv_heads > 0 && c.head_dim > 0, config_error,
               "[Attention] n_heads, n_kv_heads and head_dim must be positive, got ", c.n_heads, ", ", c.n_kv_heads,
               ", ", c.head_dim);
  PRECIS_CHECK(c.n_heads % c.n_kv_heads == 0, config_error, "[Attention] n_heads ", c.n_heads,
               " is not a multiple of n_kv_heads ", c.n_kv_heads);
  PRECIS_CHECK(c.sliding_window >= 0, config_error, "[Attention] negative sliding window ", c.sliding_window);
}
}  // namespace detail

namespace detail {

/// Checks q [T, H, Dh] against K/V of `n_kv_heads` × `head_dim` holding positions
/// [first, length) of a layer whose store keeps a window of `store_window` (0: every position).
inline void check_attention_keys(const extents_t<3>& q_ext, index_t first, index_t length, index_t store_window,
                                 index_t n_kv_heads, index_t head_dim, const AttentionConfig& cfg) {
  const index_t n_q = q_ext[0];
  const extents_t<3> q_want = {n_q, cfg.n_heads, cfg.head_dim};
  PRECIS_CHECK(q_ext == q_want, shape_error, "[attention] q ", format_extents(q_ext), ", expected ",
               format_extents(q_want));
  PRECIS_CHECK(n_kv_heads == cfg.n_kv_heads && head_dim == cfg.head_dim, shape_error, "[attention] k/v have ",
               n_kv_heads, " heads of ", head_dim, ", expected ", cfg.n_kv_heads, " of ", cfg.head_dim);
  PRECIS_CHECK(n_q <= length, shape_error, "[attention] ", n_q, " queries but only ", length,
               " keys (queries are the last positions of the key sequence)");
  PRECIS_CHECK(store_window == 0 || store_window == cfg.sliding_window, config_error,
               "[attention] the layer's cache keeps a sliding window of ", store_window,
               " positions but the attention config says sliding_window = ", cfg.sliding_window);
  const index_t p0 = length - n_q;  // position of the first query
  const index_t need = cfg.sliding_window > 0 ? std::max<index_t>(0, p0 - cfg.sliding_window + 1) : 0;
  PRECIS_CHECK(n_q == 0 || need >= first, range_error, "[attention] the query at position ", p0,
               " attends to position ", need, " but the cache holds positions [", first, ", ", length, ") only");
}

inline void check_attention_sinks(const std::optional<TensorView<const f32, 1>>& sinks, const AttentionConfig& cfg) {
  if (sinks)
    PRECIS_CHECK(sinks->extent(0) == cfg.n_heads, shape_error, "[attention] sinks ", format_extents(sinks->extents()),
                 " for ", cfg.n_heads, " query heads");
}

/// The reference math over k/v [S', Hkv, Dh] holding positions [key_begin, key_begin + S').
template <ActivationDtype Act>
[[nodiscard]] Tensor<Act, 3> reference_attention_at(TensorView<const Act, 3> q, TensorView<const Act, 3> k,
                                                    TensorView<const Act, 3> v, index_t key_begin,
                                                    const AttentionConfig& cfg,
                                                    std::optional<TensorView<const f32, 1>> sinks) {
  const index_t n_q = q.extent(0), n_kv = key_begin + k.extent(0);  // n_kv: positions so far
  const float scale = static_cast<float>(cfg.softmax_scale());
  const index_t group = cfg.n_heads / cfg.n_kv_heads;
  const index_t dh = cfg.head_dim;
  Tensor<Act, 3> out({n_q, cfg.n_heads, dh});  // [T, H, Dh]
  std::vector<float> scores(static_cast<std::size_t>(k.extent(0)));
  std::vector<float> acc(static_cast<std::size_t>(dh));
  for (index_t t = 0; t < n_q; ++t) {
    const index_t pos = n_kv - n_q + t;  // absolute position of this query
    const index_t first = cfg.sliding_window > 0 && pos - cfg.sliding_window + 1 > 0 ? pos - cfg.sliding_window + 1 : 0;
    for (index_t h = 0; h < cfg.n_heads; ++h) {
      const index_t kvh = h / group;
      float m = -std::numeric_limits<float>::infinity();
      for (index_t j = first; j <= pos; ++j) {
        const index_t r = j - key_begin;  // row of position j
        float dot = 0.0f;
        for (index_t d = 0; d < dh; ++d)
          dot += static_cast<float>(to_compute<Act>(q(t, h, d))) * static_cast<float>(to_compute<Act>(k(r, kvh, d)));
        scores[static_cast<std::size_t>(r)] = dot * scale;
        m = scores[static_cast<std::size_t>(r)] > m ? scores[static_cast<std::size_t>(r)] : m;
      }
      const float sink = sinks ? (*sinks)(h) : -std::numeric_limits<float>::infinity();
      m = sink > m ? sink : m;
      float denom = sinks ? std::exp(sink - m) : 0.0f;  // the sink adds mass but carries no value
      for (index_t j = first; j <= pos; ++j) {
        const auto r = static_cast<std::size_t>(j - key_begin);
        scores[r] = std::exp(scores[r] - m);
        denom += scores[r];
      }
      for (auto& a : acc) a = 0.0f;
      for (index_t j = first; j <= pos; ++j) {
        const float p = scores[static_cast<std::size_t>(j - key_begin)] / denom;
        for (index_t d = 0; d < dh; ++d)
          acc[static_cast<std::size_t>(d)] += p * static_cast<float>(to_compute<Act>(v(j - key_begin, kvh, d)));
      }
      for (index_t d = 0; d < dh; ++d) out(t, h, d) = from_compute<Act>(acc[static_cast<std::size_t>(d)]);
    }
  }
  return out;
}

}  // namespace detail

/// The reference kernel: q [T, H, Dh], k/v [S, Hkv, Dh] (queries = last T of S positions),
/// optional f32 sinks [H]. Scores, softmax and the V accumulation are f32.
template <ActivationDtype Act>
[[nodiscard]] Tensor<Act, 3> reference_attention(TensorView<const Act, 3> q, TensorView<const Act, 3> k,
                                                 TensorView<const Act, 3> v, const AttentionConfig& cfg,
                                                 std::optional<TensorView<const f32, 1>> sinks) {
  detail::check_attention_config(cfg);
  const extents_t<3> kv_want = {k.extent(0), cfg.n_kv_heads, cfg.head_dim};
  PRECIS_CHECK(k.extents() == kv_want && v.extents() == kv_want, shape_error, "[attention] k ",
               format_extents(k.extents()), " and v ", format_extents(v.extents()), ", expected ",
               format_extents(kv_want));
  detail::check_attention_keys(q.extents(), 0, k.extent(0), 0, k.extent(1), k.extent(2), cfg);
  detail::check_attention_sinks(sinks, cfg);
  return detail::reference_attention_at<Act>(q, k, v, 0, cfg, sinks);
}

/// The reference kernel over a cached sequence: q [T, H, Dh] are the last T positions of `kv`.
/// The held positions are gathered into one contiguous K/V; the math is the one above.
template <ActivationDtype Act>
[[nodiscard]] Tensor<Act, 3> reference_attention(TensorView<const Act, 3> q, const KvSequenceView<Act>& kv,
                                                 const AttentionConfig& cfg,
                                                 std::optional<TensorView<const f32, 1>> sinks) {
  detail::check_attention_config(cfg);
  detail::check_attention_keys(q.extents(), kv.first(), kv.length(), kv.window(), kv.n_kv_heads(), kv.head_dim(), cfg);
  detail::check_attention_sinks(sinks, cfg);
  const index_t held = kv.length() - kv.first();
  Tensor<Act, 3> k({held, kv.n_kv_heads(), kv.head_dim()}), v({held, kv.n_kv_heads(), kv.head_dim()});  // [S', Hkv, Dh]
  for (const KvSegment<Act>& seg : kv.segments()) {
    detail::kv_copy_rows(k.view(), seg.position - kv.first(), seg.k);
    detail::kv_copy_rows(v.view(), seg.position - kv.first(), seg.v);
  }
  return detail::reference_attention_at<Act>(q, k.cview(), v.cview(), kv.first(), cfg, sinks);
}

/// The reference kernel over a cache stored in run-time K/V formats (nn/kv_format.hpp): the held
/// rows are decoded to f32 by the format's reference decoder and the math is the one above in
/// f32, the output rounded once to Act (a bf16 query widens exactly, so this is the same math as
/// the typed kernel with decoded keys and values).
template <ActivationDtype Act>
[[nodiscard]] Tensor<Act, 3> reference_attention(TensorView<const Act, 3> q, const KvStoredView& kv,
                                                 const AttentionConfig& cfg,
                                                 std::optional<TensorView<const f32, 1>> sinks) {
  detail::check_attention_config(cfg);
  detail::check_attention_keys(q.extents(), kv.first(), kv.length(), kv.window(), kv.n_kv_heads(), kv.head_dim(), cfg);
  detail::check_attention_sinks(sinks, cfg);
  const index_t held = kv.length() - kv.first(), hkv = kv.n_kv_heads(), dh = kv.head_dim();
  Tensor<f32, 3> k({held, hkv, dh}), v({held, hkv, dh});  // [S', Hkv, Dh] decoded
  for (const KvStoredSegment& seg : kv.segments())
    for (index_t i = 0; i < seg.size(); ++i)
      for (index_t h = 0; h < hkv; ++h) {
        const index_t r = seg.position - kv.first() + i;
        kv_decode_row_reference(kv.format().k, seg.k.row(i, h), dh, &k(r, h, 0));
        kv_decode_row_reference(kv.format().v, seg.v.row(i, h), dh, &v(r, h, 0));
      }
  Tensor<f32, 3> q32(q.extents());  // [T, H, Dh], exact
  for (index_t t = 0; t < q.extent(0); ++t)
    for (index_t h = 0; h < q.extent(1); ++h)
      for (index_t d = 0; d < q.extent(2); ++d) q32(t, h, d) = static_cast<float>(to_compute<Act>(q(t, h, d)));
  Tensor<f32, 3> o = detail::reference_attention_at<f32>(q32.cview(), k.cview(), v.cview(), kv.first(), cfg, sinks);
  if constexpr (std::same_as<Act, f32>) {
    return o;
  } else {
    Tensor<Act, 3> out(o.extents());  // [T, H, Dh]
    for (index_t t = 0; t < o.extent(0); ++t)
      for (index_t h = 0; h < o.extent(1); ++h)
        for (index_t d = 0; d < o.extent(2); ++d) out(t, h, d) = from_compute<Act>(o(t, h, d));
    return out;
  }
}

}  // namespace precis
