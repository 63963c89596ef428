// tests/unit/blocks/test_norm.cpp — RMSNorm, both cast orders (nn/norm.hpp reference and
// backends/cpu/rmsnorm.hpp), against float64 math on random shapes and non-zero data
// (model-semantics §1a/§1b/§1.7 item 1; dtype-bugs E21 for the f32 variance).
//
// The check is rounding-aware rather than a loose tolerance. In exact arithmetic
// x̂ = x / sqrt(Σx²/n + eps). The f32 pipeline (Σx² in any order with FMAs: γ_n; /n, + eps,
// sqrt, 1/·, x·rstd: one rounding each) computes x̂ with relative error at most
//   e_x̂ = 1.01 · (½(γ_n + 2u) + 3u),   u = u(f32) = 2^-24
// (½ because the square root halves the relative error of its argument; 1.01 covers the
// second-order terms). Then, with round_D correct rounding to the activation dtype D:
//   MultiplyThenCast   y = round_D(fl32(w·x̂)): the f32 product is within e_v = e_x̂ + u of w·x̂,
//                      so y ∈ [round_D(w·x̂·(1 − e_v)), round_D(w·x̂·(1 + e_v))].
//   NormThenCast       r = round_D(x̂) ∈ {round_D(x̂(1 − e_x̂)), round_D(x̂(1 + e_x̂))}; for bf16/f16
//                      w·r is exact in f32 (≤ 2·11 significant bits), so y ∈ {round_D(w·r)} over
//                      those r; for f32 the order is MultiplyThenCast's.
// Where the f32 error cannot reach a rounding boundary the set has one element and the test
// demands that exact value, so the cast order itself is what is checked, not a tolerance
// around it. The reference and the CPU kernel must both satisfy it (they differ only in the
// order of the f32 sum).
#include <catch2/catch.hpp>  // TEST_CASE, TEMPLATE_TEST_CASE, CHECK, STATIC_REQUIRE

#include <algorithm>  // std::min, std::max
#include <cmath>      // std::sqrt, std::fabs
#include <cstring>    // std::memcmp
#include <sstream>    // std::ostringstream
#include <utility>    // std::forward
#include <vector>     // std::vector

#include <precis/backends/cpu/rmsnorm.hpp>  // precis::backends::cpu::rms_norm, rms_norm_into
#include <precis/core/cast.hpp>             // precis::cast
#include <precis/core/error.hpp>            // precis::shape_error, config_error, range_error
#include <precis/nn/norm.hpp>               // precis::rms_norm, RmsNorm, NormThenCast, MultiplyThenCast

#include "blocks_test_support.hpp"  // random_tensor, to_f64, gamma_f32, round_d, same_bits

using namespace precis;
using namespace precis::test;
namespace bcpu = precis::backends::cpu;

namespace {

template <class Order, class X, class W>
concept can_rms_norm = requires(const X& x, const W& w, const Scalar<f32>& e) { rms_norm<Order>(x, w, e); };
template <class Order, class X, class W>
concept can_cpu_rms_norm = requires(const X& x, const W& w, const Scalar<f32>& e) { bcpu::rms_norm<Order>(x, w, e); };
template <class Order, class X, class W, class Y>
concept can_cpu_rms_norm_into =
    requires(const X& x, const W& w, const Scalar<f32>& e, Y&& y) { bcpu::rms_norm_into<Order>(x, w, e, std::forward<Y>(y)); };

/// The set of values y may take (one or two) for one element; see the header comment.
template <class Order, class D>
[[nodiscard]] std::vector<double> allowed(double w, double x_hat, double e_xhat) {
  const double e_v = e_xhat + unit_roundoff<f32>;
  if constexpr (std::same_as<Order, NormThenCast> && !std::same_as<D, f32>) {
    const double r_lo = round_d<D>(x_hat * (1.0 - e_xhat)), r_hi = round_d<D>(x_hat * (1.0 + e_xhat));
    return {round_d<D>(w * r_lo), round_d<D>(w * r_hi)};
  } else {
    const double v = w * x_hat;
    return {round_d<D>(v * (1.0 - e_v)), round_d<D>(v * (1.0 + e_v))};
  }
}

/// Checks y [..., n] against the float64 definition of Order on x [..., n], w [n], eps: every
/// element lies in [min, max] of its allowed set. Returns a description of the first failure.
template <class Order, class Y, class X, class W>
[[nodiscard]] Comparison check_against_f64(const Y& y, const X& x, const W& w, double eps) {
  using D = dtype_of<X>;
  const auto xv = to_f64(x), wv = to_f64(w), yv = to_f64(y);
  const std::size_t n = wv.size(), rows = xv.size() / n;
  const double u = unit_roundoff<f32>;
  const double e_xhat = 1.01 * (0.5 * (gamma_f32(static_cast<double>(n)) + 2 * u) + 3 * u);
  Comparison c;
  for (std::size_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (std::size_t j = 0; j < n; ++j) ss += xv[r * n + j] * xv[r * n + j];
    const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
    for (std::size_t j = 0; j < n; ++j) {
      const auto set = allowed<Order, D>(wv[j], xv[r * n + j] * rstd, e_xhat);
      const double lo = std::min(set[0], set[1]), hi = std::max(set[0], set[1]), got = yv[r * n + j];
      if (!(got >= lo && got <= hi) && c.violations++ == 0) {
        std::ostringstream os;
        os << "row " << r << " col " << j << ": got " << got << ", allowed [" << lo << ", " << hi << "]";
        c.first = os.str();
      }
    }
  }
  return c;
}

template <class Order>
constexpr const char* order_name() {
  return std::same_as<Order, NormThenCast> ? "NormThenCast" : "MultiplyThenCast";
}

}  // namespace

