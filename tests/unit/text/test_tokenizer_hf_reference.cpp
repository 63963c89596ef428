// Agreement with HF tokenizers on the committed reference ids of tests/fixtures/tokenizer/
// (tools/make_tokenizer_fixtures.py; its docstring says how each reference tokenizer was built
// and checked against the GGUF's metadata):
//   - SmolLM2-135M-Instruct's vocabulary (smollm pre-tokenizer) and Qwen2's (qwen2), 1013 strings
//     each, the GGUFs read from the precis cache (skipped with a message when absent);
//   - five tiny tokenizer.json files loaded with Tokenizer::from_hf, one per pre-tokenizer
//     family and Split behaviour, with BOS from a TemplateProcessing post-processor.
// Every encode must equal HF's ids exactly; decode and StreamDecoder must give the text back.
#include <algorithm>  // std::find
#include <cstddef>   // std::size_t
#include <cstdint>   // std::uint8_t
#include <map>       // std::map
#include <string>    // std::string
#include <vector>    // std::vector

#include <catch2/catch.hpp>   // TEST_CASE, CHECK, INFO
#include <nlohmann/json.hpp>  // nlohmann::json

#include <precis/text/byte_level.hpp>      // byte_level_char
#include <precis/text/nfc.hpp>             // nfc, nfc_quick_check
#include <precis/text/stream_decoder.hpp>  // precis::text::StreamDecoder
#include <precis/text/tokenizer.hpp>       // precis::text::Tokenizer

#include "text_test_support.hpp"  // cached_file, tokenizer_fixture, read_text_file, escaped

using precis::text::EncodeOptions;
using precis::text::StreamDecoder;
using precis::text::token_id;
using precis::text::Tokenizer;

namespace {

std::vector<std::string> load_strings() {
  const auto j = nlohmann::json::parse(precis::test::read_text_file(precis::test::tokenizer_fixture("strings.json")));
  return j.get<std::vector<std::string>>();
}

/// Whether every byte of `s` has its byte-level character in the vocabulary (HF drops the others,
/// so only then does decode(encode(s)) give `s` back).
bool all_bytes_in_vocab(const Tokenizer& tok, const std::string& s) {
  for (const char c : s)
    if (!tok.find(precis::text::byte_level_char(static_cast<std::uint8_t>(c)))) return false;
  return true;
}

std::string stream_decode(const Tokenizer& tok, const std::vector<token_id>& ids) {
  StreamDecoder d(tok);
  std::string out;
  for (const token_id id : ids) {
    const std::string part = d.push(id);
    CHECK(precis::text::is_valid_utf8(part));
    out += part;
  }
  return out + d.finish();
}

/// What decode must give back: the text, the text with control tokens skipped (a BOS added by the
/// post-processor), or nothing checkable (pre-tokenizers that add or remove text).
enum class RoundTrip { exact, skip_special, none };

/// Compares encode with HF's ids for every string; the first 10 mismatches are reported.
std::size_t compare(const Tokenizer& tok, const std::vector<std::string>& strings,
                    const std::vector<std::vector<token_id>>& expected, EncodeOptions opt,
                    RoundTrip round_trip = RoundTrip::exact) {
  REQUIRE(strings.size() == expected.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < strings.size(); ++i) {
    const auto ids = tok.encode(strings[i], opt);
    if (ids != expected[i]) {
      if (++mismatches <= 10) {
        INFO("string " << i << " \"" << precis::test::escaped(strings[i]) << "\"");
        CHECK(ids == expected[i]);
      }
      continue;
    }
    // decode and StreamDecoder agree with each other, and give the text back when HF does.
    const std::string text = tok.decode(ids);
    CHECK(stream_decode(tok, ids) == text);
    if (round_trip != RoundTrip::none && all_bytes_in_vocab(tok, strings[i])) {
      INFO("round trip of string " << i << " \"" << precis::test::escaped(strings[i]) << "\"");
      CHECK((round_trip == RoundTrip::exact ? text : tok.decode(ids, {.skip_special = true})) == strings[i]);
    }
  }
  return mismatches;
}

void check_gguf_reference(const char* cache_rel, const char* fixture, std::size_t vocab_size, const char* kind) {
  const auto path = precis::test::cached_file(cache_rel);
  if (!path) return;
  const auto ref = nlohmann::json::parse(precis::test::read_text_file(precis::test::tokenizer_fixture(fixture)));
  const Tokenizer tok = Tokenizer::from_gguf(*path);
  CHECK(tok.vocab_size() == vocab_size);
  CHECK(tok.kind() == kind);
  const auto strings = load_strings();
  REQUIRE(strings.size() >= 1000);
  const auto expected = ref.at("ids").get<std::vector<std::vector<token_id>>>();
  // HF matches added tokens in the text: parse_special on; no BOS (add_special_tokens=False).
  CHECK(compare(tok, strings, expected, {.add_bos = false, .parse_special = true}) == 0);
}

void check_tiny(const char* name, RoundTrip round_trip = RoundTrip::exact) {
  INFO("fixture " << name);
  const auto dir = precis::test::tokenizer_fixture(name);
  const Tokenizer tok = Tokenizer::from_hf(dir);
  const auto ref = nlohmann::json::parse(precis::test::read_text_file(dir / "expected.json"));
  const auto strings = ref.at("strings").get<std::vector<std::string>>();
  const auto expected = ref.at("ids").get<std::vector<std::vector<token_id>>>();
  REQUIRE(strings.size() >= 300);
  // HF add_special_tokens=True: the post-processor's BOS, where the tokenizer has one.
  CHECK(compare(tok, strings, expected, {.add_bos = true, .parse_special = true}, round_trip) == 0);
}

}  // namespace

