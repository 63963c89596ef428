// precis/text/regex.hpp — a compiled PCRE2 pattern with Unicode semantics, for pre-tokenizers.
//
// Pre-tokenizer patterns (GPT-2's `'s|'t|...| ?\p{L}+| ?\p{N}+|...`, Llama-3's, Qwen2's, o200k's)
// are written for Oniguruma (HF tokenizers) or for Python's `regex`: they need Unicode property
// classes (\p{L}, \p{N}, \p{Lu}, \p{M}), lookahead (`\s+(?!\S)`) and scoped case-insensitivity
// (`(?i:'s|'t)`). PCRE2 (Debian's libpcre2-8) has all of them; it is compiled with PCRE2_UTF
// (the subject is UTF-8, matched by character) and PCRE2_UCP (\d \s \w and POSIX classes use
// Unicode properties), and JIT-compiled when the library supports it.
//
// One deliberate rewrite: `\s` / `\S` become `\p{White_Space}` / `\P{White_Space}`. Under
// PCRE2_UCP, \s is PCRE2's own "space" list (pcre2pattern(3), "Generic character types"), which
// still holds U+180E MONGOLIAN VOWEL SEPARATOR — a format character (Cf) since Unicode 6.3, and
// not White_Space. Oniguruma's Unicode \s — what HF tokenizers runs — and llama.cpp's
// unicode_cpt_flags whitespace are the White_Space property: with PCRE2's \s, "!\u180E!" would
// be three pieces where HF has one. (PCRE2 >= 10.40 knows Boolean properties.)
//
// A Regex is immutable after construction and shares its compiled code between copies; `for_each_match`
// allocates its own match data, so one Regex can be used from several threads at once.
#pragma once

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#if PCRE2_CODE_UNIT_WIDTH != 8
#error "precis::text needs the 8-bit PCRE2 API (PCRE2_CODE_UNIT_WIDTH 8)"
#endif
#include <pcre2.h>  // pcre2_compile, pcre2_jit_compile, pcre2_match, pcre2_match_data_*

#include <cstddef>      // std::size_t
#include <cstdint>      // UINT32_MAX
#include <memory>       // std::shared_ptr, std::unique_ptr
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move

#include <precis/core/error.hpp>  // precis::config_error, precis::error, fail
#include <precis/text/utf8.hpp>   // utf8_char_length

namespace precis::text {

namespace detail {

[[nodiscard]] inline std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  const int n = pcre2_get_error_message(code, buf, sizeof(buf));
  return n < 0 ? "PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<const char*>(buf));
}

/// `\s` -> `\p{White_Space}`, `\S` -> `\P{White_Space}` (see the header comment), leaving every
/// other escape (including an escaped backslash followed by 's') untouched.
[[nodiscard]] inline std::string rewrite_whitespace_class(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's') out += "\\p{White_Space}";
      else if (next == 'S') out += "\\P{White_Space}";
      else {
        out += '\\';
        out += next;
      }
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

}  // namespace detail

class Regex {
 public:
  /// Compiles `pattern`; config_error naming `where`, the pattern and PCRE2's message (with the
  /// offset) if PCRE2 refuses it.
  Regex(std::string_view pattern, std::string_view where) : pattern_(pattern) {
    const std::string rewritten = detail::rewrite_whitespace_class(pattern);
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                   PCRE2_UTF | PCRE2_UCP, &code, &offset, nullptr);
    if (re == nullptr)
      fail<config_error>("[tokenizer] ", where, ": cannot compile the pre-tokenizer regex '", pattern,
                         "': ", detail::pcre2_message(code), " at offset ", offset, " of '", rewritten, "'");
    code_ = std::shared_ptr<pcre2_code>(re, pcre2_code_free);
    // JIT is an optimisation: where the library or the machine lacks it, the interpreter runs.
    jit_ = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    // PCRE2's default match limit (10 million backtracking steps) is reached by LINEAR work on
    // long inputs: on 20 MB of spaces, `\s*[\r\n]+` scans to the end before failing. The
    // pre-tokenizer patterns have no nested quantifiers, so no catastrophic backtracking can
    // hide behind a raised limit; a text is refused only for lack of memory.
    pcre2_match_context* mc = pcre2_match_context_create(nullptr);
    if (mc == nullptr) fail<error>("[tokenizer] out of memory creating a PCRE2 match context");
    context_ = std::shared_ptr<pcre2_match_context>(mc, pcre2_match_context_free);
    pcre2_set_match_limit(mc, UINT32_MAX);
  }

  [[nodiscard]] const std::string& pattern() const noexcept { return pattern_; }

  /// Calls `on_match(begin, end)` (byte offsets into `subject`) for every match, left to right,
  /// each search starting where the previous match ended (an empty match moves on by one
  /// character). `subject` must be valid UTF-8 (the tokenizer checks it once, up front).
  template <class F>
  void for_each_match(std::string_view subject, F&& on_match) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
    if (!md) fail<error>("[tokenizer] out of memory creating PCRE2 match data for '", pattern_, "'");
    const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
    std::size_t start = 0;
    while (start <= subject.size()) {
      int rc = pcre2_match(code_.get(), s, subject.size(), start, PCRE2_NO_UTF_CHECK, md.get(), context_.get());
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        // A long backtracking match overflowed JIT's machine stack: the interpreter, which
        // keeps its backtracking state on the heap, gets the same answer.
        rc = pcre2_match(code_.get(), s, subject.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md.get(),
                         context_.get());
      }
      if (rc == PCRE2_ERROR_NOMATCH) return;
      if (rc < 0)
        fail<error>("[tokenizer] regex '", pattern_, "' failed at byte ", start, " of a ", subject.size(),
                    "-byte text: ", detail::pcre2_message(rc));
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      const std::size_t b = ov[0], e = ov[1];
      if (e > b) {
        on_match(b, e);
        start = e;
      } else {
        on_match(b, e);
        if (b >= subject.size()) return;
        start = b + utf8_char_length(subject.substr(b));
      }
    }
  }

  /// Whether PCRE2's JIT compiled the pattern (for diagnostics).
  [[nodiscard]] bool jit() const noexcept { return jit_; }

 private:
  std::string pattern_;
  std::shared_ptr<pcre2_code> code_;
  std::shared_ptr<pcre2_match_context> context_;
  bool jit_ = false;
};

}  // namespace precis::text
