// tests/unit/blocks/test_activation.cpp — the gated-MLP activations (nn/activation.hpp
// reference, backends/cpu/activation.hpp): SiluGate (Llama/Qwen) and gpt-oss's ClampedSwiglu on
// separate, interleaved and half-split gate/up (model-semantics §1a "Experts", §1b, §1.7 item 3).
//
// Bound (rounding-aware, as in test_norm.cpp). Exact value on the stored inputs (α is the f32
// value of Scalar<f32>{1.702}, as the op uses it):
//   SiluGate        v = g·σ(g)·u
//   ClampedSwiglu   v = g'·σ(α·g')·(u' + 1), g' = min(g, L), u' = clamp(u, −L, L)
// The f32 evaluation: exp within 4 ulps (glibc's expf is < 1 ulp; xsimd::exp is a Cody–Waite
// reduction and a polynomial of a few ulps), the exp argument α·g' rounded once (an absolute
// error |α·g'|·u, i.e. a relative error |α·g'|·u in exp), then 1 + e, the reciprocal, g·σ, u' + 1
// and the last product one rounding each (σ = 1/(1 + e) inherits at most e's relative error).
// So |f32 − v| ≤ e = 1.01·(|z| + 9)·u·|v|, with z = α·g' for ClampedSwiglu and z = 0 for SiluGate
// (−g is exact), u = u(f32) — and y must be a D rounding of a value within e of v.
#include <catch2/catch.hpp>  // TEST_CASE, TEMPLATE_TEST_CASE, CHECK, STATIC_REQUIRE

#include <algorithm>  // std::min, std::clamp
#include <cmath>      // std::exp, std::fabs, std::isnan
#include <cstring>    // std::memcmp
#include <iterator>   // std::size
#include <limits>     // std::numeric_limits
#include <sstream>    // std::ostringstream
#include <utility>    // std::forward
#include <vector>     // std::vector

#include <precis/backends/cpu/activation.hpp>  // precis::backends::cpu::glu, glu_into
#include <precis/core/error.hpp>               // precis::shape_error, config_error
#include <precis/nn/activation.hpp>            // precis::glu, SiluGate, ClampedSwiglu, gate_up

#include "blocks_test_support.hpp"  // random_tensor, to_f64, within_rounding, same_bits, uniform_index

using namespace precis;
using namespace precis::test;
namespace bcpu = precis::backends::cpu;

namespace {

template <class A, class G, class U>
concept can_glu = requires(const A& a, const G& g, const U& u) { glu(a, g, u); };
template <class L, class A, class GU>
concept can_glu_fused = requires(const A& a, const GU& gu) { glu<L>(a, gu); };
template <class A, class G, class U>
concept can_cpu_glu = requires(const A& a, const G& g, const U& u) { bcpu::glu(a, g, u); };
template <class L, class A, class GU, class Y>
concept can_cpu_glu_into = requires(const A& a, const GU& gu, Y&& y) { bcpu::glu_into<L>(a, gu, std::forward<Y>(y)); };

/// The exact value and its f32 error bound for one (gate, up) pair.
struct Exact {
  double value, err;
};
[[nodiscard]] Exact exact(const SiluGate&, double g, double u) {
  const double v = g / (1.0 + std::exp(-g)) * u;
  return {v, 1.01 * 9.0 * unit_roundoff<f32> * std::fabs(v)};
}
[[nodiscard]] Exact exact(const ClampedSwiglu& a, double g, double u) {
  const double alpha = a.alpha.value(), limit = a.limit.value();
  const double gc = std::min(g, limit), uc = std::clamp(u, -limit, limit), z = alpha * gc;
  const double v = gc / (1.0 + std::exp(-z)) * (uc + 1.0);
  return {v, 1.01 * (std::fabs(z) + 9.0) * unit_roundoff<f32> * std::fabs(v)};
}

/// y [T, I] against act(g, u) for gate [T, I] and up [T, I] given as float64 (row-major).
template <class D, class A>
[[nodiscard]] Comparison check(const Tensor<D, 2>& y, const A& act, const std::vector<double>& g,
                               const std::vector<double>& u) {
  const auto yv = to_f64(y);
  Comparison c;
  for (std::size_t i = 0; i < yv.size(); ++i) {
    const auto [v, e] = exact(act, g[i], u[i]);
    if (!within_rounding<D>(yv[i], v, e) && c.violations++ == 0) {
      std::ostringstream os;
      os << "element " << i << " (gate " << g[i] << ", up " << u[i] << "): got " << yv[i] << ", want " << v;
      c.first = os.str();
    }
  }
  return c;
}

/// The gate and up columns of a fused [T, 2I] tensor in layout L, as float64 [T, I] each.
template <class L, class GU>
void split(const GU& gu, std::vector<double>& g, std::vector<double>& u) {
  using D = dtype_of<GU>;
  const index_t t_n = gu.extent(0), inter = gu.extent(1) / 2;
  g.clear();
  u.clear();
  for (index_t t = 0; t < t_n; ++t)
    for (index_t j = 0; j < inter; ++j) {
      g.push_back(static_cast<double>(to_compute<D>(gu(t, L::gate_column(j, inter)))));
      u.push_back(static_cast<double>(to_compute<D>(gu(t, L::up_column(j, inter)))));
    }
}

}  // namespace

