// tests/unit/nn/test_qlinear.cpp — QLinear<F, Act>: f32 accumulation over dequantized rows, the
// activation dtype in and out (nn/qlinear.hpp; dtype-bugs E3, E24, E25, E27).
#include <catch2/catch.hpp>  // TEMPLATE_TEST_CASE, CHECK, STATIC_REQUIRE

#include <cmath>     // std::fabs
#include <concepts>  // std::same_as

#include <precis/core/cast.hpp>         // precis::cast
#include <precis/core/error.hpp>        // precis::shape_error
#include <precis/nn/qlinear.hpp>        // precis::QLinear
#include <precis/ops/matmul.hpp>        // precis::matmul
#include <precis/quant/dequantize.hpp>  // precis::dequantize
#include <precis/quant/quantize.hpp>    // precis::quantize

#include "nn_test_support.hpp"  // random_tensor, to_f64, unit_roundoff

using namespace precis;
using namespace precis::test;

namespace {
template <class L, class X>
concept can_forward = requires(const L& l, const X& x) { l.forward(x); };

template <class D>
bool bit_equal(const Tensor<D, 2>& a, const Tensor<D, 2>& b) {
  if (a.extents() != b.extents()) return false;
  for (index_t i = 0; i < a.numel(); ++i)
    if (!(a.data()[i] == b.data()[i])) return false;
  return true;
}
}  // namespace

TEMPLATE_TEST_CASE("QLinear equals an f32 GEMM on the dequantized weights, rounded once to Act", "[nn][qlinear]",
                   q8_0, q4_0, q4_1, mxfp4, mxfp4_ggml) {
  auto rng = make_rng(101);
  const auto w32 = random_tensor<f32, 2>({6, 64}, rng);  // [out, in]
  const auto bias = random_tensor<bf16, 1>({6}, rng);
  const auto x = random_tensor<bf16, 2>({3, 64}, rng);
  const QLinear<TestType, bf16> lin(quantize<TestType>(w32), materialize(bias));
  const Tensor<bf16, 2> y = lin.forward(x);
  // Same f32 accumulation order, then one rounding to bf16.
  const Tensor<f32, 2> wdq = dequantize<f32>(lin.weight());
  const Tensor<bf16, 2> want = cast<bf16>(matmul<f32>(cast<f32>(x), wdq, cast<f32>(bias)));
  CHECK(bit_equal(y, want));
  // f32 activations: against float64 math on the dequantized weights,
  // |err| ≤ (K + 1)·u(f32)·Σ|terms| + u(f32)|exact|.
  const QLinear<TestType, f32> lin32(quantize<TestType>(w32));
  const auto x32 = random_tensor<f32, 2>({2, 64}, rng);
  const auto y32 = lin32.forward(x32);
  const auto xv = to_f64(x32), wv = to_f64(wdq);
  for (index_t t = 0; t < 2; ++t)
    for (index_t n = 0; n < 6; ++n) {
      double s = 0, mag = 0;
      for (index_t p = 0; p < 64; ++p) {
        const double term = xv[static_cast<std::size_t>(t * 64 + p)] * wv[static_cast<std::size_t>(n * 64 + p)];
        s += term;
        mag += std::fabs(term);
      }
      CHECK(std::fabs(y32(t, n) - s) <= 65 * unit_roundoff<f32> * mag + unit_roundoff<f32> * std::fabs(s));
    }
}

TEST_CASE("QLinear<q8_0> stays within q8_0's quantization error of the f32 layer", "[nn][qlinear]") {
  // q8_0: d = amax/127 stored as f16, q = round(x/d): per weight |err| ≤ d/2 + 127·|d − d_f16|
  // ≤ (1/2 + 127·u(f16))·amax/127 per block of 32.
  auto rng = make_rng(102);
  const auto w = random_tensor<f32, 2>({4, 96}, rng);
  const auto x = random_tensor<f32, 2>({2, 96}, rng);
  const QLinear<q8_0, f32> q(quantize<q8_0>(w));
  const auto y = q.forward(x);
  const auto exact = matmul(x, w);
  for (index_t t = 0; t < 2; ++t)
    for (index_t n = 0; n < 4; ++n) {
      double bound = 0, mag = 0;
      for (index_t blk = 0; blk < 3; ++blk) {
        double amax = 0;
        for (index_t j = 0; j < 32; ++j) amax = std::max(amax, static_cast<double>(std::fabs(w(n, blk * 32 + j))));
        const double werr = (0.5 + 127 * unit_roundoff<f16>) * amax / 127.0;
        for (index_t j = 0; j < 32; ++j) {
          bound += std::fabs(static_cast<double>(x(t, blk * 32 + j))) * werr;
          mag += std::fabs(static_cast<double>(x(t, blk * 32 + j)) * static_cast<double>(w(n, blk * 32 + j)));
        }
      }
      CHECK(std::fabs(static_cast<double>(y(t, n)) - static_cast<double>(exact(t, n))) <=
            bound + 2 * 97 * unit_roundoff<f32> * mag);
    }
}

TEST_CASE("QLinear checks the input width", "[nn][qlinear]") {
  const QLinear<q4_0, f32> q(QuantTensor<q4_0, 2>({2, 32}));
  REQUIRE_THROWS_AS(q.forward(Tensor<f32, 2>({1, 64})), shape_error);
  using Q = QLinear<q4_0, f32>;
  REQUIRE_THROWS_AS(Q(QuantTensor<q4_0, 2>({2, 32}), Tensor<f32, 1>({3})), shape_error);
}

TEST_CASE("QLinear takes and returns its activation dtype only (E3, E25)", "[nn][qlinear][static]") {
  STATIC_REQUIRE(can_forward<QLinear<q4_0, bf16>, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_forward<QLinear<q4_0, bf16>, Tensor<f32, 2>>);  // E3
  STATIC_REQUIRE_FALSE(can_forward<QLinear<mxfp4, f32>, Tensor<bf16, 2>>);  // seed bug 1
  STATIC_REQUIRE(std::same_as<decltype(std::declval<const QLinear<q8_0, f16>&>().forward(std::declval<Tensor<f16, 2>>())),
                              Tensor<f16, 2>>);
}
