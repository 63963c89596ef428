// tests/unit/moe/test_moe.cpp — MoE expert compute: the scalar reference (nn/moe.hpp) against
// float64 math, the CPU grouped kernel (backends/cpu/moe.hpp) against both, for every weight
// format × activation dtype × gated-MLP policy × top-k × bias on/off (moe_oracle.hpp states the
// per-element bounds), plus: identical experts equal the dense MLP, the result does not depend
// on the thread count, chunks of > moe_token_chunk tokens, the selector hook end to end, and
// the errors and type rules.
//
// Shapes: E = 8 experts, H = 64, I = 32 (K of every GEMM a multiple of the 32-value block);
// T ∈ {5, 37, 96} so that the rows per expert (≈ T·k/E) reach all three CPU matmul paths: ≤ 4
// the GEMV, 5..32 the GEMV on 4-row slices (moe_sliced_gemv_max_rows), > 32 the panel GEMM.
// Routings come from the model's own policy on random logits.
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, STATIC_REQUIRE

#include <cstring>  // std::memcmp
#include <limits>   // std::numeric_limits
#include <span>     // std::span
#include <tuple>    // std::tuple
#include <utility>  // std::declval

#include <oneapi/tbb/task_arena.h>  // tbb::task_arena

#include <precis/backends/cpu/moe.hpp>  // precis::backends::cpu::moe_experts, moe_token_chunk
#include <precis/core/error.hpp>        // precis::shape_error, range_error, config_error
#include <precis/nn/activation.hpp>     // precis::SiluGate, ClampedSwiglu, GatedActivation
#include <precis/nn/moe.hpp>            // precis::MoeExperts, moe_experts, SeparateGateUp, InterleavedGateUp
#include <precis/nn/router.hpp>         // precis::SoftmaxThenTopK, TopKThenSoftmax, selectors
#include <precis/ops/matmul.hpp>        // precis::matmul (the dense MLP)
#include <precis/quant/block_formats.hpp>  // precis::download_format

#include "moe_oracle.hpp"  // TestStack, ExpertsF64, moe_oracle, act_roundoff

using namespace precis;
using namespace precis::test;
namespace backend = precis::backends::cpu;  // (`cpu` alone is also the device tag precis::cpu)

namespace {

constexpr index_t kE = 8, kH = 64, kI = 32;

/// Qwen3-MoE-like: SiLU-gated, separate gate/up, SoftmaxThenTopK{norm_topk_prob = true}.
struct QwenLike {
  using gating = SiluGate;
  template <class F>
  using layout = SeparateGateUp<F>;
  static Routing route(const Tensor<f32, 2>& l, index_t k) { return SoftmaxThenTopK{.norm_topk_prob = true}(l, k); }
};
/// gpt-oss-like: clamped SwiGLU on interleaved gate/up, TopKThenSoftmax.
struct GptOssLike {
  using gating = ClampedSwiglu;
  template <class F>
  using layout = InterleavedGateUp<F>;
  static Routing route(const Tensor<f32, 2>& l, index_t k) { return TopKThenSoftmax{}(l, k); }
};

/// Everything one case needs, built from f32 masters; weights in Fmt, activations Act.
template <class Model, class Fmt, class Act>
struct Fixture {
  static constexpr bool interleaved = std::same_as<Model, GptOssLike>;
  std::mt19937 rng;
  TestStack<Fmt> first;   // interleaved: gate_up [E, 2I, H]; separate: gate [E, I, H]
  TestStack<Fmt> second;  // separate: up [E, I, H]; interleaved: unused [1, 1, 32]
  TestStack<Fmt> down;    // [E, H, I]
  Tensor<Act, 2> bias_gu, bias_down;  // [E, 2I], [E, H]
  bool with_bias;
  ExpertsF64 f64;

