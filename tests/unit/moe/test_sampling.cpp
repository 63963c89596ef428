// tests/unit/moe/test_sampling.cpp — nn/sampling.hpp: argmax ties, the support sets of top-k,
// top-p and min-p on hand-made distributions, penalty semantics (HF / llama.cpp), temperature 0
// and → 0 as greedy, the generator's specified sequence and seeded reproducibility, option
// validation, and chi-square tests that sampled frequencies match the target distribution.
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, STATIC_REQUIRE

#include <cmath>    // std::log, std::exp
#include <cstdint>  // std::int32_t, std::uint64_t
#include <limits>   // std::numeric_limits
#include <random>   // std::mt19937_64 (the specified engine, to cross-check Rng)
#include <vector>   // std::vector

#include <precis/core/error.hpp>    // precis::range_error, config_error
#include <precis/nn/sampling.hpp>  // precis::argmax, precis::sampling::*

using namespace precis;
using namespace precis::sampling;

namespace {

Tensor<f32, 1> logits_of(std::initializer_list<double> values) {
  Tensor<f32, 1> l({static_cast<index_t>(values.size())});
  index_t i = 0;
  for (double v : values) l(i++) = static_cast<float>(v);
  return l;
}

/// Logits ln(p) of a hand-made distribution (ids deliberately not in probability order):
/// p = (0.05, 0.5, 0.1, 0.2, 0.15) → by probability: 1 (0.5), 3 (0.2), 4 (0.15), 2 (0.1), 0 (0.05).
Tensor<f32, 1> five() { return logits_of({std::log(0.05), std::log(0.5), std::log(0.1), std::log(0.2), std::log(0.15)}); }

template <class F>
std::vector<std::int32_t> survivors(const Tensor<f32, 1>& l, F&& step) {
  Candidates c(l);
  step(c);
  return c.ids();
}

/// Pearson's χ² of `counts` against probabilities `p` (every p > 0).
double chi_square(const std::vector<long>& counts, const std::vector<double>& p, long n) {
  double chi = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double expected = p[i] * static_cast<double>(n);
    chi += (static_cast<double>(counts[i]) - expected) * (static_cast<double>(counts[i]) - expected) / expected;
  }
  return chi;
}

template <class L>
concept can_argmax = requires(const L& l) { argmax(l); };
template <class L>
concept can_sample = requires(SamplerChain& s, const L& l) { s.sample(l); };

}  // namespace

using ids = std::vector<std::int32_t>;

TEST_CASE("argmax: ties go to the lower index; -inf is allowed, NaN and +inf are not", "[sampling]") {
  CHECK(argmax(logits_of({1.0, 3.0, 3.0, 2.0})) == 1);
  CHECK(argmax(logits_of({-std::numeric_limits<double>::infinity(), -5.0})) == 1);
  REQUIRE_THROWS_AS(argmax(logits_of({1.0, std::numeric_limits<double>::quiet_NaN()})), range_error);
  REQUIRE_THROWS_AS(argmax(logits_of({1.0, std::numeric_limits<double>::infinity()})), range_error);
  REQUIRE_THROWS_AS(argmax(Tensor<f32, 1>({0})), range_error);
}

TEST_CASE("top-k keeps the k largest, ties to the lower id", "[sampling]") {
  CHECK(survivors(five(), [](Candidates& c) { top_k(c, 2); }) == ids{1, 3});
  CHECK(survivors(five(), [](Candidates& c) { top_k(c, 9); }) == ids{0, 1, 2, 3, 4});
  CHECK(survivors(logits_of({1, 2, 2, 2, 0}), [](Candidates& c) { top_k(c, 2); }) == ids{1, 2});
  REQUIRE_THROWS_AS(survivors(five(), [](Candidates& c) { top_k(c, 0); }), config_error);
}

TEST_CASE("top-p keeps the shortest most-probable prefix reaching p", "[sampling]") {
  // Cumulative by probability: 0.5, 0.7, 0.85, 0.95, 1.0 (thresholds chosen off the boundaries).
  CHECK(survivors(five(), [](Candidates& c) { top_p(c, 0.45f); }) == ids{1});
  CHECK(survivors(five(), [](Candidates& c) { top_p(c, 0.6f); }) == ids{1, 3});
  CHECK(survivors(five(), [](Candidates& c) { top_p(c, 0.8f); }) == ids{1, 3, 4});
  CHECK(survivors(five(), [](Candidates& c) { top_p(c, 0.9f); }) == ids{1, 2, 3, 4});
  CHECK(survivors(five(), [](Candidates& c) { top_p(c, 1.0f); }) == ids{0, 1, 2, 3, 4});
  // After top-k the probabilities are renormalised over the survivors: {1, 3} = (5/7, 2/7).
  CHECK(survivors(five(), [](Candidates& c) { top_k(c, 2); top_p(c, 0.7f); }) == ids{1});
  CHECK(survivors(five(), [](Candidates& c) { top_k(c, 2); top_p(c, 0.75f); }) == ids{1, 3});
  REQUIRE_THROWS_AS(survivors(five(), [](Candidates& c) { top_p(c, 0.0f); }), config_error);
}

