// Tokenizer behaviour on hand-built vocabularies, GGUF files written byte by byte, and small
// tokenizer.json files: BPE merge order, SentencePiece byte fallback, special-token parsing on and
// off, BOS on and off, streaming decode of characters split over tokens, whitespace runs, and
// every kind of bad input (invalid UTF-8, out-of-range ids, malformed or unsupported vocabularies).
//
// Expected ids here are derived by hand from the definitions the headers cite: BPE applies the
// lowest-ranked merge first, leftmost among equals (HF tokenizers word.rs); SentencePiece merges
// the highest-scored pair first and falls back to <0xNN> bytes (llama.cpp llm_tokenizer_spm);
// GPT-2's regex splits "a   b" as "a", "  ", " b" (`\s+(?!\S)` backs off one space).
#include <algorithm>    // std::count, std::find
#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::uint32_t, std::uint64_t
#include <exception>    // std::exception
#include <filesystem>   // std::filesystem
#include <fstream>      // std::ofstream
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <thread>       // std::thread
#include <vector>       // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, CHECK, REQUIRE_THAT, REQUIRE_THROWS_AS
#include <nlohmann/json.hpp>  // nlohmann::json (string escaping for tokenizer.json text)

#include <precis/core/error.hpp>           // precis::format_error, config_error, range_error, io_error
#include <precis/io/gguf.hpp>              // precis::io::GgufFile
#include <precis/text/byte_level.hpp>      // byte_level_char, byte_level_encode
#include <precis/text/spm.hpp>             // spm_byte_piece
#include <precis/text/stream_decoder.hpp>  // precis::text::StreamDecoder
#include <precis/text/tokenizer.hpp>       // precis::text::Tokenizer, Vocab

#include "text_test_support.hpp"  // shared_file, cached_file

using namespace precis::text;
using Catch::Matchers::Contains;
using ids_t = std::vector<token_id>;

namespace {

// --- a byte-level BPE vocabulary --------------------------------------------------------------
// ids 0..255: the byte-level characters in byte order; then merge results; then special tokens.
struct MiniBpe {
  Vocab v;
  token_id id(std::string_view piece) const {
    for (std::size_t i = 0; i < v.tokens.size(); ++i)
      if (v.tokens[i] == piece) return static_cast<token_id>(i);
    FAIL("no piece " << piece);
    return -1;
  }
};

MiniBpe mini_bpe() {
  MiniBpe m;
  Vocab& v = m.v;
  v.model = vocab_model::bpe;
  v.pre = "gpt-2";
  for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_level_char(static_cast<std::uint8_t>(b)));
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"\xC4\xA0", "w"}, {"o", "r"}, {"\xC4\xA0w", "or"},
      {"l", "d"}, {"\xC4\xA0wor", "ld"}, {"b", "c"}, {"a", "b"}, {"a", "a"}, {"\xC4\xA0", "\xC4\xA0"}};
  for (const auto& [a, b] : merges) {
    v.merges.emplace_back(a, b);
    if (std::find(v.tokens.begin(), v.tokens.end(), a + b) == v.tokens.end()) v.tokens.push_back(a + b);
  }
  v.types.assign(v.tokens.size(), token_type::normal);
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im"}) {
    v.tokens.push_back(s);
    v.types.push_back(token_type::control);
  }
  v.tokens.push_back("<tool>");
  v.types.push_back(token_type::user_defined);
  v.bos = static_cast<token_id>(v.tokens.size() - 5);  // <|endoftext|>
  v.eos = v.bos;
  v.add_bos = true;
  return m;
}

// --- a SentencePiece vocabulary ------------------------------------------------------------------
Vocab mini_spm() {
  Vocab v;
  v.model = vocab_model::spm;
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {token_type::unknown, token_type::control, token_type::control};
  v.scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(spm_byte_piece(static_cast<std::uint8_t>(b)));
    v.types.push_back(token_type::byte);
    v.scores.push_back(0);
  }
  // Scores: a higher score merges first.
  const std::vector<std::pair<std::string, float>> pieces = {
      {"\xE2\x96\x81", -1}, {"a", -2}, {"b", -3}, {"c", -4}, {"ab", -5}, {"\xE2\x96\x81" "a", -6},
      {"\xE2\x96\x81" "ab", -7}, {"bc", -1.5f}};
  for (const auto& [p, s] : pieces) {
    v.tokens.push_back(p);
    v.types.push_back(token_type::normal);
    v.scores.push_back(s);
  }
  v.bos = 1;
  v.eos = 2;
  v.unk = 0;
  v.add_bos = true;
  v.add_space_prefix = true;
  return v;
}