TEMPLATE_TEST_CASE("rms_norm reference and CPU kernel match the float64 definition of each cast order",
                   "[blocks][norm]", f32, bf16, f16) {
  using D = TestType;
  auto rng = make_rng(701);
  // Widths: below one batch, odd, power-of-two, the models' hidden sizes (576 SmolLM2, 2048
  // Qwen3, 2880 gpt-oss); heights include T = 1 (decode).
  for (const index_t n : {1, 7, 16, 33, 100, 128, 257, 576, 2048, 2880}) {
    const index_t t = uniform_index(rng, 1, 6);
    const auto x = random_tensor<D, 2>({t, n}, rng);
    const auto w = random_tensor<D, 1>({n}, rng, 0.5, 2.0);
    const double eps = (n % 2 == 0) ? 1e-5 : 1e-6;  // gpt-oss / SmolLM2, Qwen3
    const auto e = Scalar<f32>::from(eps);
    const double eps_f32 = static_cast<double>(e.value());
    INFO("n = " << n << ", T = " << t);
    {
      const auto ref = rms_norm<NormThenCast>(x, w, e);
      const auto cpu = bcpu::rms_norm<NormThenCast>(x, w, e);
      const auto c1 = check_against_f64<NormThenCast>(ref, x, w, eps_f32);
      const auto c2 = check_against_f64<NormThenCast>(cpu, x, w, eps_f32);
      INFO("NormThenCast reference: " << c1.first << " | cpu: " << c2.first);
      CHECK(c1.ok());
      CHECK(c2.ok());
    }
    {
      const auto ref = rms_norm<MultiplyThenCast>(x, w, e);
      const auto cpu = bcpu::rms_norm<MultiplyThenCast>(x, w, e);
      const auto c1 = check_against_f64<MultiplyThenCast>(ref, x, w, eps_f32);
      const auto c2 = check_against_f64<MultiplyThenCast>(cpu, x, w, eps_f32);
      INFO("MultiplyThenCast reference: " << c1.first << " | cpu: " << c2.first);
      CHECK(c1.ok());
      CHECK(c2.ok());
    }
  }
}

