// tests/unit/nn/test_rope.cpp — InvFreq, RopeTable<f32>, apply_rope (nn/rope.hpp; dtype-bugs
// C3, E11–E15, seed bug 2; model-semantics §1a YaRN, §1.6 reference numbers).
#include <catch2/catch.hpp>  // TEST_CASE, TEMPLATE_TEST_CASE, CHECK, STATIC_REQUIRE

#include <cmath>    // std::cos, std::sin, std::fabs, std::sqrt
#include <random>   // std::uniform_int_distribution

#include <precis/core/cast.hpp>   // precis::cast
#include <precis/core/error.hpp>  // precis::shape_error, config_error
#include <precis/nn/rope.hpp>     // precis::InvFreq, RopeTable, apply_rope

#include "nn_test_support.hpp"  // random_tensor, to_f64, compare, unit_roundoff

using namespace precis;
using namespace precis::test;

namespace {
template <class T>
concept can_name_rope_table = requires { typename RopeTable<T>; };
template <class P>
concept can_build_table = requires(const P& p, const InvFreq& inv) { RopeTable<f32>::from_positions(p, inv); };
template <class T>
concept can_make_inv_freq = requires(const T& t) { InvFreq(t); };
template <class X>
concept can_apply_rope = requires(const X& x, const RopeTable<f32>& t) { apply_rope(x, t); };

Tensor<i64, 1> random_positions(index_t n, std::mt19937& rng, std::int64_t max_pos) {
  Tensor<i64, 1> p({n});
  std::uniform_int_distribution<std::int64_t> d(0, max_pos);
  for (index_t i = 0; i < n; ++i) p(i) = d(rng);
  return p;
}
}  // namespace

TEST_CASE("InvFreq::standard reproduces the reference inverse frequencies", "[nn][rope]") {
  // model-semantics §1.6 (10 significant digits; f32 narrowing adds ≤ u(f32)).
  const double rel = 2 * unit_roundoff<f32>;
  const auto qwen3 = InvFreq::standard(1e6, 128);
  REQUIRE(qwen3.rotary_dim() == 128);
  CHECK(static_cast<double>(qwen3.values()(0)) == 1.0);
  CHECK(std::fabs(qwen3.values()(1) - 0.80584218776) <= rel * 0.80584218776);
  CHECK(std::fabs(qwen3.values()(63) - 1.24093776e-06) <= rel * 1.24093776e-06 + 5e-15);
  const auto smol = InvFreq::standard(1e5, 64);
  CHECK(std::fabs(smol.values()(1) - 0.69783058486) <= rel * 0.69783058486);
  CHECK(std::fabs(smol.values()(31) - 1.43301257e-05) <= rel * 1.43301257e-05 + 5e-14);
  CHECK(smol.attention_factor() == 1.0f);
}

TEST_CASE("InvFreq::yarn reproduces gpt-oss's YaRN frequencies and mscale", "[nn][rope]") {
  // gpt-oss: θ = 150000, d = 64, factor 32, β_fast 32, β_slow 1, L0 4096, truncate = false.
  const double want[32] = {1.0,            6.890443059e-01, 4.747820555e-01, 3.271458719e-01, 2.254180002e-01,
                           1.553229895e-01, 1.070244215e-01, 7.374456821e-02, 5.081327482e-02, 3.170569618e-02,
                           1.933500113e-02, 1.159204926e-02, 6.794959490e-03, 3.860359317e-03, 2.093792379e-03,
                           1.052602101e-03, 4.564839192e-04, 1.293187012e-04, 3.830881237e-05, 2.639646903e-05,
                           1.818833668e-05, 1.253256982e-05, 8.635495875e-06, 5.950239261e-06, 4.099978482e-06,
                           2.825066827e-06, 1.946596211e-06, 1.341291035e-06, 9.242089502e-07, 6.368209146e-07,
                           4.387978251e-07, 3.023511428e-07};
  const YarnScaling s{.factor = 32, .beta_fast = 32, .beta_slow = 1, .original_max_position = 4096,
                      .bounds = yarn_bounds::exact};
  const auto inv = InvFreq::yarn(150000.0, 64, s);
  REQUIRE(inv.rotary_dim() == 64);
  // Reference values carry 10 significant digits (rel 5e-10) and the f32 narrowing adds u(f32).
  for (index_t i = 0; i < 32; ++i) {
    INFO("i = " << i);
    CHECK(std::fabs(inv.values()(i) - want[i]) <= (unit_roundoff<f32> + 5e-10) * want[i]);
  }
  CHECK(std::fabs(inv.attention_factor() - 1.34657359027997) <= unit_roundoff<f32> * 1.35);
  // truncate = true (the HF default, yarn_bounds::rounded) gives different frequencies in the
  // ramp: §1.6 lists +5.4% at i = 13 (all of inv_freq[9..17]: tests/unit/blocks).
  YarnScaling t = s;
  t.bounds = yarn_bounds::rounded;
  const auto inv_t = InvFreq::yarn(150000.0, 64, t);
  CHECK(std::fabs(inv_t.values()(13) / inv.values()(13) - 1.0) > 0.05);
  CHECK(inv_t.values()(0) == inv.values()(0));
}

