// tests/unit/backends/test_cpu_matmul.cpp — precis::backends::cpu_backend::matmul for every weight format
// against float64 math on the dequantized weights (backend_test_support.hpp states the bounds).
//
// Shapes: M ∈ {1, 3} takes the GEMV (decode) path, M ∈ {17, 64} the panel-GEMM path
// (decode_max_rows = 4); N = 37 is odd (no multiple of 16 rows or panel); K ∈ {96, 1056} is 3 and
// 33 blocks (the 2-block unrolled loops end on an odd block), plus K ∈ {1, 37, 100} for float
// weights (masked and scalar tails). This file is compiled twice (CMakeLists.txt): with the
// toolchain's default flags (portable kernel bodies) and with -march=native (AVX-512 bodies on
// hosts that have it); every failure message names the bodies (cpu_backend::isa_name()).
#include <catch2/catch.hpp>  // TEMPLATE_LIST_TEST_CASE, CHECK, STATIC_REQUIRE

#include <bit>       // std::bit_cast
#include <cmath>     // std::fabs
#include <concepts>  // std::same_as
#include <cstdint>   // std::uint32_t
#include <limits>    // std::numeric_limits
#include <random>    // std::mt19937
#include <string>    // std::string
#include <tuple>     // std::tuple
#include <vector>    // std::vector

#include <oneapi/tbb/task_arena.h>  // tbb::task_arena

#include <precis/backends/cpu/matmul.hpp>  // precis::backends::cpu_backend::matmul, matmul_into
#include <precis/core/error.hpp>           // precis::shape_error, range_error
#include <precis/quant/mxfp4_layout.hpp>   // precis::to_ggml_layout

#include "backend_test_support.hpp"  // TestWeight, reference, compare, random_tensor

using namespace precis;
using namespace precis::test;

