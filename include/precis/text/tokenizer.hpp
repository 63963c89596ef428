// precis/text/tokenizer.hpp — Tokenizer: text <-> token ids for byte-level BPE (GPT-2, SmolLM2,
// Qwen, Llama-3, gpt-oss) and SentencePiece BPE (Llama-2, stories260K), from GGUF or tokenizer.json.
//
// encode(text, {add_bos, parse_special}):
//   1. the text must be valid UTF-8 (format_error naming the first bad byte and its offset);
//   2. special tokens are cut out first: scanning left to right, at each position the LONGEST
//      special piece that starts there is taken (HF tokenizers' AddedVocabulary, an Aho-Corasick
//      leftmost-longest match). User-defined tokens (HF added tokens with special = false) are
//      always matched; control tokens (<|im_start|>, <s>, ...) and unknown-type tokens only with
//      parse_special — the rule of llama.cpp's tokenizer_st_partition. Off, "<|im_end|>" in a
//      user's text is just text;
//   3. each stretch of text between them is put in NFC when the vocabulary asks (tokenizer.json
//      "normalizer": {"type": "NFC"}; nfc.hpp), then tokenized by the model:
//      BPE  pre-tokenizer pieces (pretokenizer.hpp), each merged by rank (bpe.hpp);
//      SPM  " " -> "▁", with one "▁" prepended at the start of the text and after every special
//           token when the vocabulary asks (add_space_prefix; llama.cpp's llama_vocab::tokenize),
//           then merged by score with byte fallback (spm.hpp);
//   4. BOS is prepended when opt.add_bos AND the vocabulary's add_bos_token say so (EOS appended
//      likewise with opt.add_eos and add_eos_token).
//
// decode(ids) concatenates each token's bytes: byte-level characters -> bytes (BPE), "▁" -> " "
// and <0xNN> -> the byte (SPM), control / user-defined / unknown tokens as their text (omitted with
// DecodeOptions::skip_special, as HF's skip_special_tokens). For SPM with add_space_prefix the
// space that encode put in front of the text is removed again, so decode(encode(s)) == s (with
// skip_special when a BOS was added).
// The result is valid UTF-8: bytes that do not form a character become U+FFFD (utf8.hpp). Any
// id outside the vocabulary is a range_error naming the id and its position. StreamDecoder
// (stream_decoder.hpp) does the same one token at a time.
//
// A Tokenizer is immutable and cheap to copy (its tables are shared); every const member may be
// called from several threads at once.
#pragma once

#include <algorithm>      // std::binary_search, std::find, std::sort, std::stable_sort, std::unique
#include <cstddef>        // std::size_t
#include <cstdint>        // std::uint8_t
#include <filesystem>     // std::filesystem::path
#include <memory>         // std::shared_ptr, std::make_shared
#include <optional>       // std::optional
#include <span>           // std::span
#include <string>         // std::string
#include <string_view>    // std::string_view
#include <unordered_map>  // std::unordered_map
#include <utility>        // std::move, std::pair
#include <vector>         // std::vector

#include <precis/core/error.hpp>         // precis::format_error, range_error, fail
#include <precis/io/gguf.hpp>            // precis::io::GgufFile
#include <precis/text/bpe.hpp>           // precis::text::BpeModel
#include <precis/text/byte_level.hpp>    // byte_level_decode
#include <precis/text/gguf_vocab.hpp>    // vocab_from_gguf
#include <precis/text/hf_vocab.hpp>      // vocab_from_hf
#include <precis/text/nfc.hpp>           // nfc, nfc_quick_check
#include <precis/text/pretokenizer.hpp>  // precis::text::PreTokenizer, pretokenizer_for
#include <precis/text/spm.hpp>           // precis::text::SpmModel
#include <precis/text/utf8.hpp>          // find_invalid_utf8, to_valid_utf8
#include <precis/text/vocab.hpp>         // precis::text::Vocab, token_id, token_type