TEST_CASE("InvFreq rejects invalid parameters", "[nn][rope]") {
  REQUIRE_THROWS_AS(InvFreq::standard(10000.0, 63), config_error);
  REQUIRE_THROWS_AS(InvFreq::standard(1.0, 64), config_error);
  REQUIRE_THROWS_AS(InvFreq::yarn(10000.0, 64, YarnScaling{.factor = 0.5}), config_error);
}

TEST_CASE("an f64 inv_freq enters only through an explicit cast<f32> (seed bug 2)", "[nn][rope]") {
  Tensor<f64, 1> inv64({4});
  for (index_t i = 0; i < 4; ++i) inv64(i) = std::pow(10000.0, -2.0 * static_cast<double>(i) / 8.0);
  STATIC_REQUIRE_FALSE(can_make_inv_freq<Tensor<f64, 1>>);
  STATIC_REQUIRE(can_make_inv_freq<Tensor<f32, 1>>);
  const InvFreq inv(cast<f32>(inv64));
  CHECK(inv.rotary_dim() == 8);
  for (index_t i = 0; i < 4; ++i) CHECK(inv.values()(i) == static_cast<float>(inv64(i)));
  CHECK(inv.values()(1) == InvFreq::standard(10000.0, 8).values()(1));
}

TEST_CASE("RopeTable cos/sin are computed from the exact integer position", "[nn][rope]") {
  // E13: position 15962 is not a bf16 value — bf16 spacing is 64 in [8192, 16384), so it rounds
  // to 15936 — and cos(15962) ≈ -0.547 is a different rotation altogether. Integer positions
  // keep the table exact.
  CHECK(static_cast<float>(bfloat16(15962.0f)) == 15936.0f);
  CHECK(std::fabs(std::cos(15962.0) - std::cos(15936.0)) > 0.5);
  Tensor<i32, 1> pos({2});
  pos(0) = 15962;
  pos(1) = 3;
  const auto inv = InvFreq::standard(10000.0, 8);  // inv_freq[0] = 1
  const auto table = RopeTable<f32>::from_positions(pos, inv);
  REQUIRE(table.n_positions() == 2);
  REQUIRE(table.rotary_dim() == 8);
  CHECK(std::fabs(table.cos()(0, 0) - std::cos(15962.0)) <= unit_roundoff<f32>);
  CHECK(std::fabs(table.sin()(1, 1) - std::sin(3.0 * static_cast<double>(inv.values()(1)))) <= unit_roundoff<f32>);
  // i32 and i64 positions give identical tables.
  const auto t64 = RopeTable<f32>::from_positions(cast<i64>(pos), inv);
  for (index_t i = 0; i < 4; ++i) CHECK(t64.cos()(0, i) == table.cos()(0, i));
}

TEMPLATE_TEST_CASE("apply_rope (half split) matches float64 rotation, partial rotary passes through", "[nn][rope]",
                   f32, bf16) {
  auto rng = make_rng(51);
  const index_t n_tok = 5, n_heads = 3, head_dim = 16, rd = 12;  // rotate 12 of 16 features
  const auto x = random_tensor<TestType, 3>({n_tok, n_heads, head_dim}, rng);
  const auto pos = random_positions(n_tok, rng, 100000);
  const auto inv = InvFreq::standard(10000.0, rd);
  const auto table = RopeTable<f32>::from_positions(pos, inv);
  const auto y = apply_rope(x, table);
  STATIC_REQUIRE(std::same_as<decltype(y), const Tensor<TestType, 3>>);
  // Reference: exact rotation by angle p·inv_freq_f32[i] (the f32 frequencies are the spec).
  // Bound: cos/sin rounded to f32 (u each), two products and a sum in f32 (≤ 3u of
  // |x1|+|x2|), then one rounding to D: |err| ≤ 4u(f32)(|x1|+|x2|) + u(D)|exact|.
  const auto xv = to_f64(x), yv = to_f64(y);
  std::vector<double> want(xv.size()), tol(xv.size());
  const index_t half = rd / 2;
  for (index_t t = 0; t < n_tok; ++t)
    for (index_t h = 0; h < n_heads; ++h) {
      const std::size_t b = static_cast<std::size_t>((t * n_heads + h) * head_dim);
      for (index_t i = 0; i < half; ++i) {
        const double ang = static_cast<double>(pos(t)) * static_cast<double>(inv.values()(i));
        const double x1 = xv[b + static_cast<std::size_t>(i)], x2 = xv[b + static_cast<std::size_t>(i + half)];
        const double o1 = x1 * std::cos(ang) - x2 * std::sin(ang), o2 = x2 * std::cos(ang) + x1 * std::sin(ang);
        const double mag = 4 * unit_roundoff<f32> * (std::fabs(x1) + std::fabs(x2));
        want[b + static_cast<std::size_t>(i)] = o1;
        want[b + static_cast<std::size_t>(i + half)] = o2;
        tol[b + static_cast<std::size_t>(i)] = mag + unit_roundoff<TestType> * std::fabs(o1);
        tol[b + static_cast<std::size_t>(i + half)] = mag + unit_roundoff<TestType> * std::fabs(o2);
      }
      for (index_t j = rd; j < head_dim; ++j) {
        want[b + static_cast<std::size_t>(j)] = xv[b + static_cast<std::size_t>(j)];
        tol[b + static_cast<std::size_t>(j)] = 0.0;  // pass-through is bit-exact
      }
    }
  const auto c = compare(yv, want, tol);
  INFO(c.first);
  CHECK(c.ok());
}