/// `f()` must throw E (not another type) with a message `matcher` accepts.
template <class E, class F, class M>
void require_throws(F&& f, const M& matcher) {
  try {
    f();
  } catch (const E& e) {
    REQUIRE_THAT(std::string(e.what()), matcher);
    return;
  } catch (const std::exception& e) {
    FAIL("threw another exception type: " << e.what());
  }
  FAIL("did not throw");
}

std::string stream(const Tokenizer& tok, const ids_t& ids, std::vector<std::string>* parts = nullptr) {
  StreamDecoder d(tok);
  std::string out;
  for (const token_id id : ids) {
    const std::string p = d.push(id);
    if (parts) parts->push_back(p);
    out += p;
  }
  return out + d.finish();
}

// --- a minimal GGUF writer (v3, metadata only) ------------------------------------------------
class GgufWriter {
 public:
  GgufWriter& str(std::string_view key, std::string_view v) {
    kv(key, 8);
    put_str(v);
    return *this;
  }
  GgufWriter& u32(std::string_view key, std::uint32_t v) {
    kv(key, 4);
    put(v, 4);
    return *this;
  }
  GgufWriter& boolean(std::string_view key, bool v) {
    kv(key, 7);
    put(v ? 1 : 0, 1);
    return *this;
  }
  GgufWriter& strings(std::string_view key, const std::vector<std::string>& v) {
    kv(key, 9);
    put(8, 4);
    put(v.size(), 8);
    for (const auto& s : v) put_str(s);
    return *this;
  }
  GgufWriter& i32s(std::string_view key, const std::vector<std::int32_t>& v) {
    kv(key, 9);
    put(5, 4);
    put(v.size(), 8);
    for (const auto x : v) put(static_cast<std::uint32_t>(x), 4);
    return *this;
  }
  [[nodiscard]] precis::io::GgufFile file() const {
    std::vector<std::byte> out;
    const auto app = [&](std::uint64_t v, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
    };
    out.insert(out.end(), {std::byte{'G'}, std::byte{'G'}, std::byte{'U'}, std::byte{'F'}});
    app(3, 4);
    app(0, 8);
    app(n_kv_, 8);
    out.insert(out.end(), kvs_.begin(), kvs_.end());
    return precis::io::GgufFile::parse(std::move(out), "handmade.gguf");
  }

 private:
  void put(std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) kvs_.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
  }
  void put_str(std::string_view s) {
    put(s.size(), 8);
    for (const char c : s) kvs_.push_back(static_cast<std::byte>(c));
  }
  void kv(std::string_view key, std::uint32_t type) {
    put_str(key);
    put(type, 4);
    ++n_kv_;
  }
  std::vector<std::byte> kvs_;
  std::uint64_t n_kv_ = 0;
};

/// A byte-level vocabulary of 258 tokens (bytes, "he", "<|endoftext|>"); `merges` and `types`
/// replace the defaults when given (each key is written once: GGUF refuses duplicate keys).
GgufWriter gpt2_gguf(std::vector<std::string> merges = {"h e"}, std::vector<std::int32_t> types = {}) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_level_char(static_cast<std::uint8_t>(b)));
  tokens.push_back("he");
  tokens.push_back("<|endoftext|>");
  if (types.empty()) {
    types.assign(tokens.size(), 1);
    types.back() = 3;
  }
  GgufWriter w;
  w.str("general.architecture", "llama")
      .str("tokenizer.ggml.model", "gpt2")
      .str("tokenizer.ggml.pre", "gpt-2")
      .strings("tokenizer.ggml.tokens", tokens)
      .i32s("tokenizer.ggml.token_type", types)
      .strings("tokenizer.ggml.merges", merges)
      .u32("tokenizer.ggml.eos_token_id", 257)
      .str("tokenizer.chat_template", "{{ messages }}");
  return w;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("precis_text_" + std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) + "_" +
            std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  void write(const std::string& name, std::string_view text) const {
    std::ofstream(path / name, std::ios::binary) << text;
  }
};

