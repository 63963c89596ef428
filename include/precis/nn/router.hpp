// precis/nn/router.hpp — the MoE router: f32 logits from an out-dtype GEMM, the two routing
// orders of the target models as named policies, and a pluggable expert-selection hook.
//
// Why (dtype-bugs E18, class C6): router logits computed in bf16 flip top-k choices on near
// ties; vLLM/SGLang/MLX moved gpt-oss and DeepSeek routers to f32 (+12.6pp on SWE-bench
// Verified in one report). E2: Megatron built its router Linear without the model dtype. So:
//
//   Router<W>::logits(x)             x [T, hidden] of dtype W (same_dtype_no_implicit_cast)
//                                    → Tensor<f32, 2> [T, n_experts] via matmul<f32>; the optional
//                                    bias [n_experts] is f32 (role::router_bias is pinned, E28).
//   SoftmaxThenTopK{norm}(l, k)      Qwen3-MoE (model-semantics §1b): softmax over all experts in
//                                    f32, top-k, renormalise the k weights if norm_topk_prob.
//   TopKThenSoftmax{}(l, k)          gpt-oss (model-semantics §1a): top-k of the raw (biased)
//                                    logits, softmax over the k selected only.
// Both routing policies accept only f32 logits (router_logits_are_f32): feeding them
// `matmul(x_bf16, w_bf16)` (bf16 logits) does not compile. They return expert indices (i32) and
// f32 weights, each [T, k].
//
// Selection vs mixture (the ExpertSelector hook). Every policy computes, per token,
//   selection scores  s[e]   what top-k ranks: SoftmaxThenTopK the probabilities p[e] over all
//                            experts, TopKThenSoftmax the raw logits l[e];
//   mixture weights   w[j]   what multiplies expert j's output: p[e_j] (÷ Σ_sel p if
//                            norm_topk_prob), resp. softmax over the selected l[e_j].
// An ExpertSelector (`adjust(token, scores)`) rewrites the selection scores of one token *after*
// the policy computed them and *before* top-k — an additive bias, −inf for a disallowed expert —
// and nothing else: the mixture weights are always computed from the model's own, unadjusted
// values of the selected experts. This is the DeepSeek-V3 rule for its load-balancing bias
// ("the bias term is only used for routing. The gating value ... is still derived from the
// original affinity score", arXiv:2412.19437 §2.1.2), and what "trust-augmented" selection
// (per-expert reputation added to the ranking) needs: the model's mixture semantics stay
// intact, only *which* experts run changes. No policy here feeds adjusted scores into the
// weights; one that did would have to say so in its own name. Corollaries: with SoftmaxThenTopK
// a disallowed expert still takes its share of the softmax denominator (p is over all experts,
// as in the model); a selector's bias is in the units of its policy's scores (probabilities for
// SoftmaxThenTopK, logits for TopKThenSoftmax).
//
// Order and ties (deterministic, platform-independent): the k experts come by decreasing
// selection score; equal scores go to the lower expert index. With the identity selector that
// is also decreasing weight. A NaN score, or fewer than k experts with a score above −inf
// (a mask that leaves too few), throws range_error naming the token.
#pragma once

#include <algorithm>    // std::partial_sort
#include <cmath>        // std::exp, std::isnan, std::isfinite
#include <concepts>     // std::same_as
#include <cstdint>      // std::int32_t, std::uint8_t
#include <initializer_list>  // std::initializer_list
#include <limits>       // std::numeric_limits
#include <numeric>      // std::iota
#include <optional>     // std::optional
#include <span>         // std::span
#include <tuple>        // std::tuple, std::apply
#include <vector>       // std::vector

#include <precis/core/dtype.hpp>       // precis::f32, i32, ActivationDtype
#include <precis/core/error.hpp>       // precis::range_error, shape_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/ops/host_tensor.hpp>  // precis::HostTensorOfRank, materialize
#include <precis/ops/matmul.hpp>       // precis::matmul

