// tests/unit/nn/test_router.cpp — Router<W>::logits (f32), SoftmaxThenTopK (Qwen3-MoE) and
// TopKThenSoftmax (gpt-oss) on hand-checkable cases, and the ExpertSelector hook: it changes
// which experts are selected, never how the selected experts' weights are computed
// (nn/router.hpp; model-semantics §1a, §1b; dtype-bugs E18; DeepSeek-V3 §2.1.2).
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, STATIC_REQUIRE

#include <cmath>   // std::log, std::fabs, std::exp
#include <limits>  // std::numeric_limits
#include <span>    // std::span

#include <precis/core/cast.hpp>   // precis::cast
#include <precis/core/error.hpp>  // precis::range_error
#include <precis/nn/router.hpp>   // precis::Router, SoftmaxThenTopK, TopKThenSoftmax, selectors

#include "nn_test_support.hpp"  // random_tensor, to_f64, unit_roundoff

using namespace precis;
using namespace precis::test;

namespace {
template <class R, class L>
concept can_route = requires(const R& r, const L& l) { r(l, index_t{2}); };
template <class R, class L, class S>
concept can_route_with = requires(const R& r, const L& l, const S& s) { r(l, index_t{2}, s); };
template <class B>
concept can_bias_selection = requires(const B& b) { ExpertScoreBias(b); };
template <class W, class X>
concept can_take_logits = requires(const Router<W>& r, const X& x) { r.logits(x); };

Tensor<f32, 2> logits_of(std::initializer_list<double> values) {
  Tensor<f32, 2> l({1, static_cast<index_t>(values.size())});
  index_t i = 0;
  for (double v : values) l(0, i++) = static_cast<float>(v);
  return l;
}
}  // namespace

TEST_CASE("Router logits are an f32 GEMM with an f32 bias", "[nn][router]") {
  auto rng = make_rng(81);
  auto w = random_tensor<bf16, 2>({6, 32}, rng);  // [E, hidden]
  const auto x = random_tensor<bf16, 2>({3, 32}, rng);
  const auto b = random_tensor<f32, 1>({6}, rng);
  const auto wv = to_f64(w), xv = to_f64(x), bv = to_f64(b);
  const Router<bf16> router(std::move(w), b);
  const Tensor<f32, 2> l = router.logits(x);
  REQUIRE(l.extents() == extents_t<2>{3, 6});
  for (index_t t = 0; t < 3; ++t)
    for (index_t e = 0; e < 6; ++e) {
      double s = bv[static_cast<std::size_t>(e)], mag = std::fabs(s);
      for (index_t p = 0; p < 32; ++p) {
        const double term = xv[static_cast<std::size_t>(t * 32 + p)] * wv[static_cast<std::size_t>(e * 32 + p)];
        s += term;
        mag += std::fabs(term);
      }
      // 32 products of bf16 values are exact in f32; 33 additions: ≤ 34·u(f32)·Σ|terms|.
      CHECK(std::fabs(l(t, e) - s) <= 34 * unit_roundoff<f32> * mag);
    }
}

TEST_CASE("routing orders on a hand-checkable case", "[nn][router]") {
  // logits = ln(1, 4, 2, 1): softmax over all four experts is (1/8, 4/8, 2/8, 1/8).
  const auto l = logits_of({0.0, std::log(4.0), std::log(2.0), 0.0});
  // Qwen3 without renormalisation: top-2 = experts 1, 2 with their global probabilities.
  const Routing q = SoftmaxThenTopK{.norm_topk_prob = false}(l, 2);
  CHECK(q.experts(0, 0) == 1);
  CHECK(q.experts(0, 1) == 2);
  CHECK(q.weights(0, 0) == Approx(0.5).epsilon(1e-6));
  CHECK(q.weights(0, 1) == Approx(0.25).epsilon(1e-6));
  // Qwen3-30B-A3B (norm_topk_prob = true): renormalised to 2/3, 1/3.
  const Routing qn = SoftmaxThenTopK{.norm_topk_prob = true}(l, 2);
  CHECK(qn.weights(0, 0) == Approx(2.0 / 3.0).epsilon(1e-6));
  CHECK(qn.weights(0, 1) == Approx(1.0 / 3.0).epsilon(1e-6));
  // gpt-oss: softmax over the two selected logits only — the renormalised weights again.
  const Routing g = TopKThenSoftmax{}(l, 2);
  CHECK(g.experts(0, 0) == 1);
  CHECK(g.experts(0, 1) == 2);
  CHECK(g.weights(0, 0) == Approx(2.0 / 3.0).epsilon(1e-6));
  CHECK(g.weights(0, 1) == Approx(1.0 / 3.0).epsilon(1e-6));
}

