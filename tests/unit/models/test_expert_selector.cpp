// tests/unit/models/test_expert_selector.cpp — the whole-model expert-selection hook
// (nn/layer_expert_selector.hpp, CausalLM::set_expert_selector) on the MoE conformance fixtures,
// loaded through load_model as tools load them.
//
//   plumbing      the hook is called once per (sparse layer, token row), in layer and row order,
//                 with n_experts scores; dense layers (Qwen3-MoE's mlp_only_layers) never call it;
//                 a decode_batch's row b is its b-th sequence.
//   semantics     a selector that keeps the ranking (scores × 2, exact in f32) leaves the logits
//                 bit for bit unchanged: mixture weights come from the model's own values, only
//                 the ranking is the selector's (router.hpp). A mask that removes the experts a
//                 token chose moves the logits; an empty selector restores the model exactly.
//   errors        a mask that leaves fewer than k experts throws range_error naming the token; a
//                 dense model refuses a selector with config_error naming its architecture.
#include <catch2/catch.hpp>  // TEST_CASE, SECTION, CHECK, REQUIRE

#include <cstring>  // std::memcmp
#include <limits>   // std::numeric_limits
#include <span>     // std::span
#include <string>   // std::string
#include <tuple>    // std::tuple
#include <vector>   // std::vector

#include <precis/core/error.hpp>               // config_error, range_error
#include <precis/runtime/load_model.hpp>        // load_model
#include <precis/nn/layer_expert_selector.hpp>  // LayerExpertSelector, on_every_layer, ExpertScoreTable
#include <precis/nn/router.hpp>                 // ExpertScoreBias, ExpertMask, SelectorChain

#include "test_moe_models_support.hpp"  // MoeReference, moe_fixture, rel_l2

using namespace precis;
using namespace precis::test;
namespace pm = precis::models;

