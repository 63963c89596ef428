// precis/text/utf8.hpp — UTF-8 validation, encoding, and lossy (U+FFFD) decoding, whole or streamed.
//
// Tokenizers meet UTF-8 at both ends. On the way in, the text must be valid UTF-8: PCRE2 with
// PCRE2_UTF assumes it (a match on invalid UTF-8 is an error, or undefined with
// PCRE2_NO_UTF_CHECK), and a byte-level BPE would otherwise silently tokenize garbage. On the way
// out, a token is a run of BYTES (a byte-level BPE token, a SentencePiece <0xNN> token) and a
// character may span several tokens — an emoji is often four byte tokens — so the bytes of one
// token are not, in general, valid UTF-8 on their own.
//
// Well-formedness is the Unicode Standard's Table 3-7 (ch. 3, "Well-Formed UTF-8 Byte
// Sequences"): no overlong forms (C0, C1, E0 80..9F, F0 80..8F), no surrogates (ED A0..BF), nothing
// above U+10FFFF (F4 90.., F5..FF). Invalid input is replaced by "maximal subparts" (Unicode ch. 3
// §3.9, "U+FFFD Substitution of Maximal Subparts"): each maximal prefix of a well-formed sequence
// that cannot be completed becomes one U+FFFD, and a byte that cannot start one becomes one U+FFFD.
// That is the practice of the WHATWG Encoding Standard and of Rust's String::from_utf8_lossy — the
// function HF tokenizers' `decode` uses — so `Utf8Decoder` and `to_valid_utf8` agree with it
// byte for byte, whether the bytes arrive at once or one at a time.
#pragma once

#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view

namespace precis::text {

/// U+FFFD REPLACEMENT CHARACTER in UTF-8.
inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD";

namespace detail {

/// For a lead byte: the sequence length (1..4), or 0 if the byte cannot start a sequence.
[[nodiscard]] constexpr std::size_t utf8_length_of_lead(unsigned char b) noexcept {
  if (b < 0x80) return 1;
  if (b < 0xC2) return 0;  // continuation bytes, and the overlong leads C0 C1
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  if (b < 0xF5) return 4;
  return 0;  // F5..FF would encode beyond U+10FFFF
}

/// The valid range of the SECOND byte after `lead` (Table 3-7); later bytes are always 80..BF.
[[nodiscard]] constexpr bool utf8_second_ok(unsigned char lead, unsigned char b) noexcept {
  switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;  // no overlong 3-byte forms
    case 0xED: return b >= 0x80 && b <= 0x9F;  // no surrogates D800..DFFF
    case 0xF0: return b >= 0x90 && b <= 0xBF;  // no overlong 4-byte forms
    case 0xF4: return b >= 0x80 && b <= 0x8F;  // nothing above U+10FFFF
    default: return b >= 0x80 && b <= 0xBF;
  }
}

/// How a well-formed sequence starting at s[0] fares: `complete` (its length in `n`), `truncated`
/// (the bytes present are a valid prefix but the input ends), or `invalid` (`n` = length of the
/// maximal subpart, at least 1).
enum class utf8_scan { complete, truncated, invalid };
struct Utf8Step {
  utf8_scan kind;
  std::size_t n;
};

[[nodiscard]] constexpr Utf8Step utf8_step(std::string_view s) noexcept {
  const auto lead = static_cast<unsigned char>(s[0]);
  const std::size_t len = utf8_length_of_lead(lead);
  if (len == 0) return {utf8_scan::invalid, 1};
  for (std::size_t i = 1; i < len; ++i) {
    if (i >= s.size()) return {utf8_scan::truncated, i};
    const auto b = static_cast<unsigned char>(s[i]);
    const bool ok = (i == 1) ? utf8_second_ok(lead, b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return {utf8_scan::invalid, i};
  }
  return {utf8_scan::complete, len};
}

}  // namespace detail

/// The byte offset of the first byte that is not part of a well-formed UTF-8 sequence, or
/// nullopt when all of `s` is valid UTF-8.
[[nodiscard]] constexpr std::optional<std::size_t> find_invalid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto step = detail::utf8_step(s.substr(i));
    if (step.kind != detail::utf8_scan::complete) return i;
    i += step.n;
  }
  return std::nullopt;
}

