// tests/unit/generate/test_generate_model.cpp — the default model, SmolLM2-135M-Instruct (Q4_1
// GGUF), end to end against llama.cpp (tests/fixtures/llamacpp/references.json, made with the
// llama.cpp vendored in llama-cpp-python 0.3.36): greedy tokens for a fixed prompt, perplexity
// over this repository's LICENSE with llama-perplexity's method, and a chat answer. ctest label
// `model`; every test skips with a message when the model is not in the precis cache
// (scripts/fetch_model.sh).
#include <catch2/catch.hpp>

#include <cmath>       // std::abs
#include <cstdint>     // std::int64_t
#include <filesystem>  // std::filesystem::path
#include <fstream>     // std::ifstream
#include <sstream>     // std::ostringstream
#include <string>      // std::string
#include <vector>      // std::vector

#include <nlohmann/json.hpp>  // nlohmann::json

#include <precis/generate/chat_format.hpp>
#include <precis/generate/default_model.hpp>
#include <precis/generate/generator.hpp>
#include <precis/generate/perplexity.hpp>
#include <precis/runtime/load_model.hpp>
#include <precis/text/tokenizer.hpp>

namespace pg = precis::generate;
namespace pm = precis::models;
using precis::text::token_id;

namespace {

/// The model's path, or empty (with a WARN saying how to fetch it) when it is absent.
std::filesystem::path model_or_skip() {
  const std::filesystem::path p = pg::default_model_path();
  if (std::filesystem::exists(p)) return p;
  WARN("SKIPPED: " << p.string() << " is absent; fetch it with " << pg::default_model_fetch_command);
  return {};
}

pm::LoadOptions context(precis::index_t n) {
  pm::LoadOptions o;
  o.max_context = n;
  return o;
}

nlohmann::json reference(const char* key) {
  const auto path = std::filesystem::path(PRECIS_FIXTURES_DIR) / "llamacpp" / "references.json";
  return nlohmann::json::parse(std::ifstream(path)).at(key);
}

}  // namespace

/// Greedy continuation of the reference prompt; the number of leading tokens equal to llama.cpp's.
static std::size_t greedy_agreement(const std::filesystem::path& path, pm::activation_quantization aq, std::string& text) {
  const nlohmann::json ref = reference("smollm2_greedy");
  pm::LoadOptions lo = context(512);
  lo.quantize_activations = aq;
  const auto lm = pm::load_model(path, pm::precision::f32, lo);
  const auto tok = precis::text::Tokenizer::from_gguf(path);
  pg::Generator gen(*lm, tok);
  const auto ref_ids = ref.at("greedy_ids").get<std::vector<token_id>>();
  pg::GenerateOptions opt;
  opt.max_new_tokens = static_cast<int>(ref_ids.size());
  opt.sampling.temperature = 0;
  opt.stop_at_end_of_generation = false;
  const pg::GenerationResult r = gen.generate(ref.at("prompt").get<std::string>(), opt);
  CHECK(r.prompt_tokens == ref.at("prompt_ids").get<std::vector<token_id>>());
  REQUIRE(r.tokens.size() == ref_ids.size());
  std::size_t same = 0;
  while (same < r.tokens.size() && r.tokens[same] == ref_ids[same]) ++same;
  text = r.text;
  if (same < ref_ids.size()) {
    // How close the two candidates are where precis and llama.cpp part: the logits of llama.cpp's
    // token and of precis' token after the common prefix.
    std::vector<std::int64_t> ids(r.prompt_tokens.begin(), r.prompt_tokens.end());
    ids.insert(ids.end(), ref_ids.begin(), ref_ids.begin() + static_cast<std::ptrdiff_t>(same));
    const auto seq = lm->new_sequence();
    const precis::Tensor<precis::f32, 2> logits = lm->forward(seq, ids);
    lm->release(seq);
    const auto last = logits.extent(0) - 1;
    WARN("first difference at generated token " << same << ": llama.cpp's '" << tok.decode({&ref_ids[same], 1})
         << "' has logit " << logits(last, ref_ids[same]) << ", precis' '" << tok.decode({&r.tokens[same], 1})
         << "' " << logits(last, r.tokens[same]));
  }
  return same;
}

TEST_CASE("SmolLM2: greedy tokens equal llama.cpp's (q8 activations, as llama.cpp)", "[generate][model][smollm2]") {
  const auto path = model_or_skip();
  if (path.empty()) return;
  // llama.cpp multiplies Q4_1 weights with activations quantized to 8-bit blocks (Q8_1); precis'
  // q8_blocks path does the same, so greedy decoding must agree token for token.
  std::string text;
  const std::size_t same = greedy_agreement(path, pm::activation_quantization::q8_blocks, text);
  INFO("precis: \"" << text << "\"");
  INFO(same << " of 48 greedy tokens equal llama.cpp's");
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
  CHECK(same == 48);
#else
  // The references were made by llama.cpp on an AVX-512 VNNI machine, and precis' q8 kernels there
  // are the VNNI bodies; on other ISAs both sides' per-block float sums run in other orders and
  // a near tie parts the tokens earlier (AVX2, session 13: at token 14, logits 29.57 vs 29.69).
  // Known gap, docs/performance.md: the portable q8 bodies are not yet llama.cpp's AVX2 order.
  WARN("q8 kernels without AVX-512 VNNI: " << same << " of 48 greedy tokens equal llama.cpp's (AVX-512 reference)");
  CHECK(same >= 8);
#endif
}

