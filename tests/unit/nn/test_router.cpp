// tests/unit/nn/test_router.cpp — Router<W>::logits (f32), softmax_then_topk (Qwen3-MoE) and
// topk_then_softmax (gpt-oss) on hand-checkable cases (nn/router.hpp; model-semantics §1a, §1b;
// dtype-bugs E18).
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, STATIC_REQUIRE

#include <cmath>  // std::log, std::fabs

#include <precis/core/cast.hpp>   // precis::cast
#include <precis/core/error.hpp>  // precis::range_error
#include <precis/nn/router.hpp>   // precis::Router, softmax_then_topk, topk_then_softmax

#include "nn_test_support.hpp"  // random_tensor, to_f64, unit_roundoff

using namespace precis;
using namespace precis::test;

namespace {
template <class R, class L>
concept can_route = requires(const R& r, const L& l) { r(l, index_t{2}); };
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
  const Routing q = softmax_then_topk{.norm_topk_prob = false}(l, 2);
  CHECK(q.experts(0, 0) == 1);
  CHECK(q.experts(0, 1) == 2);
  CHECK(q.weights(0, 0) == Approx(0.5).epsilon(1e-6));
  CHECK(q.weights(0, 1) == Approx(0.25).epsilon(1e-6));
  // Qwen3-30B-A3B (norm_topk_prob = true): renormalised to 2/3, 1/3.
  const Routing qn = softmax_then_topk{.norm_topk_prob = true}(l, 2);
  CHECK(qn.weights(0, 0) == Approx(2.0 / 3.0).epsilon(1e-6));
  CHECK(qn.weights(0, 1) == Approx(1.0 / 3.0).epsilon(1e-6));
  // gpt-oss: softmax over the two selected logits only — the renormalised weights again.
  const Routing g = topk_then_softmax{}(l, 2);
  CHECK(g.experts(0, 0) == 1);
  CHECK(g.experts(0, 1) == 2);
  CHECK(g.weights(0, 0) == Approx(2.0 / 3.0).epsilon(1e-6));
  CHECK(g.weights(0, 1) == Approx(1.0 / 3.0).epsilon(1e-6));
}

TEST_CASE("routing breaks exact ties toward the lower expert index", "[nn][router]") {
  const auto l = logits_of({1.0, 2.0, 2.0, 2.0});
  const Routing g = topk_then_softmax{}(l, 2);
  CHECK(g.experts(0, 0) == 1);
  CHECK(g.experts(0, 1) == 2);
  CHECK(g.weights(0, 0) == 0.5f);
  const Routing q = softmax_then_topk{}(l, 3);
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
  CHECK(topk_then_softmax{}(router.logits(x), 1).experts(0, 0) == 1);
  // The bf16 path has to be spelled out: bf16 logits, then an explicit cast<f32>.
  const Tensor<bf16, 2> l16 = matmul(x, w);
  CHECK(topk_then_softmax{}(cast<f32>(l16), 1).experts(0, 0) == 0);
}

TEST_CASE("routing rejects k outside [1, n_experts]", "[nn][router]") {
  const auto l = logits_of({1.0, 2.0});
  REQUIRE_THROWS_AS(topk_then_softmax{}(l, 3), range_error);
  REQUIRE_THROWS_AS(softmax_then_topk{}(l, 0), range_error);
}

TEST_CASE("routing accepts f32 logits only; the router takes its own dtype", "[nn][router][static]") {
  STATIC_REQUIRE(can_route<topk_then_softmax, Tensor<f32, 2>>);
  STATIC_REQUIRE_FALSE(can_route<topk_then_softmax, Tensor<bf16, 2>>);  // E18
  STATIC_REQUIRE_FALSE(can_route<softmax_then_topk, Tensor<bf16, 2>>);
  STATIC_REQUIRE(can_take_logits<bf16, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_take_logits<bf16, Tensor<f32, 2>>);  // E2: cast the input explicitly
}