[[nodiscard]] constexpr bool is_valid_utf8(std::string_view s) noexcept { return !find_invalid_utf8(s); }

/// Length in bytes of the UTF-8 character starting at s[0] (s must be valid UTF-8, non-empty).
[[nodiscard]] constexpr std::size_t utf8_char_length(std::string_view s) noexcept {
  const std::size_t n = detail::utf8_length_of_lead(static_cast<unsigned char>(s[0]));
  return (n == 0 || n > s.size()) ? 1 : n;
}

/// Decodes the character at s[0] of valid UTF-8 and advances `pos` past it.
[[nodiscard]] constexpr char32_t utf8_decode_at(std::string_view s, std::size_t& pos) noexcept {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  const std::size_t n = utf8_char_length(s.substr(pos));
  char32_t cp = 0;
  switch (n) {
    case 1: cp = b0; break;
    case 2: cp = b0 & 0x1Fu; break;
    case 3: cp = b0 & 0x0Fu; break;
    default: cp = b0 & 0x07u; break;
  }
  for (std::size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<unsigned char>(s[pos + i]) & 0x3Fu);
  pos += n;
  return cp;
}

/// Appends the UTF-8 encoding of `cp` (a scalar value: <= U+10FFFF, not a surrogate; anything
/// else appends U+FFFD).
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    out += utf8_replacement;
  } else if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// Incremental lossy UTF-8 decoding: bytes go in, in pieces of any size; out comes valid UTF-8,
/// each complete character as soon as its last byte arrives, invalid bytes as U+FFFD (maximal
/// subparts). A valid but unfinished prefix at the end of the input so far is held back (at most
/// 3 bytes) until the next push decides it, or `finish` turns it into one U+FFFD.
class Utf8Decoder {
 public:
  /// Appends to `out` everything `bytes` completes.
  void push(std::string_view bytes, std::string& out) {
    if (pending_.empty()) {
      drain(bytes, out);
      return;
    }
    // Complete the held-back prefix first, byte by byte (it is at most 3 bytes long).
    std::size_t used = 0;
    while (!pending_.empty() && used < bytes.size()) {
      pending_ += bytes[used++];
      const auto step = detail::utf8_step(pending_);
      if (step.kind == detail::utf8_scan::truncated) continue;
      if (step.kind == detail::utf8_scan::complete) {
        out += pending_;
        pending_.clear();
      } else {
        // The maximal subpart ends before the byte just added; that byte is looked at afresh.
        out += utf8_replacement;
        --used;
        pending_.clear();
      }
    }
    if (pending_.empty()) drain(bytes.substr(used), out);
  }

  [[nodiscard]] std::string push(std::string_view bytes) {
    std::string out;
    push(bytes, out);
    return out;
  }

  /// Ends the stream: a held-back incomplete sequence becomes one U+FFFD.
  void finish(std::string& out) {
    if (!pending_.empty()) out += utf8_replacement;
    pending_.clear();
  }
  [[nodiscard]] std::string finish() {
    std::string out;
    finish(out);
    return out;
  }

  /// Bytes held back (a valid prefix of an unfinished character).
  [[nodiscard]] std::size_t pending() const noexcept { return pending_.size(); }

 private:
  void drain(std::string_view s, std::string& out) {
    std::size_t i = 0;
    while (i < s.size()) {
      const auto step = detail::utf8_step(s.substr(i));
      switch (step.kind) {
        case detail::utf8_scan::complete: out.append(s.substr(i, step.n)); break;
        case detail::utf8_scan::invalid: out += utf8_replacement; break;
        case detail::utf8_scan::truncated: pending_.assign(s.substr(i)); return;
      }
      i += step.n;
    }
  }

  std::string pending_;
};

/// `s` with every invalid sequence replaced by U+FFFD (maximal subparts, as from_utf8_lossy).
[[nodiscard]] inline std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  Utf8Decoder d;
  d.push(s, out);
  d.finish(out);
  return out;
}

}  // namespace precis::text
