// tests/unit/nn/test_softmax.cpp — softmax (f32 only) and the opt-in softmax_lowacc<D>
// (ops/softmax.hpp; dtype-bugs E19–E21).
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, STATIC_REQUIRE_FALSE

#include <cmath>   // std::exp, std::fabs
#include <limits>  // std::numeric_limits

#include <precis/core/error.hpp>   // precis::range_error
#include <precis/ops/softmax.hpp>  // precis::softmax, softmax_lowacc

#include "nn_test_support.hpp"  // random_tensor, to_f64, compare, unit_roundoff

using namespace precis;
using namespace precis::test;

namespace {
template <class X>
concept can_softmax = requires(const X& x) { softmax(x); };

/// Row-wise softmax in float64 over rows of `cols`.
std::vector<double> softmax_f64(const std::vector<double>& x, index_t cols) {
  std::vector<double> p(x.size());
  for (std::size_t r = 0; r < x.size() / static_cast<std::size_t>(cols); ++r) {
    const std::size_t b = r * static_cast<std::size_t>(cols);
    double m = -std::numeric_limits<double>::infinity(), s = 0;
    for (index_t j = 0; j < cols; ++j) m = std::max(m, x[b + static_cast<std::size_t>(j)]);
    for (index_t j = 0; j < cols; ++j) s += p[b + static_cast<std::size_t>(j)] = std::exp(x[b + static_cast<std::size_t>(j)] - m);
    for (index_t j = 0; j < cols; ++j) p[b + static_cast<std::size_t>(j)] /= s;
  }
  return p;
}
}  // namespace

TEST_CASE("softmax over the last axis matches float64 math", "[ops][softmax]") {
  // Inputs in (-4, 4): x − m < 8 in magnitude. Relative error of p_j: the rounding of x − m
  // (amplified by exp: ≤ 8u), exp itself (≤ 2u), the running sum of n terms (≤ n·u), the
  // division (u)  →  rel ≤ (n + 12) · u(f32).
  auto rng = make_rng(41);
  const index_t n = 37;
  const auto x = random_tensor<f32, 3>({2, 3, n}, rng, 0.01, 4.0);
  const auto want = softmax_f64(to_f64(x), n);
  const auto got = softmax(x);
  const auto c = compare(to_f64(got), want, relative(want, static_cast<double>(n + 12) * unit_roundoff<f32>));
  INFO(c.first);
  CHECK(c.ok());
}

TEST_CASE("softmax handles -inf logits (masked keys) and strided rows", "[ops][softmax]") {
  Tensor<f32, 2> x({2, 4});
  const float ninf = -std::numeric_limits<float>::infinity();
  const float vals[] = {1.0f, ninf, 2.0f, ninf, 0.5f, 0.5f, ninf, 0.5f};
  for (index_t i = 0; i < 8; ++i) x.data()[i] = vals[i];
  const auto p = softmax(x);
  CHECK(p(0, 1) == 0.0f);
  CHECK(p(0, 3) == 0.0f);
  CHECK(p(0, 2) == Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-6));
  CHECK(p(1, 0) == Approx(1.0 / 3.0).epsilon(1e-6));
  // Every other column of x, through a strided view.
  const TensorView<const f32, 2> cols(x.data(), {2, 2}, {4, 2});
  const auto ps = softmax(cols);
  CHECK(ps(0, 0) == Approx(1.0 / (1.0 + std::exp(1.0))).epsilon(1e-6));
  CHECK(ps(1, 0) == 1.0f);  // 0.5 beside a masked -inf
  CHECK(ps(1, 1) == 0.0f);
}

TEST_CASE("softmax of a row of only -inf logits throws range_error", "[ops][softmax]") {
  Tensor<f32, 2> x({2, 3});
  for (index_t j = 0; j < 3; ++j) x(1, j) = -std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_AS(softmax(x), range_error);
}

TEST_CASE("softmax_lowacc<bf16> of a short row is within bf16 rounding of float64", "[ops][softmax]") {
  // Every step rounds to bf16: rel error ≤ (n + 12) · u(bf16) for n = 8.
  auto rng = make_rng(42);
  const index_t n = 8;
  const auto x = random_tensor<bf16, 2>({4, n}, rng, 0.01, 2.0);
  const auto want = softmax_f64(to_f64(x), n);
  const auto c = compare(to_f64(softmax_lowacc<bf16>(x)), want,
                         relative(want, static_cast<double>(n + 12) * unit_roundoff<bf16>));
  INFO(c.first);
  CHECK(c.ok());
}

TEST_CASE("softmax_lowacc<bf16> stalls on long rows where softmax in f32 does not", "[ops][softmax]") {
  // 4096 equal logits: the exact answer is 1/4096. A bf16 running sum of ones stops growing at
  // 256 (256 + 1 rounds back to 256 with 8 significant bits), so every probability comes out
  // 1/256 — sixteen times too large. This is why low-precision accumulation is an opt-in name.
  const index_t n = 4096;
  const Tensor<bf16, 1> xb({n});  // zeros
  const auto low = softmax_lowacc<bf16>(xb);
  CHECK(static_cast<float>(low(0)) == 1.0f / 256.0f);
  const Tensor<f32, 1> xf({n});
  const auto p = softmax(xf);
  CHECK(p(0) == 1.0f / 4096.0f);
}

TEST_CASE("softmax accepts f32 only", "[ops][softmax][static]") {
  STATIC_REQUIRE(can_softmax<Tensor<f32, 2>>);
  STATIC_REQUIRE_FALSE(can_softmax<Tensor<bf16, 2>>);  // E19–E21: use softmax_lowacc<bf16> or cast<f32>
  STATIC_REQUIRE_FALSE(can_softmax<Tensor<f64, 2>>);
}