  Fixture(unsigned seed, bool bias)
      : rng(seed),
        first(random_tensor<f32, 3>({kE, interleaved ? 2 * kI : kI, kH}, rng)),
        second(random_tensor<f32, 3>(interleaved ? extents_t<3>{1, 1, 32} : extents_t<3>{kE, kI, kH}, rng)),
        down(random_tensor<f32, 3>({kE, kH, kI}, rng)),
        bias_gu(random_tensor<Act, 2>({kE, 2 * kI}, rng)),
        bias_down(random_tensor<Act, 2>({kE, kH}, rng)),
        with_bias(bias) {
    f64.n_experts = kE;
    f64.hidden = kH;
    f64.inter = kI;
    f64.gate.resize(kE * kI * kH);
    f64.up.resize(kE * kI * kH);
    for (index_t e = 0; e < kE; ++e)
      for (index_t i = 0; i < kI; ++i)
        for (index_t p = 0; p < kH; ++p) {
          const auto at = static_cast<std::size_t>((e * kI + i) * kH + p);
          f64.gate[at] = interleaved ? first.at(e, 2 * i, p) : first.at(e, i, p);
          f64.up[at] = interleaved ? first.at(e, 2 * i + 1, p) : second.at(e, i, p);
        }
    f64.down = down.values;
    if (bias) {
      const std::vector<double> bg = to_f64(bias_gu), bd = to_f64(bias_down);
      for (index_t e = 0; e < kE; ++e)
        for (index_t i = 0; i < kI; ++i) {  // interleaved: (2i, 2i+1); separate: [gate | up]
          f64.bgate.push_back(bg[static_cast<std::size_t>(e * 2 * kI + (interleaved ? 2 * i : i))]);
          f64.bup.push_back(bg[static_cast<std::size_t>(e * 2 * kI + (interleaved ? 2 * i + 1 : kI + i))]);
        }
      f64.bdown = bd;
    }
  }

  [[nodiscard]] auto layout() const {
    if constexpr (interleaved) return InterleavedGateUp<Fmt>{first.stack()};
    else return SeparateGateUp<Fmt>{first.stack(), second.stack()};
  }
  using experts_type = MoeExperts<typename Model::gating, typename Model::template layout<Fmt>, Act>;
  [[nodiscard]] experts_type experts() const {
    if (with_bias) return experts_type({}, layout(), down.stack(), bias_gu, bias_down);
    return experts_type({}, layout(), down.stack());
  }
};

std::string describe(const char* what, const Comparison& c) { return std::string(what) + ": " + c.first; }

/// One case: reference and CPU against the oracle (δ each), and against each other (2δ).
template <class Model, class Fmt, class Act>
void check_case(index_t n_tok, index_t k, bool bias, unsigned seed) {
  Fixture<Model, Fmt, Act> fx(seed, bias);
  const auto ex = fx.experts();
  const auto x = random_tensor<Act, 2>({n_tok, kH}, fx.rng);                // [T, H]
  const auto logits = random_tensor<f32, 2>({n_tok, kE}, fx.rng, 0.125, 4.0);  // [T, E]
  const Routing r = Model::route(logits, k);
  const Tensor<Act, 2> ref = moe_experts(ex, x, r);       // [T, H]
  const Tensor<Act, 2> got = backend::moe_experts(ex, x, r);  // [T, H]
  REQUIRE(got.extents() == extents_t<2>{n_tok, kH});
  const Oracle o = moe_oracle(to_f64(x), n_tok, fx.f64, r, typename Model::gating{}, act_roundoff<Act>);
  std::vector<double> tol2 = o.tol;
  for (double& v : tol2) v *= 2;
  const Comparison cr = compare(to_f64(ref), o.value, o.tol);
  const Comparison cc = compare(to_f64(got), o.value, o.tol);
  const Comparison cx = compare(to_f64(got), to_f64(ref), tol2);
  INFO((std::same_as<Model, GptOssLike> ? "gpt-oss-like" : "qwen3-like")
       << ", weights " << dtype_name<Fmt> << ", x " << dtype_name<Act> << ", T=" << n_tok << " k=" << k
       << (bias ? " +bias" : "") << ", kernels " << backend::isa_name());
  INFO(describe("reference vs f64", cr) << "\n" << describe("cpu vs f64", cc) << "\n" << describe("cpu vs reference", cx));
  CHECK(cr.ok());
  CHECK(cc.ok());
  CHECK(cx.ok());
}

template <class Model, class Fmt, class Act>
void check_grid(unsigned seed) {
  int i = 0;
  for (const index_t k : {1, 2, 4})
    for (const index_t n_tok : {5, 37}) {
      check_case<Model, Fmt, Act>(n_tok, k, i % 2 == 0, seed + static_cast<unsigned>(i));
      ++i;
    }
  check_case<Model, Fmt, Act>(96, 4, true, seed + 50);  // ≈ 48 rows per expert: the panel GEMM
}

using formats = std::tuple<f32, bf16, q8_0, mxfp4>;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reference and CPU against float64, every combination
// ---------------------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("MoE, qwen3-like (SiluGate, separate gate/up): f32 activations", "[moe]", formats) {
  check_grid<QwenLike, TestType, f32>(300);
}
TEMPLATE_LIST_TEST_CASE("MoE, qwen3-like (SiluGate, separate gate/up): bf16 activations", "[moe]", formats) {
  check_grid<QwenLike, TestType, bf16>(400);
}
TEMPLATE_LIST_TEST_CASE("MoE, gpt-oss-like (ClampedSwiglu, interleaved): f32 activations", "[moe]", formats) {
  check_grid<GptOssLike, TestType, f32>(500);
}
TEMPLATE_LIST_TEST_CASE("MoE, gpt-oss-like (ClampedSwiglu, interleaved): bf16 activations", "[moe]", formats) {
  check_grid<GptOssLike, TestType, bf16>(600);
}