TEMPLATE_TEST_CASE("glu reference and CPU kernel match float64 for SiluGate and ClampedSwiglu in every layout",
                   "[blocks][activation]", f32, bf16, f16) {
  using D = TestType;
  auto rng = make_rng(901);
  const SiluGate silu;
  const ClampedSwiglu swiglu;  // α = 1.702, limit = 7 (gpt-oss)
  // Widths: below one batch, odd, the models' intermediate sizes (768 Qwen3 experts, 1536
  // SmolLM2, 2880 gpt-oss experts).
  for (const index_t inter : {1, 5, 16, 37, 128, 768, 1536, 2880}) {
    const index_t t = uniform_index(rng, 1, 4);
    INFO("I = " << inter << ", T = " << t);
    // Magnitudes up to 12 so that gpt-oss's clamps (±7) act on part of the data.
    const auto gate = random_tensor<D, 2>({t, inter}, rng, 0.125, 12.0);
    const auto up = random_tensor<D, 2>({t, inter}, rng, 0.125, 12.0);
    const auto gu = random_tensor<D, 2>({t, 2 * inter}, rng, 0.125, 12.0);
    const auto gv = to_f64(gate), uv = to_f64(up);
    std::vector<double> ig, iu, hg, hu;
    split<gate_up::interleaved>(gu, ig, iu);
    split<gate_up::halves>(gu, hg, hu);

    const auto r1 = glu(silu, gate, up), c1 = bcpu::glu(silu, gate, up);
    const auto r2 = glu(swiglu, gate, up), c2 = bcpu::glu(swiglu, gate, up);
    const auto r3 = glu<gate_up::interleaved>(swiglu, gu), c3 = bcpu::glu<gate_up::interleaved>(swiglu, gu);
    const auto r4 = glu<gate_up::halves>(silu, gu), c4 = bcpu::glu<gate_up::halves>(silu, gu);
    const auto r5 = glu<gate_up::interleaved>(silu, gu), c5 = bcpu::glu<gate_up::interleaved>(silu, gu);
    const Comparison cs[] = {check(r1, silu, gv, uv),   check(c1, silu, gv, uv),   check(r2, swiglu, gv, uv),
                             check(c2, swiglu, gv, uv), check(r3, swiglu, ig, iu), check(c3, swiglu, ig, iu),
                             check(r4, silu, hg, hu),   check(c4, silu, hg, hu),   check(r5, silu, ig, iu),
                             check(c5, silu, ig, iu)};
    for (std::size_t k = 0; k < std::size(cs); ++k) {
      INFO("case " << k << ": " << cs[k].first);
      CHECK(cs[k].ok());
    }
  }
}