TEST_CASE("cast-order policies give different bf16 results where they must (hand-derived case)", "[blocks][norm]") {
  // x = [3, 4], eps = 1e-5: mean(x²) = 12.5, x̂ = x / sqrt(12.50001) = [0.84852780, 1.13137040].
  // w = 1.75 (exact in bf16; bf16 spacing is 2^-8 in [0.5, 1) and 2^-7 in [1, 2)).
  //   element 1, NormThenCast:     round(x̂₁) = 145·2^-7 = 1.1328125 (x̂₁/2^-7 = 144.815);
  //                                1.75 · 1.1328125 = 1.982421875 = 253.75·2^-7 → 254·2^-7 = 1.984375
  //   element 1, MultiplyThenCast: 1.75 · 1.1313704 = 1.9798982 = 253.427·2^-7 → 253·2^-7 = 1.9765625
  //   element 0, both:             0.84765625·1.75 = 189.875·2^-7 and 1.4849236 = 190.07·2^-7
  //                                → 190·2^-7 = 1.484375
  // Every product is ≥ 0.07 ulp from a rounding boundary, far beyond the f32 error (~1e-7).
  const auto x = make_tensor<bf16, 2>({1, 2}, {3.0f, 4.0f});
  const auto w = make_tensor<bf16, 1>({2}, {1.75f, 1.75f});
  const Scalar<f32> eps = 1e-5;
  const float want_norm_then_cast[2] = {1.484375f, 1.984375f};
  const float want_multiply_then_cast[2] = {1.484375f, 1.9765625f};
  const auto a_ref = rms_norm<NormThenCast>(x, w, eps), a_cpu = bcpu::rms_norm<NormThenCast>(x, w, eps);
  const auto b_ref = rms_norm<MultiplyThenCast>(x, w, eps), b_cpu = bcpu::rms_norm<MultiplyThenCast>(x, w, eps);
  for (index_t j = 0; j < 2; ++j) {
    INFO("j = " << j);
    CHECK(static_cast<float>(a_ref(0, j)) == want_norm_then_cast[j]);
    CHECK(static_cast<float>(a_cpu(0, j)) == want_norm_then_cast[j]);
    CHECK(static_cast<float>(b_ref(0, j)) == want_multiply_then_cast[j]);
    CHECK(static_cast<float>(b_cpu(0, j)) == want_multiply_then_cast[j]);
  }
  CHECK_FALSE(same_bits(a_ref, b_ref));  // the orders are different functions on bf16
  // Each equals its own float64 definition computed here, and not the other's.
  const double x_hat1 = 4.0 / std::sqrt(12.5 + static_cast<double>(eps.value()));
  CHECK(round_d<bf16>(1.75 * round_d<bf16>(x_hat1)) == static_cast<double>(want_norm_then_cast[1]));
  CHECK(round_d<bf16>(1.75 * x_hat1) == static_cast<double>(want_multiply_then_cast[1]));
  // For f32 activations the two orders are one function (the inner rounding is the identity).
  const auto xf = cast<f32>(x);
  const auto wf = cast<f32>(w);
  CHECK(same_bits(rms_norm<NormThenCast>(xf, wf, eps), rms_norm<MultiplyThenCast>(xf, wf, eps)));
}

TEST_CASE("gpt-oss norm weights: a bf16 weight and its exact f32 widening give identical outputs",
          "[blocks][norm]") {
  // HF keeps gpt-oss norms in fp32 (_keep_in_fp32_modules); the checkpoint stores bf16. Under
  // MultiplyThenCast the multiply is f32 either way, so both typings are the same function.
  auto rng = make_rng(702);
  const auto x = random_tensor<bf16, 2>({5, 2880}, rng);
  const auto w = random_tensor<bf16, 1>({2880}, rng, 0.25, 4.0);
  const Scalar<f32> eps = 1e-5;
  CHECK(same_bits(rms_norm<MultiplyThenCast>(x, w, eps), rms_norm<MultiplyThenCast>(x, cast<f32>(w), eps)));
  CHECK(same_bits(bcpu::rms_norm<MultiplyThenCast>(x, w, eps), bcpu::rms_norm<MultiplyThenCast>(x, cast<f32>(w), eps)));
  const RmsNorm<MultiplyThenCast, f32> layer(cast<f32>(w), eps);
  CHECK(same_bits(layer.forward(x), rms_norm<MultiplyThenCast>(x, w, eps)));
}

TEST_CASE("eps is added to the mean square inside the square root", "[blocks][norm]") {
  // Inputs of magnitude ~1e-3 have mean(x²) ~ 4e-7, so eps = 1e-5 dominates: y ≈ w·x/sqrt(eps).
  // The float64 check pins where eps goes; dropping it would give |y| ≈ |w| instead.
  auto rng = make_rng(703);
  const auto x = random_tensor<f32, 2>({3, 64}, rng, 1e-4, 1e-3);
  const auto w = random_tensor<f32, 1>({64}, rng, 0.5, 2.0);
  const Scalar<f32> eps = 1e-5;
  const auto ref = rms_norm<MultiplyThenCast>(x, w, eps);
  const auto cpu = bcpu::rms_norm<MultiplyThenCast>(x, w, eps);
  const double e = static_cast<double>(eps.value());
  CHECK(check_against_f64<MultiplyThenCast>(ref, x, w, e).ok());
  CHECK(check_against_f64<MultiplyThenCast>(cpu, x, w, e).ok());
  CHECK_FALSE(check_against_f64<MultiplyThenCast>(ref, x, w, 0.0).ok());
  for (index_t j = 0; j < 64; ++j) CHECK(std::fabs(ref(0, j)) < 0.35 * std::fabs(w(j)));
}

