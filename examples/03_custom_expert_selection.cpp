// 03_custom_expert_selection — a custom expert-selection policy plugged into a whole MoE model,
// without touching a kernel or the model's code (nn/layer_expert_selector.hpp).
//
//   03_custom_expert_selection [MOE_MODEL] [-n N]
//       MOE_MODEL  a Qwen3-MoE, Qwen3-Omni thinker or gpt-oss checkpoint directory or GGUF file
//                  (default: the tiny Qwen3-MoE conformance fixture, tests/fixtures/models/qwen3_moe)
//
// The policy is "trust-augmented" selection: every expert of every layer has a reputation in
// [0, 1]; an expert's selection score becomes score[e] + λ·trust[layer][e], and quarantined
// experts are never chosen. The hook rewrites only the *ranking*: the mixture weights of the
// experts it picks stay the model's own (the DeepSeek-V3 rule, nn/router.hpp), so only *which*
// experts run changes. The program decodes greedily from the same prompt with the model's own
// routing and with the policy, counts which experts ran, and checks that the quarantined ones
// never did.
#include <algorithm>  // std::partial_sort
#include <cstdint>    // std::int64_t
#include <cstdio>     // std::printf, std::fprintf
#include <cstdlib>    // std::atoi
#include <exception>  // std::exception
#include <limits>     // std::numeric_limits
#include <numeric>    // std::iota
#include <span>       // std::span
#include <string>     // std::string
#include <vector>     // std::vector

#include <precis/core/error.hpp>                // config_error, range_error
#include <precis/runtime/load_model.hpp>         // load_model, CausalLM
#include <precis/nn/layer_expert_selector.hpp>  // LayerExpertSelector

using namespace precis;

/// The policy: score + λ·trust[layer][e]; quarantined experts get −inf.
struct TrustPolicy {
  std::vector<std::vector<float>> trust;  // [layer][expert] in [0, 1]
  std::vector<bool> quarantined;          // [expert], on every layer
  float lambda = 0.5f;                    // in the units of the model's scores (router.hpp)

  void operator()(index_t layer, index_t /*row*/, std::span<float> scores) const {
    const auto& t = trust[static_cast<std::size_t>(layer)];
    for (std::size_t e = 0; e < scores.size(); ++e)
      scores[e] = quarantined[e] ? -std::numeric_limits<float>::infinity() : scores[e] + lambda * t[e];
  }
};

/// Greedy decoding of `n` tokens after `prompt`; counts[layer][e] += each time expert e runs. The
/// counting wraps the policy (or none): the router takes the k best adjusted scores, ties to the
/// lower index, so the counter ranks them the same way.
std::vector<std::int64_t> decode(models::CausalLM& lm, const std::vector<std::int64_t>& prompt, int n,
                                 const LayerExpertSelector& policy, std::vector<std::vector<long>>& counts) {
  const index_t k = lm.info().n_experts_per_token;
  lm.set_expert_selector([&](index_t layer, index_t row, std::span<float> s) {
    if (policy) policy(layer, row, s);
    std::vector<std::size_t> idx(s.size());
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](std::size_t a, std::size_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
    for (index_t j = 0; j < k; ++j) ++counts[static_cast<std::size_t>(layer)][idx[static_cast<std::size_t>(j)]];
  });
  const models::SequenceId seq = lm.new_sequence();
  std::vector<std::int64_t> out;
  Tensor<f32, 2> logits = lm.forward_last(seq, prompt);  // [1, vocab]
  for (int i = 0; i < n; ++i) {
    std::int64_t best = 0;
    for (index_t v = 1; v < logits.extent(1); ++v)
      if (logits(0, v) > logits(0, best)) best = v;
    out.push_back(best);
    if (i + 1 < n) logits = lm.forward(seq, {&best, 1});
  }
  lm.release(seq);
  lm.set_expert_selector({});
  return out;
}

int main(int argc, char** argv) try {
  std::string path = std::string(PRECIS_SOURCE_DIR) + "/tests/fixtures/models/qwen3_moe";
  int n = 12;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-n" && i + 1 < argc) n = std::atoi(argv[++i]);
    else path = a;
  }
  const auto lm = models::load_model(path, models::precision::f32);
  const models::ModelInfo& info = lm->info();
  const auto L = static_cast<std::size_t>(info.n_layers), E = static_cast<std::size_t>(info.n_experts);
  std::printf("%s", info.describe().c_str());
  if (E == 0) throw config_error("not a mixture-of-experts model: " + path);

  // Reputations rise with the expert index on even layers and fall on odd ones; expert 0 is
  // quarantined everywhere.
  TrustPolicy policy{.trust = std::vector<std::vector<float>>(L, std::vector<float>(E)), .quarantined = std::vector<bool>(E)};
  for (std::size_t l = 0; l < L; ++l)
    for (std::size_t e = 0; e < E; ++e)
      policy.trust[l][e] = static_cast<float>(l % 2 == 0 ? e : E - 1 - e) / static_cast<float>(E - 1);
  policy.quarantined[0] = true;

  std::vector<std::int64_t> prompt;
  for (std::int64_t t = 0; t < 8; ++t) prompt.push_back((t * 37 + 5) % info.vocab_size);
  std::vector<std::vector<long>> own_counts(L, std::vector<long>(E)), trust_counts = own_counts;
  const auto own = decode(*lm, prompt, n, {}, own_counts);
  const auto trusted = decode(*lm, prompt, n, policy, trust_counts);

  const auto print_ids = [](const char* what, const std::vector<std::int64_t>& ids) {
    std::printf("%-22s", what);
    for (const auto id : ids) std::printf(" %lld", static_cast<long long>(id));
    std::printf("\n");
  };
  print_ids("\ngreedy, own routing:", own);
  print_ids("greedy, trust policy:", trusted);
  std::printf("\nexpert selections per layer (own routing → trust policy):\n");
  for (std::size_t l = 0; l < L; ++l) {
    long total = 0;
    for (std::size_t e = 0; e < E; ++e) total += own_counts[l][e];
    if (total == 0) continue;  // a dense layer: the hook is never called there
    std::printf("  layer %zu:", l);
    for (std::size_t e = 0; e < E; ++e) std::printf(" %ld→%ld", own_counts[l][e], trust_counts[l][e]);
    std::printf("\n");
    PRECIS_CHECK(trust_counts[l][0] == 0, range_error, "layer ", l, ": the quarantined expert 0 ran ",
                 trust_counts[l][0], " times");
  }
  std::printf("the quarantined expert never ran under the policy\n");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "03_custom_expert_selection: %s\n", e.what());
  return 1;
}