TEST_CASE("routing breaks exact ties toward the lower expert index", "[nn][router]") {
  const auto l = logits_of({1.0, 2.0, 2.0, 2.0});
  const Routing g = TopKThenSoftmax{}(l, 2);
  CHECK(g.experts(0, 0) == 1);
  CHECK(g.experts(0, 1) == 2);
  CHECK(g.weights(0, 0) == 0.5f);
  const Routing q = SoftmaxThenTopK{}(l, 3);
  CHECK(q.experts(0, 2) == 3);
}

TEST_CASE("f32 router logits keep a near tie that bf16 logits erase (E18)", "[nn][router]") {
  // x = (1, 2^-8), expert 0 weights (1, 0), expert 1 weights (1, 1): logits 1 and 1 + 2^-8.
  // In f32 expert 1 wins; rounded to bf16 (8 significant bits) both logits are 1.0 and the tie
  // goes to expert 0 — a different expert, silently.
  Tensor<bf16, 2> x({1, 2}), w({2, 2});
  x(0, 0) = bfloat16(1.0f);
  x(0, 1) = bfloat16(0x1p-8f);
  w(0, 0) = bfloat16(1.0f);
  w(0, 1) = bfloat16(0.0f);
  w(1, 0) = bfloat16(1.0f);
  w(1, 1) = bfloat16(1.0f);
  const Router<bf16> router(materialize(w));
  CHECK(TopKThenSoftmax{}(router.logits(x), 1).experts(0, 0) == 1);
  // The bf16 path has to be spelled out: bf16 logits, then an explicit cast<f32>.
  const Tensor<bf16, 2> l16 = matmul(x, w);
  CHECK(TopKThenSoftmax{}(cast<f32>(l16), 1).experts(0, 0) == 0);
}

TEST_CASE("routing rejects k outside [1, n_experts]", "[nn][router]") {
  const auto l = logits_of({1.0, 2.0});
  REQUIRE_THROWS_AS(TopKThenSoftmax{}(l, 3), range_error);
  REQUIRE_THROWS_AS(SoftmaxThenTopK{}(l, 0), range_error);
}

TEST_CASE("routing accepts f32 logits only; the router takes its own dtype", "[nn][router][static]") {
  STATIC_REQUIRE(can_route<TopKThenSoftmax, Tensor<f32, 2>>);
  STATIC_REQUIRE_FALSE(can_route<TopKThenSoftmax, Tensor<bf16, 2>>);  // E18
  STATIC_REQUIRE_FALSE(can_route<SoftmaxThenTopK, Tensor<bf16, 2>>);
  STATIC_REQUIRE(can_take_logits<bf16, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_take_logits<bf16, Tensor<f32, 2>>);  // E2: cast the input explicitly
}

// ---------------------------------------------------------------------------------------------
// ExpertSelector: the hook on the selection scores
// ---------------------------------------------------------------------------------------------

namespace {
/// A selector written here, not in the library: token t must not use expert t mod E (a
/// per-token rule, e.g. a rotating maintenance window).
struct SkipTokenModExperts {
  void adjust(index_t token, std::span<float> scores) const {
    scores[static_cast<std::size_t>(token) % scores.size()] = -std::numeric_limits<float>::infinity();
  }
};
/// Not a selector: no adjust(token, scores).
struct NotASelector {
  void adjust(std::span<float>) const {}
};
/// A broken selector: writes NaN.
struct NanSelector {
  void adjust(index_t, std::span<float> scores) const { scores[1] = std::numeric_limits<float>::quiet_NaN(); }
};
}  // namespace