/// The smallest valid byte-level tokenizer.json, with `extra` spliced into the top-level object.
std::string tokenizer_json(std::string_view extra, std::string_view pre = R"({"type": "ByteLevel"})") {
  std::string vocab;
  for (int b = 0; b < 256; ++b) {
    nlohmann::json k = byte_level_char(static_cast<std::uint8_t>(b));
    vocab += (b ? "," : "") + k.dump() + ":" + std::to_string(b);
  }
  return std::string("{\"model\": {\"type\": \"BPE\", \"vocab\": {") + vocab + "}, \"merges\": []}, \"pre_tokenizer\": " +
         std::string(pre) + std::string(extra) + "}";
}

}  // namespace

TEST_CASE("BPE: merges apply lowest rank first, leftmost among equal ranks", "[text][bpe]") {
  const MiniBpe m = mini_bpe();
  const Tokenizer tok(m.v);
  CHECK(tok.kind() == "gpt2/gpt-2");
  CHECK(tok.encode("hello world", {.add_bos = false}) == ids_t{m.id("hello"), m.id("\xC4\xA0world")});
  // "abc": ("b","c") has rank 9, ("a","b") rank 10 -> "a" "bc", never "ab" "c".
  CHECK(tok.encode("abc", {.add_bos = false}) == ids_t{m.id("a"), m.id("bc")});
  // "aaa": both ("a","a") pairs have the same rank; the leftmost merges first.
  CHECK(tok.encode("aaa", {.add_bos = false}) == ids_t{m.id("aa"), m.id("a")});
  // A character with no merges is its bytes: U+1F999 🦙 = F0 9F A6 99.
  CHECK(tok.encode("\xF0\x9F\xA6\x99", {.add_bos = false}) == ids_t{0xF0, 0x9F, 0xA6, 0x99});
  CHECK(tok.decode(tok.encode("hello world \xF0\x9F\xA6\x99", {.add_bos = false})) == "hello world \xF0\x9F\xA6\x99");
}

TEST_CASE("BPE: empty input and whitespace runs", "[text][bpe]") {
  const MiniBpe m = mini_bpe();
  const Tokenizer tok(m.v);
  CHECK(tok.encode("", {.add_bos = false}).empty());
  CHECK(tok.encode("") == ids_t{*tok.bos()});  // BOS alone, as llama.cpp and HF do for ""
  CHECK(tok.decode(ids_t{}).empty());
  // GPT-2's regex: "a", "  ", " b"; "  " merges to "ĠĠ".
  const token_id sp = m.id("\xC4\xA0"), sp2 = m.id("\xC4\xA0\xC4\xA0");
  CHECK(tok.encode("a   b", {.add_bos = false}) == ids_t{'a', sp2, sp, 'b'});
  // A long run of spaces stays fast (O(n log n) merging) and round-trips.
  const std::string spaces(100000, ' ');
  const auto ids = tok.encode(spaces, {.add_bos = false});
  CHECK(ids.size() == 50000);
  CHECK(std::count(ids.begin(), ids.end(), sp2) == 50000);
  CHECK(tok.decode(ids) == spaces);
  // Tabs, newlines, CR LF and U+3000 ideographic space are all kept, byte for byte.
  const std::string ws = "\t\t\n\r\n \xE3\x80\x80 x\n";
  CHECK(tok.decode(tok.encode(ws, {.add_bos = false})) == ws);
}