namespace precis {

/// Routing (top-k and its softmax) runs on f32 logits only (E18).
template <class T>
concept router_logits_are_f32 = std::same_as<std::remove_cv_t<T>, f32>;

/// The router bias is f32 whatever the weight dtype (role::router_bias is pinned, E28).
template <class T>
concept router_bias_is_f32 = std::same_as<std::remove_cv_t<T>, f32>;

/// A selection bias (per-expert score table) is f32, like the scores it is added to (E18).
template <class T>
concept selection_bias_is_f32 = std::same_as<std::remove_cv_t<T>, f32>;

/// The experts chosen for each token and their weights.
struct Routing {
  Tensor<i32, 2> experts;  // [T, k] expert indices, by decreasing selection score
  Tensor<f32, 2> weights;  // [T, k] mixture weights
};

/// The gate of an MoE block: weight [n_experts, hidden] of dtype W, optional f32 bias.
template <ActivationDtype W>
class Router {
 public:
  explicit Router(Tensor<W, 2> weight) : weight_(std::move(weight)) {}

  template <HostTensorOfRank<1> B>
    requires router_bias_is_f32<dtype_of<B>>
  Router(Tensor<W, 2> weight, const B& bias) : weight_(std::move(weight)), bias_(materialize(bias)) {
    PRECIS_CHECK(bias_->extent(0) == weight_.extent(0), shape_error, "[Router] bias of ", bias_->extent(0),
                 " entries for ", weight_.extent(0), " experts");
  }

  [[nodiscard]] index_t n_experts() const noexcept { return weight_.extent(0); }

  /// x [T, hidden] → logits [T, n_experts] in f32 (x · Wᵀ + b, accumulated in f32).
  template <HostTensorOfRank<2> X>
    requires same_dtype_no_implicit_cast<dtype_of<X>, W>
  [[nodiscard]] Tensor<f32, 2> logits(const X& x) const {
    if (bias_) return matmul<f32>(x, weight_, *bias_);
    return matmul<f32>(x, weight_);
  }

 private:
  Tensor<W, 2> weight_;                 // [n_experts, hidden]
  std::optional<Tensor<f32, 1>> bias_;  // [n_experts]
};

// ---------------------------------------------------------------------------------------------
// Expert selectors: the hook on the selection scores (see the header comment)
// ---------------------------------------------------------------------------------------------

/// Rewrites the f32 selection scores of one token (`scores` has n_experts entries) before
/// top-k. −inf marks an expert that must not be chosen. Called once per token, in token order,
/// on the calling thread.
template <class S>
concept ExpertSelector = requires(const S& s, index_t token, std::span<float> scores) {
  { s.adjust(token, scores) } -> std::same_as<void>;
};

/// The default: selection = the model's own ranking.
struct IdentitySelector {
  void adjust(index_t /*token*/, std::span<float> /*scores*/) const noexcept {}
};

/// An additive per-expert bias on the selection scores, e.g. λ·trust[e] from a reputation
/// table, or DeepSeek-V3's load-balancing bias. Finite values only (a mask is ExpertMask).
class ExpertScoreBias {
 public:
  template <HostTensorOfRank<1> B>
    requires selection_bias_is_f32<dtype_of<B>>
  explicit ExpertScoreBias(const B& bias) : bias_(materialize(bias)) {
    for (index_t e = 0; e < bias_.extent(0); ++e)
      PRECIS_CHECK(std::isfinite(bias_(e)), range_error, "[ExpertScoreBias] bias of expert ", e, " is ", bias_(e),
                   "; expected a finite value (disallow experts with ExpertMask)");
  }

  [[nodiscard]] index_t n_experts() const noexcept { return bias_.extent(0); }

  void adjust(index_t /*token*/, std::span<float> scores) const {
    PRECIS_CHECK(static_cast<index_t>(scores.size()) == bias_.extent(0), shape_error, "[ExpertScoreBias] ",
                 bias_.extent(0), " biases for ", scores.size(), " experts");
    for (std::size_t e = 0; e < scores.size(); ++e) scores[e] += bias_.data()[e];
  }

 private:
  Tensor<f32, 1> bias_;  // [n_experts]
};

/// Experts that may not be chosen (for every token): their selection score becomes −inf.
class ExpertMask {
 public:
  /// All `n_experts` allowed except those listed.
  ExpertMask(index_t n_experts, std::span<const index_t> disallowed)
      : allowed_(static_cast<std::size_t>(n_experts), std::uint8_t{1}) {
    PRECIS_CHECK(n_experts >= 1, range_error, "[ExpertMask] ", n_experts, " experts; expected at least 1");
    for (const index_t e : disallowed) {
      PRECIS_CHECK(e >= 0 && e < n_experts, range_error, "[ExpertMask] disallowed expert ", e, " outside [0, ",
                   n_experts, ")");
      allowed_[static_cast<std::size_t>(e)] = 0;
    }
  }
  ExpertMask(index_t n_experts, std::initializer_list<index_t> disallowed)
      : ExpertMask(n_experts, std::span<const index_t>(disallowed.begin(), disallowed.size())) {}

