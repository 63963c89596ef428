// llama.cpp's tokenizer test vectors: every input of `<vocab>.inp` must encode to exactly the ids
// of `<vocab>.out` (no BOS, special tokens not parsed — test-tokenizer-0's settings), and decode
// back to the input.
//
// Reference values: the .out files were written by llama.cpp's convert_hf_to_gguf_update.py with
// HF tokenizers' `encode(text, add_special_tokens=False)` on each model's original tokenizer, so
// passing them is agreement with HF on GPT-2's and Llama-2's tokenizers (../shared/data) and,
// from the precis cache (tools/fetch_test_vocabs.sh), Qwen2's, Qwen3.5's, Llama-3's, StarCoder's,
// Refact's, Command-R's and Phi-3's.
#include <string>  // std::string
#include <vector>  // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, CHECK, INFO

#include <precis/io/gguf.hpp>         // precis::io::GgufFile
#include <precis/text/tokenizer.hpp>  // precis::text::Tokenizer

#include "text_test_support.hpp"  // shared_file, cached_file, read_vocab_vectors, escaped

using precis::text::EncodeOptions;
using precis::text::Tokenizer;

namespace {

/// Runs every vector; returns the number that failed (each failure is reported).
std::size_t run_vectors(const Tokenizer& tok, const std::filesystem::path& gguf) {
  const auto vectors = precis::test::read_vocab_vectors(gguf.string() + ".inp", gguf.string() + ".out");
  REQUIRE(vectors.size() > 10);
  std::size_t failed = 0;
  for (const auto& v : vectors) {
    INFO(gguf.filename().string() << " input \"" << precis::test::escaped(v.text) << "\"");
    const auto ids = tok.encode(v.text, EncodeOptions{.add_bos = false, .parse_special = false});
    CHECK(ids == v.ids);
    if (ids != v.ids) ++failed;
    // Every one of these inputs is valid UTF-8 and round-trips exactly.
    CHECK(tok.decode(v.ids) == v.text);
  }
  return failed;
}

void check_vocab(const char* where, const char* name) {
  const auto path = std::string(where) == "shared" ? precis::test::shared_file(std::string("tokenizer/") + name)
                                                   : precis::test::cached_file(std::string("vocab/") + name);
  if (!path) return;
  const Tokenizer tok = Tokenizer::from_gguf(*path);
  CHECK(run_vectors(tok, *path) == 0);
}

}  // namespace

TEST_CASE("llama.cpp vectors: GPT-2 byte-level BPE (ggml-vocab-gpt-2.gguf)", "[text][gguf][shared-data]") {
  const auto path = precis::test::shared_file("tokenizer/ggml-vocab-gpt-2.gguf");
  if (!path) return;
  const Tokenizer tok = Tokenizer::from_gguf(*path);
  CHECK(tok.kind() == "gpt2/gpt-2");
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.eos() == 50256);
  CHECK(run_vectors(tok, *path) == 0);
}

TEST_CASE("llama.cpp vectors: Llama-2 SentencePiece BPE (ggml-vocab-llama-spm.gguf)", "[text][gguf][shared-data]") {
  const auto path = precis::test::shared_file("tokenizer/ggml-vocab-llama-spm.gguf");
  if (!path) return;
  const Tokenizer tok = Tokenizer::from_gguf(*path);
  CHECK(tok.kind() == "llama");
  CHECK(tok.vocab_size() == 32000);
  CHECK(tok.bos() == 1);
  CHECK(tok.eos() == 2);
  CHECK(run_vectors(tok, *path) == 0);
  // add_bos_token is true in this vocabulary: BOS comes first unless the caller declines.
  CHECK(tok.encode("Hello world") == std::vector<precis::text::token_id>{1, 15043, 3186});
  CHECK(tok.encode("Hello world", {.add_bos = false}) == std::vector<precis::text::token_id>{15043, 3186});
}

TEST_CASE("llama.cpp vectors: Qwen2 (qwen2 pre-tokenizer)", "[text][gguf][cache]") {
  check_vocab("cache", "ggml-vocab-qwen2.gguf");
}
TEST_CASE("llama.cpp vectors: Qwen3.5 (qwen35 pre-tokenizer)", "[text][gguf][cache]") {
  check_vocab("cache", "ggml-vocab-qwen35.gguf");
}
TEST_CASE("llama.cpp vectors: Llama-3 (llama-bpe pre-tokenizer, ignore_merges)", "[text][gguf][cache]") {
  check_vocab("cache", "ggml-vocab-llama-bpe.gguf");
}
TEST_CASE("llama.cpp vectors: StarCoder (digits then GPT-2, like smollm)", "[text][gguf][cache]") {
  check_vocab("cache", "ggml-vocab-starcoder.gguf");
}
TEST_CASE("llama.cpp vectors: Refact (digits then GPT-2)", "[text][gguf][cache]") {
  check_vocab("cache", "ggml-vocab-refact.gguf");
}
TEST_CASE("llama.cpp vectors: Command-R (digits then GPT-2)", "[text][gguf][cache]") {
  check_vocab("cache", "ggml-vocab-command-r.gguf");
}
TEST_CASE("llama.cpp vectors: Phi-3 (SentencePiece BPE)", "[text][gguf][cache]") {
  check_vocab("cache", "ggml-vocab-phi-3.gguf");
}
