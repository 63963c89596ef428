// precis/text/pretokenizer.hpp — splitting text into the pieces a byte-level BPE merges within.
//
// BPE never merges across a piece boundary, so the pre-tokenizer decides much of the result:
// GPT-2 keeps " world" together but splits "world!" into "world" "!"; SmolLM2 isolates every
// digit; Llama-3 groups digits by three. A pre-tokenizer is a sequence of SPLIT steps, each a
// regex and a behaviour, applied one after the other to every piece the previous step produced
// — HF tokenizers' `Sequence` of `Split` / `Digits` / `ByteLevel(use_regex)` pre-tokenizers, and
// llama.cpp's `regex_exprs` list (unicode_regex_split keeps the text between matches as pieces of
// their own, i.e. HF's "Isolated" behaviour).
//
// `pretokenizer_for(pre)` gives the steps for a GGUF `tokenizer.ggml.pre` value. The regexes are
// the ones in each model's tokenizer.json (as recorded, "original regex from tokenizer.json", in
// llama.cpp src/llama-vocab.cpp, llm_tokenizer_bpe); llama.cpp itself runs hand-adapted versions
// (case-insensitive groups spelled out) because std::regex lacks \p{..}; PCRE2 runs the originals.
//   gpt-2 (and mpt, olmo, jais, phi-2, ...)   GPT-2's regex (HF ByteLevel use_regex=true)
//   smollm (and starcoder, refact, command-r) Digits(individual) then GPT-2's regex — SmolLM2's
//                                             tokenizer.json is Sequence[Digits{individual_digits:
//                                             true}, ByteLevel{use_regex: true}]
//   llama3 / llama-bpe (and dbrx, smaug)      Llama-3's regex (\p{N}{1,3})
//   qwen2 (and stablelm2, deepseek-r1-qwen)   Qwen2's regex (single \p{N})
//   qwen35                                    Qwen3.5's regex (letters with \p{M})
//   gpt-4o / llama4                           o200k's regex (gpt-oss, Llama-4)
// An unknown `pre` is a config_error: llama.cpp falls back to a "default" split with a warning,
// which silently tokenizes differently from the model's training; precis refuses instead.
#pragma once

#include <cstddef>      // std::size_t
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::pair
#include <vector>       // std::vector

#include <precis/core/error.hpp>  // precis::config_error, fail
#include <precis/text/regex.hpp>  // precis::text::Regex

namespace precis::text {

/// What a Split step does with matches (HF tokenizers' SplitDelimiterBehavior, normalizer.rs).
enum class split_behavior {
  isolated,              // matches and the text between them are all pieces
  removed,               // matches are dropped
  merged_with_previous,  // a match is appended to the piece before it
  merged_with_next,      // a match is prepended to the piece after it
  contiguous,            // consecutive matches form one piece
};

[[nodiscard]] constexpr std::string_view split_behavior_name(split_behavior b) noexcept {
  switch (b) {
    case split_behavior::isolated: return "Isolated";
    case split_behavior::removed: return "Removed";
    case split_behavior::merged_with_previous: return "MergedWithPrevious";
    case split_behavior::merged_with_next: return "MergedWithNext";
    case split_behavior::contiguous: return "Contiguous";
  }
  return "?";
}

/// One step, as data (a Vocab carries these; the Tokenizer compiles them).
struct SplitStep {
  std::string pattern;  // PCRE2/Oniguruma syntax
  split_behavior behavior = split_behavior::isolated;
  bool invert = false;  // the pieces are the non-matches (HF Split "invert")
  bool operator==(const SplitStep&) const = default;
};

/// The regexes every byte-level family uses (see the header comment for their sources).
namespace pre_regex {
/// GPT-2 (openai/gpt-2 encoder.py; HF ByteLevel's use_regex pattern).
inline constexpr std::string_view gpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
/// Llama-3 (meta-llama/Meta-Llama-3-8B tokenizer.json; tiktoken cl100k_base's pattern).
inline constexpr std::string_view llama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
/// Qwen2 / Qwen2.5 / Qwen3 (Qwen/Qwen2-7B tokenizer.json): Llama-3's with single digits.
inline constexpr std::string_view qwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
/// Qwen3.5 (llama.cpp LLAMA_VOCAB_PRE_TYPE_QWEN35): combining marks join letters.
inline constexpr std::string_view qwen35 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
/// o200k (gpt-4o, gpt-oss, Llama-4; tiktoken o200k_base / openai/gpt-oss tokenizer.json).
inline constexpr std::string_view o200k =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
/// HF Digits pre-tokenizer (individual_digits: true): every numeric character alone.
inline constexpr std::string_view digit = R"(\p{N})";
/// HF Digits pre-tokenizer (individual_digits: false): runs of numeric characters.
inline constexpr std::string_view digits = R"(\p{N}+)";
}  // namespace pre_regex

/// The split steps for a GGUF `tokenizer.ggml.pre` value; config_error (naming it and what is
/// known) for anything else.
[[nodiscard]] inline std::vector<SplitStep> pretokenizer_for(std::string_view pre) {
  const auto one = [](std::string_view p) { return std::vector<SplitStep>{SplitStep{std::string(p)}}; };
  if (pre == "gpt-2" || pre == "gpt2" || pre == "mpt" || pre == "olmo" || pre == "jais" || pre == "phi-2" ||
      pre == "jina-es" || pre == "jina-de" || pre == "jina-v2-es" || pre == "jina-v2-de" || pre == "gigachat" ||
      pre == "exaone4" || pre == "roberta-bpe" || pre == "jina-v1-en" || pre == "jina-v2-code")
    return one(pre_regex::gpt2);
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "codeshell" ||
      pre == "exaone" || pre == "minerva-7b")
    return {SplitStep{std::string(pre_regex::digit)}, SplitStep{std::string(pre_regex::gpt2)}};
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" || pre == "dbrx" ||
      pre == "smaug-bpe" || pre == "glm4" || pre == "chatglm-bpe" || pre == "pixtral" || pre == "lfm2")
    return one(pre_regex::llama3);
  if (pre == "qwen2" || pre == "stablelm2" || pre == "deepseek-r1-qwen" || pre == "megrez" || pre == "hunyuan")
    return one(pre_regex::qwen2);
  if (pre == "qwen35") return one(pre_regex::qwen35);
  if (pre == "gpt-4o" || pre == "llama4" || pre == "minimax-m2") return one(pre_regex::o200k);
  fail<config_error>("[tokenizer] unsupported byte-level pre-tokenizer '", pre,
                     "' (tokenizer.ggml.pre); precis knows gpt-2, smollm, starcoder, refact, command-r, llama3, "
                     "llama-bpe, dbrx, smaug-bpe, qwen2, qwen35, stablelm2, deepseek-r1-qwen, gpt-4o, llama4 and "
                     "their aliases");
}