  [[nodiscard]] index_t n_experts() const noexcept { return static_cast<index_t>(allowed_.size()); }
  [[nodiscard]] bool allowed(index_t e) const noexcept { return allowed_[static_cast<std::size_t>(e)] != 0; }

  void adjust(index_t /*token*/, std::span<float> scores) const {
    PRECIS_CHECK(scores.size() == allowed_.size(), shape_error, "[ExpertMask] mask of ", allowed_.size(),
                 " experts for ", scores.size(), " experts");
    for (std::size_t e = 0; e < scores.size(); ++e)
      if (allowed_[e] == 0) scores[e] = -std::numeric_limits<float>::infinity();
  }

 private:
  std::vector<std::uint8_t> allowed_;  // [n_experts] 1 = may be chosen
};

/// Several selectors applied in order (e.g. a trust bias, then a mask). Refers to them (the
/// score tables are not copied): they must outlive the chain, like a view.
template <ExpertSelector... S>
class SelectorChain {
 public:
  explicit SelectorChain(const S&... s) : s_(s...) {}
  void adjust(index_t token, std::span<float> scores) const {
    std::apply([&](const auto&... each) { (each.adjust(token, scores), ...); }, s_);
  }

 private:
  std::tuple<const S&...> s_;
};
template <ExpertSelector... S>
SelectorChain(const S&...) -> SelectorChain<S...>;

// ---------------------------------------------------------------------------------------------
// Routing policies
// ---------------------------------------------------------------------------------------------

namespace detail {

/// Indices of the k largest of `row[0..n)`, by decreasing value, ties to the lower index.
/// `row` holds no NaN (callers check: NaN breaks the strict weak order).
inline std::vector<index_t> topk_indices(const float* row, index_t n, index_t k) {
  std::vector<index_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), index_t{0});
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](index_t a, index_t b) {
    return row[a] > row[b] || (row[a] == row[b] && a < b);
  });
  idx.resize(static_cast<std::size_t>(k));
  return idx;
}

template <class L>
void check_routing_args(const char* op, const L& logits, index_t k) {
  PRECIS_CHECK(k >= 1 && k <= logits.extent(1), range_error, "[", op, "] k = ", k, " outside [1, ", logits.extent(1),
               "] experts");
}

/// Selector-adjusted scores → the k selected experts of token t (checks NaN and too few).
template <ExpertSelector S>
std::vector<index_t> select_experts(const char* op, const S& selector, index_t t, std::vector<float>& scores,
                                    index_t k) {
  selector.adjust(t, std::span<float>(scores));
  const index_t n = static_cast<index_t>(scores.size());
  for (index_t e = 0; e < n; ++e)
    PRECIS_CHECK(!std::isnan(scores[static_cast<std::size_t>(e)]), range_error, "[", op, "] token ", t,
                 ": selection score of expert ", e, " is NaN");
  std::vector<index_t> top = topk_indices(scores.data(), n, k);
  const float last = scores[static_cast<std::size_t>(top.back())];
  PRECIS_CHECK(last > -std::numeric_limits<float>::infinity(), range_error, "[", op, "] token ", t, ": k = ", k,
               " experts requested, but fewer have a selection score above -inf (disallowed or -inf logits)");
  return top;
}

}  // namespace detail

/// Qwen3-MoE routing: softmax over all experts (f32), top-k, optional renormalisation (§1b).
struct SoftmaxThenTopK {
  bool norm_topk_prob = false;  // a config key of the model (true for Qwen3-30B-A3B)

