// precis/text/gguf_vocab.hpp — Vocab from a GGUF file's `tokenizer.ggml.*` metadata.
//
// Keys (ggml docs/gguf.md "Tokenizer"; llama.cpp src/llama-vocab.cpp, llama_vocab::impl::load):
//   tokenizer.ggml.model          "gpt2" (byte-level BPE) | "llama" (SentencePiece BPE); others
//                                 (bert, t5, rwkv, ...) are a config_error
//   tokenizer.ggml.pre            the byte-level pre-tokenizer (pretokenizer.hpp); required for gpt2
//   tokenizer.ggml.tokens         string[n]
//   tokenizer.ggml.scores         f32[n] (SPM merge priorities; optional)
//   tokenizer.ggml.token_type     i32[n] (llama_token_type; optional, default normal)
//   tokenizer.ggml.merges         string[] "left right", split at the first space after the first
//                                 byte (a piece may itself be a space-free "Ġ"); required for gpt2
//   tokenizer.ggml.{bos,eos,unknown,eot,eom,padding}_token_id   u32 (optional; 0xFFFFFFFF or -1: none)
//   tokenizer.ggml.add_bos_token / add_eos_token / add_space_prefix   bool (optional)
//   tokenizer.chat_template       string (optional)
// Defaults follow llama.cpp where the key is absent: SPM vocabularies add BOS and a space prefix
// and use BOS 1 / EOS 2 / UNK 0 (when those ids exist); Llama-3-style pre-tokenizers (llama3,
// llama-bpe, ...) add BOS and ignore merges for pieces that are whole tokens.
// Unlike llama.cpp, which warns and carries on, an out-of-range special id or a malformed array
// is a format_error naming the key and the file.
#pragma once

#include <cstddef>      // std::size_t
#include <cstdint>      // std::int32_t, std::uint32_t
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include <precis/core/error.hpp>  // precis::config_error, format_error, fail
#include <precis/io/gguf.hpp>     // precis::io::GgufFile
#include <precis/text/vocab.hpp>  // precis::text::Vocab

namespace precis::text {

[[nodiscard]] inline Vocab vocab_from_gguf(const io::GgufFile& f) {
  const std::string src = f.path().string();
  Vocab v;
  const auto model = f.find<std::string>("tokenizer.ggml.model");
  if (!model) fail<format_error>("[tokenizer] '", src, "': no tokenizer.ggml.model key (the file has no tokenizer)");
  if (*model == "gpt2") v.model = vocab_model::bpe;
  else if (*model == "llama") v.model = vocab_model::spm;
  else
    fail<config_error>("[tokenizer] '", src, "': tokenizer.ggml.model '", *model,
                       "' is not supported (precis implements 'gpt2' byte-level BPE and 'llama' SentencePiece BPE)");

  if (!f.has("tokenizer.ggml.tokens")) fail<format_error>("[tokenizer] '", src, "': no tokenizer.ggml.tokens key");
  v.tokens = f.get_array<std::string>("tokenizer.ggml.tokens");
  if (f.has("tokenizer.ggml.scores")) v.scores = f.get_array<float>("tokenizer.ggml.scores");
  if (f.has("tokenizer.ggml.token_type")) {
    const auto raw = f.get_array<std::int32_t>("tokenizer.ggml.token_type");
    v.types.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] < 0 || raw[i] > 6)
        fail<format_error>("[tokenizer] '", src, "': tokenizer.ggml.token_type[", i, "] = ", raw[i],
                           " is not a llama_token_type (0..6)");
      v.types.push_back(static_cast<token_type>(raw[i]));
    }
  }

  if (v.model == vocab_model::bpe) {
    const auto pre = f.find<std::string>("tokenizer.ggml.pre");
    if (!pre)
      fail<config_error>("[tokenizer] '", src,
                         "': a gpt2 tokenizer without tokenizer.ggml.pre (the file predates it); the pre-tokenizer "
                         "cannot be known, re-convert the model with a current llama.cpp");
    v.pre = *pre;
    if (!f.has("tokenizer.ggml.merges"))
      fail<format_error>("[tokenizer] '", src, "': a gpt2 tokenizer needs tokenizer.ggml.merges");
    const auto merges = f.get_array<std::string>("tokenizer.ggml.merges");
    v.merges.reserve(merges.size());
    for (std::size_t i = 0; i < merges.size(); ++i) {
      const std::string& m = merges[i];
      const std::size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
      if (sp == std::string::npos || sp + 1 >= m.size())
        fail<format_error>("[tokenizer] '", src, "': tokenizer.ggml.merges[", i, "] = '", m,
                           "' is not two pieces separated by a space");
      v.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
    // llama.cpp: Llama-3-style pre-tokenizers ignore merges for whole-token pieces and add BOS.
    if (v.pre == "llama3" || v.pre == "llama-v3" || v.pre == "llama-bpe" || v.pre == "falcon3" || v.pre == "pixtral" ||
        v.pre == "lfm2") {
      v.ignore_merges = true;
      v.add_bos = true;
    }
  } else {
    v.pre = "";
    v.add_bos = true;
    v.add_space_prefix = true;
    const auto default_id = [&](token_id id) -> std::optional<token_id> {
      return static_cast<std::size_t>(id) < v.tokens.size() ? std::optional<token_id>(id) : std::nullopt;
    };
    v.bos = default_id(1);
    v.eos = default_id(2);
    v.unk = default_id(0);
  }

  const auto special = [&](std::string_view key, std::optional<token_id>& slot) {
    if (const auto id = f.find<std::int64_t>(key)) {
      // -1 (LLAMA_TOKEN_NULL), or its u32 bit pattern, means "no such token" (stories260K's
      // padding_token_id is 0xFFFFFFFF).
      if (*id == -1 || *id == 0xFFFFFFFF) {
        slot.reset();
        return;
      }
      if (*id < 0 || static_cast<std::uint64_t>(*id) >= v.tokens.size())
        fail<format_error>("[tokenizer] '", src, "': ", key, " = ", *id, " is outside the vocabulary [0, ",
                           v.tokens.size(), ")");
      slot = static_cast<token_id>(*id);
    }
  };
  special("tokenizer.ggml.bos_token_id", v.bos);
  special("tokenizer.ggml.eos_token_id", v.eos);
  special("tokenizer.ggml.unknown_token_id", v.unk);
  special("tokenizer.ggml.eot_token_id", v.eot);
  special("tokenizer.ggml.eom_token_id", v.eom);
  special("tokenizer.ggml.padding_token_id", v.pad);
  if (const auto b = f.find<bool>("tokenizer.ggml.add_bos_token")) v.add_bos = *b;
  if (const auto b = f.find<bool>("tokenizer.ggml.add_eos_token")) v.add_eos = *b;
  if (const auto b = f.find<bool>("tokenizer.ggml.add_space_prefix")) v.add_space_prefix = *b;
  if (const auto t = f.find<std::string>("tokenizer.chat_template")) v.chat_template = *t;
  // A vocabulary that asks for BOS but names none (llama.cpp asserts) is refused by validate.
  v.validate("'" + src + "'");
  return v;
}

}  // namespace precis::text