TEST_CASE("apply_rope preserves the norm of every rotated pair (scaled by mscale under YaRN)", "[nn][rope]") {
  auto rng = make_rng(52);
  const auto x = random_tensor<f32, 3>({4, 2, 64}, rng);
  const auto pos = random_positions(4, rng, 131072);
  for (const bool yarn : {false, true}) {
    const auto inv = yarn ? InvFreq::yarn(150000.0, 64, YarnScaling{.factor = 32, .bounds = yarn_bounds::exact})
                          : InvFreq::standard(150000.0, 64);
    const double ms = inv.attention_factor();
    const auto y = apply_rope(x, RopeTable<f32>::from_positions(pos, inv));
    for (index_t t = 0; t < 4; ++t)
      for (index_t h = 0; h < 2; ++h)
        for (index_t i = 0; i < 32; ++i) {
          const double n_in = std::hypot(static_cast<double>(x(t, h, i)), static_cast<double>(x(t, h, i + 32)));
          const double n_out = std::hypot(static_cast<double>(y(t, h, i)), static_cast<double>(y(t, h, i + 32)));
          // cos²+sin² = 1 up to the f32 table rounding; rotation error ≤ 4u(f32) per component.
          CHECK(std::fabs(n_out - ms * n_in) <= 8 * unit_roundoff<f32> * ms * n_in);
        }
  }
}

TEST_CASE("interleaved RoPE on permuted weights equals half-split RoPE (GGUF llama permute)", "[nn][rope]") {
  // model-semantics §1d: within a head of size d, the GGUF row 2i is HF row i and row 2i+1 is
  // HF row i + d/2; llama.cpp's NORM rope on those rows equals HF's rotate_half on the originals.
  auto rng = make_rng(53);
  const index_t n_tok = 3, n_heads = 2, d = 8;
  const auto x = random_tensor<f32, 3>({n_tok, n_heads, d}, rng);
  Tensor<f32, 3> xp({n_tok, n_heads, d});
  for (index_t t = 0; t < n_tok; ++t)
    for (index_t h = 0; h < n_heads; ++h)
      for (index_t i = 0; i < d / 2; ++i) {
        xp(t, h, 2 * i) = x(t, h, i);
        xp(t, h, 2 * i + 1) = x(t, h, i + d / 2);
      }
  const auto pos = random_positions(n_tok, rng, 5000);
  const auto table = RopeTable<f32>::from_positions(pos, InvFreq::standard(10000.0, d));
  const auto y = apply_rope(x, table);
  const auto yp = apply_rope<rope_layout::interleaved>(xp, table);
  for (index_t t = 0; t < n_tok; ++t)
    for (index_t h = 0; h < n_heads; ++h)
      for (index_t i = 0; i < d / 2; ++i) {
        CHECK(yp(t, h, 2 * i) == y(t, h, i));
        CHECK(yp(t, h, 2 * i + 1) == y(t, h, i + d / 2));
      }
}

TEST_CASE("apply_rope checks the table against x", "[nn][rope]") {
  const Tensor<f32, 3> x({3, 2, 8});
  Tensor<i64, 1> pos({2});
  REQUIRE_THROWS_AS(apply_rope(x, RopeTable<f32>::from_positions(pos, InvFreq::standard(1e4, 8))), shape_error);
  Tensor<i64, 1> pos3({3});
  REQUIRE_THROWS_AS(apply_rope(x, RopeTable<f32>::from_positions(pos3, InvFreq::standard(1e4, 10))), shape_error);
}

TEST_CASE("RoPE types: f32 tables, integer positions, activation inputs", "[nn][rope][static]") {
  STATIC_REQUIRE(can_name_rope_table<f32>);
  STATIC_REQUIRE_FALSE(can_name_rope_table<bf16>);  // E11, E13
  STATIC_REQUIRE_FALSE(can_name_rope_table<f64>);   // E15, seed bug 2
  STATIC_REQUIRE(can_build_table<Tensor<i32, 1>>);
  STATIC_REQUIRE(can_build_table<TensorView<const i64, 1>>);
  STATIC_REQUIRE_FALSE(can_build_table<Tensor<bf16, 1>>);  // E13, E17
  STATIC_REQUIRE_FALSE(can_build_table<Tensor<f32, 1>>);
  STATIC_REQUIRE(can_apply_rope<Tensor<bf16, 3>>);
  STATIC_REQUIRE_FALSE(can_apply_rope<Tensor<f64, 3>>);  // E15
}
