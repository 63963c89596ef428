// UTF-8 validation and lossy decoding (utf8.hpp), and GPT-2's byte-level table (byte_level.hpp).
//
// Reference values: well-formedness is the Unicode Standard's Table 3-7; the U+FFFD counts for
// ill-formed input are the "maximal subparts" examples of Unicode ch. 3 §3.9 (Table 3-8:
// "61 F1 80 80 E1 80 C2 62 80 63 80 BF 64" decodes to a, FFFD, FFFD, FFFD, b, FFFD, c, FFFD,
// FFFD, d), which is also what Python's bytes.decode('utf-8', 'replace') and Rust's
// String::from_utf8_lossy give. The byte-level table is GPT-2's encoder.py bytes_to_unicode.
#include <string>       // std::string
#include <string_view>  // std::string_view

#include <catch2/catch.hpp>  // TEST_CASE, CHECK, SECTION

#include <precis/text/byte_level.hpp>  // byte_level_char, byte_level_encode, byte_level_decode
#include <precis/text/utf8.hpp>        // find_invalid_utf8, to_valid_utf8, Utf8Decoder

using namespace precis::text;

namespace {
const std::string FFFD(utf8_replacement);
}

TEST_CASE("UTF-8 validation follows Table 3-7", "[text][utf8]") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ASCII"));
  CHECK(is_valid_utf8("\xC3\xA4pfel \xF0\x9F\xA6\x99 \xE2\x82\xAC"));  // äpfel 🦙 €
  CHECK(is_valid_utf8("\xF4\x8F\xBF\xBF"));                             // U+10FFFF
  CHECK(find_invalid_utf8("ab\x80") == 2);                              // lone continuation byte
  CHECK(find_invalid_utf8("\xC0\xAF") == 0);                            // overlong '/'
  CHECK(find_invalid_utf8("\xE0\x80\xAF") == 0);                        // overlong 3-byte
  CHECK(find_invalid_utf8("x\xED\xA0\x80") == 1);                       // surrogate D800
  CHECK(find_invalid_utf8("\xF4\x90\x80\x80") == 0);                    // U+110000
  CHECK(find_invalid_utf8("\xF5\x80\x80\x80") == 0);
  CHECK(find_invalid_utf8("abc\xE2\x82") == 3);                         // truncated at the end
  CHECK(find_invalid_utf8("\xFF") == 0);
}

TEST_CASE("Lossy decoding replaces maximal subparts (Unicode Table 3-8)", "[text][utf8]") {
  const std::string in = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const std::string want = "a" + FFFD + FFFD + FFFD + "b" + FFFD + "c" + FFFD + FFFD + "d";
  CHECK(to_valid_utf8(in) == want);
  CHECK(to_valid_utf8("\xE2\x82") == FFFD);  // a truncated sequence at the end is one U+FFFD
  CHECK(to_valid_utf8("ok") == "ok");

  SECTION("the same, one byte at a time") {
    Utf8Decoder d;
    std::string out;
    for (const char c : in) out += d.push(std::string_view(&c, 1));
    out += d.finish();
    CHECK(out == want);
  }
}

TEST_CASE("Utf8Decoder holds an unfinished character back until it completes", "[text][utf8]") {
  Utf8Decoder d;
  CHECK(d.push("a\xF0\x9F") == "a");  // 🦙 = F0 9F A6 99
  CHECK(d.pending() == 2);
  CHECK(d.push("\xA6").empty());
  CHECK(d.push("\x99!") == "\xF0\x9F\xA6\x99!");
  CHECK(d.pending() == 0);
  // An unfinished prefix interrupted by a new lead byte is one U+FFFD, and the new byte stands.
  CHECK(d.push("\xE2\x82").empty());
  CHECK(d.push("\xC3\xA4") == FFFD + "\xC3\xA4");
  // finish() turns a held-back prefix into U+FFFD and resets.
  CHECK(d.push("\xF0").empty());
  CHECK(d.finish() == FFFD);
  CHECK(d.finish().empty());
}

TEST_CASE("GPT-2 byte-level alphabet", "[text][byte_level]") {
  CHECK(byte_level_char(' ') == "\xC4\xA0");   // 'Ġ' U+0120
  CHECK(byte_level_char('\n') == "\xC4\x8A");  // 'Ċ' U+010A
  CHECK(byte_level_char('A') == "A");
  CHECK(byte_level_char(0xE9) == "\xC3\xA9");  // 'é' is printable Latin-1: itself
  CHECK(byte_level_char(0x00) == "\xC4\x80");  // 'Ā' U+0100, the first remapped byte
  CHECK(byte_level_char(0xAD) == "\xC5\x83");  // soft hyphen -> U+0143, the last
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  CHECK(byte_level_decode(byte_level_encode(all)) == all);
  // Characters outside the table pass through (HF's ByteLevel decoder does the same).
  CHECK(byte_level_decode("\xE2\x82\xAC") == "\xE2\x82\xAC");
}