TEST_CASE("a selection bias changes which experts run, not how their weights are computed",
          "[nn][router][selector]") {
  // logits = ln(1, 4, 2, 1): p = (1/8, 4/8, 2/8, 1/8).
  const auto l = logits_of({0.0, std::log(4.0), std::log(2.0), 0.0});
  // Qwen3 order: the bias is in probability units. +0.5 on expert 3 ranks it first (0.625 > 0.5),
  // but its weight stays its model probability 1/8 (the order is by *adjusted* score).
  const ExpertScoreBias bias(make_tensor<f32, 1>({4}, {0.0f, 0.0f, 0.0f, 0.5f}));
  const Routing q = SoftmaxThenTopK{.norm_topk_prob = false}(l, 2, bias);
  CHECK(q.experts(0, 0) == 3);
  CHECK(q.experts(0, 1) == 1);
  CHECK(q.weights(0, 0) == Approx(0.125).epsilon(1e-6));
  CHECK(q.weights(0, 1) == Approx(0.5).epsilon(1e-6));
  // Renormalised over the selected experts' model probabilities: 1/8 ÷ 5/8, 4/8 ÷ 5/8.
  const Routing qn = SoftmaxThenTopK{.norm_topk_prob = true}(l, 2, bias);
  CHECK(qn.weights(0, 0) == Approx(0.2).epsilon(1e-6));
  CHECK(qn.weights(0, 1) == Approx(0.8).epsilon(1e-6));
  // gpt-oss order: the bias is in logit units. +3 on expert 0 selects {0, 1}; the weights are the
  // softmax of their *model* logits (0, ln 4): 1/5 and 4/5, not of (3, ln 4).
  const ExpertScoreBias lbias(make_tensor<f32, 1>({4}, {3.0f, 0.0f, 0.0f, 0.0f}));
  const Routing g = TopKThenSoftmax{}(l, 2, lbias);
  CHECK(g.experts(0, 0) == 0);
  CHECK(g.experts(0, 1) == 1);
  CHECK(g.weights(0, 0) == Approx(0.2).epsilon(1e-6));
  CHECK(g.weights(0, 1) == Approx(0.8).epsilon(1e-6));
}

TEST_CASE("a mask removes experts from selection; the model's softmax is untouched", "[nn][router][selector]") {
  const auto l = logits_of({0.0, std::log(4.0), std::log(2.0), 0.0});
  const ExpertMask mask(4, {1});
  // gpt-oss: the best allowed are expert 2, then experts 0 and 3 tie at logit 0 → expert 0.
  const Routing g = TopKThenSoftmax{}(l, 2, mask);
  CHECK(g.experts(0, 0) == 2);
  CHECK(g.experts(0, 1) == 0);
  CHECK(g.weights(0, 0) == Approx(2.0 / 3.0).epsilon(1e-6));
  CHECK(g.weights(0, 1) == Approx(1.0 / 3.0).epsilon(1e-6));
  // Qwen3 without renormalisation: the masked expert keeps its share of the denominator, so the
  // weights are the model's p = 2/8 and 1/8 (they do not sum to 1, exactly as without a mask).
  const Routing q = SoftmaxThenTopK{}(l, 2, mask);
  CHECK(q.experts(0, 0) == 2);
  CHECK(q.experts(0, 1) == 0);
  CHECK(q.weights(0, 0) == Approx(0.25).epsilon(1e-6));
  CHECK(q.weights(0, 1) == Approx(0.125).epsilon(1e-6));
  CHECK(mask.allowed(0));
  CHECK_FALSE(mask.allowed(1));
}