TEST_CASE("HF agreement: SmolLM2-135M-Instruct vocabulary (smollm pre-tokenizer), 1013 strings",
          "[text][hf][cache]") {
  check_gguf_reference("models/SmolLM2-135M-Instruct.Q4_1.gguf", "hf_reference_smollm2.json", 49152, "gpt2/smollm");
}

TEST_CASE("HF agreement: Qwen2 vocabulary (qwen2 pre-tokenizer), 1013 strings", "[text][hf][cache]") {
  check_gguf_reference("vocab/ggml-vocab-qwen2.gguf", "hf_reference_qwen2.json", 151936, "gpt2/qwen2");
}

TEST_CASE("HF agreement: tokenizer.json with Digits + ByteLevel (SmolLM2-style)", "[text][hf][from_hf]") {
  check_tiny("tiny_smollm");
  const Tokenizer tok = Tokenizer::from_hf(precis::test::tokenizer_fixture("tiny_smollm"));
  CHECK(tok.kind() == "gpt2/smollm");
  // tokenizer_config.json names the tokens; generation_config.json adds end-of-generation ids.
  CHECK(tok.eos() == tok.find("<|im_end|>"));
  CHECK(tok.bos() == tok.find("<|im_start|>"));
  CHECK(tok.is_end_of_generation(*tok.find("<|im_end|>")));
  CHECK(tok.is_end_of_generation(*tok.find("<|endoftext|>")));
  CHECK_FALSE(tok.is_end_of_generation(*tok.find("<|im_start|>")));
  CHECK(tok.chat_template().find("<|im_start|>") != std::string::npos);
  // No TemplateProcessing: BOS is never added, whatever the caller asks.
  CHECK(tok.encode("hi", {.add_bos = true}) == tok.encode("hi", {.add_bos = false}));
  // "<tool_call>" is an added token with special = false: matched even with parse_special off.
  const auto tool = tok.encode("a<tool_call>b", {.parse_special = false});
  CHECK(std::find(tool.begin(), tool.end(), *tok.find("<tool_call>")) != tool.end());
}

TEST_CASE("HF agreement: tokenizer.json with a Qwen2 Split + ByteLevel", "[text][hf][from_hf]") {
  check_tiny("tiny_qwen2");
  CHECK(Tokenizer::from_hf(precis::test::tokenizer_fixture("tiny_qwen2")).kind() == "gpt2/qwen2");
}

TEST_CASE("HF agreement: tokenizer.json with Qwen's NFC normalizer", "[text][hf][from_hf][nfc]") {
  check_tiny("tiny_qwen2_nfc", RoundTrip::none);  // decomposed input comes back composed
  const Tokenizer tok = Tokenizer::from_hf(precis::test::tokenizer_fixture("tiny_qwen2_nfc"));
  CHECK(tok.vocab().normalize_nfc);
  // "e" + U+0301 COMBINING ACUTE is tokenized as "é" (U+00E9).
  CHECK(tok.encode("Cafe\xCC\x81") == tok.encode("Caf\xC3\xA9"));
  CHECK(tok.decode(tok.encode("Cafe\xCC\x81")) == "Caf\xC3\xA9");
}

