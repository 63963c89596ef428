// tests/fuzz/hostile_fuzz_checks.hpp — what the hostile-input fuzzers (issue "Hostile files and
// prompts") check for one input, shared by the libFuzzer targets (fuzz_tokenizer_json.cpp, fuzz_gguf_vocab.cpp, fuzz_prompt_text.cpp) and the seed replay test
// (tests/unit/generate/test_fuzz_seed_replay.cpp, run by every build).
//
// Every input is either accepted or rejected with a precis::error (config_error, format_error,
// io_error, range_error, …). Any other exception escapes to the caller (libFuzzer reports it, the
// replay test fails), and so do crashes and sanitizer reports. Accepted inputs must keep the
// promises checked below (round trips, no forged control tokens).
#pragma once

#include <algorithm>    // std::count
#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::int64_t
#include <filesystem>   // std::filesystem
#include <fstream>      // std::ofstream
#include <span>         // std::span
#include <stdexcept>    // std::logic_error
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <system_error> // std::error_code
#include <vector>       // std::vector

#include <unistd.h>  // ::getpid

#include <precis/core/error.hpp>            // precis::error
#include <precis/generate/chat_format.hpp>  // format_chat, ChatFormat
#include <precis/io/gguf.hpp>               // io::GgufFile
#include <precis/text/tokenizer.hpp>        // text::Tokenizer, MarkedText
#include <precis/text/utf8.hpp>             // text::find_invalid_utf8

namespace precis::test {

enum class hostile_outcome { accepted, rejected };

namespace detail {
[[nodiscard]] inline std::string_view as_text(std::span<const std::byte> in) {
  return {reinterpret_cast<const char*>(in.data()), in.size()};
}
/// A per-process scratch directory (fuzzers write the input where a loader reads files).
[[nodiscard]] inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("precis-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}
inline void write_file(const std::filesystem::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}
/// A broken promise of an accepted input: not a precis::error, so it is reported.
[[noreturn]] inline void broken(const std::string& what) { throw std::logic_error("fuzz check: " + what); }
}  // namespace detail

/// A tokenizer.json (written into a scratch directory, as Tokenizer::from_hf reads it), then
/// encoding and decoding a few texts with the tokenizer it builds.
[[nodiscard]] inline hostile_outcome check_tokenizer_json(std::span<const std::byte> in) {
  const auto dir = detail::scratch_dir() / "tokenizer";
  std::filesystem::create_directories(dir);
  detail::write_file(dir / "tokenizer.json", detail::as_text(in));
  try {
    const text::Tokenizer tok = text::Tokenizer::from_hf(dir);
    for (const std::string_view s : {"Hello, world!", " 12345 ", "<|im_start|>user\nhi<|im_end|>", "é\u00e9 \t\n"}) {
      const auto ids = tok.encode(s, {.add_bos = true, .parse_special = true});
      (void)tok.decode(ids);
    }
  } catch (const precis::error&) {
    return hostile_outcome::rejected;
  }
  return hostile_outcome::accepted;
}

/// A GGUF file's tokenizer.ggml.* vocabulary and the tokenizer built from it.
[[nodiscard]] inline hostile_outcome check_gguf_vocab(std::span<const std::byte> in) {
  try {
    const io::GgufFile f = io::GgufFile::parse(in, "fuzz.gguf");
    const text::Tokenizer tok = text::Tokenizer::from_gguf(f);
    for (const std::string_view s : {"Hello, world!", " a  b ", "<s>x</s>"}) (void)tok.decode(tok.encode(s, {.parse_special = true}));
  } catch (const precis::error&) {
    return hostile_outcome::rejected;
  }
  return hostile_outcome::accepted;
}

/// Text from a user, through a fixed byte-level tokenizer (tiny_smollm: <|im_start|> = 1,
/// <|im_end|> = 2): invalid UTF-8 is rejected; valid text round-trips exactly, and as the user
/// turn of a ChatML prompt it yields exactly the template's control tokens — never one more.
[[nodiscard]] inline hostile_outcome check_prompt_text(const text::Tokenizer& tok, std::span<const std::byte> in) {
  const std::string_view text = detail::as_text(in);
  if (text::find_invalid_utf8(text)) {
    try {
      (void)tok.encode(text);
    } catch (const precis::error&) {
      return hostile_outcome::rejected;
    }
    detail::broken("invalid UTF-8 was encoded");
  }
  const auto ids = tok.encode(text, {.add_bos = false, .parse_special = false});
  const std::string back = tok.decode(ids);
  if (back != text) detail::broken("decode(encode(s)) != s for a valid UTF-8 s of " + std::to_string(text.size()) + " bytes");
  for (const auto id : ids)
    if (id == 1 || id == 2) detail::broken("user text became a control token with parse_special off");
  const auto prompt = generate::format_chat(generate::ChatFormat::chatml, {{"system", std::string(text)}, {"user", std::string(text)}});
  const auto chat = tok.encode(prompt, {.add_bos = false});
  // Two turns and the generation prompt: three <|im_start|>, two <|im_end|>.
  if (std::count(chat.begin(), chat.end(), 1) != 3 || std::count(chat.begin(), chat.end(), 2) != 2)
    detail::broken("a chat prompt's user text changed the number of control tokens (a forged turn)");
  return hostile_outcome::accepted;
}

}  // namespace precis::test
