// Every seed of the hostile-input fuzzers (tests/fuzz/hostile_fuzz_checks.hpp, corpora from
// tools/make_fuzz_seeds.py) in every build, not only the clang fuzz build: valid_* seeds are
// accepted, invalid_* rejected with a precis::error, and nothing else escapes.
#include <cstddef>     // std::byte
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ifstream
#include <iterator>    // std::istreambuf_iterator
#include <string>      // std::string
#include <vector>      // std::vector

#include <catch2/catch.hpp>

#include "fuzz/config_fuzz_check.hpp"  // check_config_json (+ hostile_fuzz_checks.hpp)

namespace fs = std::filesystem;
using precis::test::hostile_outcome;

namespace {
template <class Check>
void replay(const std::string& corpus, Check check) {
  const fs::path dir = fs::path(PRECIS_FUZZ_CORPORA_DIR) / corpus;
  REQUIRE(fs::is_directory(dir));
  int valid = 0, invalid = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    std::ifstream in(e.path(), std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(text.data()),
                                       reinterpret_cast<const std::byte*>(text.data()) + text.size());
    INFO(corpus << " seed " << name);
    hostile_outcome outcome{};
    REQUIRE_NOTHROW(outcome = check(bytes));
    if (name.rfind("valid_", 0) == 0) {
      CHECK(outcome == hostile_outcome::accepted);
      ++valid;
    } else if (name.rfind("invalid_", 0) == 0) {
      CHECK(outcome == hostile_outcome::rejected);
      ++invalid;
    }
  }
  CHECK(valid >= 1);
  CHECK(invalid >= 1);
}
}  // namespace

TEST_CASE("fuzz seeds: config.json", "[fuzz][robustness]") { replay("config_json", precis::test::check_config_json); }
TEST_CASE("fuzz seeds: tokenizer.json", "[fuzz][robustness]") { replay("tokenizer_json", precis::test::check_tokenizer_json); }
TEST_CASE("fuzz seeds: GGUF vocabularies", "[fuzz][robustness]") { replay("gguf_vocab", precis::test::check_gguf_vocab); }
TEST_CASE("fuzz seeds: prompt text through a tokenizer and a chat template", "[fuzz][robustness]") {
  const auto tok = precis::text::Tokenizer::from_hf(fs::path(PRECIS_FIXTURES_DIR) / "tokenizer" / "tiny_smollm");
  replay("prompt_text", [&](const std::vector<std::byte>& b) { return precis::test::check_prompt_text(tok, b); });
}
