// precis/nn/attention.hpp — reference attention (GQA, causal, sliding window, sinks), attention
// backends as tag types, Sinks<T>, and Attention<Backend, Act> with make_cache().
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
// Type rules:
//   - scores and softmax are f32 whatever the activation dtype (E19 f16 KQ overflow, E20).
//   - `Sinks<T>` is a distinct parameter type, not a tensor (E23: an f32 sink concatenated to
//     bf16 scores promoted the whole row; E28: sinks silently downcast on save).
//   - a backend is a tag type declaring `using sinks_t = ...;` and the activation dtypes its
//     kernel accepts (`accepts_activation<Act>`). `Attention<B, Act>` compiles only if B accepts
//     Act (attention_backend_accepts_activation: flash-attn's "only supports fp16 and bf16",
//     E30/Qwen3#406), and wiring Sinks<S> into a backend whose sinks_t ≠ S does not compile
//     (attention_backend_sinks_match: trtllm_mha requires f32 sinks, E23). Backend choice is a
//     type, so every backend sees the same rule (E4: torch.compile accepting what eager rejects).
//   - `make_cache()` returns KvCache<Act>: the cache's store type is the compute type (E5, E7).
#pragma once

#include <cmath>     // std::exp, std::sqrt
#include <concepts>  // std::same_as
#include <limits>    // std::numeric_limits
#include <optional>  // std::optional
#include <vector>    // std::vector

#include <precis/core/dtype.hpp>       // precis::f32, bf16, ActivationDtype, FloatDtype
#include <precis/core/error.hpp>       // precis::config_error, shape_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>      // precis::to_compute, from_compute
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/nn/kv_cache.hpp>      // precis::KvCache
#include <precis/ops/host_tensor.hpp>  // precis::HostTensorOfRank, materialize, format_extents

namespace precis {

// ---------------------------------------------------------------------------------------------
// Sinks
// ---------------------------------------------------------------------------------------------

/// gpt-oss attention sinks: one learned logit per query head ([n_heads]). Its own type — not a
/// tensor — so it cannot meet scores in `cat`/`add`, and the backend decides which T it takes.
template <FloatDtype T>
class Sinks {
 public:
  using dtype = T;

  /// From sink logits [n_heads] of exactly dtype T (a checkpoint's bf16 sinks become
  /// Sinks<f32> through an explicit cast<f32>, which widens exactly).
  template <HostTensorOfRank<1> X>
    requires same_dtype_no_implicit_cast<dtype_of<X>, T>
  explicit Sinks(const X& logits) : logits_(materialize(logits)) {}

  [[nodiscard]] TensorView<const T, 1> logits() const noexcept { return logits_.cview(); }  // [n_heads]
  [[nodiscard]] index_t n_heads() const noexcept { return logits_.extent(0); }

