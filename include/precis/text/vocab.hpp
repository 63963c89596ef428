// precis/text/vocab.hpp — Vocab: everything a tokenizer needs, as plain data, whatever file it
// came from.
//
// The GGUF adapter (gguf_vocab.hpp: `tokenizer.ggml.*` keys) and the tokenizer.json adapter
// (hf_vocab.hpp) both produce a Vocab, and Tokenizer is built from one; a test can build one by
// hand. The fields mirror GGUF's tokenizer keys (ggml docs/gguf.md, "Tokenizer"; llama.cpp
// src/llama-vocab.cpp, llama_vocab::impl::load):
//   model    "gpt2" (byte-level BPE, merges by rank) or "llama" (SentencePiece BPE, merges by score)
//   pre      tokenizer.ggml.pre — names the pre-tokenizer of a byte-level BPE
//   tokens / scores / types / merges, the special token ids, and the add_bos / add_eos /
//   add_space_prefix / ignore_merges flags.
// `validate` checks the invariants the tokenizers rely on, so a malformed file is a format_error
// at load time, never an out-of-range read while encoding.
#pragma once

#include <cstddef>        // std::size_t
#include <cstdint>        // std::int32_t, std::uint8_t
#include <limits>         // std::numeric_limits
#include <optional>       // std::optional
#include <string>         // std::string
#include <string_view>    // std::string_view
#include <unordered_set>  // std::unordered_set
#include <utility>        // std::pair
#include <vector>         // std::vector

#include <precis/core/error.hpp>        // precis::format_error, fail
#include <precis/text/pretokenizer.hpp>  // precis::text::SplitStep

namespace precis::text {

using token_id = std::int32_t;

/// GGUF `tokenizer.ggml.token_type` values (llama.h, enum llama_token_type).
enum class token_type : std::int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,       // BOS, EOS, <|im_start|>...: matched in text only when parse_special is on
  user_defined = 4,  // always matched in text before BPE (HF added tokens with special = false)
  unused = 5,
  byte = 6,          // SentencePiece <0xNN> byte-fallback tokens
};

/// The two tokenizer models precis implements.
enum class vocab_model {
  bpe,  // GGUF "gpt2": byte-level BPE, merges ranked by their order
  spm,  // GGUF "llama": SentencePiece BPE with byte fallback, merges ranked by token score
};

[[nodiscard]] constexpr std::string_view vocab_model_name(vocab_model m) noexcept {
  return m == vocab_model::bpe ? "gpt2" : "llama";
}

struct Vocab {
  vocab_model model = vocab_model::bpe;
  std::string pre;                     // tokenizer.ggml.pre (BPE), or a name for where `pre_steps` came from
  std::vector<SplitStep> pre_steps;    // BPE pre-tokenizer; empty: derived from `pre` by the tokenizer
  bool byte_level_add_prefix_space = false;  // HF ByteLevel add_prefix_space
  bool normalize_nfc = false;        // NFC before tokenizing (HF normalizer NFC: Qwen2/3's tokenizer.json)

  std::vector<std::string> tokens;     // id -> piece (byte-level characters for BPE, "▁" spaces for SPM)
  std::vector<float> scores;           // SPM merge priority; empty means all 0
  std::vector<token_type> types;       // empty means all normal
  std::vector<std::pair<std::string, std::string>> merges;  // BPE, in rank order
  std::vector<token_id> lstrip, rstrip;  // special tokens that swallow whitespace to their left / right

  std::optional<token_id> bos, eos, unk, eot, eom, pad;
  std::vector<token_id> eog_extra;     // further end-of-generation ids (HF generation_config eos list)

  bool add_bos = false;           // tokenizer.ggml.add_bos_token
  bool add_eos = false;           // tokenizer.ggml.add_eos_token
  bool add_space_prefix = false;  // SPM: prepend "▁" to text at the start / after a special token
  bool ignore_merges = false;     // BPE: a piece that is itself a token is emitted whole (Llama-3)
  bool bpe_unk_for_missing = false;  // BPE: a byte missing from the vocabulary becomes `unk` (HF
                                     // model.unk_token set) instead of being dropped (GGUF, HF without)
  bool fuse_unk = false;             // BPE: consecutive unk tokens become one (HF model.fuse_unk)

  std::string chat_template;

  [[nodiscard]] token_type type_of(token_id id) const noexcept {
    return types.empty() ? token_type::normal : types[static_cast<std::size_t>(id)];
  }
  [[nodiscard]] float score_of(token_id id) const noexcept {
    return scores.empty() ? 0.0f : scores[static_cast<std::size_t>(id)];
  }
  [[nodiscard]] std::size_t size() const noexcept { return tokens.size(); }

  /// format_error (naming `source`) unless the vocabulary is consistent: non-empty, at most
  /// INT32_MAX tokens, no duplicate or empty pieces, scores/types sized like tokens, every
  /// special id in range.
  void validate(std::string_view source) const {
    if (tokens.empty()) fail<format_error>("[tokenizer] ", source, ": the vocabulary has no tokens");
    if (tokens.size() > static_cast<std::size_t>(std::numeric_limits<token_id>::max()))
      fail<format_error>("[tokenizer] ", source, ": ", tokens.size(), " tokens do not fit a 32-bit token id");
    if (!scores.empty() && scores.size() != tokens.size())
      fail<format_error>("[tokenizer] ", source, ": ", scores.size(), " scores for ", tokens.size(), " tokens");
    if (!types.empty() && types.size() != tokens.size())
      fail<format_error>("[tokenizer] ", source, ": ", types.size(), " token types for ", tokens.size(), " tokens");
    for (std::size_t i = 0; i < types.size(); ++i) {
      const auto t = static_cast<std::int32_t>(types[i]);
      if (t < 0 || t > 6)
        fail<format_error>("[tokenizer] ", source, ": token ", i, " has token type ", t,
                           " (valid: 0..6, llama.h llama_token_type)");
    }
    std::unordered_set<std::string_view> seen;
    seen.reserve(tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i].empty()) fail<format_error>("[tokenizer] ", source, ": token ", i, " is the empty string");
      if (!seen.insert(tokens[i]).second)
        fail<format_error>("[tokenizer] ", source, ": token ", i, " '", tokens[i], "' appears twice in the vocabulary");
    }
    const auto check_id = [&](const std::optional<token_id>& id, std::string_view what) {
      if (id && (*id < 0 || static_cast<std::size_t>(*id) >= tokens.size()))
        fail<format_error>("[tokenizer] ", source, ": ", what, " token id ", *id, " is outside the vocabulary [0, ",
                           tokens.size(), ")");
    };
    check_id(bos, "BOS");
    check_id(eos, "EOS");
    check_id(unk, "UNK");
    check_id(eot, "EOT");
    check_id(eom, "EOM");
    check_id(pad, "PAD");
    for (const token_id id : eog_extra) check_id(id, "end-of-generation");
    for (const token_id id : lstrip) check_id(id, "lstrip");
    for (const token_id id : rstrip) check_id(id, "rstrip");
    if (add_bos && !bos)
      fail<format_error>("[tokenizer] ", source, ": add_bos_token is set but the vocabulary has no BOS token");
    if (add_eos && !eos)
      fail<format_error>("[tokenizer] ", source, ": add_eos_token is set but the vocabulary has no EOS token");
  }
};

}  // namespace precis::text