TEMPLATE_TEST_CASE("per-head q/k RMSNorm over head_dim (Qwen3) equals the row norm of each head", "[blocks][norm]",
                   f32, bf16) {
  // model-semantics §1b: q_norm / k_norm have weights [head_dim] and normalise each head of
  // q [T, H, Dh] separately, before RoPE. As a rank-3 call it must equal the rank-2 norm of the
  // [T·H, Dh] rows, bit for bit, and meet the float64 definition.
  using D = TestType;
  auto rng = make_rng(704);
  const index_t t = 3, h = 4, dh = 128;
  const auto q = random_tensor<D, 3>({t, h, dh}, rng);
  const auto w = random_tensor<D, 1>({dh}, rng, 0.5, 2.0);
  const Scalar<f32> eps = 1e-6;
  const auto y3 = rms_norm<NormThenCast>(q, w, eps);
  const auto y2 = rms_norm<NormThenCast>(q.cview().template reshape<2>({t * h, dh}), w, eps);
  STATIC_REQUIRE(std::same_as<decltype(y3), const Tensor<D, 3>>);
  CHECK(std::memcmp(y3.data(), y2.data(), y3.bytes()) == 0);
  const auto c3 = bcpu::rms_norm<NormThenCast>(q, w, eps);
  CHECK(check_against_f64<NormThenCast>(y3, q, w, static_cast<double>(eps.value())).ok());
  CHECK(check_against_f64<NormThenCast>(c3, q, w, static_cast<double>(eps.value())).ok());
  // A strided view (the q heads of a fused [T, H + 2, Dh] projection) gives the same bits as a
  // contiguous copy, in the reference and in the CPU kernel.
  const auto fused = random_tensor<D, 3>({t, h + 2, dh}, rng);
  const auto q_view = fused.cview().slice(1, 0, h);
  const auto q_copy = materialize(q_view);
  CHECK(same_bits(rms_norm<NormThenCast>(q_view, w, eps), rms_norm<NormThenCast>(q_copy, w, eps)));
  CHECK(same_bits(bcpu::rms_norm<NormThenCast>(q_view, w, eps), bcpu::rms_norm<NormThenCast>(q_copy, w, eps)));
}

TEST_CASE("CPU rms_norm: threads, in place, and the reference agree", "[blocks][norm]") {
  // 96 × 2880 = 276480 elements ≥ 2^18: the TBB path. Each row must equal the same row computed
  // alone (T = 1 runs on the calling thread): results do not depend on the thread split.
  auto rng = make_rng(705);
  const index_t t = 96, n = 2880;
  const auto x = random_tensor<bf16, 2>({t, n}, rng);
  const auto w = random_tensor<bf16, 1>({n}, rng, 0.5, 2.0);
  const Scalar<f32> eps = 1e-5;
  const auto y = bcpu::rms_norm<MultiplyThenCast>(x, w, eps);
  bool rows_equal = true;
  for (index_t r = 0; r < t; r += 7) {
    const auto row = bcpu::rms_norm<MultiplyThenCast>(x.cview().slice(0, r, r + 1), w, eps);
    rows_equal = rows_equal && std::memcmp(row.data(), y.data() + r * n, row.bytes()) == 0;
  }
  CHECK(rows_equal);
  // In place (y = x) equals out of place.
  auto z = x.clone();
  bcpu::rms_norm_into<MultiplyThenCast>(z, w, eps, z);
  CHECK(same_bits(z, y));
  // CPU vs reference: both meet the definition (tested above); here directly, elementwise
  // |cpu − ref| ≤ one bf16 ulp of the larger (each is one of ≤ 2 adjacent allowed values).
  const auto ref = rms_norm<MultiplyThenCast>(x, w, eps);
  const auto a = to_f64(y), b = to_f64(ref);
  std::size_t differ = 0, far = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    differ += a[i] != b[i];
    far += std::fabs(a[i] - b[i]) > 2 * unit_roundoff<bf16> * std::max(std::fabs(a[i]), std::fabs(b[i]));
  }
  CHECK(far == 0);
  CHECK(differ < a.size() / 100);  // rounding-boundary cases only: a rare event, not a pattern
}