namespace {

using all_formats = std::tuple<f32, bf16, f16, q8_0, q4_0, q4_1, mxfp4, mxfp4_ggml, q5_0, q5_1, iq4_nl, q2_K, q3_K,
                               q4_K, q5_K, q6_K, iq4_xs>;
using block_formats = std::tuple<q8_0, q4_0, q4_1, mxfp4, mxfp4_ggml, q5_0, q5_1, iq4_nl, q2_K, q3_K, q4_K, q5_K,
                                 q6_K, iq4_xs>;

/// K values for the matmul cases: 3 and 33 blocks of 32 (the 2-block unrolled loops end on an odd
/// block); for the 256-value K-quants 1 and 5 super-blocks (8 and 40 chunks).
template <class Fmt>
[[nodiscard]] std::vector<index_t> test_ks() {
  if constexpr (BlockFormat<Fmt>) {
    if constexpr (dtype_traits<Fmt>::block_size == 256) return {256, 1280};
  }
  return {96, 1056};
}

/// One case: random x [M, K] of dtype A, weight of format Fmt from a random master [N, K],
/// optional bias [N] of dtype Out; y = matmul<Out>(x, w[, b]) checked against float64.
template <class Fmt, class A, class Out>
void check_case(index_t m, index_t n, index_t k, bool with_bias, bool as_view, unsigned seed) {
  std::mt19937 rng(seed);
  const auto master = random_tensor<f32, 2>({n, k}, rng);  // [N, K]
  const TestWeight<Fmt> w(master);
  const auto x = random_tensor<A, 2>({m, k}, rng);     // [M, K]
  const auto bias = random_tensor<Out, 1>({n}, rng);  // [N]
  const std::vector<double> bv = to_f64(bias);
  const Reference ref = reference(to_f64(x), m, k, w.values, w.weff, n, with_bias ? &bv : nullptr);
  const Tensor<Out, 2> y = with_weight<A>(w, as_view, [&](const auto& wa) {
    return with_bias ? cpu_backend::matmul<Out>(x, wa, bias) : cpu_backend::matmul<Out>(x, wa);
  });  // [M, N]
  REQUIRE(y.extents() == extents_t<2>{m, n});
  const Comparison c = compare<Out>(to_f64(y), ref, k, n);
  INFO("format " << dtype_name<Fmt> << ", x " << dtype_name<A> << ", out " << dtype_name<Out> << ", M=" << m
                 << " N=" << n << " K=" << k << (with_bias ? " +bias" : "") << ", kernels " << cpu_backend::isa_name()
                 << ": " << c.violations << " violations, worst |err|/tol " << c.worst_ratio << "; " << c.first);
  CHECK(c.ok());
}

template <class Fmt, class A, class Out>
void check_shapes(const std::vector<index_t>& ks, unsigned seed) {
  int i = 0;
  for (const index_t k : ks)
    for (const index_t m : {1, 3, 17, 64}) {
      check_case<Fmt, A, Out>(m, 37, k, i % 2 == 1, i % 3 == 2, seed + static_cast<unsigned>(i));
      ++i;
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Every format × activation dtype × path
// ---------------------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("cpu matmul: f32 activations, every weight format, decode and prefill paths",
                        "[backends][cpu][matmul]", all_formats) {
  check_shapes<TestType, f32, f32>(test_ks<TestType>(), 100);
}

TEMPLATE_LIST_TEST_CASE("cpu matmul: bf16 activations, every weight format, bf16 output",
                        "[backends][cpu][matmul]", all_formats) {
  check_shapes<TestType, bf16, bf16>(test_ks<TestType>(), 200);
}

TEMPLATE_LIST_TEST_CASE("cpu matmul: bf16 activations with a declared f32 output",
                        "[backends][cpu][matmul]", all_formats) {
  check_shapes<TestType, bf16, f32>(test_ks<TestType>(), 300);
}

TEMPLATE_TEST_CASE("cpu matmul: float weights with K not a multiple of 16 (vector tails)",
                   "[backends][cpu][matmul]", f32, bf16, f16) {
  check_shapes<TestType, f32, f32>({1, 37, 100}, 400);
  check_shapes<TestType, bf16, bf16>({1, 37, 100}, 500);
}

TEST_CASE("cpu matmul: f16 activations", "[backends][cpu][matmul]") {
  check_case<f16, f16, f16>(1, 37, 100, true, false, 600);
  check_case<q4_1, f16, f32>(3, 37, 96, false, false, 601);
  check_case<bf16, f16, f16>(17, 37, 96, false, false, 602);
}

// ---------------------------------------------------------------------------------------------
// q8 activations (integer dot products)
// ---------------------------------------------------------------------------------------------

TEST_CASE("quantize_activation_q8 represents each value within d·(1/2 + 2^-16)", "[backends][cpu][q8]") {
  std::mt19937 rng(700);
  const auto x = random_tensor<f32, 2>({3, 96}, rng);  // [M, K]
  const auto xq = cpu_backend::quantize_activation_q8(x);
  STATIC_REQUIRE(std::same_as<decltype(xq), const cpu_backend::Q8Activations<f32>>);
  REQUIRE(xq.extents() == extents_t<2>{3, 96});
  for (index_t r = 0; r < 3; ++r)
    for (index_t b = 0; b < 3; ++b) {
      const cpu_backend::block_q8_act& blk = xq.row(r)[b];
      int sum = 0, half[2] = {0, 0};
      for (index_t j = 0; j < 32; ++j) {
        const double xv = x(r, b * 32 + j), xh = static_cast<double>(blk.qs[j]) * blk.d;
        CHECK(std::fabs(xv - xh) <= blk.d * (0.5 + 0x1p-16));
        CHECK(std::abs(static_cast<int>(blk.qs[j])) <= 127);
        sum += blk.qs[j];
        half[j / 16] += blk.qs[j];
      }
      CHECK(blk.sum == sum);
      CHECK(blk.half_sum[0] == half[0]);  // the 16-value sub-block sums of the K-quant kernels
      CHECK(blk.half_sum[1] == half[1]);
      CHECK(blk.s == blk.d * static_cast<float>(sum));
    }
}

namespace {
template <class Fmt, class A, class Out>
void check_q8_case(index_t m, index_t k, bool with_bias, unsigned seed) {
  const index_t n = 37;
  std::mt19937 rng(seed);
  const auto master = random_tensor<f32, 2>({n, k}, rng);  // [N, K]
  const TestWeight<Fmt> w(master);
  const auto x = random_tensor<A, 2>({m, k}, rng);     // [M, K]
  const auto bias = random_tensor<Out, 1>({n}, rng);  // [N]
  const std::vector<double> bv = to_f64(bias);
  const cpu_backend::Q8Activations<A> xq = cpu_backend::quantize_activation_q8(x);
  std::vector<double> scales;  // [M, K/32]
  for (index_t r = 0; r < m; ++r)
    for (index_t b = 0; b < k / 32; ++b) scales.push_back(xq.row(r)[b].d);
  const Tensor<Out, 2> y = with_bias ? cpu_backend::matmul<Out>(xq, w.stored, bias) : cpu_backend::matmul<Out>(xq, w.stored);

  // Against the activations as stored: the f32 bound plus the quantization of x.
  const Reference ref = reference(to_f64(x), m, k, w.values, w.weff, n, with_bias ? &bv : nullptr, scales);
  const Comparison c = compare<Out>(to_f64(y), ref, k, n);
  INFO("format " << dtype_name<Fmt> << ", q8 activations from " << dtype_name<A> << ", out " << dtype_name<Out>
                 << ", M=" << m << " K=" << k << ", kernels " << cpu_backend::isa_name() << ": " << c.violations
                 << " violations, worst |err|/tol " << c.worst_ratio << "; " << c.first);
  CHECK(c.ok());

  // Against the values q·d the kernel multiplies with: only the f32 bound remains.
  Tensor<f32, 2> xhat({m, k});  // [M, K]
  cpu_backend::dequantize_q8_activations(xq, xhat.data(), k);
  const Reference exact = reference(to_f64(xhat), m, k, w.values, w.weff, n, with_bias ? &bv : nullptr);
  const Comparison ce = compare<Out>(to_f64(y), exact, k, n);
  INFO("against q·d: " << ce.violations << " violations, worst " << ce.worst_ratio << "; " << ce.first);
  CHECK(ce.ok());
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("cpu matmul: q8 activations with every block format", "[backends][cpu][q8]", block_formats) {
  int i = 0;
  const std::vector<index_t> ks = test_ks<TestType>();
  for (const index_t k : ks)
    for (const index_t m : {1, 3, 17}) {
      check_q8_case<TestType, f32, f32>(m, k, i % 2 == 0, 800 + static_cast<unsigned>(i));
      if (k == ks.front() || m == 1) check_q8_case<TestType, bf16, bf16>(m, k, i % 2 == 1, 900 + static_cast<unsigned>(i));
      ++i;
    }
  check_q8_case<TestType, bf16, f32>(1, ks.front(), true, 999);
}

// ---------------------------------------------------------------------------------------------
// Type rules
// ---------------------------------------------------------------------------------------------

namespace {
template <class X, class W>
concept can_matmul = requires(const X& x, const W& w) { cpu_backend::matmul(x, w); };
template <class Out, class X, class W>
concept can_matmul_out = requires(const X& x, const W& w) { cpu_backend::matmul<Out>(x, w); };
template <class X, class W, class B>
concept can_matmul_bias = requires(const X& x, const W& w, const B& b) { cpu_backend::matmul(x, w, b); };
template <class X, class W, class Y>
concept can_matmul_into = requires(const X& x, const W& w, Y& y) { cpu_backend::matmul_into(x, w, y); };
template <class Out, class X, class W, class Y>
concept can_matmul_into_out = requires(const X& x, const W& w, Y& y) { cpu_backend::matmul_into<Out>(x, w, y); };
}  // namespace

TEST_CASE("cpu matmul: the output dtype is the activation's unless f32 is declared", "[backends][cpu][static]") {
  using Xb = Tensor<bf16, 2>;
  using Xf = Tensor<f32, 2>;
  // Plain float weights pair only with their own activation dtype (dtype-bugs C1, E1/E2/E24).
  STATIC_REQUIRE(can_matmul<Xb, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul<Xb, Tensor<f32, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul<Xf, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul<Xf, TensorView<const f16, 2>>);
  // ... and any activation once named as weight storage.
  STATIC_REQUIRE(can_matmul<Xb, cpu_backend::WeightView<f32>>);
  STATIC_REQUIRE(can_matmul<Xf, cpu_backend::WeightView<f16>>);
  STATIC_REQUIRE(std::same_as<decltype(cpu_backend::matmul(std::declval<Xb>(), std::declval<cpu_backend::WeightView<f32>>())),
                              Tensor<bf16, 2>>);
  // Block formats: the output is the activation dtype (C7), never the format's.
  STATIC_REQUIRE(std::same_as<decltype(cpu_backend::matmul(std::declval<Xb>(), std::declval<QuantView<q4_1, 2>>())),
                              Tensor<bf16, 2>>);
  STATIC_REQUIRE(std::same_as<decltype(cpu_backend::matmul<f32>(std::declval<Xb>(), std::declval<QuantTensor<mxfp4, 2>>())),
                              Tensor<f32, 2>>);
  // Out is the activation dtype or f32, nothing else.
  STATIC_REQUIRE(can_matmul_out<f32, Xb, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul_out<bf16, Xf, Tensor<f32, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul_out<f16, Xb, QuantView<q8_0, 2>>);
  // An f32 y for bf16 x must be declared: matmul_into<f32>.
  STATIC_REQUIRE(can_matmul_into<Xb, Tensor<bf16, 2>, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul_into<Xb, Tensor<bf16, 2>, Tensor<f32, 2>>);
  STATIC_REQUIRE(can_matmul_into_out<f32, Xb, Tensor<bf16, 2>, Tensor<f32, 2>>);
  STATIC_REQUIRE(can_matmul_into_out<f32, Xb, QuantView<q4_0, 2>, TensorView<f32, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul_into<Xb, Tensor<bf16, 2>, TensorView<const bf16, 2>>);  // read-only y
  // The bias has the output dtype.
  STATIC_REQUIRE(can_matmul_bias<Xb, QuantView<q4_1, 2>, Tensor<bf16, 1>>);
  STATIC_REQUIRE_FALSE(can_matmul_bias<Xb, QuantView<q4_1, 2>, Tensor<f32, 1>>);
  // Q8Activations meet block formats only, and keep their source dtype as the output dtype.
  using Q8b = cpu_backend::Q8Activations<bf16>;
  STATIC_REQUIRE(std::same_as<decltype(cpu_backend::matmul(std::declval<Q8b>(), std::declval<QuantView<q8_0, 2>>())),
                              Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul<Q8b, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul<Q8b, cpu_backend::WeightView<bf16>>);
  // Integer and rank-1 tensors are not matmul operands.
  STATIC_REQUIRE_FALSE(can_matmul<Tensor<i32, 2>, QuantView<q8_0, 2>>);
  STATIC_REQUIRE_FALSE(can_matmul<Tensor<bf16, 1>, Tensor<bf16, 2>>);
}

// ---------------------------------------------------------------------------------------------
// Layouts: strided activations, outputs and weights; thread-count independence
// ---------------------------------------------------------------------------------------------

namespace {
/// Bit-equality of two bf16/f32 tensors of one shape (any strides on the second).
template <class D>
bool same_bits(const Tensor<D, 2>& a, TensorView<const D, 2> b) {
  for (index_t i = 0; i < a.extent(0); ++i)
    for (index_t j = 0; j < a.extent(1); ++j) {
      if constexpr (std::same_as<D, f32>) {
        if (std::bit_cast<std::uint32_t>(a(i, j)) != std::bit_cast<std::uint32_t>(b(i, j))) return false;
      } else {
        if (a(i, j).bits != b(i, j).bits) return false;
      }
    }
  return true;
}
template <class D>
bool same_bits(const Tensor<D, 2>& a, const Tensor<D, 2>& b) {
  return same_bits(a, b.cview());
}

template <class Fmt, class A>
void check_layouts(index_t m) {
  const index_t n = 37, k = 96;
  std::mt19937 rng(1000 + static_cast<unsigned>(m));
  const TestWeight<Fmt> w(random_tensor<f32, 2>({n, k}, rng));
  const auto x = random_tensor<A, 2>({m, k}, rng);  // [M, K]
  const Tensor<A, 2> y = with_weight<A>(w, false, [&](const auto& wa) { return cpu_backend::matmul(x, wa); });  // [M, N]

  // x as columns [8, 8 + K) of a wider tensor (row stride K + 16).
  Tensor<A, 2> wide({m, k + 16});  // [M, K + 16]
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < k; ++j) wide(i, 8 + j) = x(i, j);
  const TensorView<const A, 2> x_cols = wide.cview().slice(1, 8, 8 + k);  // [M, K], stride {K + 16, 1}
  // x transposed in memory: element (i, j) at j·M + i (stride {1, M}).
  Tensor<A, 2> xt_store({k, m});  // [K, M]
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < k; ++j) xt_store(j, i) = x(i, j);
  const TensorView<const A, 2> x_t(xt_store.data(), {m, k}, {1, m});  // [M, K]
  for (const auto& xs : {x_cols, x_t}) {
    const Tensor<A, 2> ys = with_weight<A>(w, false, [&](const auto& wa) { return cpu_backend::matmul(xs, wa); });
    CHECK(same_bits(y, ys.cview()));
  }
  // x broadcast from its first row (row stride 0) gives what a materialised copy gives.
  const TensorView<const A, 2> x_bcast(x.data(), {m, k}, {0, 1});  // [M, K]
  Tensor<A, 2> x_rep({m, k});                                      // [M, K]
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < k; ++j) x_rep(i, j) = x(0, j);
  const Tensor<A, 2> yb = with_weight<A>(w, false, [&](const auto& wa) { return cpu_backend::matmul(x_bcast, wa); });
  const Tensor<A, 2> yr = with_weight<A>(w, false, [&](const auto& wa) { return cpu_backend::matmul(x_rep, wa); });
  CHECK(same_bits(yr, yb));

  // y written through strided views: columns of a wider tensor, and transposed.
  Tensor<A, 2> ywide({m, n + 5});  // [M, N + 5]
  with_weight<A>(w, false, [&](const auto& wa) {
    cpu_backend::matmul_into(x, wa, ywide.view().slice(1, 3, 3 + n));
    return 0;
  });
  CHECK(same_bits(y, ywide.cview().slice(1, 3, 3 + n)));
  Tensor<A, 2> yt_store({n, m});                               // [N, M]
  const TensorView<A, 2> y_t(yt_store.data(), {m, n}, {1, m});  // [M, N]
  with_weight<A>(w, false, [&](const auto& wa) {
    cpu_backend::matmul_into(x, wa, y_t);
    return 0;
  });
  CHECK(same_bits(y, TensorView<const A, 2>(y_t)));

  // One thread gives the same bits as all of them.
  tbb::task_arena one(1);
  const Tensor<A, 2> y1 = one.execute([&] {
    return with_weight<A>(w, false, [&](const auto& wa) { return cpu_backend::matmul(x, wa); });
  });
  CHECK(same_bits(y, y1.cview()));
}
}  // namespace

TEST_CASE("cpu matmul: strided activations and outputs give the contiguous result", "[backends][cpu][layout]") {
  for (const index_t m : {1, 3, 17}) {
    check_layouts<f32, f32>(m);
    check_layouts<bf16, bf16>(m);
    check_layouts<q4_1, f32>(m);
    check_layouts<mxfp4, bf16>(m);
  }
}

TEST_CASE("cpu matmul: a weight slice with a row stride; element-strided weights are rejected",
          "[backends][cpu][layout]") {
  const index_t m = 2, n = 37, k = 40;
  std::mt19937 rng(1100);
  const auto wide = random_tensor<bf16, 2>({n, k + 24}, rng);  // [N, K + 24]
  const auto x = random_tensor<bf16, 2>({m, k}, rng);         // [M, K]
  const TensorView<const bf16, 2> w_cols = wide.cview().slice(1, 4, 4 + k);  // [N, K], row stride K + 24
  Tensor<bf16, 2> w_copy({n, k});                                          // [N, K] contiguous
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < k; ++j) w_copy(i, j) = w_cols(i, j);
  for (const index_t rows : {m, index_t{17}}) {
    const auto xr = random_tensor<bf16, 2>({rows, k}, rng);  // [rows, K]
    CHECK(same_bits(cpu_backend::matmul(xr, w_copy), cpu_backend::matmul(xr, w_cols)));
  }
  const TensorView<const bf16, 2> w_strided(wide.data(), {n, k / 2}, {k + 24, 2});  // [N, K/2], stride(1) = 2
  const auto x2 = random_tensor<bf16, 2>({m, k / 2}, rng);
  CHECK_THROWS_WITH(cpu_backend::matmul(x2, w_strided),
                    Catch::Contains("[backends::cpu::matmul] weight [37, 20] has element stride 2") &&
                        Catch::Contains("must be contiguous"));
}

