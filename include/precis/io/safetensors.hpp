// precis/io/safetensors.hpp — a validating, zero-copy reader for the safetensors format.
//
// Format (model-semantics.md §1e; huggingface/safetensors README and `Metadata::validate`):
//   bytes 0–7    N, the header length (u64, little-endian), N ≤ 100,000,000
//   next N bytes UTF-8 JSON object, starts with '{', may be right-padded with spaces:
//                {"NAME": {"dtype": "BF16", "shape": [..], "data_offsets": [BEGIN, END]}, …,
//                 "__metadata__": {str: str}}
//   the rest     the byte buffer; offsets are relative to its start, END is exclusive
// After sorting by offset the tensors must tile the buffer exactly (no holes, no overlaps, no
// trailing bytes), and END − BEGIN must equal numel × element size.
//
// A checkpoint is untrusted input: every rule above is checked before a single tensor is handed
// out, and every violation is a precis::format_error whose message names the file (and the
// tensor, where there is one). `parse` is the whole validator on a byte span, so the fuzzer
// (tests/fuzz/fuzz_safetensors_header.cpp) exercises exactly the code `open` runs.
#pragma once

#include <algorithm>    // std::sort
#include <bit>          // std::endian
#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::uint64_t, std::int64_t
#include <filesystem>   // std::filesystem::path
#include <functional>   // std::less
#include <limits>       // std::numeric_limits
#include <map>          // std::map
#include <memory>       // std::shared_ptr, std::make_shared
#include <optional>     // std::optional
#include <set>          // std::set
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include <nlohmann/json.hpp>  // nlohmann::json (the header is JSON)

#include <precis/core/config.hpp>             // precis::index_t
#include <precis/core/dtype.hpp>              // precis::dtype_code, element_bytes
#include <precis/core/error.hpp>              // precis::format_error, precis::fail
#include <precis/io/any_tensor.hpp>           // precis::io::AnyTensor
#include <precis/io/mapped_file.hpp>          // precis::io::MappedFile
#include <precis/io/safetensors_dtype.hpp>    // dtype_from_safetensors, is_unsupported_safetensors_dtype

namespace precis::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; precis' zero-copy loading assumes a little-endian host");

/// One header entry, after validation.
struct SafetensorsEntry {
  std::string name;
  dtype_code dtype;
  std::vector<index_t> shape;  // row-major extents; empty for a scalar
  std::uint64_t begin;         // offset of the first byte in the data buffer
  std::uint64_t end;           // one past the last byte
};

namespace detail {

/// Offset of the first byte that is not part of a well-formed UTF-8 sequence (RFC 3629: no
/// overlong forms, no surrogates, nothing above U+10FFFF), or nullopt if all of `s` is valid.
[[nodiscard]] inline std::optional<std::size_t> first_invalid_utf8(std::span<const std::byte> s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned>(s[i]);
    std::size_t len;
    unsigned lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (b0 < 0x80) len = 1;
    else if (b0 >= 0xc2 && b0 <= 0xdf) len = 2;
    else if (b0 >= 0xe0 && b0 <= 0xef) {
      len = 3;
      if (b0 == 0xe0) lo = 0xa0;       // overlong
      else if (b0 == 0xed) hi = 0x9f;  // UTF-16 surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      len = 4;
      if (b0 == 0xf0) lo = 0x90;       // overlong
      else if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
      return i;
    }
    if (s.size() - i < len) return i;
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80u) || b > (k == 1 ? hi : 0xbfu)) return i;
    }
    i += len;
  }
  return std::nullopt;
}

/// The header JSON may nest no deeper than this. A valid header needs depth 3 (root → entry →
/// shape); the limit only keeps hostile input from building huge nested values.
inline constexpr int safetensors_max_json_depth = 64;

}  // namespace detail

class SafetensorsFile {
 public:
  /// Largest header the format allows (safetensors `MAX_HEADER_SIZE`).
  static constexpr std::uint64_t max_header_bytes = 100'000'000;

  /// Memory-maps and validates `path`. Tensors are views into the mapping (zero-copy); the
  /// mapping lives as long as this object or any AnyTensor taken from it.
  [[nodiscard]] static SafetensorsFile open(const std::filesystem::path& path) {
    auto mapping = std::make_shared<const MappedFile>(MappedFile::open(path));
    const std::span<const std::byte> bytes = mapping->bytes();
    return parse(bytes, path.string(), std::move(mapping));
  }