namespace {

bool same_bits(const Tensor<f32, 2>& a, const Tensor<f32, 2>& b) {
  return a.extents() == b.extents() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

/// (layer, row, n_experts) of every call.
using Calls = std::vector<std::tuple<index_t, index_t, std::size_t>>;

LayerExpertSelector recorder(Calls& calls) {
  return [&calls](index_t layer, index_t row, std::span<float> scores) { calls.emplace_back(layer, row, scores.size()); };
}

/// The fixtures' sparse layers (config.json: mlp_only_layers / decoder_sparse_step).
std::vector<index_t> sparse_layers(const std::string& fixture) {
  if (fixture == "qwen3_moe") return {0, 2};            // layer 1 is in mlp_only_layers
  if (fixture == "qwen3_omni_thinker") return {1, 3};   // decoder_sparse_step 2: (l + 1) % 2 == 0
  return {0, 1, 2};                                     // gpt_oss: every layer is MoE
}

}  // namespace

TEST_CASE("expert selector: called once per sparse layer and token row, in order", "[models][moe][selector]") {
  const std::string fixture = GENERATE(as<std::string>{}, "qwen3_moe", "gpt_oss", "qwen3_omni_thinker");
  INFO(fixture);
  const MoeReference ref = MoeReference::open(fixture);
  pm::LoadOptions o;
  o.max_sequences = 3;
  const auto lm = pm::load_model(moe_fixture(fixture), pm::precision::f32, o);
  REQUIRE(lm->info().n_experts > 0);
  REQUIRE(lm->info().n_experts_per_token > 0);
  const std::vector<index_t> layers = sparse_layers(fixture);
  REQUIRE(static_cast<index_t>(layers.size()) <= lm->info().n_layers);

  Calls calls;
  lm->set_expert_selector(recorder(calls));
  const std::vector<std::int64_t> prompt(ref.tokens.begin(), ref.tokens.begin() + 6);
  const pm::SequenceId first = lm->new_sequence();
  (void)lm->forward(first, prompt);
  lm->release(first);
  Calls expected;
  for (const index_t l : layers)
    for (index_t t = 0; t < 6; ++t) expected.emplace_back(l, t, static_cast<std::size_t>(lm->info().n_experts));
  CHECK(calls == expected);

  // A batched decode step: row b is the b-th sequence of the batch.
  const pm::SequenceId a = lm->new_sequence(), b = lm->new_sequence();
  (void)lm->forward(a, std::span<const std::int64_t>(prompt.data(), 2));
  (void)lm->forward(b, std::span<const std::int64_t>(prompt.data(), 3));
  calls.clear();
  const std::vector<pm::SequenceId> seqs{a, b};
  (void)lm->decode_batch(seqs, std::vector<std::int64_t>{prompt[2], prompt[3]});
  expected.clear();
  for (const index_t l : layers)
    for (index_t r = 0; r < 2; ++r) expected.emplace_back(l, r, static_cast<std::size_t>(lm->info().n_experts));
  CHECK(calls == expected);
}

TEST_CASE("expert selector: a ranking-preserving selector changes nothing; a mask does; empty restores",
          "[models][moe][selector]") {
  const std::string fixture = GENERATE(as<std::string>{}, "qwen3_moe", "gpt_oss", "qwen3_omni_thinker");
  INFO(fixture);
  const MoeReference ref = MoeReference::open(fixture);
  const auto lm = pm::load_model(moe_fixture(fixture), pm::precision::f32);
  const auto run = [&] {  // the whole reference sequence (thinker: its 3-D positions), then released
    const pm::SequenceId seq = lm->new_sequence();
    Tensor<f32, 2> logits = ref.positions ? lm->forward(seq, ref.tokens, ref.positions->cview())  // [S, vocab]
                                          : lm->forward(seq, ref.tokens);
    lm->release(seq);
    return logits;
  };
  const Tensor<f32, 2> own = run();  // [S, vocab]
  CHECK(rel_l2(own, ref.logits) <= kF32Conformance);

  // Scaling every score by 2 is exact in f32 and keeps the order (ties included): the same
  // experts, and their weights are the model's own values, so the logits are the same bits.
  lm->set_expert_selector([](index_t, index_t, std::span<float> s) {
    for (float& v : s) v *= 2.0f;
  });
  CHECK(same_bits(run(), own));

  // Remove each token's k best experts on the first sparse layer (read from the scores the hook
  // sees): different experts run, so the logits move by far more than rounding.
  const index_t k = lm->info().n_experts_per_token, first = sparse_layers(fixture).front();
  lm->set_expert_selector([k, first](index_t layer, index_t, std::span<float> s) {
    if (layer != first) return;
    for (index_t j = 0; j < k; ++j) {
      std::size_t best = 0;
      for (std::size_t e = 1; e < s.size(); ++e)
        if (s[e] > s[best]) best = e;
      s[best] = -std::numeric_limits<float>::infinity();
    }
  });
  const Tensor<f32, 2> masked = run();
  INFO("relative L2 of the masked run against the model's own: " << rel_l2(masked, own));
  CHECK(rel_l2(masked, own) > 1e-3);

  lm->set_expert_selector({});
  CHECK(same_bits(run(), own));

  // ExpertSelectors from router.hpp lift to every layer.
  Tensor<f32, 1> zero({lm->info().n_experts});  // [E]
  for (index_t e = 0; e < zero.extent(0); ++e) zero(e) = 0.0f;
  lm->set_expert_selector(on_every_layer(ExpertScoreBias(zero)));
  CHECK(same_bits(run(), own));
}

TEST_CASE("expert selector: too few experts left, and a dense model, are clear errors", "[models][moe][selector]") {
  const auto lm = pm::load_model(moe_fixture("gpt_oss"), pm::precision::f32);
  const index_t E = lm->info().n_experts, k = lm->info().n_experts_per_token;
  REQUIRE(k >= 2);
  std::vector<index_t> all_but_one;
  for (index_t e = 1; e < E; ++e) all_but_one.push_back(e);
  lm->set_expert_selector(on_every_layer(ExpertMask(E, all_but_one)));  // one expert left, k ≥ 2 needed
  const std::vector<std::int64_t> prompt{1, 2, 3};
  const pm::SequenceId seq = lm->new_sequence();
  CHECK_THROWS_AS(lm->forward(seq, prompt), range_error);
  CHECK_THROWS_WITH(lm->forward(seq, prompt),
                    Catch::Matchers::Contains("token 0") && Catch::Matchers::Contains("fewer have a selection score"));

  const auto dense = pm::load_model(std::filesystem::path(PRECIS_FIXTURES_DIR) / "models" / "llama", pm::precision::f32);
  CHECK(dense->info().n_experts == 0);
  CHECK_NOTHROW(dense->set_expert_selector({}));
  const LayerExpertSelector noop = [](index_t, index_t, std::span<float>) {};
  CHECK_THROWS_AS(dense->set_expert_selector(noop), config_error);
  CHECK_THROWS_WITH(dense->set_expert_selector(noop), Catch::Matchers::Contains("[llama] has no mixture-of-experts layers"));
}

// Selectors that are data (ExpertScoreTable): what a device backend applies in its routing
// kernel. On the host they must rewrite scores exactly as ExpertScoreBias then ExpertMask do.
TEST_CASE("expert selector: tables are ExpertScoreBias + ExpertMask, per layer or every layer", "[moe][selector]") {
  const Tensor<f32, 1> bias = [] {
    Tensor<f32, 1> b({6});
    for (index_t e = 0; e < 6; ++e) b(e) = 0.25f * static_cast<float>(e) - 0.5f;
    return b;
  }();
  const ExpertScoreBias eb(bias);
  const ExpertMask mask(6, {1, 4});
  const std::vector<float> scores0 = {0.1f, 0.7f, -0.2f, 0.05f, 0.3f, 0.9f};
  std::vector<float> want = scores0, got = scores0;
  SelectorChain(eb, mask).adjust(0, want);
  ExpertScoreTable t = ExpertScoreTable::of(eb);
  t.allowed = ExpertScoreTable::of(mask).allowed;
  t.adjust(0, got);
  CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);

