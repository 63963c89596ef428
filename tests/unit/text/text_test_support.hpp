// tests/unit/text/text_test_support.hpp — where the tokenizer tests find their files, and the
// llama.cpp test-vector format.
//
// Three places, each skipped with a WARN when absent:
//   ../shared/data/tokenizer/   (PRECIS_SHARED_DATA_DIR) ggml-vocab-{gpt-2,llama-spm}.gguf + vectors
//   the precis cache            $PRECIS_CACHE_DIR, else $XDG_CACHE_HOME/precis, else ~/.cache/precis;
//                               tools/fetch_test_vocabs.sh fills it: models/SmolLM2-135M-Instruct.Q4_1.gguf
//                               and vocab/ggml-vocab-*.gguf (+ .inp/.out) from llama.cpp's models/
//   tests/fixtures/tokenizer/   (PRECIS_FIXTURES_DIR) committed, small: HF reference ids, tiny
//                               tokenizer.json files
#pragma once

#include <cstdlib>      // std::getenv
#include <filesystem>   // std::filesystem
#include <fstream>      // std::ifstream
#include <iterator>     // std::istreambuf_iterator
#include <optional>     // std::optional
#include <sstream>      // std::istringstream
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::pair
#include <vector>       // std::vector

#include <catch2/catch.hpp>  // WARN, REQUIRE

#include <precis/text/tokenizer.hpp>  // precis::text::token_id

namespace precis::test {

[[nodiscard]] inline std::string read_text_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// The precis cache directory (see the header comment); it need not exist.
[[nodiscard]] inline std::filesystem::path precis_cache_dir() {
  if (const char* d = std::getenv("PRECIS_CACHE_DIR"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0')
    return std::filesystem::path(x) / "precis";
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0')
    return std::filesystem::path(h) / ".cache" / "precis";
  return std::filesystem::path(".cache") / "precis";
}

/// `rel` under the precis cache, or nullopt after a WARN naming what to run.
[[nodiscard]] inline std::optional<std::filesystem::path> cached_file(std::string_view rel) {
  const std::filesystem::path p = precis_cache_dir() / rel;
  if (!std::filesystem::is_regular_file(p)) {
    WARN("SKIPPED: " << p.string()
                     << " not found; run tools/fetch_test_vocabs.sh (or set PRECIS_CACHE_DIR) to run this test");
    return std::nullopt;
  }
  return p;
}

/// `rel` under ../shared/data, or nullopt after a WARN.
[[nodiscard]] inline std::optional<std::filesystem::path> shared_file(std::string_view rel) {
  const std::filesystem::path p = std::filesystem::path(PRECIS_SHARED_DATA_DIR) / rel;
  if (!std::filesystem::is_regular_file(p)) {
    WARN("SKIPPED: shared test data file " << p.string()
                                            << " not found (configure with -DPRECIS_SHARED_DATA=<dir> to run this test)");
    return std::nullopt;
  }
  return p;
}

[[nodiscard]] inline std::filesystem::path tokenizer_fixture(std::string_view rel) {
  return std::filesystem::path(PRECIS_FIXTURES_DIR) / "tokenizer" / rel;
}

/// llama.cpp's tokenizer test vectors (tests/test-tokenizer-0.cpp, convert_hf_to_gguf_update.py):
/// `<vocab>.inp` holds the inputs, each followed by a line "__ggml_vocab_test__"; `<vocab>.out`
/// holds, per input, one line of space-separated ids (HF tokenizers' encode without special
/// tokens).
struct VocabVector {
  std::string text;
  std::vector<text::token_id> ids;
};

[[nodiscard]] inline std::vector<VocabVector> read_vocab_vectors(const std::filesystem::path& inp,
                                                                  const std::filesystem::path& out) {
  const std::string in_text = read_text_file(inp);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  std::size_t pos = 0;
  while (true) {
    const std::size_t at = in_text.find(sep, pos);
    if (at == std::string::npos) break;
    inputs.push_back(in_text.substr(pos, at - pos));
    pos = at + sep.size();
  }
  REQUIRE(pos == in_text.size());  // the file ends with a separator
  std::istringstream lines(read_text_file(out));
  std::vector<VocabVector> v;
  std::string line;
  for (const auto& input : inputs) {
    REQUIRE(std::getline(lines, line));
    VocabVector e{input, {}};
    std::istringstream ids(line);
    long long id = 0;
    while (ids >> id) e.ids.push_back(static_cast<text::token_id>(id));
    v.push_back(std::move(e));
  }
  return v;
}

/// Printable form of a string for failure messages (escapes controls and non-ASCII bytes).
[[nodiscard]] inline std::string escaped(std::string_view s) {
  std::string r;
  static constexpr char hex[] = "0123456789abcdef";
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b == '\n') r += "\\n";
    else if (b == '\t') r += "\\t";
    else if (b == '\\') r += "\\\\";
    else if (b < 0x20 || b >= 0x7f) {
      r += "\\x";
      r += hex[b >> 4];
      r += hex[b & 15];
    } else {
      r += c;
    }
  }
  return r;
}

}  // namespace precis::test
