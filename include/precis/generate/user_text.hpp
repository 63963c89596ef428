// precis/generate/user_text.hpp — text a user hands the tools (a prompt, a --file of prompts, an
// evaluation text), read with bounds and checked before any model work.
//
// The robustness sweep (docs/robustness.md) gave precis-generate `--file /dev/zero` (read without
// end), a binary file (thousands of "prompts", each given a KV cache: 9.5 GB) and prompts holding
// NUL bytes (tokenized silently). Here:
//   - the path must be a regular file (not a device, FIFO or directory) of at most
//     TextLimits::max_file_bytes, read in one go;
//   - the text must be UTF-8 without NUL bytes; an error names the file, the line and the column
//     (a NUL is the mark of a binary file, never of a prompt — refused, not dropped);
//   - a prompt file holds at most TextLimits::max_prompts non-empty lines.
#pragma once

#include <cstddef>      // std::size_t
#include <cstdint>      // std::uintmax_t
#include <filesystem>   // std::filesystem
#include <fstream>      // std::ifstream
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <system_error> // std::error_code
#include <vector>       // std::vector

#include <precis/core/error.hpp>  // precis::fail, format_error, io_error
#include <precis/text/utf8.hpp>   // precis::text::find_invalid_utf8

namespace precis::generate {

struct TextLimits {
  std::uintmax_t max_file_bytes = std::uintmax_t{1} << 30;  ///< a --file or evaluation text (1 GiB)
  std::size_t max_prompts = 100000;                         ///< lines of a prompt file
};

namespace detail {
struct LineColumn {
  std::size_t line = 1, column = 1;
};
[[nodiscard]] inline LineColumn line_column(std::string_view text, std::size_t offset) {
  LineColumn lc;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i)
    if (text[i] == '\n') ++lc.line, line_start = i + 1;
  lc.column = offset - line_start + 1;
  return lc;
}
}  // namespace detail

/// format_error naming `where` (e.g. "--file 'p.txt'", "prompt 2") and the line and column of
/// the first NUL byte or invalid UTF-8 sequence of `text`.
inline void check_user_text(std::string_view text, std::string_view where) {
  if (const std::size_t nul = text.find('\0'); nul != std::string_view::npos) {
    const auto lc = detail::line_column(text, nul);
    fail<format_error>(where, " holds a NUL byte at line ", lc.line, ", column ", lc.column,
                       " (byte ", nul, "): a binary file? precis reads UTF-8 text");
  }
  if (const auto bad = text::find_invalid_utf8(text)) {
    const auto lc = detail::line_column(text, *bad);
    constexpr char hex[] = "0123456789abcdef";
    const auto b = static_cast<unsigned char>(text[*bad]);
    fail<format_error>(where, " is not valid UTF-8: byte 0x", hex[b >> 4], hex[b & 15u], " at line ", lc.line,
                       ", column ", lc.column, " (byte ", *bad, ")");
  }
}

/// The whole of the regular file `path`, at most limits.max_file_bytes; `what` names it in
/// errors ("--file"). The text is not checked (check_user_text does that).
[[nodiscard]] inline std::string read_text_file(const std::filesystem::path& path, std::string_view what,
                                                const TextLimits& limits = {}) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail<io_error>(what, " '", path.string(), "' does not exist");
  if (!fs::is_regular_file(st))
    fail<io_error>(what, " '", path.string(), "' is not a regular file (a directory, device or pipe)");
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) fail<io_error>(what, " '", path.string(), "': cannot read its size: ", ec.message());
  if (size > limits.max_file_bytes)
    fail<format_error>(what, " '", path.string(), "' is ", size, " bytes; at most ", limits.max_file_bytes,
                       " are read (TextLimits::max_file_bytes)");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<io_error>(what, " '", path.string(), "' cannot be opened");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size)
    fail<io_error>(what, " '", path.string(), "' changed while being read (", in.gcount(), " of ", size, " bytes)");
  return text;
}

/// The non-empty lines of a prompt file (a trailing "\r" dropped), checked as user text.
[[nodiscard]] inline std::vector<std::string> read_prompt_lines(const std::filesystem::path& path,
                                                                std::string_view what, const TextLimits& limits = {}) {
  const std::string text = read_text_file(path, what, limits);
  const std::string where = std::string(what) + " '" + path.string() + "'";
  check_user_text(text, where);
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) {
      if (lines.size() == limits.max_prompts)
        fail<format_error>(where, " holds more than ", limits.max_prompts, " prompts (TextLimits::max_prompts)");
      lines.emplace_back(line);
    }
    begin = end + 1;
  }
  return lines;
}

}  // namespace precis::generate
