// precis/text/byte_level.hpp — GPT-2's byte-to-character table ("byte-level" BPE alphabet).
//
// A byte-level BPE (GPT-2, SmolLM2, Qwen, Llama-3, gpt-oss) works on BYTES, but its vocabulary
// and merges are stored as text. GPT-2's encoder.py (`bytes_to_unicode`) maps each of the 256
// byte values to one printable character: the 188 bytes that are printable Latin-1 characters
// ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves, and the other 68 (controls, space, DEL,
// NBSP, soft hyphen...) map, in increasing byte order, to U+0100, U+0101, ... U+0143. So a space
// is 'Ġ' (U+0120) and a newline 'Ċ' (U+010A) in every such vocabulary. The same table is
// HF tokenizers' ByteLevel pre-tokenizer/decoder (`bytes_char`) and llama.cpp's
// unicode_byte_to_utf8.
//
// A token's string is therefore a sequence of these characters, one per byte; `byte_level_decode`
// maps it back to bytes. A character outside the table (only in hand-edited or added tokens) is
// passed through as its own UTF-8, as HF's ByteLevel decoder does.
#pragma once

#include <array>        // std::array
#include <cstdint>      // std::int16_t, std::uint8_t
#include <string>       // std::string
#include <string_view>  // std::string_view

#include <precis/text/utf8.hpp>  // append_utf8, utf8_decode_at, utf8_char_length

namespace precis::text {

namespace detail {

struct ByteLevelTables {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<std::int16_t, 0x144> cp_to_byte{};  // code points 0..0x143; -1 where none
};

[[nodiscard]] constexpr ByteLevelTables make_byte_level_tables() noexcept {
  ByteLevelTables t{};
  for (auto& v : t.cp_to_byte) v = -1;
  const auto printable = [](unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  char32_t next = 0x100;
  for (unsigned b = 0; b < 256; ++b) {
    const char32_t cp = printable(b) ? char32_t(b) : next++;
    t.byte_to_cp[b] = cp;
    t.cp_to_byte[cp] = static_cast<std::int16_t>(b);
  }
  return t;
}

inline constexpr ByteLevelTables byte_level_tables = make_byte_level_tables();
static_assert(byte_level_tables.byte_to_cp[' '] == 0x120, "GPT-2: space is U+0120 'Ġ'");
static_assert(byte_level_tables.byte_to_cp['\n'] == 0x10A, "GPT-2: newline is U+010A 'Ċ'");
static_assert(byte_level_tables.byte_to_cp[0xAD] == 0x143, "GPT-2: the 68th remapped byte is U+0143");

}  // namespace detail

/// The byte-level character (as UTF-8) that stands for byte `b`.
[[nodiscard]] inline const std::string& byte_level_char(std::uint8_t b) {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    for (unsigned i = 0; i < 256; ++i) append_utf8(t[i], detail::byte_level_tables.byte_to_cp[i]);
    return t;
  }();
  return table[b];
}

/// The byte-level string of arbitrary bytes (every byte becomes one character).
[[nodiscard]] inline std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) out += byte_level_char(static_cast<std::uint8_t>(c));
  return out;
}

/// The bytes a byte-level token string stands for. `s` is expected to be valid UTF-8; characters
/// outside the table pass through unchanged (HF tokenizers' ByteLevel decoder does the same).
inline void byte_level_decode(std::string_view s, std::string& out) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t start = i;
    const char32_t cp = utf8_decode_at(s, i);
    if (cp < detail::byte_level_tables.cp_to_byte.size() && detail::byte_level_tables.cp_to_byte[cp] >= 0) {
      out += static_cast<char>(static_cast<std::uint8_t>(detail::byte_level_tables.cp_to_byte[cp]));
    } else {
      out.append(s.substr(start, i - start));
    }
  }
}

[[nodiscard]] inline std::string byte_level_decode(std::string_view s) {
  std::string out;
  byte_level_decode(s, out);
  return out;
}

}  // namespace precis::text