TEST_CASE("min-p keeps tokens with p >= min_p * p_max", "[sampling]") {
  CHECK(survivors(five(), [](Candidates& c) { min_p(c, 0.25f); }) == ids{1, 3, 4});  // p >= 0.125
  CHECK(survivors(five(), [](Candidates& c) { min_p(c, 0.35f); }) == ids{1, 3});     // p >= 0.175
  CHECK(survivors(five(), [](Candidates& c) { min_p(c, 0.0f); }) == ids{0, 1, 2, 3, 4});
  CHECK(survivors(logits_of({2, 1, 2}), [](Candidates& c) { min_p(c, 1.0f); }) == ids{0, 2});  // ties of the max
  REQUIRE_THROWS_AS(survivors(five(), [](Candidates& c) { min_p(c, 1.5f); }), config_error);
}

TEST_CASE("penalties: divide positive logits, multiply negative ones; counts for frequency", "[sampling]") {
  const auto l = logits_of({2.0, -2.0, 0.5, 0.0, 1.0});
  const std::int32_t history[] = {0, 1, 1, 3};
  Candidates c(l);
  apply_penalties(c, history, 2.0f, 0.0f, 0.0f);
  // Once per token, not per occurrence: 2 → 1, -2 → -4 (not -8), 0 stays 0, unseen tokens unchanged.
  CHECK(c[0].logit == 1.0f);
  CHECK(c[1].logit == -4.0f);
  CHECK(c[2].logit == 0.5f);
  CHECK(c[3].logit == 0.0f);
  CHECK(c[4].logit == 1.0f);
  Candidates f(l);
  apply_penalties(f, history, 2.0f, 0.25f, 0.5f);
  CHECK(f[0].logit == 1.0f - 0.25f - 0.5f);        // count 1
  CHECK(f[1].logit == -4.0f - 2 * 0.25f - 0.5f);   // count 2
  CHECK(f[3].logit == 0.0f - 0.25f - 0.5f);
  CHECK(f[2].logit == 0.5f);
  const std::int32_t bad[] = {5};
  REQUIRE_THROWS_AS(apply_penalties(f, bad, 2.0f, 0.0f, 0.0f), range_error);
}

TEST_CASE("the chain applies penalties over the last penalty_last_n tokens", "[sampling]") {
  const auto l = logits_of({1.0, 0.9, 1.5});
  const std::int32_t h2[] = {2};
  const std::int32_t h20[] = {2, 0};
  const auto greedy_with = [&](index_t last_n, std::span<const std::int32_t> h) {
    SamplerChain s({.temperature = 0.0f, .repetition_penalty = 2.0f, .penalty_last_n = last_n});
    return s.sample(l, h);
  };
  CHECK(greedy_with(64, h2) == 0);   // (1.0, 0.9, 0.75)
  CHECK(greedy_with(0, h2) == 2);    // window off: (1.0, 0.9, 1.5)
  CHECK(greedy_with(1, h20) == 2);   // only the last token (0) is penalised: (0.5, 0.9, 1.5)
  CHECK(greedy_with(-1, h20) == 1);  // the whole history: (0.5, 0.9, 0.75)
}

TEST_CASE("temperature 0 is greedy; temperature -> 0 converges to greedy", "[sampling]") {
  const auto l = logits_of({0.3, 1.2, -0.4, 1.1, 0.9});
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    SamplerChain zero({.temperature = 0.0f, .top_k = 3, .top_p = 0.5f, .seed = seed});
    CHECK(zero.sample(l) == argmax(l));
  }
  // T = 1e-3: every other token has probability ≤ exp(−0.1/1e-3) = e^-100.
  SamplerChain cold({.temperature = 1e-3f, .seed = 3});
  for (int i = 0; i < 200; ++i) CHECK(cold.sample(l) == 1);
}

TEST_CASE("the generator is std::mt19937_64, uniforms from its top 53 bits", "[sampling]") {
  // [rand.predef]: the 10000th consecutive draw of a default-constructed mt19937_64 (seed 5489).
  Rng r(5489);
  std::uint64_t v = 0;
  for (int i = 0; i < 10000; ++i) v = r.next_u64();
  CHECK(v == 9981545732273789042ull);
  Rng a(77);
  std::mt19937_64 b(77);
  for (int i = 0; i < 100; ++i) {
    const double u = a.uniform();
    CHECK(u == static_cast<double>(b() >> 11) * 0x1p-53);
    CHECK((u >= 0.0 && u < 1.0));
  }
}