TEST_CASE("ClampedSwiglu clamps gate above only and up on both sides; NaN propagates", "[blocks][activation]") {
  // model-semantics §1a: glu = min(glu, 7); lin = clamp(lin, −7, 7); out = glu·σ(1.702·glu)·(lin + 1).
  const ClampedSwiglu act;
  // [gate, up] pairs, interleaved as gpt-oss stores them.
  const auto gu = make_tensor<f32, 2>({1, 12}, {8.0f, -9.0f,    // gate 8 → 7, up −9 → −7
                                                7.0f, -7.0f,    // the clamped values themselves
                                                -8.0f, 9.0f,    // gate −8 is *not* clamped; up 9 → 7
                                                -7.0f, 7.0f,    // what clamping −8 to −7 would give
                                                0.5f, 0.25f,    // inside both ranges
                                                std::numeric_limits<float>::quiet_NaN(), 1.0f});
  for (int impl = 0; impl < 2; ++impl) {
    INFO((impl == 0 ? "reference" : "cpu"));
    const auto y = impl == 0 ? glu<gate_up::interleaved>(act, gu) : bcpu::glu<gate_up::interleaved>(act, gu);
    CHECK(y(0, 0) == y(0, 1));  // clamped pair equals the pair at the limits
    CHECK(y(0, 2) != y(0, 3));  // −8 and −7 differ: no lower clamp on gate
    const double a = act.alpha.value();
    const double want0 = 7.0 / (1.0 + std::exp(-a * 7.0)) * (-6.0);  // ≈ −41.99972
    const double want2 = -8.0 / (1.0 + std::exp(a * 8.0)) * 8.0;      // ≈ −7.8e-5
    CHECK(std::fabs(y(0, 0) - want0) <= 1e-5 * std::fabs(want0));
    CHECK(std::fabs(y(0, 2) - want2) <= 1e-4 * std::fabs(want2));
    CHECK(std::fabs(y(0, 4) - 0.5 / (1.0 + std::exp(-a * 0.5)) * 1.25) <= 1e-6);
    CHECK(std::isnan(y(0, 5)));
  }
  // SiluGate has no clamp: gate 8 and gate 7 differ.
  const auto g = make_tensor<f32, 2>({1, 2}, {8.0f, 7.0f});
  const auto u = make_tensor<f32, 2>({1, 2}, {1.0f, 1.0f});
  const auto s = glu(SiluGate{}, g, u);
  CHECK(s(0, 0) > s(0, 1));
}

TEMPLATE_TEST_CASE("fused layouts are column selections of the separate form, bit for bit", "[blocks][activation]", f32,
                   bf16) {
  // interleaved: gate = gu[:, 0::2], up = gu[:, 1::2] (gpt-oss); halves: gate = gu[:, :I], up =
  // gu[:, I:] (HF v5 fused Qwen experts). Each fused call must equal the separate call on those
  // columns, in the reference and in the CPU kernel.
  using D = TestType;
  auto rng = make_rng(902);
  const index_t t = 3, inter = 45;
  const auto gu = random_tensor<D, 2>({t, 2 * inter}, rng, 0.125, 10.0);
  Tensor<D, 2> even({t, inter}), odd({t, inter});
  for (index_t r = 0; r < t; ++r)
    for (index_t j = 0; j < inter; ++j) {
      even(r, j) = gu(r, 2 * j);
      odd(r, j) = gu(r, 2 * j + 1);
    }
  const auto first = gu.cview().slice(1, 0, inter), second = gu.cview().slice(1, inter, 2 * inter);
  const ClampedSwiglu sw;
  CHECK(same_bits(glu<gate_up::interleaved>(sw, gu), glu(sw, even, odd)));
  CHECK(same_bits(bcpu::glu<gate_up::interleaved>(sw, gu), bcpu::glu(sw, even, odd)));
  CHECK(same_bits(glu<gate_up::halves>(SiluGate{}, gu), glu(SiluGate{}, first, second)));
  CHECK(same_bits(bcpu::glu<gate_up::halves>(SiluGate{}, gu), bcpu::glu(SiluGate{}, first, second)));
  // Reading gpt-oss's interleaved tensor as halves is a different function (the layout matters).
  CHECK_FALSE(same_bits(glu<gate_up::halves>(sw, gu), glu<gate_up::interleaved>(sw, gu)));
}