TEST_CASE("cpu matmul: large N runs in parallel and matches one thread bit for bit", "[backends][cpu][parallel]") {
  const index_t n = 301, k = 1056;  // M·N·K ≥ serial_cutoff for M = 1
  std::mt19937 rng(1200);
  const TestWeight<q4_0> wq(random_tensor<f32, 2>({n, k}, rng));
  const TestWeight<bf16> wb(random_tensor<f32, 2>({n, k}, rng));
  for (const index_t m : {1, 4, 20}) {
    const auto x = random_tensor<bf16, 2>({m, k}, rng);  // [M, K]
    tbb::task_arena one(1);
    CHECK(same_bits(cpu_backend::matmul(x, wq.stored), one.execute([&] { return cpu_backend::matmul(x, wq.stored); })));
    CHECK(same_bits(cpu_backend::matmul(x, wb.stored), one.execute([&] { return cpu_backend::matmul(x, wb.stored); })));
    const auto xq = cpu_backend::quantize_activation_q8(x);
    CHECK(same_bits(cpu_backend::matmul(xq, wq.stored), one.execute([&] { return cpu_backend::matmul(xq, wq.stored); })));
  }
}

TEST_CASE("cpu matmul: empty extents", "[backends][cpu][matmul]") {
  std::mt19937 rng(1300);
  const auto w = random_tensor<f32, 2>({5, 8}, rng);     // [N, K]
  const auto bias = random_tensor<f32, 1>({5}, rng);     // [N]
  const Tensor<f32, 2> x0({0, 8});                       // [0, K]
  CHECK(cpu_backend::matmul(x0, w).extents() == extents_t<2>{0, 5});
  const Tensor<f32, 2> wk({5, 0});  // [N, 0]: K = 0, y = bias
  for (const index_t rows : {2, 9}) {
    const Tensor<f32, 2> xr({rows, 0});
    const Tensor<f32, 2> y = cpu_backend::matmul(xr, wk, bias);
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < 5; ++j) CHECK(y(i, j) == bias(j));
  }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