TEST_CASE("Pre-tokenizers: GPT-2, SmolLM2, Llama-3 and o200k splits", "[text][pretokenizer]") {
  const auto split = [](std::string_view pre, std::string_view text) {
    const PreTokenizer p(pretokenizer_for(pre), "test");
    std::vector<std::pair<std::size_t, std::size_t>> pieces;
    p.split(text, pieces);
    std::vector<std::string> out;
    for (const auto& [b, e] : pieces) out.emplace_back(text.substr(b, e - b));
    return out;
  };
  using sv = std::vector<std::string>;
  CHECK(split("gpt-2", "Hello world's  2024!!") == sv{"Hello", " world", "'s", " ", " 2024", "!!"});
  CHECK(split("smollm", "a 2024") == sv{"a", " ", "2", "0", "2", "4"});
  CHECK(split("llama3", "I'M 1234567\n\n x") == sv{"I", "'M", " ", "123", "456", "7", "\n\n", " x"});
  CHECK(split("qwen2", "x 123") == sv{"x", " ", "1", "2", "3"});
  CHECK(split("gpt-4o", "HelloWorld's x/\n") == sv{"Hello", "World's", " x", "/\n"});
  // Whitespace is the White_Space property, as in Oniguruma (HF) and llama.cpp: U+0085 NEXT LINE
  // is, U+180E MONGOLIAN VOWEL SEPARATOR (Cf since Unicode 6.3) is not. PCRE2's own \s counts
  // U+180E as a space and would split "!\u180E!" into "!" "\u180E" "!"; HF tokenizers 0.23 keeps
  // it one punctuation piece.
  CHECK(split("gpt-2", "a\xC2\x85\xC2\x85" "b") == sv{"a", "\xC2\x85", "\xC2\x85", "b"});
  CHECK(split("gpt-2", "!\xE1\xA0\x8E!") == sv{"!\xE1\xA0\x8E!"});
  CHECK(split("gpt-2", "x.\xE1\xA0\x8E") == sv{"x", ".\xE1\xA0\x8E"});
  require_throws<precis::config_error>([&] { (void)pretokenizer_for("no-such-pre"); }, Catch::Matchers::Contains("'no-such-pre'"));
}

TEST_CASE("SPM: score-driven merges, the leading space, byte fallback", "[text][spm]") {
  const Vocab v = mini_spm();
  const Tokenizer tok(v);
  const auto id = [&](std::string_view p) { return *tok.find(p); };
  CHECK(tok.kind() == "llama");
  // "ab" -> "▁ab"; BOS first because the vocabulary asks for it.
  CHECK(tok.encode("ab") == ids_t{1, id("\xE2\x96\x81" "ab")});
  // "abc": "bc" (-1.5) beats "ab" (-5) -> "▁a" "bc".
  CHECK(tok.encode("abc", {.add_bos = false}) == ids_t{id("\xE2\x96\x81" "a"), id("bc")});
  // "a€": € (E2 82 AC) is not in the vocabulary: its UTF-8 bytes as <0xNN> tokens.
  const ids_t euro = tok.encode("a\xE2\x82\xAC", {.add_bos = false});
  CHECK(euro == ids_t{id("\xE2\x96\x81" "a"), id("<0xE2>"), id("<0x82>"), id("<0xAC>")});
  CHECK(tok.decode(euro) == "a\xE2\x82\xAC");  // the prefix space encode added is removed again
  // A byte token alone is not a character: streamed, the euro sign appears only when complete.
  std::vector<std::string> parts;
  CHECK(stream(tok, euro, &parts) == " a\xE2\x82\xAC");  // a continuation keeps its space
  CHECK(parts == std::vector<std::string>{" a", "", "", "\xE2\x82\xAC"});
  // Without byte tokens a missing character becomes <unk>.
  Vocab nobytes = mini_spm();
  nobytes.tokens.erase(nobytes.tokens.begin() + 3, nobytes.tokens.begin() + 259);
  nobytes.types.erase(nobytes.types.begin() + 3, nobytes.types.begin() + 259);
  nobytes.scores.erase(nobytes.scores.begin() + 3, nobytes.scores.begin() + 259);
  const Tokenizer t2(nobytes);
  CHECK(t2.encode("a\xE2\x82\xAC", {.add_bos = false}) == ids_t{*t2.find("\xE2\x96\x81" "a"), 0});
}