TEST_CASE("CPU glu: an element's value does not depend on its column or on threads", "[blocks][activation]") {
  auto rng = make_rng(903);
  // Batch body vs padded tail: the first 37 columns of a 53-column row equal a 37-column row.
  const auto g = random_tensor<bf16, 2>({2, 53}, rng, 0.125, 8.0);
  const auto u = random_tensor<bf16, 2>({2, 53}, rng, 0.125, 8.0);
  const auto full = bcpu::glu(SiluGate{}, g, u);
  const auto part = bcpu::glu(SiluGate{}, g.cview().slice(1, 0, 37), u.cview().slice(1, 0, 37));
  for (index_t r = 0; r < 2; ++r) CHECK(std::memcmp(&full(r, 0), &part(r, 0), 37 * sizeof(bfloat16)) == 0);
  const auto tail = bcpu::glu(SiluGate{}, g.cview().slice(1, 16, 53), u.cview().slice(1, 16, 53));
  for (index_t r = 0; r < 2; ++r) CHECK(std::memcmp(&full(r, 16), &tail(r, 0), 37 * sizeof(bfloat16)) == 0);
  // 128 × 2880 = 368640 outputs ≥ 2^18: the TBB path; a row alone (calling thread) is the same.
  const auto gu = random_tensor<bf16, 2>({128, 5760}, rng, 0.125, 10.0);
  const auto y = bcpu::glu<gate_up::interleaved>(ClampedSwiglu{}, gu);
  bool rows_equal = true;
  for (index_t r = 0; r < 128; r += 17) {
    const auto one = bcpu::glu<gate_up::interleaved>(ClampedSwiglu{}, gu.cview().slice(0, r, r + 1));
    rows_equal = rows_equal && std::memcmp(one.data(), &y(r, 0), one.bytes()) == 0;
  }
  CHECK(rows_equal);
  // Into an existing view (e.g. a slice of a larger activation buffer).
  Tensor<bf16, 2> buffer({128, 3000});
  bcpu::glu_into<gate_up::interleaved>(ClampedSwiglu{}, gu, buffer.view().slice(1, 0, 2880));
  CHECK(same_bits(materialize(buffer.cview().slice(1, 0, 2880)), y));
}

TEST_CASE("glu rejects mismatched shapes and invalid parameters; types keep the rules", "[blocks][activation][static]") {
  const Tensor<f32, 2> a({2, 8});
  const Tensor<f32, 2> b({2, 7});
  const Tensor<f32, 2> odd({2, 9});
  REQUIRE_THROWS_AS(glu(SiluGate{}, a, b), shape_error);
  REQUIRE_THROWS_AS(bcpu::glu(SiluGate{}, a, b), shape_error);
  REQUIRE_THROWS_AS(glu<gate_up::interleaved>(SiluGate{}, odd), shape_error);
  REQUIRE_THROWS_AS(bcpu::glu<gate_up::interleaved>(SiluGate{}, odd), shape_error);
  const ClampedSwiglu bad{.alpha = 1.702, .limit = -7.0};
  REQUIRE_THROWS_AS(glu<gate_up::interleaved>(bad, a), config_error);
  REQUIRE_THROWS_AS(bcpu::glu<gate_up::interleaved>(bad, a), config_error);
  Tensor<f32, 2> y_wrong({2, 3});
  REQUIRE_THROWS_AS(bcpu::glu_into<gate_up::halves>(SiluGate{}, a, y_wrong), shape_error);
  const TensorView<const f32, 2> strided(a.data(), {2, 4}, {8, 2});
  REQUIRE_THROWS_AS(bcpu::glu(SiluGate{}, strided, strided), shape_error);
  // Types: one activation dtype for gate and up, activation dtypes only, named layouts.
  STATIC_REQUIRE(can_glu<SiluGate, Tensor<bf16, 2>, TensorView<const bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_glu<SiluGate, Tensor<bf16, 2>, Tensor<f32, 2>>);  // C1
  STATIC_REQUIRE_FALSE(can_glu<SiluGate, Tensor<f64, 2>, Tensor<f64, 2>>);
  STATIC_REQUIRE_FALSE(can_glu<int, Tensor<bf16, 2>, Tensor<bf16, 2>>);
  STATIC_REQUIRE(can_glu_fused<gate_up::interleaved, ClampedSwiglu, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_glu_fused<bool, ClampedSwiglu, Tensor<bf16, 2>>);  // a flag is not a layout
  STATIC_REQUIRE_FALSE(can_cpu_glu<ClampedSwiglu, Tensor<f16, 2>, Tensor<bf16, 2>>);
  STATIC_REQUIRE(can_cpu_glu_into<gate_up::halves, SiluGate, Tensor<bf16, 2>, Tensor<bf16, 2>&>);
  STATIC_REQUIRE_FALSE(can_cpu_glu_into<gate_up::halves, SiluGate, Tensor<bf16, 2>, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_cpu_glu_into<gate_up::halves, SiluGate, Tensor<bf16, 2>, Tensor<f32, 2>&>);
}
