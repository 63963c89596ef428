// precis/text/nfc.hpp — Unicode Normalization Form C, for tokenizers whose tokenizer.json asks
// for it (Qwen2 / Qwen2.5 / Qwen3: `"normalizer": {"type": "NFC"}`).
//
// The algorithm is UAX #15 (Unicode Normalization Forms), §§ 1.3, 3, 9 and 14:
//   1. quick check: a text with no code point that can change under NFC (NFC_Quick_Check = No or
//      Maybe, or a combining mark) is already in NFC — most text, and all ASCII, stops here;
//   2. full canonical decomposition (recursive; Hangul syllables arithmetically, § 3.12 of the
//      Unicode Standard);
//   3. canonical ordering: within each run of non-starters, a stable sort by combining class;
//   4. canonical composition: each character composes with the last starter when it is not
//      blocked (no character in between with a combining class of 0 or >= its own) and the pair
//      is a primary composite (not a composition exclusion); Hangul L+V and LV+T arithmetically.
// Tables: unicode_nfc_data.hpp (Unicode 14, generated from Python's unicodedata). HF tokenizers
// runs the same normalization (the unicode-normalization crate); llama.cpp applies none, so a Qwen
// GGUF tokenized by llama.cpp — and by precis' from_gguf — is not normalized.
#pragma once

#include <algorithm>    // std::lower_bound, std::stable_sort
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include <precis/text/unicode_nfc_data.hpp>  // detail::nfc_ccc, nfc_decomp, nfc_compose, nfc_unstable
#include <precis/text/utf8.hpp>              // utf8_decode_at, append_utf8

namespace precis::text {

namespace detail {

inline constexpr char32_t hangul_s_base = 0xAC00, hangul_l_base = 0x1100, hangul_v_base = 0x1161,
                          hangul_t_base = 0x11A7;
inline constexpr char32_t hangul_l_count = 19, hangul_v_count = 21, hangul_t_count = 28;
inline constexpr char32_t hangul_n_count = hangul_v_count * hangul_t_count;  // 588
inline constexpr char32_t hangul_s_count = hangul_l_count * hangul_n_count;  // 11172

[[nodiscard]] inline std::uint8_t nfc_combining_class(char32_t cp) noexcept {
  const auto it = std::lower_bound(std::begin(nfc_ccc), std::end(nfc_ccc), cp,
                                   [](const NfcCccRange& r, char32_t c) { return r.last < c; });
  return (it != std::end(nfc_ccc) && it->first <= cp) ? it->ccc : 0;
}

[[nodiscard]] inline bool nfc_is_unstable(char32_t cp) noexcept {
  if (cp < 0x300) return false;  // below the first combining mark every character is stable
  const auto it = std::lower_bound(std::begin(nfc_unstable), std::end(nfc_unstable), cp,
                                   [](const NfcRange& r, char32_t c) { return r.last < c; });
  return it != std::end(nfc_unstable) && it->first <= cp;
}

inline void nfc_decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= hangul_s_base && cp < hangul_s_base + hangul_s_count) {
    const char32_t s = cp - hangul_s_base;
    out.push_back(hangul_l_base + s / hangul_n_count);
    out.push_back(hangul_v_base + (s % hangul_n_count) / hangul_t_count);
    if (s % hangul_t_count != 0) out.push_back(hangul_t_base + s % hangul_t_count);
    return;
  }
  const auto it = std::lower_bound(std::begin(nfc_decomp), std::end(nfc_decomp), cp,
                                   [](const NfcDecomp& d, char32_t c) { return d.cp < c; });
  if (it == std::end(nfc_decomp) || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  nfc_decompose(it->first, out);
  if (it->second != 0) nfc_decompose(it->second, out);
}

/// The primary composite of (a, b), or 0.
[[nodiscard]] inline char32_t nfc_compose_pair(char32_t a, char32_t b) noexcept {
  if (a >= hangul_l_base && a < hangul_l_base + hangul_l_count && b >= hangul_v_base &&
      b < hangul_v_base + hangul_v_count)
    return hangul_s_base + ((a - hangul_l_base) * hangul_v_count + (b - hangul_v_base)) * hangul_t_count;
  if (a >= hangul_s_base && a < hangul_s_base + hangul_s_count && (a - hangul_s_base) % hangul_t_count == 0 &&
      b > hangul_t_base && b < hangul_t_base + hangul_t_count)
    return a + (b - hangul_t_base);
  const auto it = std::lower_bound(std::begin(nfc_compose), std::end(nfc_compose), NfcCompose{a, b, 0},
                                   [](const NfcCompose& x, const NfcCompose& y) {
                                     return x.first != y.first ? x.first < y.first : x.second < y.second;
                                   });
  return (it != std::end(nfc_compose) && it->first == a && it->second == b) ? it->composite : 0;
}

}  // namespace detail

/// Whether the quick check already proves `s` (valid UTF-8) to be in NFC.
[[nodiscard]] inline bool nfc_quick_check(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0xCC) {  // every code point below U+0300
      i += utf8_char_length(s.substr(i));
      continue;
    }
    if (detail::nfc_is_unstable(utf8_decode_at(s, i))) return false;
  }
  return true;
}

/// `s` (valid UTF-8) in Normalization Form C.
[[nodiscard]] inline std::string nfc(std::string_view s) {
  if (nfc_quick_check(s)) return std::string(s);
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) detail::nfc_decompose(utf8_decode_at(s, i), cps);
  // Canonical ordering: stable-sort each run of non-starters by combining class.
  for (std::size_t i = 0; i < cps.size();) {
    if (detail::nfc_combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < cps.size() && detail::nfc_combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return detail::nfc_combining_class(a) < detail::nfc_combining_class(b); });
    i = j;
  }
  // Canonical composition (UAX #15 § 9). After canonical ordering the non-starters since the
  // last starter have non-decreasing classes, so `cp` is blocked from the starter exactly when
  // something was appended after the starter and the last such character's class is 0 or >= its own.
  std::vector<char32_t> out;
  out.reserve(cps.size());
  constexpr std::size_t none = static_cast<std::size_t>(-1);
  std::size_t starter = none;
  int last_class = 0;  // combining class of the last character appended
  for (const char32_t cp : cps) {
    const int cls = detail::nfc_combining_class(cp);
    if (starter != none) {
      const bool adjacent = out.size() == starter + 1;
      if (adjacent || (last_class != 0 && last_class < cls)) {
        if (const char32_t c = detail::nfc_compose_pair(out[starter], cp); c != 0) {
          out[starter] = c;
          continue;
        }
      }
    }
    if (cls == 0) starter = out.size();
    last_class = cls;
    out.push_back(cp);
  }
  std::string r;
  r.reserve(s.size());
  for (const char32_t cp : out) append_utf8(r, cp);
  return r;
}

}  // namespace precis::text