 private:
  Tensor<T, 1> logits_;  // [n_heads]
};

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

/// The reference kernel: q [T, H, Dh], k/v [S, Hkv, Dh] (queries = last T of S positions),
/// optional f32 sinks [H]. Scores, softmax and the V accumulation are f32.
template <ActivationDtype Act>
[[nodiscard]] Tensor<Act, 3> reference_attention(TensorView<const Act, 3> q, TensorView<const Act, 3> k,
                                                 TensorView<const Act, 3> v, const AttentionConfig& cfg,
                                                 std::optional<TensorView<const f32, 1>> sinks) {
  detail::check_attention_config(cfg);
  const index_t n_q = q.extent(0), n_kv = k.extent(0);
  const extents_t<3> q_want = {n_q, cfg.n_heads, cfg.head_dim}, kv_want = {n_kv, cfg.n_kv_heads, cfg.head_dim};
  PRECIS_CHECK(q.extents() == q_want, shape_error, "[attention] q ", format_extents(q.extents()), ", expected ",
               format_extents(q_want));
  PRECIS_CHECK(k.extents() == kv_want && v.extents() == kv_want, shape_error, "[attention] k ",
               format_extents(k.extents()), " and v ", format_extents(v.extents()), ", expected ",
               format_extents(kv_want));
  PRECIS_CHECK(n_q <= n_kv, shape_error, "[attention] ", n_q, " queries but only ", n_kv,
               " keys (queries are the last positions of the key sequence)");
  if (sinks)
    PRECIS_CHECK(sinks->extent(0) == cfg.n_heads, shape_error, "[attention] sinks ", format_extents(sinks->extents()),
                 " for ", cfg.n_heads, " query heads");

  const float scale = static_cast<float>(cfg.softmax_scale());
  const index_t group = cfg.n_heads / cfg.n_kv_heads;
  const index_t dh = cfg.head_dim;
  Tensor<Act, 3> out({n_q, cfg.n_heads, dh});  // [T, H, Dh]
  std::vector<float> scores(static_cast<std::size_t>(n_kv));
  std::vector<float> acc(static_cast<std::size_t>(dh));
  for (index_t t = 0; t < n_q; ++t) {
    const index_t pos = n_kv - n_q + t;  // absolute position of this query
    const index_t first = cfg.sliding_window > 0 && pos - cfg.sliding_window + 1 > 0 ? pos - cfg.sliding_window + 1 : 0;
    for (index_t h = 0; h < cfg.n_heads; ++h) {
      const index_t kvh = h / group;
      float m = -std::numeric_limits<float>::infinity();
      for (index_t j = first; j <= pos; ++j) {
        float dot = 0.0f;
        for (index_t d = 0; d < dh; ++d)
          dot += static_cast<float>(to_compute<Act>(q(t, h, d))) * static_cast<float>(to_compute<Act>(k(j, kvh, d)));
        scores[static_cast<std::size_t>(j)] = dot * scale;
        m = scores[static_cast<std::size_t>(j)] > m ? scores[static_cast<std::size_t>(j)] : m;
      }
      const float sink = sinks ? (*sinks)(h) : -std::numeric_limits<float>::infinity();
      m = sink > m ? sink : m;
      float denom = sinks ? std::exp(sink - m) : 0.0f;  // the sink adds mass but carries no value
      for (index_t j = first; j <= pos; ++j) {
        scores[static_cast<std::size_t>(j)] = std::exp(scores[static_cast<std::size_t>(j)] - m);
        denom += scores[static_cast<std::size_t>(j)];
      }
      for (auto& a : acc) a = 0.0f;
      for (index_t j = first; j <= pos; ++j) {
        const float p = scores[static_cast<std::size_t>(j)] / denom;
        for (index_t d = 0; d < dh; ++d)
          acc[static_cast<std::size_t>(d)] += p * static_cast<float>(to_compute<Act>(v(j, kvh, d)));
      }
      for (index_t d = 0; d < dh; ++d) out(t, h, d) = from_compute<Act>(acc[static_cast<std::size_t>(d)]);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

namespace attention_backend {

/// The reference kernel above: f32 or bf16 activations, f32 sinks.
struct reference {
  using sinks_t = f32;
  template <class Act>
  static constexpr bool accepts_activation = std::same_as<Act, f32> || std::same_as<Act, bf16>;

  template <class Act>
  [[nodiscard]] static Tensor<Act, 3> run(TensorView<const Act, 3> q, TensorView<const Act, 3> k,
                                          TensorView<const Act, 3> v, const AttentionConfig& cfg,
                                          std::optional<TensorView<const f32, 1>> sinks) {
    return reference_attention<Act>(q, k, v, cfg, sinks);
  }
};

/// The contract of a FlashAttention-style fused kernel: bf16 activations only, f32 sinks
/// (the trtllm_mha contract, E23). Declared here so the contract is checked at compile time on
/// every machine; its kernel is the reference one until a fused kernel lands.
struct flash_bf16 {
  using sinks_t = f32;
  template <class Act>
  static constexpr bool accepts_activation = std::same_as<Act, bf16>;

  template <class Act>
  [[nodiscard]] static Tensor<Act, 3> run(TensorView<const Act, 3> q, TensorView<const Act, 3> k,
                                          TensorView<const Act, 3> v, const AttentionConfig& cfg,
                                          std::optional<TensorView<const f32, 1>> sinks) {
    return reference_attention<Act>(q, k, v, cfg, sinks);
  }
};

}  // namespace attention_backend

/// A backend tag: declares its sinks dtype and which activation dtypes it accepts.
template <class B>
concept AttentionBackend = requires { typename B::sinks_t; } && FloatDtype<typename B::sinks_t>;

/// Backend `B`'s kernel accepts activations of dtype `Act` (E16, E30).
template <class B, class Act>
concept attention_backend_accepts_activation = AttentionBackend<B> && ActivationDtype<Act> &&
                                               B::template accepts_activation<Act>;

/// Sinks of dtype `S` are what backend `B` takes (E23).
template <class B, class S>
concept attention_backend_sinks_match = AttentionBackend<B> && std::same_as<typename B::sinks_t, S>;

// ---------------------------------------------------------------------------------------------
// Attention<Backend, Act>
// ---------------------------------------------------------------------------------------------

template <class B, class Act>
  requires attention_backend_accepts_activation<B, Act>
class Attention {
 public:
  using backend = B;
  using activation = Act;
  using cache_type = KvCache<Act>;  // the store type is the compute type (seed bug 1, E5)
  using sinks_type = Sinks<typename B::sinks_t>;

  explicit Attention(const AttentionConfig& cfg) : cfg_(cfg) { detail::check_attention_config(cfg_); }

  [[nodiscard]] const AttentionConfig& config() const noexcept { return cfg_; }

  /// A KV cache for `n_layers` layers of this attention shape, storing Act.
  [[nodiscard]] cache_type make_cache(index_t n_layers, index_t max_seq) const {
    return cache_type(n_layers, max_seq, cfg_.n_kv_heads, cfg_.head_dim);
  }

  /// q [T, H, Dh] attends to k, v [S, Hkv, Dh]; all of dtype Act.
  template <HostTensorOfRank<3> Q, HostTensorOfRank<3> K, HostTensorOfRank<3> V>
    requires same_dtype_no_implicit_cast<dtype_of<Q>, Act> && same_dtype_no_implicit_cast<dtype_of<K>, Act> &&
             same_dtype_no_implicit_cast<dtype_of<V>, Act>
  [[nodiscard]] Tensor<Act, 3> operator()(const Q& q, const K& k, const V& v) const {
    return B::template run<Act>(as_const_view(q), as_const_view(k), as_const_view(v), cfg_, std::nullopt);
  }

  /// The same with sinks; `S` must be the backend's sinks_t.
  template <HostTensorOfRank<3> Q, HostTensorOfRank<3> K, HostTensorOfRank<3> V, class S>
    requires same_dtype_no_implicit_cast<dtype_of<Q>, Act> && same_dtype_no_implicit_cast<dtype_of<K>, Act> &&
             same_dtype_no_implicit_cast<dtype_of<V>, Act> && attention_backend_sinks_match<B, S>
  [[nodiscard]] Tensor<Act, 3> operator()(const Q& q, const K& k, const V& v, const Sinks<S>& sinks) const {
    return B::template run<Act>(as_const_view(q), as_const_view(k), as_const_view(v), cfg_, sinks.logits());
  }

  /// Appends k_new, v_new [T, Hkv, Dh] to `layer` of `cache`, then q [T, H, Dh] attends to the
  /// whole cached sequence of that layer.
  template <HostTensorOfRank<3> Q, class K, class V>
    requires same_dtype_no_implicit_cast<dtype_of<Q>, Act> && kv_append_matches_store<K, Act> &&
             kv_append_matches_store<V, Act>
  [[nodiscard]] Tensor<Act, 3> forward(cache_type& cache, index_t layer, const Q& q, const K& k_new,
                                       const V& v_new) const {
    cache.append(layer, k_new, v_new);
    return (*this)(q, cache.keys(layer), cache.values(layer));
  }

  template <HostTensorOfRank<3> Q, class K, class V, class S>
    requires same_dtype_no_implicit_cast<dtype_of<Q>, Act> && kv_append_matches_store<K, Act> &&
             kv_append_matches_store<V, Act> && attention_backend_sinks_match<B, S>
  [[nodiscard]] Tensor<Act, 3> forward(cache_type& cache, index_t layer, const Q& q, const K& k_new, const V& v_new,
                                       const Sinks<S>& sinks) const {
    cache.append(layer, k_new, v_new);
    return (*this)(q, cache.keys(layer), cache.values(layer), sinks);
  }

 private:
  AttentionConfig cfg_;
};

}  // namespace precis
