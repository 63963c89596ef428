// precis/io/json.hpp — reading a JSON file a stranger wrote (config.json, tokenizer.json,
// tokenizer_config.json, generation_config.json, model.safetensors.index.json) with bounds.
//
// nlohmann::json parses without recursion, but copying, destroying and dump()-ing a value recurse
// once per nesting level, so `[[[[…]]]]` 100 000 deep in a config.json overflowed the stack in
// an error message that dumped the tree (robustness sweep, docs/robustness.md). And a path that
// is not a regular file (/dev/zero, a FIFO) or a 40 GB file was read whole into a string before
// parsing. Here, before anything is built:
//   - the path must be a regular file of at most `max_bytes` (JsonLimits; the default, 512 MiB,
//     is 18× the largest real tokenizer.json precis knows of, gpt-oss's o200k at ≈27 MiB);
//   - nesting deeper than `max_depth` (default 128; real files nest ≤ 12) stops the parse with an
//     error naming the file and the line and column;
//   - error messages quote a value through `json_excerpt`, which stops after ~120 characters.
#pragma once

#include <cstddef>      // std::size_t
#include <cstdint>      // std::uintmax_t
#include <filesystem>   // std::filesystem
#include <fstream>      // std::ifstream
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <system_error> // std::error_code

#include <nlohmann/json.hpp>  // nlohmann::json

#include <precis/core/error.hpp>  // precis::fail, format_error, io_error

namespace precis::io {

struct JsonLimits {
  std::uintmax_t max_bytes = std::uintmax_t{512} << 20;  ///< file size
  int max_depth = 128;                                   ///< nesting of arrays and objects
};

/// At most `max_chars` characters of `v` serialized, with "…" when cut. Never serializes a
/// value deeper than the parser admitted (the depth bound applies at parse time).
[[nodiscard]] inline std::string json_excerpt(const nlohmann::json& v, std::size_t max_chars = 120) {
  std::string s;
  if (v.is_structured() && v.size() > max_chars) {  // do not serialize a huge array to cut it
    s = v.is_array() ? "[… " : "{… ";
    s += std::to_string(v.size()) + (v.is_array() ? " elements]" : " members}");
    return s;
  }
  s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > max_chars) {
    s.resize(max_chars);
    s += "…";
  }
  return s;
}

/// Parses `text` (named `source` in errors, prefixed "[what]") within `limits.max_depth`.
[[nodiscard]] inline nlohmann::json parse_json_text(std::string_view text, std::string_view what,
                                                    std::string_view source, const JsonLimits& limits = {}) {
  const auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    using ev = nlohmann::json::parse_event_t;
    if ((event == ev::object_start || event == ev::array_start) && depth >= limits.max_depth) {
      // The position of the opening bracket: count lines up to the deepest nesting seen.
      std::size_t at = 0, line = 1, line_start = 0;
      int d = 0;
      bool in_string = false, escaped = false;
      for (; at < text.size(); ++at) {
        const char c = text[at];
        if (c == '\n') ++line, line_start = at + 1;
        if (in_string) {
          if (escaped) escaped = false;
          else if (c == '\\') escaped = true;
          else if (c == '"') in_string = false;
          continue;
        }
        if (c == '"') in_string = true;
        else if ((c == '[' || c == '{') && ++d > limits.max_depth) break;
        else if (c == ']' || c == '}') --d;
      }
      fail<format_error>("[", what, "] '", source, "' nests arrays/objects deeper than ", limits.max_depth,
                         " levels (line ", line, ", column ", at - line_start + 1, "); no model file needs that");
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann quotes the token it stopped in, which may be a megabyte-long string.
    std::string why = e.what();
    if (why.size() > 300) why = why.substr(0, 300) + "…";
    fail<format_error>("[", what, "] '", source, "' is not valid JSON: ", why);
  }
}

/// Reads and parses the JSON file `path` within `limits` ("[what] …" errors naming the file).
[[nodiscard]] inline nlohmann::json read_json_file(const std::filesystem::path& path, std::string_view what,
                                                   const JsonLimits& limits = {}) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail<io_error>("[", what, "] cannot open '", path.string(), "': no such file");
  if (!fs::is_regular_file(st))
    fail<io_error>("[", what, "] '", path.string(), "' is not a regular file (a directory, device or pipe)");
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) fail<io_error>("[", what, "] cannot read the size of '", path.string(), "': ", ec.message());
  if (size > limits.max_bytes)
    fail<format_error>("[", what, "] '", path.string(), "' is ", size, " bytes; a JSON file precis reads may hold at most ",
                       limits.max_bytes, " (JsonLimits::max_bytes)");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<io_error>("[", what, "] cannot open '", path.string(), "'");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size)
    fail<io_error>("[", what, "] '", path.string(), "' changed while being read (", in.gcount(), " of ", size,
                   " bytes)");
  return parse_json_text(text, what, path.string(), limits);
}

}  // namespace precis::io