TEST_CASE("Special tokens: control tokens only with parse_special, user-defined always, longest first",
          "[text][special]") {
  const MiniBpe m = mini_bpe();
  const Tokenizer tok(m.v);
  const token_id start = m.id("<|im_start|>"), end = m.id("<|im_end|>"), tool = m.id("<tool>");
  const auto on = tok.encode("<|im_start|>he<|im_end|>", {.add_bos = false, .parse_special = true});
  CHECK(on == ids_t{start, m.id("he"), end});  // "<|im_start|>" wins over its prefix "<|im"
  const auto off = tok.encode("<|im_start|>he<|im_end|>", {.add_bos = false, .parse_special = false});
  CHECK(std::find(off.begin(), off.end(), start) == off.end());
  CHECK(std::find(off.begin(), off.end(), end) == off.end());
  CHECK(tok.decode(off) == "<|im_start|>he<|im_end|>");  // the same text, as ordinary bytes
  CHECK(tok.encode("a<tool>b", {.add_bos = false}) == ids_t{'a', tool, 'b'});
  CHECK(tok.encode("<|im", {.add_bos = false, .parse_special = true}) == ids_t{m.id("<|im")});
  // Decoding renders control tokens as their text unless asked to skip them.
  CHECK(tok.decode(on) == "<|im_start|>he<|im_end|>");
  CHECK(tok.decode(on, {.skip_special = true}) == "he");
  CHECK(tok.decode(ids_t{tool}, {.skip_special = true}) == "<tool>");  // user-defined text stays
}

TEST_CASE("BOS and EOS: added only when the caller AND the vocabulary ask", "[text][special]") {
  MiniBpe m = mini_bpe();
  const Tokenizer with(m.v);
  const token_id bos = *with.bos();
  CHECK(with.encode("he") == ids_t{bos, m.id("he")});
  CHECK(with.encode("he", {.add_bos = false}) == ids_t{m.id("he")});
  m.v.add_bos = false;
  const Tokenizer without(m.v);
  CHECK(without.encode("he", {.add_bos = true}) == ids_t{m.id("he")});
  m.v.add_eos = true;
  const Tokenizer eos(m.v);
  CHECK(eos.encode("he", {.add_eos = true}) == ids_t{m.id("he"), *eos.eos()});
  CHECK(eos.encode("he") == ids_t{m.id("he")});
}

TEST_CASE("StreamDecoder: an emoji split over byte tokens appears whole, once", "[text][stream]") {
  const MiniBpe m = mini_bpe();
  const Tokenizer tok(m.v);
  const std::string text = "he\xF0\x9F\xA6\x99\xF0\x9F\x98\x80!";  // he🦙😀!
  const ids_t ids = tok.encode(text, {.add_bos = false});
  std::vector<std::string> parts;
  CHECK(stream(tok, ids, &parts) == text);
  REQUIRE(parts.size() == ids.size());
  CHECK(parts[0] == "he");
  CHECK((parts[1].empty() && parts[2].empty() && parts[3].empty()));
  CHECK(parts[4] == "\xF0\x9F\xA6\x99");
  CHECK(parts[8] == "\xF0\x9F\x98\x80");
  for (const auto& p : parts) CHECK(is_valid_utf8(p));
  // A stream that stops inside a character ends with U+FFFD; decode does the same.
  const ids_t cut(ids.begin(), ids.begin() + 3);
  CHECK(stream(tok, cut) == "he\xEF\xBF\xBD");
  CHECK(tok.decode(cut) == "he\xEF\xBF\xBD");
  // A lone continuation byte can never start a character: U+FFFD at once.
  StreamDecoder d(tok);
  CHECK(d.push(0x9F) == "\xEF\xBF\xBD");
}