TEST_CASE("cpu matmul: shape errors name both shapes", "[backends][cpu][errors]") {
  std::mt19937 rng(1400);
  const auto x = random_tensor<bf16, 2>({3, 96}, rng);  // [M, K]
  const TestWeight<q4_1> wq(random_tensor<f32, 2>({37, 64}, rng));
  CHECK_THROWS_AS(cpu_backend::matmul(x, wq.stored), shape_error);
  CHECK_THROWS_WITH(cpu_backend::matmul(x, wq.stored),
                    Catch::Contains("[backends::cpu::matmul] x [3, 96] · wᵀ with w [37, 64] (q4_1): inner dimensions differ"));
  const auto wb = random_tensor<bf16, 2>({37, 96}, rng);  // [N, K]
  Tensor<bf16, 2> y_bad({3, 36});
  CHECK_THROWS_WITH(cpu_backend::matmul_into(x, wb, y_bad),
                    Catch::Contains("output y [3, 36] for x [3, 96] · wᵀ with w [37, 96]: expected [3, 37]"));
  const auto b_bad = random_tensor<bf16, 1>({36}, rng);
  CHECK_THROWS_WITH(cpu_backend::matmul(x, wb, b_bad), Catch::Contains("bias [36] for w [37, 96]: expected [37]"));
  const auto x95 = random_tensor<f32, 2>({2, 95}, rng);
  CHECK_THROWS_WITH(cpu_backend::quantize_activation_q8(x95),
                    Catch::Contains("[quantize_activation_q8] x [2, 95]: K = 95 is not a multiple of the block size 32"));
  auto xnan = random_tensor<f32, 2>({1, 32}, rng);
  xnan(0, 5) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(cpu_backend::quantize_activation_q8(xnan), range_error);
  const auto xq = cpu_backend::quantize_activation_q8(random_tensor<f32, 2>({2, 64}, rng));
  CHECK_THROWS_WITH(cpu_backend::matmul(xq, to_ggml_layout(quantize<mxfp4>(random_tensor<f32, 2>({5, 96}, rng)))),
                    Catch::Contains("x [2, 64] · wᵀ with w [5, 96] (mxfp4_ggml)"));
}