TEST_CASE("SmolLM2: greedy tokens with exact f32 activations", "[generate][model][smollm2]") {
  const auto path = model_or_skip();
  if (path.empty()) return;
  // The exact path computes each dot product of dequantized weights with f32 activations: a
  // different (more accurate) function than llama.cpp's, so a near-tie late in the text may go
  // the other way. The answer itself must agree.
  std::string text;
  const std::size_t same = greedy_agreement(path, pm::activation_quantization::none, text);
  INFO("precis: \"" << text << "\"");
  WARN("exact f32 activations: " << same << " of 48 greedy tokens equal llama.cpp's (q8 activations)");
  CHECK(same >= 2);  // " Paris", "."
}

TEST_CASE("SmolLM2: perplexity over LICENSE within 1% of llama-perplexity", "[generate][model][smollm2]") {
  const auto path = model_or_skip();
  if (path.empty()) return;
  const nlohmann::json ref = reference("smollm2_perplexity");
  const auto n_ctx = ref.at("n_ctx").get<precis::index_t>();
  const auto aq = GENERATE(pm::activation_quantization::q8_blocks, pm::activation_quantization::none);
  INFO("activation quantization: " << pm::to_string(aq));
  pm::LoadOptions lo = context(n_ctx);
  lo.quantize_activations = aq;
  const auto lm = pm::load_model(path, pm::precision::f32, lo);
  const auto tok = precis::text::Tokenizer::from_gguf(path);
  std::ostringstream text;
  text << std::ifstream(std::filesystem::path(PRECIS_SOURCE_DIR) / ref.at("text_file").get<std::string>()).rdbuf();
  // llama-perplexity tokenizes with BOS when the vocabulary asks (SmolLM2's does not), and no
  // parsing of special tokens.
  const auto ids = tok.encode(text.str(), {.add_bos = true, .parse_special = false});
  pg::PerplexityOptions opt;
  opt.n_ctx = n_ctx;
  if (tok.vocab().add_bos) opt.bos = tok.bos();
  const pg::PerplexityResult r = pg::perplexity(*lm, ids, opt);
  const auto running = ref.at("running_ppl_per_chunk").get<std::vector<double>>();
  REQUIRE(r.running.size() == running.size());
  std::ostringstream table;
  for (std::size_t i = 0; i < running.size(); ++i)
    table << "[" << i + 1 << "] precis " << r.running[i] << ", llama.cpp " << running[i] << "\n";
  WARN("activation quantization " << pm::to_string(aq) << ", running perplexity per chunk:\n" << table.str());
  // With llama.cpp's arithmetic (q8 activations) every running value agrees within 1%; the exact
  // path is a different (more accurate) function of the same weights: its first chunks, averages
  // over only 127 tokens, may differ by a little more, the final value must be within 1%.
  if (aq == pm::activation_quantization::q8_blocks)
    for (std::size_t i = 0; i < running.size(); ++i) {
      INFO("chunk " << i + 1 << ": precis " << r.running[i] << ", llama.cpp " << running[i]);
      CHECK(std::abs(r.running[i] / running[i] - 1.0) < 0.01);
    }
  const double ppl = ref.at("ppl").get<double>();
  INFO("perplexity: precis " << r.total.perplexity() << ", llama.cpp " << ppl);
  CHECK(std::abs(r.total.perplexity() / ppl - 1.0) < 0.01);
}

TEST_CASE("SmolLM2: asked for the capital of France in chat, it answers Paris", "[generate][model][smollm2]") {
  const auto path = model_or_skip();
  if (path.empty()) return;
  const auto lm = pm::load_model(path, pm::precision::f32, context(512));
  const auto tok = precis::text::Tokenizer::from_gguf(path);
  pg::Generator gen(*lm, tok);
  const pg::ChatFormat format = pg::detect_chat_format(tok.chat_template(), path.string());
  REQUIRE(format == pg::ChatFormat::chatml);
  pg::ChatOptions chat;
  chat.default_system = pg::chatml_template_default_system(tok.chat_template());
  const precis::text::MarkedText prompt = pg::format_chat(format, {{"user", "What is the capital of France?"}}, chat);
  pg::GenerateOptions opt;
  opt.max_new_tokens = 64;
  opt.sampling.temperature = 0;
  const pg::GenerationResult r = gen.generate(prompt, opt);
  INFO("answer: \"" << r.text << "\" (" << pg::to_string(r.reason) << ")");
  CHECK(r.text.find("Paris") != std::string::npos);
  CHECK(r.reason == pg::StopReason::end_of_generation);
}