TEST_CASE("MoE: more tokens than one grouped chunk", "[moe]") {
  check_case<GptOssLike, bf16, bf16>(backend::moe_token_chunk + 44, 2, true, 700);
}

// ---------------------------------------------------------------------------------------------
// Down experts in their own format
// ---------------------------------------------------------------------------------------------

namespace {

/// A stack [E, N, K] in Fmt: quantized from a random master, or random blocks for the GGUF
/// download formats (scales 2^-12..2^-9 keep |values| ≲ 1 for every K-quant).
template <class Fmt>
TestStack<Fmt> mixed_stack(const extents_t<3>& ext, std::mt19937& rng) {
  if constexpr (download_format<Fmt>) return TestStack<Fmt>(ext, rng, -12, -9);
  else return TestStack<Fmt>(random_tensor<f32, 3>(ext, rng));
}

/// gate/up in Fmt, down in D (llama.cpp's Q4_K_M stores some layers' ffn_down_exps as Q6_K under
/// Q4_K gate/up): reference and CPU against the oracle, and each other, at H = I = 256 (one
/// K-quant super-block per row) for T = 3, 21, 80 with E = 4, k = 2 (≈ 1.5, 10, 40 rows per
/// expert: the GEMV, the sliced GEMV and the panel GEMM).
template <class Model, class Fmt, class D, class Act>
void check_mixed(unsigned seed) {
  constexpr index_t E = 4, H = 256, I = 256, k = 2;
  constexpr bool interleaved = std::same_as<Model, GptOssLike>;
  std::mt19937 rng(seed);
  const TestStack<Fmt> first = mixed_stack<Fmt>({E, interleaved ? 2 * I : I, H}, rng);
  const TestStack<Fmt> second = mixed_stack<Fmt>(interleaved ? extents_t<3>{1, 1, 256} : extents_t<3>{E, I, H}, rng);
  const TestStack<D> down = mixed_stack<D>({E, H, I}, rng);
  using L = typename Model::template layout<Fmt>;
  const L layout = [&] {
    if constexpr (interleaved) return L{first.stack()};
    else return L{first.stack(), second.stack()};
  }();
  const MoeExperts<typename Model::gating, L, Act, D> ex({}, layout, down.stack());
  STATIC_REQUIRE(std::same_as<typename decltype(ex)::down_format, D>);
  ExpertsF64 f64;
  f64.n_experts = E;
  f64.hidden = H;
  f64.inter = I;
  for (index_t e = 0; e < E; ++e)
    for (index_t i = 0; i < I; ++i)
      for (index_t p = 0; p < H; ++p) {
        f64.gate.push_back(interleaved ? first.at(e, 2 * i, p) : first.at(e, i, p));
        f64.up.push_back(interleaved ? first.at(e, 2 * i + 1, p) : second.at(e, i, p));
      }
  f64.down = down.values;
  for (const index_t n_tok : {3, 21, 80}) {
    const auto x = random_tensor<Act, 2>({n_tok, H}, rng);
    const Routing r = Model::route(random_tensor<f32, 2>({n_tok, E}, rng, 0.125, 4.0), k);
    const Tensor<Act, 2> ref = moe_experts(ex, x, r);
    const Tensor<Act, 2> got = backend::moe_experts(ex, x, r);
    const Oracle o = moe_oracle(to_f64(x), n_tok, f64, r, typename Model::gating{}, act_roundoff<Act>);
    std::vector<double> tol2 = o.tol;
    for (double& v : tol2) v *= 2;
    const Comparison cr = compare(to_f64(ref), o.value, o.tol);
    const Comparison cc = compare(to_f64(got), o.value, o.tol);
    const Comparison cx = compare(to_f64(got), to_f64(ref), tol2);
    INFO("gate/up " << dtype_name<Fmt> << ", down " << dtype_name<D> << ", x " << dtype_name<Act> << ", T=" << n_tok
                    << ", kernels " << backend::isa_name());
    INFO(describe("reference vs f64", cr) << "\n" << describe("cpu vs f64", cc) << "\n" << describe("cpu vs reference", cx));
    CHECK(cr.ok());
    CHECK(cc.ok());
    CHECK(cx.ok());
  }
}

}  // namespace