TEST_CASE("Bad input: invalid UTF-8 text, out-of-range ids", "[text][errors]") {
  const MiniBpe m = mini_bpe();
  const Tokenizer tok(m.v);
  require_throws<precis::format_error>([&] { (void)tok.encode("a\xFF" "b"); }, Contains("not valid UTF-8") && Contains("0xFF") && Contains("offset 1"));
  require_throws<precis::format_error>([&] { (void)tok.encode("abc\xE2\x82"); }, Contains("offset 3"));
  require_throws<precis::format_error>([&] { (void)tok.encode("\xED\xA0\x80"); }, Contains("0xED"));  // a surrogate
  const auto n = static_cast<token_id>(tok.vocab_size());
  require_throws<precis::range_error>([&] { (void)tok.decode(ids_t{'a', n}); }, Contains("token id " + std::to_string(n)) && Contains("position 1"));
  require_throws<precis::range_error>([&] { (void)tok.decode(ids_t{-1}); }, Contains("token id -1"));
  REQUIRE_THROWS_AS(tok.piece(n), precis::range_error);
  StreamDecoder d(tok);
  CHECK(d.push(0xF0).empty());
  REQUIRE_THROWS_AS(d.push(-7), precis::range_error);
  CHECK(d.push(0x9F).empty());  // the bad id left the held-back bytes alone
  CHECK(d.push(0xA6).empty());
  CHECK(d.push(0x99) == "\xF0\x9F\xA6\x99");
  CHECK_FALSE(tok.is_end_of_generation(-1));
  CHECK_FALSE(tok.is_end_of_generation(n));
  CHECK(tok.piece('a') == "a");
  CHECK(tok.find("hello") == m.id("hello"));
  CHECK_FALSE(tok.find("no such piece"));
}

TEST_CASE("Bad vocabularies are refused with the reason", "[text][errors]") {
  {
    MiniBpe m = mini_bpe();
    m.v.merges.emplace_back("x", "nope");
    require_throws<precis::format_error>([&] { (void)Tokenizer(m.v); }, Contains("merge 13") && Contains("'nope'"));
  }
  {
    MiniBpe m = mini_bpe();
    m.v.tokens[5] = m.v.tokens[6];
    require_throws<precis::format_error>([&] { (void)Tokenizer(m.v); }, Contains("appears twice"));
  }
  {
    MiniBpe m = mini_bpe();
    m.v.bos = 100000;
    require_throws<precis::format_error>([&] { (void)Tokenizer(m.v); }, Contains("BOS token id 100000"));
  }
  {
    MiniBpe m = mini_bpe();
    m.v.bos.reset();
    require_throws<precis::format_error>([&] { (void)Tokenizer(m.v); }, Contains("no BOS"));
  }
  {
    MiniBpe m = mini_bpe();
    m.v.pre = "unknown-pre";
    require_throws<precis::config_error>([&] { (void)Tokenizer(m.v); }, Contains("'unknown-pre'"));
  }
  {
    MiniBpe m = mini_bpe();
    m.v.pre_steps = {SplitStep{"(unclosed"}};
    require_throws<precis::config_error>([&] { (void)Tokenizer(m.v); }, Contains("(unclosed"));
  }
  {
    MiniBpe m = mini_bpe();
    m.v.scores = {1.0f};
    require_throws<precis::format_error>([&] { (void)Tokenizer(m.v); }, Contains("1 scores for"));
  }
}

TEST_CASE("End of generation: EOS, turn-ending tokens by name, harmony's <|end|>", "[text][special]") {
  MiniBpe m = mini_bpe();
  const Tokenizer tok(m.v);
  CHECK(tok.is_end_of_generation(*tok.eos()));
  CHECK(tok.is_end_of_generation(m.id("<|im_end|>")));
  CHECK_FALSE(tok.is_end_of_generation(m.id("<|im_start|>")));
  CHECK_FALSE(tok.is_end_of_generation('a'));
  for (const char* s : {"<|end|>", "<|return|>", "<|call|>"}) {
    m.v.tokens.push_back(s);
    m.v.types.push_back(token_type::control);
  }
  const Tokenizer harmony(m.v);
  CHECK(harmony.is_end_of_generation(*harmony.find("<|return|>")));
  CHECK(harmony.is_end_of_generation(*harmony.find("<|call|>")));
  CHECK_FALSE(harmony.is_end_of_generation(*harmony.find("<|end|>")));  // ends a message, not the answer
}

TEST_CASE("Tokenizer is shared safely between threads", "[text][threads]") {
  const MiniBpe m = mini_bpe();
  const Tokenizer tok(m.v);
  const std::string text = "hello world <|im_end|> \xF0\x9F\xA6\x99 abc aaa";
  const ids_t want = tok.encode(text, {.parse_special = true});
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const Tokenizer copy = tok;  // copies share the tables
      int good = 0;
      for (int i = 0; i < 200; ++i) good += copy.encode(text, {.parse_special = true}) == want ? 1 : 0;
      ok[static_cast<std::size_t>(t)] = good;
    });
  for (auto& th : threads) th.join();
  CHECK(ok == std::vector<int>(4, 200));
}