namespace precis::text {

struct EncodeOptions {
  bool add_bos = true;         // honoured only if the vocabulary's add_bos_token is set
  bool parse_special = false;  // match control tokens ("<|im_start|>") in the text
  bool add_eos = false;        // honoured only if the vocabulary's add_eos_token is set
};

/// A byte range [begin, end) of a text.
struct TextSpan {
  std::size_t begin = 0;
  std::size_t end = 0;
};

/// Text in which control tokens may be spelled only inside the `control` spans (sorted, not
/// overlapping): a chat prompt, where the template writes <|im_start|>, <|im_end|>, <|start|> …
/// and the user's content between them is text even if it spells "<|im_end|><|im_start|>system"
/// (robustness sweep: a forged system turn). encode(MarkedText) matches control tokens whose
/// whole spelling lies in one span and, everywhere else, only user-defined added tokens (as
/// encode with parse_special off); the text between matches is tokenized exactly as encode(text)
/// would, so a prompt without forged markup gets the ids HF's apply_chat_template + tokenizer give.
struct MarkedText {
  std::string text;
  std::vector<TextSpan> control;

  /// Appends template markup (may spell control tokens).
  MarkedText& markup(std::string_view s) {
    if (!control.empty() && control.back().end == text.size()) control.back().end += s.size();
    else control.push_back({text.size(), text.size() + s.size()});
    text += s;
    return *this;
  }
  /// Appends content from a user, a system prompt or a document (never control tokens).
  MarkedText& content(std::string_view s) {
    text += s;
    return *this;
  }
};

struct DecodeOptions {
  bool skip_special = false;  // control and unknown-type tokens produce no text
};

class Tokenizer {
 public:
  /// Builds the tokenizer of `vocab` (validated first; format_error / config_error naming
  /// `source` when it is inconsistent or uses something precis does not implement).
  explicit Tokenizer(Vocab vocab, std::string_view source = "vocabulary")
      : impl_(std::make_shared<const Impl>(std::move(vocab), source)) {}

  /// The tokenizer in a GGUF file's `tokenizer.ggml.*` metadata.
  [[nodiscard]] static Tokenizer from_gguf(const io::GgufFile& file) {
    return Tokenizer(vocab_from_gguf(file), file.path().string());
  }
  [[nodiscard]] static Tokenizer from_gguf(const std::filesystem::path& gguf) {
    return from_gguf(io::GgufFile::open(gguf));
  }
  /// The tokenizer of a Hugging Face model directory: tokenizer.json (+ tokenizer_config.json,
  /// generation_config.json, chat_template.jinja when present).
  [[nodiscard]] static Tokenizer from_hf(const std::filesystem::path& dir) {
    return Tokenizer(vocab_from_hf(dir), (dir / "tokenizer.json").string());
  }

  [[nodiscard]] std::vector<token_id> encode(std::string_view text, EncodeOptions opt = {}) const {
    return encode_impl(text, opt, nullptr);
  }

  /// `marked.text` with control tokens matched only inside `marked.control` (MarkedText);
  /// opt.parse_special is not used.
  [[nodiscard]] std::vector<token_id> encode(const MarkedText& marked, EncodeOptions opt = {}) const {
    std::size_t prev = 0;
    for (const TextSpan& s : marked.control) {
      if (s.begin < prev || s.end < s.begin || s.end > marked.text.size())
        fail<range_error>("[tokenizer] encode: control span [", s.begin, ", ", s.end,
                          ") is out of order or outside the text of ", marked.text.size(), " bytes");
      prev = s.end;
    }
    return encode_impl(marked.text, opt, &marked.control);
  }

  [[nodiscard]] std::string decode(std::span<const token_id> ids, DecodeOptions opt = {}) const {
    std::string bytes;
    // SPM: undo the space encode prepended to the text — one space at the start of the decoded
    // text, if the first token that yields text is a normal token (HF's Strip(" ", 1, 0) decoder
    // of Llama tokenizers; llama.cpp's detokenize removes it likewise, but keeps it after a
    // skipped BOS).
    bool strip = impl_->vocab.model == vocab_model::spm && impl_->vocab.add_space_prefix;
    for (std::size_t k = 0; k < ids.size(); ++k) {
      check_id(ids[k], "decode", k);
      const std::size_t before = bytes.size();
      impl_->append_bytes(ids[k], opt, bytes);
      if (strip && bytes.size() > before) {
        if (bytes[before] == ' ' && impl_->vocab.type_of(ids[k]) == token_type::normal) bytes.erase(before, 1);
        strip = false;
      }
    }
    return to_valid_utf8(bytes);
  }