TEST_CASE("seeded chains reproduce their draws", "[sampling]") {
  const auto l = logits_of({0.1, 0.5, 0.2, -0.3, 0.4, 0.0, 0.35, -0.1});
  const SamplerParams p{.temperature = 0.9f, .top_k = 6, .top_p = 0.95f, .min_p = 0.05f, .seed = 1234};
  SamplerChain s1(p), s2(p), s3({.temperature = 0.9f, .top_k = 6, .top_p = 0.95f, .min_p = 0.05f, .seed = 1235});
  std::vector<std::int32_t> d1, d2, d3;
  for (int i = 0; i < 200; ++i) {
    d1.push_back(s1.sample(l));
    d2.push_back(s2.sample(l));
    d3.push_back(s3.sample(l));
  }
  CHECK(d1 == d2);
  CHECK(d1 != d3);
}

TEST_CASE("sampled frequencies match the target distribution (chi-square, fixed seed)", "[sampling][statistics]") {
  // N = 40000 draws. Threshold: the χ² quantile at p = 1e-6 (df 5: 35.89, df 2: 27.63), generous
  // for a correct sampler yet far below what an off-by-one CDF or a wrong temperature gives
  // (thousands). The seed is fixed, so the statistic is the same on every run and platform.
  constexpr long n = 40000;
  const std::vector<double> p = {0.3, 0.25, 0.2, 0.12, 0.08, 0.05};
  Tensor<f32, 1> l({6});
  for (index_t i = 0; i < 6; ++i) l(i) = static_cast<float>(std::log(p[static_cast<std::size_t>(i)]));
  SamplerChain plain({.seed = 20240601});
  std::vector<long> counts(6, 0);
  for (long i = 0; i < n; ++i) ++counts[static_cast<std::size_t>(plain.sample(l))];
  const double chi = chi_square(counts, p, n);
  INFO("chi^2 = " << chi << " (df 5)");
  CHECK(chi < 35.89);

  // Through the chain: top-k 3 keeps {0, 1, 2}; temperature 0.5 squares the ratios:
  // target ∝ (0.3², 0.25², 0.2²); tokens 3..5 are never drawn.
  SamplerChain chain({.temperature = 0.5f, .top_k = 3, .seed = 99});
  std::vector<long> c3(6, 0);
  for (long i = 0; i < n; ++i) ++c3[static_cast<std::size_t>(chain.sample(l))];
  CHECK(c3[3] + c3[4] + c3[5] == 0);
  const double z = 0.09 + 0.0625 + 0.04;
  const double chi3 = chi_square({c3[0], c3[1], c3[2]}, {0.09 / z, 0.0625 / z, 0.04 / z}, n);
  INFO("chi^2 = " << chi3 << " (df 2)");
  CHECK(chi3 < 27.63);
}

TEST_CASE("every chain option is validated when the chain is built", "[sampling]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_AS(SamplerChain({.temperature = -0.1f}), config_error);
  REQUIRE_THROWS_AS(SamplerChain({.temperature = nan}), config_error);
  REQUIRE_THROWS_AS(SamplerChain({.top_k = -1}), config_error);
  REQUIRE_THROWS_AS(SamplerChain({.top_p = 0.0f}), config_error);
  REQUIRE_THROWS_AS(SamplerChain({.top_p = 1.01f}), config_error);
  REQUIRE_THROWS_AS(SamplerChain({.min_p = -0.01f}), config_error);
  REQUIRE_THROWS_AS(SamplerChain({.min_p = 1.5f}), config_error);
  REQUIRE_THROWS_AS(SamplerChain({.repetition_penalty = 0.0f}), config_error);
  REQUIRE_THROWS_AS(SamplerChain({.frequency_penalty = inf}), config_error);
  REQUIRE_THROWS_AS(SamplerChain({.presence_penalty = nan}), config_error);
  REQUIRE_THROWS_AS(SamplerChain({.penalty_last_n = -2}), config_error);
  REQUIRE_NOTHROW(SamplerChain({.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f}));
  // Run-time data errors: every logit -inf after the filters; history tokens out of range.
  SamplerChain s({});
  const double ninf = -std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_AS(s.sample(logits_of({ninf, ninf})), range_error);
  SamplerChain pen({.repetition_penalty = 1.3f});
  const std::int32_t bad[] = {-1};
  REQUIRE_THROWS_AS(pen.sample(logits_of({0.0, 1.0}), bad), range_error);
}

TEST_CASE("sampling reads f32 logits only", "[sampling][static]") {
  STATIC_REQUIRE(can_argmax<Tensor<f32, 1>>);
  STATIC_REQUIRE(can_argmax<TensorView<const f32, 1>>);
  STATIC_REQUIRE_FALSE(can_argmax<Tensor<bf16, 1>>);
  STATIC_REQUIRE_FALSE(can_argmax<Tensor<f32, 2>>);  // one row at a time
  STATIC_REQUIRE(can_sample<Tensor<f32, 1>>);
  STATIC_REQUIRE_FALSE(can_sample<Tensor<f16, 1>>);
}