TEST_CASE("GGUF: tokenizer.ggml.* read, and malformed metadata refused", "[text][gguf]") {
  const Tokenizer tok = Tokenizer::from_gguf(gpt2_gguf().file());
  CHECK(tok.vocab_size() == 258);
  CHECK(tok.eos() == 257);
  CHECK_FALSE(tok.bos());
  CHECK(tok.chat_template() == "{{ messages }}");
  CHECK(tok.encode("hehe") == ids_t{256, 256});
  CHECK(tok.encode("<|endoftext|>", {.parse_special = true}) == ids_t{257});
  CHECK(tok.is_end_of_generation(257));

  require_throws<precis::format_error>([&] { (void)Tokenizer::from_gguf(GgufWriter().str("general.architecture", "llama").file()); }, Contains("no tokenizer.ggml.model"));
  require_throws<precis::config_error>([&] { (void)Tokenizer::from_gguf(GgufWriter().str("tokenizer.ggml.model", "bert").strings("tokenizer.ggml.tokens", {"a"}).file()); }, Contains("'bert'"));
  require_throws<precis::format_error>([&] { (void)Tokenizer::from_gguf(gpt2_gguf().u32("tokenizer.ggml.bos_token_id", 999).file()); }, Contains("bos_token_id = 999"));
  require_throws<precis::format_error>([&] { (void)Tokenizer::from_gguf(gpt2_gguf({"nospace"}).file()); }, Contains("tokenizer.ggml.merges[0] = 'nospace'"));
  {
    GgufWriter w;
    w.str("tokenizer.ggml.model", "gpt2").strings("tokenizer.ggml.tokens", {"a"}).strings("tokenizer.ggml.merges", {});
    require_throws<precis::config_error>([&] { (void)Tokenizer::from_gguf(w.file()); }, Contains("tokenizer.ggml.pre"));
  }
  require_throws<precis::format_error>([&] { (void)Tokenizer::from_gguf(gpt2_gguf({"h e"}, {1, 9}).file()); }, Contains("tokenizer.ggml.token_type[1] = 9"));
  require_throws<precis::format_error>([&] { (void)Tokenizer::from_gguf(gpt2_gguf({"h e"}, {1, 1}).file()); }, Contains("2 token types for 258 tokens"));
}

TEST_CASE("tokenizer.json: unsupported and malformed files are refused with the JSON path", "[text][from_hf]") {
  const TempDir dir;
  require_throws<precis::io_error>([&] { (void)Tokenizer::from_hf(dir.path); }, Contains("no tokenizer.json"));
  dir.write("tokenizer.json", "{ not json");
  require_throws<precis::format_error>([&] { (void)Tokenizer::from_hf(dir.path); }, Contains("not valid JSON"));
  dir.write("tokenizer.json", tokenizer_json(""));
  const Tokenizer ok = Tokenizer::from_hf(dir.path);
  CHECK(ok.kind() == "gpt2/gpt-2");
  CHECK(ok.encode("hi") == ids_t{'h', 'i'});
  dir.write("tokenizer.json", tokenizer_json(R"(, "normalizer": {"type": "NFKC"})"));
  require_throws<precis::config_error>([&] { (void)Tokenizer::from_hf(dir.path); }, Contains("$.normalizer") && Contains("NFKC"));
  dir.write("tokenizer.json", tokenizer_json(R"(, "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]})"));
  require_throws<precis::config_error>([&] { (void)Tokenizer::from_hf(dir.path); }, Contains("Lowercase"));
  dir.write("tokenizer.json", tokenizer_json(R"(, "normalizer": {"type": "NFC"})"));
  CHECK(Tokenizer::from_hf(dir.path).vocab().normalize_nfc);
  dir.write("tokenizer.json", tokenizer_json("", R"({"type": "Metaspace"})"));
  require_throws<precis::config_error>([&] { (void)Tokenizer::from_hf(dir.path); }, Contains("'Metaspace'"));
  dir.write("tokenizer.json", tokenizer_json("", R"({"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways"})"));
  require_throws<precis::format_error>([&] { (void)Tokenizer::from_hf(dir.path); }, Contains("Sideways"));
  dir.write("tokenizer.json", tokenizer_json(R"(, "added_tokens": [{"id": 300, "content": "<x>"}])"));
  require_throws<precis::format_error>([&] { (void)Tokenizer::from_hf(dir.path); },
                                       Contains("token id 300") && Contains("without gaps"));
  // A hostile id near 2^31 is refused before it sizes anything (robustness sweep: ~40 bytes per id).
  dir.write("tokenizer.json", tokenizer_json(R"(, "added_tokens": [{"id": 2147483646, "content": "<x>"}])"));
  require_throws<precis::format_error>([&] { (void)Tokenizer::from_hf(dir.path); }, Contains("token id 2147483646"));
  dir.write("tokenizer.json", tokenizer_json(R"(, "added_tokens": [{"id": 3, "content": "<x>"}])"));
  require_throws<precis::format_error>([&] { (void)Tokenizer::from_hf(dir.path); }, Contains("token id 3 is both"));
  dir.write("tokenizer.json",
            R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "ByteLevel"}})");
  require_throws<precis::config_error>([&] { (void)Tokenizer::from_hf(dir.path); }, Contains("'WordPiece'"));
}