TEST_CASE("MoE: down experts in their own format (Q4_K_M's Q6_K down under Q4_K gate/up)", "[moe]") {
  check_mixed<QwenLike, q4_K, q6_K, f32>(800);
  check_mixed<QwenLike, q4_K, q6_K, bf16>(801);
  check_mixed<QwenLike, q5_K, q6_K, bf16>(802);
  check_mixed<QwenLike, q8_0, f32, f32>(803);
  check_mixed<QwenLike, iq4_xs, q5_0, f32>(804);
  check_mixed<GptOssLike, mxfp4, bf16, bf16>(805);
  check_mixed<GptOssLike, q3_K, q8_0, f32>(806);
}

// ---------------------------------------------------------------------------------------------
// Identical experts = the dense MLP
// ---------------------------------------------------------------------------------------------

TEST_CASE("an MoE whose experts are identical equals the dense MLP", "[moe]") {
  // One SiLU-gated MLP (gate, up [I, H], down [H, I]) copied into E = 6 experts; top-3 with
  // renormalised weights (Σ w = 1 up to f32 rounding). The dense MLP is built from the reference
  // matmul and the same f32 activation formula.
  auto rng = make_rng(710);
  constexpr index_t E = 6, T = 11, k = 3;
  const auto wg = random_tensor<f32, 2>({kI, kH}, rng), wu = random_tensor<f32, 2>({kI, kH}, rng);
  const auto wd = random_tensor<f32, 2>({kH, kI}, rng);
  Tensor<f32, 3> sg({E, kI, kH}), su({E, kI, kH}), sd({E, kH, kI});
  for (index_t e = 0; e < E; ++e)
    for (index_t i = 0; i < kI * kH; ++i) {
      sg.data()[e * kI * kH + i] = wg.data()[i];
      su.data()[e * kI * kH + i] = wu.data()[i];
      sd.data()[e * kI * kH + i] = wd.data()[i];
    }
  const MoeExperts<SiluGate, SeparateGateUp<f32>, f32> ex({}, {expert_stack(sg), expert_stack(su)}, expert_stack(sd));
  const auto x = random_tensor<f32, 2>({T, kH}, rng);
  const Routing r = SoftmaxThenTopK{.norm_topk_prob = true}(random_tensor<f32, 2>({T, E}, rng), k);

  const Tensor<f32, 2> g = matmul(x, wg), u = matmul(x, wu);  // [T, I]
  Tensor<f32, 2> h({T, kI});
  for (index_t t = 0; t < T; ++t)
    for (index_t i = 0; i < kI; ++i) h(t, i) = SiluGate{}(g(t, i), u(t, i));
  const Tensor<f32, 2> dense = matmul(h, wd);  // [T, H]

  // Bound: each side's oracle bound (the dense one is the MoE bound with k = 1, w = 1), plus
  // |Σ_j w_j − 1|·|y| for the f32 weights' sum.
  ExpertsF64 f64{E, kH, kI, {}, {}, {}, {}, {}, {}};
  for (index_t e = 0; e < E; ++e) {
    const auto add = [](std::vector<double>& v, const std::vector<double>& w) { v.insert(v.end(), w.begin(), w.end()); };
    add(f64.gate, to_f64(wg));
    add(f64.up, to_f64(wu));
    add(f64.down, to_f64(wd));
  }
  Routing one{Tensor<i32, 2>({T, 1}), Tensor<f32, 2>({T, 1})};
  for (index_t t = 0; t < T; ++t) one.weights(t, 0) = 1.0f;
  const Oracle om = moe_oracle(to_f64(x), T, f64, r, SiluGate{}, 0.0);
  const Oracle od = moe_oracle(to_f64(x), T, f64, one, SiluGate{}, 0.0);
  std::vector<double> tol(od.tol.size());
  for (index_t t = 0; t < T; ++t) {
    double wsum = 0;
    for (index_t j = 0; j < k; ++j) wsum += static_cast<double>(r.weights(t, j));
    for (index_t n = 0; n < kH; ++n) {
      const auto i = static_cast<std::size_t>(t * kH + n);
      tol[i] = om.tol[i] + od.tol[i] + std::fabs(wsum - 1.0) * std::fabs(od.value[i]);
    }
  }
  const Comparison cr = compare(to_f64(moe_experts(ex, x, r)), to_f64(dense), tol);
  const Comparison cc = compare(to_f64(backend::moe_experts(ex, x, r)), to_f64(dense), tol);
  INFO(describe("reference vs dense", cr) << "\n" << describe("cpu vs dense", cc));
  CHECK(cr.ok());
  CHECK(cc.ok());
}