  /// Validates a complete safetensors file held in `bytes`. `source_name` names the input in
  /// messages. The bytes are not copied: they must outlive the result, unless `owner` keeps
  /// them alive.
  [[nodiscard]] static SafetensorsFile parse(std::span<const std::byte> bytes, std::string source_name,
                                             std::shared_ptr<const void> owner = {}) {
    SafetensorsFile f;
    f.source_ = std::move(source_name);
    f.owner_ = std::move(owner);
    f.parse_impl(bytes);
    return f;
  }

  /// Validates a file held in a buffer the result takes over (so tensors never dangle when the
  /// bytes are a temporary, e.g. `parse(writer.serialize(), "mem")`).
  [[nodiscard]] static SafetensorsFile parse(std::vector<std::byte>&& bytes, std::string source_name) {
    auto owned = std::make_shared<const std::vector<std::byte>>(std::move(bytes));
    const std::span<const std::byte> view(*owned);
    return parse(view, std::move(source_name), std::move(owned));
  }

  /// The file name (or the name given to `parse`).
  [[nodiscard]] const std::string& source_name() const noexcept { return source_; }
  /// The header length N (padding included).
  [[nodiscard]] std::uint64_t header_size() const noexcept { return header_size_; }
  /// The byte buffer that follows the header.
  [[nodiscard]] std::span<const std::byte> data() const noexcept { return data_; }
  /// All tensors, in storage order (sorted by data offset).
  [[nodiscard]] const std::vector<SafetensorsEntry>& entries() const noexcept { return entries_; }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  /// Tensor names, sorted.
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> r;
    r.reserve(by_name_.size());
    for (const auto& kv : by_name_) r.push_back(kv.first);
    return r;
  }
  [[nodiscard]] bool contains(std::string_view name) const { return by_name_.find(name) != by_name_.end(); }
  /// The entry called `name`, or nullptr.
  [[nodiscard]] const SafetensorsEntry* find(std::string_view name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &entries_[it->second];
  }
  /// The tensor called `name`; format_error naming the tensor and the file if it is absent.
  [[nodiscard]] AnyTensor tensor(std::string_view name) const {
    const SafetensorsEntry* e = find(name);
    if (e == nullptr) fail<format_error>("[safetensors] '", source_, "': no tensor named '", name, "'");
    return make_any(*e);
  }
  /// Every tensor as an AnyTensor, in storage order.
  [[nodiscard]] std::vector<AnyTensor> tensors() const {
    std::vector<AnyTensor> r;
    r.reserve(entries_.size());
    for (const auto& e : entries_) r.push_back(make_any(e));
    return r;
  }
  /// The `__metadata__` map (empty if the header has none).
  [[nodiscard]] const std::map<std::string, std::string, std::less<>>& metadata() const noexcept { return metadata_; }
  /// One metadata value, or nullopt.
  [[nodiscard]] std::optional<std::string> metadata(std::string_view key) const {
    const auto it = metadata_.find(key);
    if (it == metadata_.end()) return std::nullopt;
    return it->second;
  }

 private:
  SafetensorsFile() = default;

  [[nodiscard]] AnyTensor make_any(const SafetensorsEntry& e) const {
    return AnyTensor(e.name, e.dtype, e.shape, data_.subspan(e.begin, e.end - e.begin), source_, owner_);
  }

  template <class... Parts>
  [[noreturn]] void fail_file(const Parts&... parts) const {
    fail<format_error>("[safetensors] '", source_, "': ", parts...);
  }
  template <class... Parts>
  [[noreturn]] void fail_tensor(const std::string& tensor, const Parts&... parts) const {
    fail<format_error>("[safetensors] '", source_, "': tensor '", tensor, "': ", parts...);
  }

  void parse_impl(std::span<const std::byte> bytes) {
    // --- 1. the 8-byte length prefix and the header bounds -------------------------------------
    if (bytes.size() < 8)
      fail_file("file is ", bytes.size(), " bytes, shorter than the 8-byte header-length prefix");
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(bytes[i]) << (8 * i);
    if (n > max_header_bytes)
      fail_file("header length ", n, " exceeds the format's maximum of ", max_header_bytes, " bytes");
    if (n > bytes.size() - 8)
      fail_file("header length ", n, " runs past the end of the file (8 + ", n, " > file size ", bytes.size(), ")");
    header_size_ = n;
    const auto header = bytes.subspan(8, static_cast<std::size_t>(n));
    data_ = bytes.subspan(8 + static_cast<std::size_t>(n));

    // --- 2. UTF-8, '{', JSON, duplicate keys ---------------------------------------------------
    if (const auto bad = detail::first_invalid_utf8(header))
      fail_file("header is not valid UTF-8 (invalid byte 0x", hex_byte(header[*bad]), " at header offset ", *bad,
                ")");
    if (header.empty() || header[0] != std::byte{'{'})
      fail_file("header does not start with '{' (a safetensors header is a JSON object)");
    // JSON never contains a raw NUL (not even inside strings), but nlohmann's lexer reads one as
    // the end of input and would accept "{}\0<anything>".
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == std::byte{0}) fail_file("header is not valid JSON: NUL byte at header offset ", i);
    const nlohmann::json root = parse_json(header);
    if (!root.is_object()) fail_file("header is not a JSON object");

    // --- 3. entries ----------------------------------------------------------------------------
    for (const auto& [key, value] : root.items()) {
      if (key == "__metadata__") {
        parse_metadata(value);
        continue;
      }
      entries_.push_back(parse_entry(key, value));
    }

    // --- 4. tiling: sorted by offset, each tensor starts where the previous one ended ----------
    std::sort(entries_.begin(), entries_.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expected = 0;
    const SafetensorsEntry* previous = nullptr;
    for (const auto& e : entries_) {
      if (e.begin < expected)
        fail_tensor(e.name, "data_offsets [", e.begin, ", ", e.end, ") overlap tensor '", previous->name,
                    "' which ends at ", expected);
      if (e.begin > expected)
        fail_tensor(e.name, "data_offsets [", e.begin, ", ", e.end, ") leave a hole: the previous tensor",
                    previous ? " '" + previous->name + "'" : std::string{}, " ends at ", expected);
      expected = e.end;
      previous = &e;
    }
    if (expected != data_.size())
      fail_file("the tensors cover ", expected, " bytes of the data buffer but it holds ", data_.size(),
                " bytes (trailing bytes belong to no tensor)");

    for (std::size_t i = 0; i < entries_.size(); ++i) by_name_.emplace(entries_[i].name, i);
  }

  [[nodiscard]] static std::string hex_byte(std::byte b) {
    constexpr char digits[] = "0123456789abcdef";
    const auto v = static_cast<unsigned>(b);
    return {digits[v >> 4], digits[v & 0xfu]};
  }

  [[nodiscard]] nlohmann::json parse_json(std::span<const std::byte> header) const {
    // nlohmann::json keeps the last of duplicate keys silently; a checkpoint with two entries
    // of one name is ambiguous, so the parse callback rejects duplicates at every level.
    std::vector<std::set<std::string>> open_objects;
    const auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      using ev = nlohmann::json::parse_event_t;
      if (depth > detail::safetensors_max_json_depth)
        fail_file("header JSON nests deeper than ", detail::safetensors_max_json_depth, " levels");
      if (event == ev::object_start) {
        open_objects.emplace_back();
      } else if (event == ev::object_end) {
        if (!open_objects.empty()) open_objects.pop_back();
      } else if (event == ev::key && !open_objects.empty()) {
        const auto& k = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(k).second) fail_file("header JSON has the key '", k, "' twice");
      }
      return true;
    };
    const auto* first = reinterpret_cast<const char*>(header.data());
    try {
      return nlohmann::json::parse(first, first + header.size(), callback);
    } catch (const nlohmann::json::exception& e) {
      fail_file("header is not valid JSON: ", e.what());
    }
  }

  void parse_metadata(const nlohmann::json& value) {
    if (!value.is_object()) fail_file("__metadata__ must be a JSON object of strings, got ", value.type_name());
    for (const auto& [k, v] : value.items()) {
      if (!v.is_string())
        fail_file("__metadata__ value of key '", k, "' must be a string, got ", v.type_name());
      metadata_.emplace(k, v.get_ref<const std::string&>());
    }
  }

  /// A JSON number that is an integer in [0, max]; `what` names the field for messages.
  [[nodiscard]] std::uint64_t non_negative_integer(const std::string& tensor, const nlohmann::json& v,
                                                   std::string_view what, std::uint64_t max) const {
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u > max) fail_tensor(tensor, what, " value ", u, " is too large (maximum ", max, ")");
      return u;
    }
    if (v.is_number_integer()) fail_tensor(tensor, what, " has the negative value ", v.get<std::int64_t>());
    if (v.is_number_float()) fail_tensor(tensor, what, " has the non-integer value ", v.dump());
    fail_tensor(tensor, what, " must be an integer, got ", v.type_name());
  }

  [[nodiscard]] SafetensorsEntry parse_entry(const std::string& name, const nlohmann::json& v) const {
    if (!v.is_object()) fail_tensor(name, "entry must be a JSON object, got ", v.type_name());
    SafetensorsEntry e{name, dtype_code::u8, {}, 0, 0};

    // dtype
    const auto dt = v.find("dtype");
    if (dt == v.end()) fail_tensor(name, "entry has no \"dtype\"");
    if (!dt->is_string()) fail_tensor(name, "\"dtype\" must be a string, got ", dt->type_name());
    const auto& dts = dt->get_ref<const std::string&>();
    if (const auto code = dtype_from_safetensors(dts)) e.dtype = *code;
    else if (is_unsupported_safetensors_dtype(dts)) fail_tensor(name, "unsupported dtype ", dts, " (precis cannot represent it)");
    else fail_tensor(name, "unknown dtype \"", dts, "\"");

    // shape
    const auto sh = v.find("shape");
    if (sh == v.end()) fail_tensor(name, "entry has no \"shape\"");
    if (!sh->is_array()) fail_tensor(name, "\"shape\" must be an array, got ", sh->type_name());
    index_t numel = 1;
    bool overflow = false;
    for (std::size_t i = 0; i < sh->size(); ++i) {
      const auto extent = static_cast<index_t>(non_negative_integer(
          name, (*sh)[i], "shape[" + std::to_string(i) + "]",
          static_cast<std::uint64_t>(std::numeric_limits<index_t>::max())));
      e.shape.push_back(extent);
      overflow = overflow || __builtin_mul_overflow(numel, extent, &numel);
    }
    // A zero extent makes numel 0 whatever the others are, but an overflowing partial product
    // before it is still a shape no tensor can have.
    if (overflow) fail_tensor(name, "shape ", shape_string(e.shape), " has more elements than fit in 64 bits");
    std::uint64_t nbytes = 0;
    // Every supported dtype is whole bytes, so "sub-byte tensors must end on a byte boundary"
    // holds by construction (F4/F6 are rejected above as unsupported).
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel), static_cast<std::uint64_t>(element_bytes(e.dtype)),
                               &nbytes))
      fail_tensor(name, "shape ", shape_string(e.shape), " of ", dts, " needs more bytes than fit in 64 bits");

    // data_offsets
    const auto off = v.find("data_offsets");
    if (off == v.end()) fail_tensor(name, "entry has no \"data_offsets\"");
    if (!off->is_array() || off->size() != 2)
      fail_tensor(name, "\"data_offsets\" must be an array [BEGIN, END], got ", off->dump());
    e.begin = non_negative_integer(name, (*off)[0], "data_offsets[0]", std::numeric_limits<std::uint64_t>::max());
    e.end = non_negative_integer(name, (*off)[1], "data_offsets[1]", std::numeric_limits<std::uint64_t>::max());
    if (e.begin > e.end) fail_tensor(name, "data_offsets [", e.begin, ", ", e.end, "] have BEGIN > END");
    if (e.end > data_.size())
      fail_tensor(name, "data_offsets [", e.begin, ", ", e.end, "] end beyond the data buffer of ", data_.size(),
                  " bytes");
    if (e.end - e.begin != nbytes)
      fail_tensor(name, "data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin, " bytes but shape ",
                  shape_string(e.shape), " of ", dts, " needs ", nbytes, " bytes");
    return e;
  }

  std::string source_;
  std::shared_ptr<const void> owner_;
  std::uint64_t header_size_ = 0;
  std::span<const std::byte> data_;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::size_t, std::less<>> by_name_;
  std::map<std::string, std::string, std::less<>> metadata_;
};

}  // namespace precis::io
