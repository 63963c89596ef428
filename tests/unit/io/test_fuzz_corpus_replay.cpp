// Replays the safetensors fuzzer's seed corpus (tests/fuzz/corpus/safetensors/) through the same
// check the fuzz target runs, so every compiler — not only clang with -fsanitize=fuzzer —
// exercises it. Seeds are named by what they must do: `valid_*` parse (and satisfy the format's
// invariants), `invalid_*` are rejected with a format_error, `regress_*` (inputs the fuzzer
// found) may do either but nothing else.
#include <cstddef>     // std::byte
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ifstream
#include <iterator>    // std::istreambuf_iterator
#include <string>      // std::string
#include <vector>      // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, REQUIRE

#include "fuzz/safetensors_fuzz_check.hpp"  // precis::test::check_safetensors_input

namespace fs = std::filesystem;
using precis::test::parse_outcome;

TEST_CASE("fuzz corpus: every seed parses or is rejected as its name says", "[io][fuzz]") {
  const fs::path dir = PRECIS_FUZZ_CORPUS_DIR;
  REQUIRE(fs::is_directory(dir));
  std::size_t valid = 0, invalid = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    std::ifstream in(e.path(), std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(text.data()),
                                       reinterpret_cast<const std::byte*>(text.data()) + text.size());
    INFO("seed " << name);
    parse_outcome outcome{};
    REQUIRE_NOTHROW(outcome = precis::test::check_safetensors_input(bytes));  // format_error is caught inside
    if (name.rfind("valid_", 0) == 0) {
      CHECK(outcome == parse_outcome::accepted);
      ++valid;
    } else if (name.rfind("invalid_", 0) == 0) {
      CHECK(outcome == parse_outcome::rejected);
      ++invalid;
    }
  }
  // The corpus covers both sides (tests/fuzz/make_corpus.py writes 8 valid and 44 invalid seeds).
  REQUIRE(valid >= 8);
  REQUIRE(invalid >= 40);
}