// ---------------------------------------------------------------------------------------------
// Determinism, selectors, errors, type rules
// ---------------------------------------------------------------------------------------------

TEST_CASE("the grouped CPU result does not depend on the number of threads", "[moe]") {
  Fixture<GptOssLike, mxfp4, bf16> fx(800, true);
  const auto ex = fx.experts();
  const auto x = random_tensor<bf16, 2>({37, kH}, fx.rng);
  const Routing r = TopKThenSoftmax{}(random_tensor<f32, 2>({37, kE}, fx.rng), 4);
  const Tensor<bf16, 2> many = backend::moe_experts(ex, x, r);
  Tensor<bf16, 2> one;
  tbb::task_arena(1).execute([&] { one = backend::moe_experts(ex, x, r); });
  CHECK(std::memcmp(many.data(), one.data(), many.bytes()) == 0);
}

namespace {
/// A selector written here: a per-token trust table [T, E]; experts below `floor` are disallowed
/// for that token, the others get +λ·trust added to their selection score.
struct PerTokenTrust {
  const Tensor<f32, 2>* trust;  // [T, E]
  float floor, lambda;
  void adjust(index_t t, std::span<float> scores) const {
    for (std::size_t e = 0; e < scores.size(); ++e) {
      const float tr = (*trust)(t, static_cast<index_t>(e));
      scores[e] = tr < floor ? -std::numeric_limits<float>::infinity() : scores[e] + lambda * tr;
    }
  }
};
}  // namespace

TEST_CASE("a user selector steers which experts run; the MoE keeps the model's mixture weights", "[moe][selector]") {
  Fixture<GptOssLike, q8_0, f32> fx(900, true);
  const auto ex = fx.experts();
  constexpr index_t T = 13, k = 2;
  const auto x = random_tensor<f32, 2>({T, kH}, fx.rng);
  const auto logits = random_tensor<f32, 2>({T, kE}, fx.rng);
  const auto trust = random_tensor<f32, 2>({T, kE}, fx.rng);  // values in ±[0.125, 1)
  const Routing r = TopKThenSoftmax{}(logits, k, PerTokenTrust{&trust, -0.5f, 2.0f});
  index_t changed = 0;  // tokens whose experts differ from the model's own choice
  const Routing model = TopKThenSoftmax{}(logits, k);
  for (index_t t = 0; t < T; ++t) {
    double z = 0;
    for (index_t j = 0; j < k; ++j) {
      CHECK(trust(t, r.experts(t, j)) >= -0.5f);  // the mask held
      changed += r.experts(t, j) != model.experts(t, j) ? 1 : 0;
      z += std::exp(static_cast<double>(logits(t, r.experts(t, j))));
    }
    for (index_t j = 0; j < k; ++j)  // weights: softmax of the *model* logits of the selected experts
      CHECK(r.weights(t, j) == Approx(std::exp(static_cast<double>(logits(t, r.experts(t, j)))) / z).epsilon(1e-5));
  }
  CHECK(changed > 0);  // the selector did steer
  const Oracle o = moe_oracle(to_f64(x), T, fx.f64, r, ClampedSwiglu{}, 0.0);
  const Comparison c = compare(to_f64(backend::moe_experts(ex, x, r)), o.value, o.tol);
  INFO(c.first);
  CHECK(c.ok());
}

