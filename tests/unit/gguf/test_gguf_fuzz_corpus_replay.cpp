// Replays the GGUF fuzzer's seed corpus (tests/fuzz/corpus/gguf/, written by
// tools/make_gguf_fixtures.py) through the same check the fuzz target runs
// (tests/fuzz/gguf_fuzz_check.hpp), so every compiler — not only clang with -fsanitize=fuzzer —
// exercises it. Seeds are named by what they must do: `valid_*` parse (and satisfy the reader's
// invariants), `invalid_*` are rejected with a format_error, `regress_*` (inputs the fuzzer
// found) may do either but nothing else.
#include <cstddef>     // std::byte
#include <filesystem>  // std::filesystem
#include <string>      // std::string
#include <vector>      // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, REQUIRE

#include "fuzz/gguf_fuzz_check.hpp"  // precis::test::check_gguf_input
#include "gguf_test_support.hpp"     // precis::test::read_bytes

namespace fs = std::filesystem;
using precis::test::gguf_outcome;

TEST_CASE("gguf fuzz corpus: every seed parses or is rejected as its name says", "[gguf][fuzz]") {
  const fs::path dir = PRECIS_GGUF_FUZZ_CORPUS_DIR;
  REQUIRE(fs::is_directory(dir));
  std::size_t valid = 0, invalid = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const std::vector<std::byte> bytes = precis::test::read_bytes(e.path());
    INFO("seed " << name);
    gguf_outcome outcome{};
    REQUIRE_NOTHROW(outcome = precis::test::check_gguf_input(bytes));  // format_error is caught inside
    if (name.rfind("valid_", 0) == 0) {
      CHECK(outcome == gguf_outcome::accepted);
      ++valid;
    } else if (name.rfind("invalid_", 0) == 0) {
      CHECK(outcome == gguf_outcome::rejected);
      ++invalid;
    }
  }
  // The corpus covers both sides (tools/make_gguf_fixtures.py writes 8 valid and 31 invalid seeds).
  REQUIRE(valid >= 8);
  REQUIRE(invalid >= 30);
}