  template <HostTensorOfRank<2> L, ExpertSelector S = IdentitySelector>
    requires router_logits_are_f32<dtype_of<L>>
  [[nodiscard]] Routing operator()(const L& logits, index_t k, const S& selector = {}) const {
    const const_view_t<L> lv = logits;
    detail::check_routing_args("SoftmaxThenTopK", lv, k);
    const index_t n_tok = lv.extent(0), n_exp = lv.extent(1);
    Routing r{Tensor<i32, 2>({n_tok, k}), Tensor<f32, 2>({n_tok, k})};
    std::vector<float> p(static_cast<std::size_t>(n_exp)), scores;
    for (index_t t = 0; t < n_tok; ++t) {
      float m = -std::numeric_limits<float>::infinity();
      for (index_t e = 0; e < n_exp; ++e) {
        PRECIS_CHECK(!std::isnan(lv(t, e)), range_error, "[SoftmaxThenTopK] token ", t, ": logit of expert ", e,
                     " is NaN");
        m = lv(t, e) > m ? lv(t, e) : m;
      }
      PRECIS_CHECK(m > -std::numeric_limits<float>::infinity(), range_error, "[SoftmaxThenTopK] token ", t,
                   ": every logit is -inf, the softmax has no distribution");
      float sum = 0.0f;
      for (index_t e = 0; e < n_exp; ++e) sum += p[static_cast<std::size_t>(e)] = std::exp(lv(t, e) - m);
      for (auto& v : p) v /= sum;
      scores = p;  // selection scores: the probabilities
      const std::vector<index_t> top = detail::select_experts("SoftmaxThenTopK", selector, t, scores, k);
      float top_sum = 0.0f;
      for (const index_t e : top) top_sum += p[static_cast<std::size_t>(e)];
      PRECIS_CHECK(!norm_topk_prob || top_sum > 0.0f, range_error, "[SoftmaxThenTopK] token ", t,
                   ": the selected experts have probability 0, nothing to renormalise");
      for (index_t j = 0; j < k; ++j) {
        const index_t e = top[static_cast<std::size_t>(j)];
        r.experts(t, j) = static_cast<std::int32_t>(e);
        r.weights(t, j) = norm_topk_prob ? p[static_cast<std::size_t>(e)] / top_sum : p[static_cast<std::size_t>(e)];
      }
    }
    return r;
  }
};

/// gpt-oss routing: top-k of the raw (router-biased) logits, then softmax over the k (§1a).
struct TopKThenSoftmax {
  template <HostTensorOfRank<2> L, ExpertSelector S = IdentitySelector>
    requires router_logits_are_f32<dtype_of<L>>
  [[nodiscard]] Routing operator()(const L& logits, index_t k, const S& selector = {}) const {
    const const_view_t<L> lv = logits;
    detail::check_routing_args("TopKThenSoftmax", lv, k);
    const index_t n_tok = lv.extent(0), n_exp = lv.extent(1);
    Routing r{Tensor<i32, 2>({n_tok, k}), Tensor<f32, 2>({n_tok, k})};
    std::vector<float> scores(static_cast<std::size_t>(n_exp));
    for (index_t t = 0; t < n_tok; ++t) {
      for (index_t e = 0; e < n_exp; ++e) scores[static_cast<std::size_t>(e)] = lv(t, e);  // selection = logits
      const std::vector<index_t> top = detail::select_experts("TopKThenSoftmax", selector, t, scores, k);
      // Mixture weights: softmax over the selected experts' own logits (not the adjusted scores).
      float m = -std::numeric_limits<float>::infinity();
      for (const index_t e : top) m = lv(t, e) > m ? lv(t, e) : m;
      PRECIS_CHECK(m > -std::numeric_limits<float>::infinity(), range_error, "[TopKThenSoftmax] token ", t,
                   ": every selected expert has logit -inf, the softmax has no distribution");
      float sum = 0.0f;
      for (index_t j = 0; j < k; ++j) sum += r.weights(t, j) = std::exp(lv(t, top[static_cast<std::size_t>(j)]) - m);
      for (index_t j = 0; j < k; ++j) {
        r.experts(t, j) = static_cast<std::int32_t>(top[static_cast<std::size_t>(j)]);
        r.weights(t, j) /= sum;
      }
    }
    return r;
  }
};

/// A routing policy: f32 logits [T, E] and k → Routing, optionally through an ExpertSelector.
template <class P>
concept RoutingPolicy = requires(const P& p, const Tensor<f32, 2>& l, index_t k, const IdentitySelector& s) {
  { p(l, k) } -> std::same_as<Routing>;
  { p(l, k, s) } -> std::same_as<Routing>;
};

static_assert(RoutingPolicy<SoftmaxThenTopK> && RoutingPolicy<TopKThenSoftmax>);
static_assert(ExpertSelector<IdentitySelector> && ExpertSelector<ExpertScoreBias> && ExpertSelector<ExpertMask>);

}  // namespace precis
