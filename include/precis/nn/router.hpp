// precis/nn/router.hpp — the MoE router: f32 logits from an out-dtype GEMM, and the two routing
// orders of the target models, which accept only f32 logits.
//
// Why (dtype-bugs E18, class C6): router logits computed in bf16 flip top-k choices on near
// ties; vLLM/SGLang/MLX moved gpt-oss and DeepSeek routers to f32 (+12.6pp on SWE-bench
// Verified in one report). E2: Megatron built its router Linear without the model dtype. So:
//
//   Router<W>::logits(x)            x [T, hidden] of dtype W (same_dtype_no_implicit_cast)
//                                   → Tensor<f32, 2> [T, n_experts] via matmul<f32>; the optional
//                                   bias [n_experts] is f32 (role::router_bias is pinned, E28).
//   softmax_then_topk{norm}(l, k)   Qwen3-MoE (model-semantics §1b): softmax over all experts in
//                                   f32, top-k, renormalise the k weights if norm_topk_prob.
//   topk_then_softmax{}(l, k)       gpt-oss (model-semantics §1a): top-k of the raw (biased)
//                                   logits, softmax over the k selected only.
// Both routing functions accept only f32 logits (router_logits_are_f32): feeding them
// `matmul(x_bf16, w_bf16)` (bf16 logits) does not compile. They return expert indices (i32) and
// f32 weights, each [T, k], ordered by decreasing weight; ties go to the lower expert index.
// (They are function objects with snake_case names, like std::ranges algorithms, because they
// carry a policy field: `softmax_then_topk{.norm_topk_prob = true}`.)
#pragma once

#include <algorithm>  // std::partial_sort
#include <cmath>      // std::exp
#include <concepts>   // std::same_as
#include <cstdint>    // std::int32_t
#include <limits>     // std::numeric_limits
#include <numeric>    // std::iota
#include <optional>   // std::optional
#include <vector>     // std::vector

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

/// The experts chosen for each token and their weights.
struct Routing {
  Tensor<i32, 2> experts;  // [T, k] expert indices, by decreasing weight
  Tensor<f32, 2> weights;  // [T, k]
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

namespace detail {
/// Indices of the k largest of `row[0..n)`, by decreasing value, ties to the lower index.
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
}  // namespace detail

/// Qwen3-MoE routing: softmax over all experts (f32), top-k, optional renormalisation.
struct softmax_then_topk {
  bool norm_topk_prob = false;

  template <HostTensorOfRank<2> L>
    requires router_logits_are_f32<dtype_of<L>>
  [[nodiscard]] Routing operator()(const L& logits, index_t k) const {
    const const_view_t<L> lv = logits;
    detail::check_routing_args("softmax_then_topk", lv, k);
    const index_t n_tok = lv.extent(0), n_exp = lv.extent(1);
    Routing r{Tensor<i32, 2>({n_tok, k}), Tensor<f32, 2>({n_tok, k})};
    std::vector<float> p(static_cast<std::size_t>(n_exp));
    for (index_t t = 0; t < n_tok; ++t) {
      float m = -std::numeric_limits<float>::infinity();
      for (index_t e = 0; e < n_exp; ++e) m = lv(t, e) > m ? lv(t, e) : m;
      float sum = 0.0f;
      for (index_t e = 0; e < n_exp; ++e) sum += p[static_cast<std::size_t>(e)] = std::exp(lv(t, e) - m);
      for (auto& v : p) v /= sum;
      const std::vector<index_t> top = detail::topk_indices(p.data(), n_exp, k);
      float top_sum = 0.0f;
      for (index_t j = 0; j < k; ++j) top_sum += p[static_cast<std::size_t>(top[static_cast<std::size_t>(j)])];
      for (index_t j = 0; j < k; ++j) {
        const index_t e = top[static_cast<std::size_t>(j)];
        r.experts(t, j) = static_cast<std::int32_t>(e);
        r.weights(t, j) = norm_topk_prob ? p[static_cast<std::size_t>(e)] / top_sum : p[static_cast<std::size_t>(e)];
      }
    }
    return r;
  }
};

/// gpt-oss routing: top-k of the raw logits, then softmax over the k selected.
struct topk_then_softmax {
  template <HostTensorOfRank<2> L>
    requires router_logits_are_f32<dtype_of<L>>
  [[nodiscard]] Routing operator()(const L& logits, index_t k) const {
    const Tensor<f32, 2> lv = materialize(logits);  // contiguous rows for topk_indices
    detail::check_routing_args("topk_then_softmax", lv, k);
    const index_t n_tok = lv.extent(0), n_exp = lv.extent(1);
    Routing r{Tensor<i32, 2>({n_tok, k}), Tensor<f32, 2>({n_tok, k})};
    for (index_t t = 0; t < n_tok; ++t) {
      const float* row = lv.data() + t * n_exp;
      const std::vector<index_t> top = detail::topk_indices(row, n_exp, k);
      const float m = row[top[0]];  // the largest selected logit
      float sum = 0.0f;
      for (index_t j = 0; j < k; ++j) sum += r.weights(t, j) = std::exp(row[top[static_cast<std::size_t>(j)]] - m);
      for (index_t j = 0; j < k; ++j) {
        r.experts(t, j) = static_cast<std::int32_t>(top[static_cast<std::size_t>(j)]);
        r.weights(t, j) /= sum;
      }
    }
    return r;
  }
};

}  // namespace precis