  /// The bytes token `id` stands for — possibly part of a UTF-8 character (range_error if `id`
  /// is outside the vocabulary).
  [[nodiscard]] std::string token_bytes(token_id id, DecodeOptions opt = {}) const {
    check_id(id, "token_bytes", 0);
    std::string out;
    impl_->append_bytes(id, opt, out);
    return out;
  }

  /// The raw vocabulary string of `id` (byte-level characters, "▁", "<0x0A>"); range_error if
  /// `id` is outside the vocabulary.
  [[nodiscard]] std::string_view piece(token_id id) const {
    check_id(id, "piece", 0);
    return impl_->vocab.tokens[static_cast<std::size_t>(id)];
  }

  [[nodiscard]] std::size_t vocab_size() const noexcept { return impl_->vocab.size(); }
  [[nodiscard]] std::optional<token_id> bos() const noexcept { return impl_->vocab.bos; }
  [[nodiscard]] std::optional<token_id> eos() const noexcept { return impl_->vocab.eos; }
  [[nodiscard]] token_type type(token_id id) const {
    check_id(id, "type", 0);
    return impl_->vocab.type_of(id);
  }

  /// EOS, EOT, EOM and the tokens that end a turn by name (llama.cpp's EOG list: <|im_end|>,
  /// <|eot_id|>, <|endoftext|>, <end_of_turn>, <|return|>, <|call|>, ...); false for any id
  /// outside the vocabulary.
  [[nodiscard]] bool is_end_of_generation(token_id id) const noexcept {
    return std::binary_search(impl_->eog.begin(), impl_->eog.end(), id);
  }
  [[nodiscard]] const std::vector<token_id>& end_of_generation_ids() const noexcept { return impl_->eog; }

  /// Exact vocabulary lookup of a raw piece.
  [[nodiscard]] std::optional<token_id> find(std::string_view piece) const {
    const auto it = impl_->ids.find(piece);
    if (it == impl_->ids.end()) return std::nullopt;
    return it->second;
  }

  [[nodiscard]] const std::string& chat_template() const noexcept { return impl_->vocab.chat_template; }
  /// "gpt2/<pre>" (byte-level BPE and its pre-tokenizer) or "llama" (SentencePiece BPE).
  [[nodiscard]] std::string_view kind() const noexcept { return impl_->kind; }
  [[nodiscard]] const Vocab& vocab() const noexcept { return impl_->vocab; }

 private:
  [[nodiscard]] std::vector<token_id> encode_impl(std::string_view text, EncodeOptions opt,
                                                 const std::vector<TextSpan>* control) const {
    const Impl& m = *impl_;
    if (const auto bad = find_invalid_utf8(text))
      fail<format_error>("[tokenizer] encode: the text is not valid UTF-8: byte 0x", hex_byte(text[*bad]),
                         " at offset ", *bad, " of ", text.size());
    std::vector<token_id> out;
    if (opt.add_bos && m.vocab.add_bos) out.push_back(*m.vocab.bos);
    const auto& specials = opt.parse_special ? m.special_all : m.special_user;
    // With control spans: the span holding position i (or the next one), walked forward.
    std::size_t span = 0;
    const auto match_at = [&](std::size_t i) -> const Special* {
      if (control == nullptr) return specials.match(text, i);
      while (span < control->size() && (*control)[span].end <= i) ++span;
      if (span < control->size() && (*control)[span].begin <= i) {
        const Special* hit = m.special_all.match(text, i);
        // A control token must be spelled wholly by the markup; else only user-defined tokens.
        if (hit != nullptr && i + hit->text.size() <= (*control)[span].end) return hit;
      }
      return m.special_user.match(text, i);
    };
    bool prev_special = true;  // SPM: the start of the text counts as "after a special token"
    std::size_t raw_begin = 0, i = 0;
    std::string scratch;
    std::vector<std::pair<std::size_t, std::size_t>> pieces;
    const auto flush_raw = [&](std::size_t end) {
      if (end > raw_begin) {
        m.encode_raw(text.substr(raw_begin, end - raw_begin), prev_special, out, scratch, pieces);
        prev_special = false;
      }
    };
    while (i < text.size()) {
      const Special* hit = match_at(i);
      if (hit == nullptr) {
        ++i;
        continue;
      }
      std::size_t left_end = i;
      if (hit->lstrip)
        while (left_end > raw_begin && is_ascii_space(text[left_end - 1])) --left_end;
      flush_raw(left_end);
      out.push_back(hit->id);
      prev_special = true;
      i += hit->text.size();
      if (hit->rstrip)
        while (i < text.size() && is_ascii_space(text[i])) ++i;
      raw_begin = i;
    }
    flush_raw(text.size());
    if (opt.add_eos && m.vocab.add_eos) out.push_back(*m.vocab.eos);
    return out;
  }
  struct Special {
    std::string_view text;
    token_id id;
    bool lstrip, rstrip;
  };