  const LayerExpertSelector per_layer = LayerExpertSelector::from_tables({ExpertScoreTable{}, t});
  CHECK(per_layer.is_data());
  CHECK(per_layer.table(0) == nullptr);  // an empty table: the model's ranking
  CHECK(per_layer.table(1) == &*per_layer.table(1));
  CHECK(per_layer.table(2) == nullptr);  // past the end
  std::vector<float> s1 = scores0, s2 = scores0;
  per_layer(1, 0, s1);
  per_layer(2, 0, s2);
  CHECK(std::memcmp(want.data(), s1.data(), want.size() * sizeof(float)) == 0);
  CHECK(s2 == scores0);

  const LayerExpertSelector every = on_every_layer(mask);
  REQUIRE(every.table(7) != nullptr);
  CHECK(every.table(7)->allowed == std::vector<std::uint8_t>{1, 0, 1, 1, 0, 1});
  const LayerExpertSelector code = on_every_layer(SelectorChain(eb, mask));
  CHECK_FALSE(code.is_data());
  CHECK(code.table(0) == nullptr);
  CHECK(LayerExpertSelector{}.is_data());

  ExpertScoreTable inf;
  inf.bias = {0.0f, std::numeric_limits<float>::infinity()};
  CHECK_THROWS_AS(LayerExpertSelector::from_tables({inf}), range_error);
  CHECK_THROWS_AS(LayerExpertSelector::from_tables({t, t}, true), config_error);
  std::vector<float> wrong(5, 0.0f);
  CHECK_THROWS_AS(t.adjust(0, wrong), shape_error);
}