/// A compiled sequence of split steps.
class PreTokenizer {
 public:
  PreTokenizer() = default;
  PreTokenizer(const std::vector<SplitStep>& steps, std::string_view where) {
    for (const auto& s : steps) steps_.push_back(Compiled{Regex(s.pattern, where), s.behavior, s.invert});
  }

  [[nodiscard]] bool empty() const noexcept { return steps_.empty(); }

  /// The pieces of `text` (valid UTF-8) as [begin, end) byte ranges into it, in order. With no
  /// steps, the whole text is one piece.
  void split(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& pieces) const {
    pieces.clear();
    if (text.empty()) return;
    pieces.emplace_back(0, text.size());
    std::vector<std::pair<std::size_t, std::size_t>> next;
    std::vector<Span> spans;
    for (const auto& step : steps_) {
      next.clear();
      for (const auto& [b, e] : pieces) {
        spans.clear();
        find_spans(step, text.substr(b, e - b), b, spans);
        apply(step, spans, next);
      }
      pieces.swap(next);
    }
  }

 private:
  struct Compiled {
    Regex regex;
    split_behavior behavior;
    bool invert;
  };
  struct Span {
    std::size_t b, e;
    bool match;
  };

  // HF tokenizers' pattern.rs `find_matches`: matches and the gaps between them, covering the
  // piece; the match flag flipped when the step is inverted.
  static void find_spans(const Compiled& step, std::string_view piece, std::size_t base, std::vector<Span>& spans) {
    std::size_t prev = 0;
    step.regex.for_each_match(piece, [&](std::size_t b, std::size_t e) {
      if (b > prev) spans.push_back({base + prev, base + b, step.invert});
      spans.push_back({base + b, base + e, !step.invert});
      prev = e;
    });
    if (prev < piece.size()) spans.push_back({base + prev, base + piece.size(), step.invert});
  }

  // HF tokenizers' normalizer.rs `NormalizedString::split`: what each behaviour keeps and joins;
  // empty pieces are dropped.
  static void apply(const Compiled& step, const std::vector<Span>& spans,
                    std::vector<std::pair<std::size_t, std::size_t>>& out) {
    const std::size_t first_out = out.size();
    switch (step.behavior) {
      case split_behavior::isolated:
        for (const auto& s : spans) out.emplace_back(s.b, s.e);
        break;
      case split_behavior::removed:
        for (const auto& s : spans)
          if (!s.match) out.emplace_back(s.b, s.e);
        break;
      case split_behavior::merged_with_previous: {
        bool prev_match = false;
        for (const auto& s : spans) {
          if (s.match && !prev_match && out.size() > first_out) out.back().second = s.e;
          else out.emplace_back(s.b, s.e);
          prev_match = s.match;
        }
        break;
      }
      case split_behavior::merged_with_next: {
        // Walk backwards: a match joins the piece after it.
        std::vector<std::pair<std::size_t, std::size_t>> rev;
        bool prev_match = false;
        for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
          if (it->match && !prev_match && !rev.empty()) rev.back().first = it->b;
          else rev.emplace_back(it->b, it->e);
          prev_match = it->match;
        }
        out.insert(out.end(), rev.rbegin(), rev.rend());
        break;
      }
      case split_behavior::contiguous: {
        bool prev_match = false;
        bool any = false;
        for (const auto& s : spans) {
          if (any && s.match == prev_match) out.back().second = s.e;
          else out.emplace_back(s.b, s.e);
          prev_match = s.match;
          any = true;
        }
        break;
      }
    }
    // Drop empty pieces (an empty regex match is a split point, never a piece).
    std::size_t w = first_out;
    for (std::size_t r = first_out; r < out.size(); ++r)
      if (out[r].second > out[r].first) out[w++] = out[r];
    out.resize(w);
  }

  std::vector<Compiled> steps_;
};

}  // namespace precis::text