TEST_CASE("MoE arguments are checked", "[moe]") {
  Fixture<QwenLike, f32, f32> fx(1000, false);
  const auto ex = fx.experts();
  const auto x = random_tensor<f32, 2>({3, kH}, fx.rng);
  Routing r = SoftmaxThenTopK{}(random_tensor<f32, 2>({3, kE}, fx.rng), 2);
  r.experts(1, 1) = kE;  // no such expert
  REQUIRE_THROWS_AS(moe_experts(ex, x, r), range_error);
  REQUIRE_THROWS_AS(backend::moe_experts(ex, x, r), range_error);
  r.experts(1, 1) = 0;
  r.weights(0, 0) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_AS(backend::moe_experts(ex, x, r), range_error);
  const auto x_wrong = random_tensor<f32, 2>({3, kH + 1}, fx.rng);
  REQUIRE_THROWS_AS(backend::moe_experts(ex, x_wrong, r), shape_error);
  const auto x_short = random_tensor<f32, 2>({2, kH}, fx.rng);
  REQUIRE_THROWS_AS(moe_experts(ex, x_short, r), shape_error);
  // Construction: stacks that do not fit, biases of the wrong shape, a bad activation policy.
  using QE = MoeExperts<SiluGate, SeparateGateUp<f32>, f32>;
  REQUIRE_THROWS_AS(QE({}, {fx.first.stack(), fx.first.stack()}, fx.first.stack()), shape_error);
  TestStack<f32> up_wrong(random_tensor<f32, 3>({kE, kI + 1, kH}, fx.rng));
  REQUIRE_THROWS_AS(QE({}, {fx.first.stack(), up_wrong.stack()}, fx.down.stack()), shape_error);
  const auto b_wrong = random_tensor<f32, 2>({kE, kI}, fx.rng);
  REQUIRE_THROWS_AS(QE({}, {fx.first.stack(), fx.second.stack()}, fx.down.stack(), b_wrong, fx.bias_down), shape_error);
  TestStack<f32> gu(random_tensor<f32, 3>({kE, 2 * kI, kH}, fx.rng));
  using GE = MoeExperts<ClampedSwiglu, InterleavedGateUp<f32>, f32>;
  REQUIRE_THROWS_AS(GE(ClampedSwiglu{.alpha = 1.702, .limit = -7.0}, {gu.stack()}, fx.down.stack()), config_error);
  REQUIRE_NOTHROW(GE(ClampedSwiglu{}, {gu.stack()}, fx.down.stack()));
}

namespace {
template <class E, class X>
concept can_moe = requires(const E& e, const X& x, const Routing& r) { moe_experts(e, x, r); };
template <class E, class X>
concept can_cpu_moe = requires(const E& e, const X& x, const Routing& r) { backend::moe_experts(e, x, r); };
template <class W>
concept can_stack = requires(W&& w) { expert_stack(std::forward<W>(w)); };
}  // namespace

TEST_CASE("MoE type rules: the layer's activation dtype decides input, biases and output (C7, E24)",
          "[moe][static]") {
  using GptOssBf16 = MoeExperts<ClampedSwiglu, InterleavedGateUp<mxfp4>, bf16>;
  STATIC_REQUIRE(can_moe<GptOssBf16, Tensor<bf16, 2>>);
  STATIC_REQUIRE(can_cpu_moe<GptOssBf16, TensorView<const bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_moe<GptOssBf16, Tensor<f32, 2>>);  // E24: f32 states into a bf16 layer
  STATIC_REQUIRE_FALSE(can_cpu_moe<GptOssBf16, Tensor<f32, 2>>);
  STATIC_REQUIRE(std::same_as<decltype(backend::moe_experts(std::declval<const GptOssBf16&>(),
                                                         std::declval<const Tensor<bf16, 2>&>(),
                                                         std::declval<const Routing&>())),
                              Tensor<bf16, 2>>);
  // Biases have the activation dtype: f32 biases into a bf16 layer do not construct.
  STATIC_REQUIRE(std::is_constructible_v<GptOssBf16, ClampedSwiglu, InterleavedGateUp<mxfp4>, ExpertStack<mxfp4>,
                                         const Tensor<bf16, 2>&, const Tensor<bf16, 2>&>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<GptOssBf16, ClampedSwiglu, InterleavedGateUp<mxfp4>,
                                               ExpertStack<mxfp4>, const Tensor<f32, 2>&, const Tensor<f32, 2>&>);
  // Stacks are views: not of temporaries; every float storage dtype and block format.
  STATIC_REQUIRE(can_stack<const Tensor<bf16, 3>&>);
  STATIC_REQUIRE(can_stack<const QuantTensor<q4_0, 3>&>);
  STATIC_REQUIRE_FALSE(can_stack<Tensor<bf16, 3>>);
  STATIC_REQUIRE_FALSE(can_stack<QuantTensor<mxfp4, 3>>);
  STATIC_REQUIRE_FALSE(can_stack<const Tensor<f64, 3>&>);
  STATIC_REQUIRE(GatedActivation<SiluGate> && GatedActivation<ClampedSwiglu>);
}