TEST_CASE("NFC agrees with Python's unicodedata on every test string", "[text][nfc]") {
  const auto ref = nlohmann::json::parse(precis::test::read_text_file(precis::test::tokenizer_fixture("nfc_reference.json")));
  std::map<std::string, std::string> changed;
  for (const auto& c : ref.at("changed")) changed.emplace(c.at(0).get<std::string>(), c.at(1).get<std::string>());
  REQUIRE(changed.size() >= 30);
  std::size_t mismatches = 0;
  for (const auto& s : load_strings()) {
    const auto it = changed.find(s);
    const std::string want = it == changed.end() ? s : it->second;
    if (it != changed.end()) CHECK_FALSE(precis::text::nfc_quick_check(s));  // "already NFC" must be true
    if (precis::text::nfc(s) != want && ++mismatches <= 10) {
      INFO("\"" << precis::test::escaped(s) << "\"");
      CHECK(precis::text::nfc(s) == want);
    }
  }
  CHECK(mismatches == 0);
  // UAX #15's examples (Figures 3-6 and § 1.2): singletons, reordering, Hangul, exclusions.
  CHECK(precis::text::nfc("\xE2\x84\xAB") == "\xC3\x85");                    // U+212B ANGSTROM SIGN -> U+00C5
  CHECK(precis::text::nfc("\xE1\xB9\xA9") == "\xE1\xB9\xA9");                // U+1E69 stays
  CHECK(precis::text::nfc("s\xCC\xA3\xCC\x87") == "\xE1\xB9\xA9");          // s + dot below + dot above
  CHECK(precis::text::nfc("s\xCC\x87\xCC\xA3") == "\xE1\xB9\xA9");          // the marks reordered first
  CHECK(precis::text::nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8") == "\xEA\xB0\x81");  // L V T -> U+AC01
  CHECK(precis::text::nfc("\xE0\xA5\x98") == "\xE0\xA4\x95\xE0\xA4\xBC");  // U+0958 is excluded
}

TEST_CASE("HF agreement: tokenizer.json with a Llama-3 Split, ignore_merges and a BOS template",
          "[text][hf][from_hf]") {
  check_tiny("tiny_llama3", RoundTrip::skip_special);
  const Tokenizer tok = Tokenizer::from_hf(precis::test::tokenizer_fixture("tiny_llama3"));
  CHECK(tok.kind() == "gpt2/llama3");
  REQUIRE(tok.bos());
  CHECK(tok.bos() == tok.find("<|begin_of_text|>"));
  const auto with = tok.encode("Hello", {.add_bos = true});
  const auto without = tok.encode("Hello", {.add_bos = false});
  REQUIRE(with.size() == without.size() + 1);
  CHECK(with.front() == *tok.bos());
}

TEST_CASE("HF agreement: tokenizer.json with ByteLevel add_prefix_space", "[text][hf][from_hf]") {
  check_tiny("tiny_gpt2_prefix", RoundTrip::none);  // a space is added in front of the text
}

TEST_CASE("HF agreement: tokenizer.json with every Split behaviour and an inverted Split", "[text][hf][from_hf]") {
  check_tiny("tiny_split_behaviors", RoundTrip::none);  // "Removed" drops newlines
}

TEST_CASE("HF agreement: o200k (gpt-oss) and Llama-3 pre-tokenizer splits of 1013 strings", "[text][hf][pretokenizer]") {
  const auto ref = nlohmann::json::parse(
      precis::test::read_text_file(precis::test::tokenizer_fixture("pretokenizer_reference.json")));
  const auto strings = load_strings();
  for (const char* pre : {"gpt-4o", "llama3"}) {
    INFO("pre-tokenizer " << pre);
    const auto steps = precis::text::pretokenizer_for(pre);
    REQUIRE(steps.size() == 1);
    CHECK(steps[0].pattern == ref.at(pre).at("pattern").get<std::string>());  // the pattern HF ran
    const precis::text::PreTokenizer p(steps, pre);
    const auto expected = ref.at(pre).at("pieces").get<std::vector<std::vector<std::size_t>>>();
    REQUIRE(expected.size() == strings.size());
    std::size_t mismatches = 0;
    std::vector<std::pair<std::size_t, std::size_t>> pieces;
    for (std::size_t i = 0; i < strings.size(); ++i) {
      p.split(strings[i], pieces);
      std::vector<std::size_t> lengths;
      for (const auto& [b, e] : pieces) lengths.push_back(e - b);
      if (lengths != expected[i] && ++mismatches <= 10) {
        INFO("string " << i << " \"" << precis::test::escaped(strings[i]) << "\"");
        CHECK(lengths == expected[i]);
      }
    }
    CHECK(mismatches == 0);
  }
}
