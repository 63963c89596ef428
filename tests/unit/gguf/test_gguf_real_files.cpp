// GgufFile on real files from ../shared/data (README.md there); each test is skipped, with a
// WARN saying so, when its file is absent.
//
// Expected values: stories260K's shape is stated in ../shared/data/README.md (dim 64, FFN 172,
// 5 layers, 8 query / 4 KV heads, vocab 512, BOS 1, EOS 2, F32, GGUF v3, architecture llama);
// the vocab-only files are GPT-2's tokenizer (50257 tokens, 50000 merges: the GPT-2 release's
// encoder.json / vocab.bpe) and Llama-2's SentencePiece vocabulary (32000 tokens).
#include <cmath>    // std::isfinite
#include <string>   // std::string, std::to_string
#include <vector>   // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, CHECK, REQUIRE

#include <precis/core/dtype.hpp>  // precis::f32
#include <precis/io/gguf.hpp>     // precis::io::GgufFile
#include <precis/io/load.hpp>     // precis::io::load

#include "gguf_test_support.hpp"  // shared_data_file

using precis::io::GgufFile;

TEST_CASE("stories260K.gguf: metadata, tensor shapes in row-major order, zero-copy F32 loads", "[gguf][shared-data]") {
  const auto path = precis::test::shared_data_file("models/stories260K.gguf");
  if (!path) return;
  const GgufFile f = GgufFile::open(*path);
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.architecture() == "llama");
  CHECK(f.get<int>("llama.block_count") == 5);
  CHECK(f.get<int>("llama.embedding_length") == 64);
  CHECK(f.get<int>("llama.feed_forward_length") == 172);
  CHECK(f.get<int>("llama.attention.head_count") == 8);
  CHECK(f.get<int>("llama.attention.head_count_kv") == 4);
  CHECK(f.get<std::uint32_t>("tokenizer.ggml.bos_token_id") == 1);
  CHECK(f.get<std::uint32_t>("tokenizer.ggml.eos_token_id") == 2);
  CHECK(f.get<std::string>("tokenizer.ggml.model") == "llama");
  CHECK(f.get<float>("llama.attention.layer_norm_rms_epsilon") > 0.0f);
  CHECK(f.get_array<std::string>("tokenizer.ggml.tokens").size() == 512);
  CHECK(f.get_array<float>("tokenizer.ggml.scores").size() == 512);
  CHECK(f.get_array<int>("tokenizer.ggml.token_type").size() == 512);
  CHECK(f.at("tokenizer.ggml.tokens").array_type() == precis::io::gguf_value_type::string);

  // [vocab, n_embd] in PyTorch order; GGUF stores dims = [64, 512].
  CHECK(f.tensor_info("token_embd.weight").shape == std::vector<precis::index_t>{512, 64});
  CHECK(f.tensor_info("output_norm.weight").shape == std::vector<precis::index_t>{64});
  for (int layer = 0; layer < 5; ++layer) {
    const std::string p = "blk." + std::to_string(layer) + ".";
    INFO("layer " << layer);
    CHECK(f.tensor_info(p + "attn_q.weight").shape == std::vector<precis::index_t>{64, 64});
    CHECK(f.tensor_info(p + "attn_k.weight").shape == std::vector<precis::index_t>{32, 64});  // 4 KV heads x 8
    CHECK(f.tensor_info(p + "attn_v.weight").shape == std::vector<precis::index_t>{32, 64});
    CHECK(f.tensor_info(p + "attn_output.weight").shape == std::vector<precis::index_t>{64, 64});
    CHECK(f.tensor_info(p + "ffn_gate.weight").shape == std::vector<precis::index_t>{172, 64});
    CHECK(f.tensor_info(p + "ffn_up.weight").shape == std::vector<precis::index_t>{172, 64});
    CHECK(f.tensor_info(p + "ffn_down.weight").shape == std::vector<precis::index_t>{64, 172});
    CHECK(f.tensor_info(p + "attn_norm.weight").shape == std::vector<precis::index_t>{64});
    CHECK(f.tensor_info(p + "ffn_norm.weight").shape == std::vector<precis::index_t>{64});
  }
  CHECK_FALSE(f.contains("blk.5.attn_q.weight"));
  for (const auto& t : f.tensor_infos()) {
    INFO("tensor " << t.name);
    CHECK(t.ggml_type == 0);  // F32 throughout
  }

  const auto emb = precis::io::load<precis::f32, 2>(f.tensor("token_embd.weight"), {512, 64});
  CHECK(emb.is_zero_copy());
  bool finite = true;
  for (precis::index_t i = 0; i < emb.numel(); ++i) finite = finite && std::isfinite(emb.data()[i]);
  CHECK(finite);
}

TEST_CASE("vocab-only GGUF files open, with their tokenizer arrays and no tensors", "[gguf][shared-data]") {
  SECTION("gpt-2") {
    const auto path = precis::test::shared_data_file("tokenizer/ggml-vocab-gpt-2.gguf");
    if (!path) return;
    const GgufFile f = GgufFile::open(*path);
    CHECK(f.architecture() == "gpt2");
    CHECK(f.tensor_infos().empty());
    CHECK(f.get<std::string>("tokenizer.ggml.model") == "gpt2");
    CHECK(f.get_array<std::string>("tokenizer.ggml.tokens").size() == 50257);
    CHECK(f.get_array<std::string>("tokenizer.ggml.merges").size() == 50000);
    CHECK(f.get<int>("tokenizer.ggml.eos_token_id") == 50256);  // <|endoftext|>
    CHECK(f.at("tokenizer.ggml.tokens").string_at(50256) == "<|endoftext|>");
  }
  SECTION("llama-spm") {
    const auto path = precis::test::shared_data_file("tokenizer/ggml-vocab-llama-spm.gguf");
    if (!path) return;
    const GgufFile f = GgufFile::open(*path);
    CHECK(f.architecture() == "llama");
    CHECK(f.tensor_infos().empty());
    CHECK(f.get<std::string>("tokenizer.ggml.model") == "llama");
    CHECK(f.get_array<std::string>("tokenizer.ggml.tokens").size() == 32000);
    CHECK(f.get_array<float>("tokenizer.ggml.scores").size() == 32000);
    CHECK(f.get<bool>("tokenizer.ggml.add_bos_token"));
    CHECK(f.at("tokenizer.ggml.tokens").string_at(1) == "<s>");
    CHECK(f.at("tokenizer.ggml.tokens").string_at(2) == "</s>");
  }
}