  /// Special pieces grouped by first byte, longest first: the first that matches at a position
  /// is the longest one starting there.
  struct SpecialSet {
    std::vector<Special> by_first[256];
    bool any = false;

    void add(const Special& s) {
      by_first[static_cast<std::uint8_t>(s.text[0])].push_back(s);
      any = true;
    }
    void finish() {
      for (auto& v : by_first)
        std::stable_sort(v.begin(), v.end(), [](const Special& a, const Special& b) { return a.text.size() > b.text.size(); });
    }
    [[nodiscard]] const Special* match(std::string_view text, std::size_t i) const {
      if (!any) return nullptr;
      for (const Special& s : by_first[static_cast<std::uint8_t>(text[i])])
        if (text.compare(i, s.text.size(), s.text) == 0) return &s;
      return nullptr;
    }
  };

  struct Impl {
    Vocab vocab;
    std::unordered_map<std::string_view, token_id> ids;  // views into vocab.tokens (never moved again)
    BpeModel bpe;
    SpmModel spm;
    PreTokenizer pre;
    SpecialSet special_all, special_user;
    std::vector<token_id> eog;  // sorted
    std::string kind;

    Impl(Vocab v, std::string_view source) : vocab(std::move(v)) {
      vocab.validate(source);
      ids.reserve(vocab.size());
      for (std::size_t i = 0; i < vocab.size(); ++i) ids.emplace(vocab.tokens[i], static_cast<token_id>(i));
      if (vocab.model == vocab_model::bpe) {
        if (vocab.pre_steps.empty() && !vocab.pre.empty()) vocab.pre_steps = pretokenizer_for(vocab.pre);
        pre = PreTokenizer(vocab.pre_steps, source);
        bpe = BpeModel(vocab, ids, source);
        kind = "gpt2/" + (vocab.pre.empty() ? std::string("none") : vocab.pre);
      } else {
        spm = SpmModel(vocab, ids);
        kind = "llama";
      }
      build_specials();
      build_eog();
    }

    void build_specials() {
      const auto in = [](const std::vector<token_id>& v, token_id id) { return std::find(v.begin(), v.end(), id) != v.end(); };
      for (std::size_t i = 0; i < vocab.size(); ++i) {
        const auto id = static_cast<token_id>(i);
        const token_type t = vocab.type_of(id);
        if (t != token_type::control && t != token_type::user_defined && t != token_type::unknown) continue;
        // A piece that is not valid UTF-8 could match inside a character and leave invalid UTF-8
        // for the regexes (matched with PCRE2_NO_UTF_CHECK); no valid text can contain it anyway.
        if (!is_valid_utf8(vocab.tokens[i])) continue;
        const Special s{vocab.tokens[i], id, in(vocab.lstrip, id), in(vocab.rstrip, id)};
        special_all.add(s);
        if (t == token_type::user_defined) special_user.add(s);
      }
      special_all.finish();
      special_user.finish();
    }

