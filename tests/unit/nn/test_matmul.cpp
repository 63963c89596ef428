// tests/unit/nn/test_matmul.cpp — matmul<Out>(x [M, K], w [N, K]) = x · wᵀ (+ bias) against
// float64 math (ops/matmul.hpp). Error bound for K products accumulated in f32 and rounded once
// to Out (Higham, "Accuracy and Stability of Numerical Algorithms", §3.1):
//   |err| ≤ (K + 1) · u(f32) · Σ_p |x_p w_p| (+ |b|)  +  u(Out) · |exact|.
#include <catch2/catch.hpp>  // TEMPLATE_TEST_CASE, CHECK, STATIC_REQUIRE

#include <cmath>     // std::fabs
#include <concepts>  // std::same_as

#include <precis/core/error.hpp>  // precis::shape_error
#include <precis/ops/matmul.hpp>  // precis::matmul

#include "nn_test_support.hpp"  // random_tensor, to_f64, compare, unit_roundoff

using namespace precis;
using namespace precis::test;

namespace {
template <class X, class W>
concept can_matmul = requires(const X& x, const W& w) { matmul(x, w); };
template <class Out, class X, class W>
concept can_matmul_out = requires(const X& x, const W& w) { matmul<Out>(x, w); };

/// x · wᵀ (+ b) in float64 and the per-element bound above.
template <class Out, class X, class W>
void check_against_f64(const Tensor<Out, 2>& got, const X& x, const W& w, const std::vector<double>* bias) {
  const auto xv = to_f64(x), wv = to_f64(w);
  const index_t m = x.extent(0), n = w.extent(0), k = x.extent(1);
  std::vector<double> want(static_cast<std::size_t>(m * n)), tol(want.size());
  for (index_t i = 0; i < m; ++i) {
    for (index_t j = 0; j < n; ++j) {
      double s = 0, mag = 0;
      for (index_t p = 0; p < k; ++p) {
        const double t = xv[static_cast<std::size_t>(i * k + p)] * wv[static_cast<std::size_t>(j * k + p)];
        s += t;
        mag += std::fabs(t);
      }
      if (bias) {
        s += (*bias)[static_cast<std::size_t>(j)];
        mag += std::fabs((*bias)[static_cast<std::size_t>(j)]);
      }
      const auto e = static_cast<std::size_t>(i * n + j);
      want[e] = s;
      tol[e] = static_cast<double>(k + 1) * unit_roundoff<f32> * mag + unit_roundoff<Out> * std::fabs(s);
    }
  }
  const auto c = compare(to_f64(got), want, tol);
  INFO(c.first);
  CHECK(c.ok());
}
}  // namespace

TEMPLATE_TEST_CASE("matmul x·wᵀ matches float64 math, output in the operand dtype", "[ops][matmul]", f32, bf16, f16) {
  auto rng = make_rng(31);
  const auto x = random_tensor<TestType, 2>({5, 37}, rng);  // [M, K]
  const auto w = random_tensor<TestType, 2>({7, 37}, rng);  // [N, K]
  const auto y = matmul(x, w);                              // [M, N]
  STATIC_REQUIRE(std::same_as<decltype(y), const Tensor<TestType, 2>>);
  REQUIRE(y.extents() == extents_t<2>{5, 7});
  check_against_f64(y, x, w, nullptr);
}

TEMPLATE_TEST_CASE("matmul<f32> of 16-bit operands keeps an f32 output", "[ops][matmul]", bf16, f16) {
  auto rng = make_rng(32);
  const auto x = random_tensor<TestType, 2>({4, 64}, rng);
  const auto w = random_tensor<TestType, 2>({6, 64}, rng);
  const Tensor<f32, 2> y = matmul<f32>(x, w);
  check_against_f64(y, x, w, nullptr);
}

TEST_CASE("matmul with a bias of the output dtype", "[ops][matmul]") {
  auto rng = make_rng(33);
  const auto x = random_tensor<bf16, 2>({3, 16}, rng);
  const auto w = random_tensor<bf16, 2>({5, 16}, rng);
  const auto b16 = random_tensor<bf16, 1>({5}, rng);
  const auto b32 = random_tensor<f32, 1>({5}, rng);
  const auto bias16 = to_f64(b16), bias32 = to_f64(b32);
  check_against_f64(matmul(x, w, b16), x, w, &bias16);
  check_against_f64(matmul<f32>(x, w, b32), x, w, &bias32);
}

TEST_CASE("matmul reads a transposed (strided) weight view", "[ops][matmul]") {
  auto rng = make_rng(34);
  const auto x = random_tensor<f32, 2>({2, 3}, rng);
  const auto wt = random_tensor<f32, 2>({3, 4}, rng);  // [K, N] storage
  // w = wtᵀ as a view: extents [N, K], strides [1, N].
  const TensorView<const f32, 2> w(wt.data(), {4, 3}, {1, 4});
  const auto y = matmul(x, w);
  const auto y_ref = matmul(x, materialize(w));
  for (index_t i = 0; i < y.numel(); ++i) CHECK(y.data()[i] == y_ref.data()[i]);
}

TEST_CASE("matmul throws shape_error on inner-dimension and bias mismatches", "[ops][matmul]") {
  const Tensor<f32, 2> x({2, 3}), w({4, 5});
  REQUIRE_THROWS_WITH(matmul(x, w), Catch::Matchers::Contains("[matmul]") && Catch::Matchers::Contains("[2, 3]") &&
                                        Catch::Matchers::Contains("[4, 5]"));
  const Tensor<f32, 2> w3({4, 3});
  const Tensor<f32, 1> bad_bias({5});
  REQUIRE_THROWS_AS(matmul(x, w3, bad_bias), shape_error);
}

TEST_CASE("matmul operands share one dtype; the output is the operand dtype or f32", "[ops][matmul][static]") {
  STATIC_REQUIRE(can_matmul<Tensor<bf16, 2>, TensorView<const bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul<Tensor<bf16, 2>, Tensor<f32, 2>>);  // E1, E2, E24
  STATIC_REQUIRE_FALSE(can_matmul<Tensor<bf16, 1>, Tensor<bf16, 2>>);
  STATIC_REQUIRE(can_matmul_out<f32, Tensor<bf16, 2>, Tensor<bf16, 2>>);   // E18, E19
  STATIC_REQUIRE_FALSE(can_matmul_out<f16, Tensor<bf16, 2>, Tensor<bf16, 2>>);
}