TEST_CASE("Real vocabularies: SmolLM2's chat tokens, BOS setting and emoji streaming", "[text][cache]") {
  const auto path = precis::test::cached_file("models/SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!path) return;
  const Tokenizer tok = Tokenizer::from_gguf(*path);
  CHECK(tok.kind() == "gpt2/smollm");
  CHECK(tok.eos() == 2);
  CHECK(tok.piece(2) == "<|im_end|>");
  CHECK(tok.is_end_of_generation(2));
  CHECK(tok.is_end_of_generation(0));  // <|endoftext|>
  CHECK_FALSE(tok.is_end_of_generation(1));
  CHECK(tok.chat_template().find("<|im_start|>") != std::string::npos);
  // tokenizer.ggml.add_bos_token is false: no BOS even when the caller allows it.
  CHECK(tok.encode("Hi", {.add_bos = true}) == tok.encode("Hi", {.add_bos = false}));
  CHECK(tok.encode("<|im_start|>user", {.parse_special = true}).front() == 1);
  CHECK(tok.encode("<|im_start|>user", {.parse_special = false}).front() != 1);
  const std::string llama = "\xF0\x9F\xA6\x99";  // 🦙 is several byte-level tokens in this vocabulary
  const ids_t ids = tok.encode(llama);
  REQUIRE(ids.size() > 1);
  std::vector<std::string> parts;
  CHECK(stream(tok, ids, &parts) == llama);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) CHECK(parts[i].empty());
}

TEST_CASE("Real vocabularies: stories260K (SentencePiece, 512 tokens)", "[text][shared-data]") {
  const auto path = precis::test::shared_file("models/stories260K.gguf");
  if (!path) return;
  const Tokenizer tok = Tokenizer::from_gguf(*path);
  CHECK(tok.kind() == "llama");
  CHECK(tok.vocab_size() == 512);
  CHECK(tok.bos() == 1);
  CHECK(tok.eos() == 2);
  const std::string text = "Once upon a time, there was a little girl named Lily. \xF0\x9F\xA6\x99";
  const ids_t ids = tok.encode(text);
  REQUIRE(ids.size() > 4);
  CHECK(ids.front() == 1);
  CHECK(tok.decode(ids_t(ids.begin() + 1, ids.end())) == text);
  CHECK(tok.decode(ids, {.skip_special = true}) == text);  // BOS skipped, the prefix space removed
  CHECK(tok.decode(ids) == "<s> " + text);                // BOS rendered: the space is text now
  // The emoji is not in 512 tokens: byte fallback, 4 <0xNN> tokens at the end.
  for (std::size_t i = ids.size() - 4; i < ids.size(); ++i) CHECK(tok.type(ids[i]) == token_type::byte);
}