    // llama.cpp llama_vocab::impl::load, "special_eog_ids": EOS, EOT, EOM, and tokens known by
    // name to end a turn; for OpenAI's harmony format (<|return|> and <|call|> present), <|end|>
    // only ends a message, not the generation, and is left out.
    void build_eog() {
      const auto add = [&](std::optional<token_id> id) {
        if (id) eog.push_back(*id);
      };
      add(vocab.eos);
      add(vocab.eot);
      add(vocab.eom);
      for (const token_id id : vocab.eog_extra) eog.push_back(id);
      static constexpr std::string_view names[] = {
          "<|eot_id|>", "<|im_end|>",      "<|end|>", "<|return|>",      "<|call|>",
          "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "<|end_of_text|>", "<end_of_utterance>"};
      for (const auto name : names)
        if (const auto it = ids.find(name); it != ids.end()) eog.push_back(it->second);
      const bool harmony = ids.count("<|return|>") != 0 && ids.count("<|call|>") != 0;
      if (harmony) {
        if (const auto it = ids.find("<|end|>"); it != ids.end()) std::erase(eog, it->second);
      }
      std::sort(eog.begin(), eog.end());
      eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
    }

    /// Tokenizes one stretch of text that holds no special token.
    void encode_raw(std::string_view raw, bool after_special, std::vector<token_id>& out, std::string& scratch,
                    std::vector<std::pair<std::size_t, std::size_t>>& pieces) const {
      std::string normalized;
      if (vocab.normalize_nfc && !nfc_quick_check(raw)) {
        normalized = nfc(raw);
        raw = normalized;
      }
      if (vocab.model == vocab_model::spm) {
        scratch.clear();
        if (vocab.add_space_prefix && after_special) scratch += "\xE2\x96\x81";  // "▁"
        for (const char c : raw) {
          if (c == ' ') scratch += "\xE2\x96\x81";
          else scratch += c;
        }
        spm.encode(scratch, ids, out);
        return;
      }
      std::string_view text = raw;
      if (vocab.byte_level_add_prefix_space && raw.front() != ' ') {
        scratch.assign(" ").append(raw);
        text = scratch;
      }
      pre.split(text, pieces);
      for (const auto& [b, e] : pieces) bpe.encode(text.substr(b, e - b), ids, out);
    }

    void append_bytes(token_id id, const DecodeOptions& opt, std::string& out) const {
      const std::string& p = vocab.tokens[static_cast<std::size_t>(id)];
      switch (vocab.type_of(id)) {
        case token_type::control:
        case token_type::unknown:
          if (!opt.skip_special) out += p;
          return;
        case token_type::user_defined:
          out += p;
          return;
        case token_type::byte:
          if (vocab.model == vocab_model::spm) {
            if (const auto b = parse_byte_piece(p)) {
              out += static_cast<char>(*b);
              return;
            }
          }
          break;
        default:
          break;
      }
      if (vocab.model == vocab_model::bpe) {
        byte_level_decode(p, out);
      } else {
        for (std::size_t i = 0; i < p.size();) {
          if (p.compare(i, 3, "\xE2\x96\x81") == 0) {
            out += ' ';
            i += 3;
          } else {
            out += p[i++];
          }
        }
      }
    }
  };

  static std::optional<std::uint8_t> parse_byte_piece(std::string_view p) {
    if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return std::nullopt;
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = hex(p[3]), lo = hex(p[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<std::uint8_t>(hi * 16 + lo);
  }

  static bool is_ascii_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  }
  static std::string hex_byte(char c) {
    static constexpr char digits[] = "0123456789ABCDEF";
    const auto b = static_cast<std::uint8_t>(c);
    return {digits[b >> 4], digits[b & 15]};
  }

  void check_id(token_id id, std::string_view op, std::size_t position) const {
    if (id < 0 || static_cast<std::size_t>(id) >= impl_->vocab.size())
      fail<range_error>("[tokenizer] ", op, ": token id ", id, " at position ", position,
                        " is outside the vocabulary [0, ", impl_->vocab.size(), ")");
  }

  std::shared_ptr<const Impl> impl_;
};

}  // namespace precis::text