TEST_CASE("rms_norm rejects mismatched shapes and invalid eps", "[blocks][norm]") {
  const Tensor<f32, 2> x({2, 8});
  const Tensor<f32, 1> w7({7});
  const Tensor<f32, 1> w8({8});
  REQUIRE_THROWS_AS(rms_norm<NormThenCast>(x, w7, Scalar<f32>(1e-5)), shape_error);
  REQUIRE_THROWS_AS(bcpu::rms_norm<NormThenCast>(x, w7, Scalar<f32>(1e-5)), shape_error);
  REQUIRE_THROWS_AS(rms_norm<NormThenCast>(x, w8, Scalar<f32>(-1e-5)), config_error);
  REQUIRE_THROWS_AS(bcpu::rms_norm<NormThenCast>(x, w8, Scalar<f32>(-1e-5)), config_error);
  REQUIRE_THROWS_AS(Scalar<f32>::from(1e-60), range_error);  // rounds to 0 in f32
  // CPU: the last axis must be contiguous; y must have x's shape.
  Tensor<f32, 2> big({8, 4});
  const auto column_view = big.cview().slice(1, 0, 2);  // [8, 2] with stride(1) = 1 — fine
  CHECK_NOTHROW(bcpu::rms_norm<NormThenCast>(column_view, make_tensor<f32, 1>({2}, {1.0f, 1.0f}), Scalar<f32>(1e-5)));
  const TensorView<const f32, 2> transposed(big.data(), {4, 8}, {1, 4});  // stride(1) = 4
  REQUIRE_THROWS_AS(bcpu::rms_norm<NormThenCast>(transposed, w8, Scalar<f32>(1e-5)), shape_error);
  Tensor<f32, 2> y_wrong({2, 7});
  REQUIRE_THROWS_AS(bcpu::rms_norm_into<NormThenCast>(x, w8, Scalar<f32>(1e-5), y_wrong), shape_error);
  REQUIRE_THROWS_AS((RmsNorm<NormThenCast, f32>(Tensor<f32, 1>({4}), Scalar<f32>(-1.0))), config_error);
}

TEST_CASE("RMSNorm types: cast order decides which weight dtypes are accepted", "[blocks][norm][static]") {
  // NormThenCast: the weight has x's dtype (an f32 weight on bf16 x would promote y to f32).
  STATIC_REQUIRE(can_rms_norm<NormThenCast, Tensor<bf16, 2>, Tensor<bf16, 1>>);
  STATIC_REQUIRE_FALSE(can_rms_norm<NormThenCast, Tensor<bf16, 2>, Tensor<f32, 1>>);
  STATIC_REQUIRE_FALSE(can_rms_norm<NormThenCast, Tensor<bf16, 2>, Tensor<f16, 1>>);
  // MultiplyThenCast: x's dtype or f32 (gpt-oss's fp32-kept norms).
  STATIC_REQUIRE(can_rms_norm<MultiplyThenCast, Tensor<bf16, 2>, Tensor<bf16, 1>>);
  STATIC_REQUIRE(can_rms_norm<MultiplyThenCast, Tensor<bf16, 3>, TensorView<const f32, 1>>);
  STATIC_REQUIRE_FALSE(can_rms_norm<MultiplyThenCast, Tensor<f32, 2>, Tensor<bf16, 1>>);
  // Activations only: no f64, no integers; the weight is a vector.
  STATIC_REQUIRE_FALSE(can_rms_norm<NormThenCast, Tensor<f64, 2>, Tensor<f64, 1>>);
  STATIC_REQUIRE_FALSE(can_rms_norm<NormThenCast, Tensor<bf16, 2>, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_rms_norm<bool, Tensor<bf16, 2>, Tensor<bf16, 1>>);  // a flag is not a policy
  // The CPU kernel has the same rules, and writes only into a writable view of x's dtype.
  STATIC_REQUIRE(can_cpu_rms_norm<MultiplyThenCast, Tensor<bf16, 2>, Tensor<f32, 1>>);
  STATIC_REQUIRE_FALSE(can_cpu_rms_norm<NormThenCast, Tensor<bf16, 2>, Tensor<f32, 1>>);
  STATIC_REQUIRE(can_cpu_rms_norm_into<NormThenCast, Tensor<bf16, 2>, Tensor<bf16, 1>, Tensor<bf16, 2>&>);
  STATIC_REQUIRE(can_cpu_rms_norm_into<NormThenCast, Tensor<bf16, 2>, Tensor<bf16, 1>, TensorView<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_cpu_rms_norm_into<NormThenCast, Tensor<bf16, 2>, Tensor<bf16, 1>, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_cpu_rms_norm_into<NormThenCast, Tensor<bf16, 2>, Tensor<bf16, 1>, TensorView<const bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_cpu_rms_norm_into<NormThenCast, Tensor<bf16, 2>, Tensor<bf16, 1>, Tensor<f32, 2>&>);
}