TEST_CASE("selectors compose in order, and a selector written by the user plugs in", "[nn][router][selector]") {
  auto rng = make_rng(82);
  const auto l = random_tensor<f32, 2>({9, 6}, rng);  // [T, E]
  const ExpertScoreBias bias(make_tensor<f32, 1>({6}, {0.0f, 5.0f, 0.0f, 0.0f, 0.0f, 0.0f}));
  const ExpertMask mask(6, {1});
  // The bias would force expert 1 everywhere; the mask after it forbids it: mask wins.
  const Routing r = TopKThenSoftmax{}(l, 2, SelectorChain(bias, mask));
  for (index_t t = 0; t < 9; ++t) {
    CHECK(r.experts(t, 0) != 1);
    CHECK(r.experts(t, 1) != 1);
  }
  // The custom per-token selector: token t never gets expert t mod 6, and otherwise the routing is
  // the model's: the same as routing the logits with expert t mod 6 set to -inf by hand.
  const Routing c = SoftmaxThenTopK{.norm_topk_prob = true}(l, 3, SkipTokenModExperts{});
  const Routing plain = SoftmaxThenTopK{.norm_topk_prob = false}(l, 6);
  for (index_t t = 0; t < 9; ++t) {
    std::vector<double> p(6);
    for (index_t j = 0; j < 6; ++j) p[static_cast<std::size_t>(plain.experts(t, j))] = plain.weights(t, j);
    double kept = 0;
    index_t rank = 0;
    for (index_t j = 0; j < 6 && rank < 3; ++j) {  // the model's order, skipping the forbidden expert
      const index_t e = plain.experts(t, j);
      if (e == t % 6) continue;
      CHECK(c.experts(t, rank) == e);
      kept += p[static_cast<std::size_t>(e)];
      ++rank;
    }
    for (index_t j = 0; j < 3; ++j)  // weights: model probabilities renormalised over the selected
      CHECK(c.weights(t, j) == Approx(p[static_cast<std::size_t>(c.experts(t, j))] / kept).epsilon(1e-5));
  }
}

TEST_CASE("selector misuse is reported", "[nn][router][selector]") {
  const auto l = logits_of({1.0, 2.0, 3.0, 4.0});
  // A mask that leaves fewer than k experts.
  REQUIRE_THROWS_AS(TopKThenSoftmax{}(l, 2, ExpertMask(4, {0, 1, 2})), range_error);
  REQUIRE_THROWS_AS(SoftmaxThenTopK{}(l, 2, ExpertMask(4, {1, 2, 3})), range_error);
  // NaN selection scores, NaN logits.
  REQUIRE_THROWS_AS(TopKThenSoftmax{}(l, 2, NanSelector{}), range_error);
  REQUIRE_THROWS_AS(SoftmaxThenTopK{}(logits_of({1.0, std::numeric_limits<double>::quiet_NaN()}), 1), range_error);
  // A table for another number of experts; a non-finite bias; a mask naming a missing expert.
  const ExpertScoreBias three(make_tensor<f32, 1>({3}, {0.0f, 0.0f, 0.0f}));
  REQUIRE_THROWS_AS(TopKThenSoftmax{}(l, 2, three), shape_error);
  REQUIRE_THROWS_AS(ExpertScoreBias(make_tensor<f32, 1>({2}, {0.0f, std::numeric_limits<float>::infinity()})),
                    range_error);
  REQUIRE_THROWS_AS(ExpertMask(4, {4}), range_error);
}

TEST_CASE("selectors are a concept; selection scores and biases are f32", "[nn][router][selector][static]") {
  STATIC_REQUIRE(ExpertSelector<IdentitySelector>);
  STATIC_REQUIRE(ExpertSelector<SkipTokenModExperts>);
  STATIC_REQUIRE_FALSE(ExpertSelector<NotASelector>);
  STATIC_REQUIRE(can_route_with<TopKThenSoftmax, Tensor<f32, 2>, ExpertMask>);
  STATIC_REQUIRE_FALSE(can_route_with<TopKThenSoftmax, Tensor<f32, 2>, NotASelector>);
  STATIC_REQUIRE_FALSE(can_route_with<SoftmaxThenTopK, Tensor<bf16, 2>, ExpertMask>);  // E18 holds with a selector
  STATIC_REQUIRE(can_bias_selection<Tensor<f32, 1>>);
  STATIC_REQUIRE_FALSE(can_bias_selection<Tensor<bf16, 1>>);
  STATIC_REQUIRE(RoutingPolicy<SoftmaxThenTopK>);
  STATIC_REQUIRE(RoutingPolicy<TopKThenSoftmax>);
}
