// precis/io/gguf_value.hpp — GgufValue: one GGUF metadata value (scalar, string, or array).
//
// GGUF metadata is a list of typed key/value pairs (model-semantics.md §1d; ggml docs/gguf.md
// "gguf_metadata_value_type"): twelve scalar types, length-prefixed UTF-8 strings, and arrays
// `{u32 elem_type; u64 n; elems}` of one scalar or string type. GgufFile::open decodes and
// validates them once; a GgufValue is the decoded form.
//
// Reading a value is checked, in the spirit of io::load (dtype-bugs C8: a stored type meets a
// declared one at the boundary, and a mismatch is an error, never a silent reinterpretation):
//   - get<T>() asks for a kind: bool, an integer (any width), a float (float/double) or a string.
//     Asking for another kind than stored (a string as an int, an int as a float, an array as a
//     scalar) is a format_error naming the key, the stored type and the asked type.
//   - Integers convert between widths and signedness only when the value fits (else range_error
//     naming the key and the value): a u64 `context_length` of 2^40 never becomes a wrapped int.
//   - f32 → double is exact; f64 → float must be finite-in-range (else range_error).
//   - get_array<T>() applies the same rules to every element and names the element's index.
//
// Storage is zero-copy: strings and numeric arrays are views into the bytes GgufFile parsed
// (the memory mapping), which the GgufFile keeps alive; a GgufValue must not outlive its file.
#pragma once

#include <bit>          // std::endian
#include <concepts>     // std::integral, std::same_as
#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::uint8_t ... std::uint64_t
#include <cstring>      // std::memcpy
#include <limits>       // std::numeric_limits
#include <memory>       // std::shared_ptr
#include <span>         // std::span
#include <sstream>      // std::ostringstream
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::in_range, std::move
#include <vector>       // std::vector

#include <precis/core/error.hpp>  // precis::format_error, range_error, fail

namespace precis::io {

static_assert(std::endian::native == std::endian::little,
              "GGUF (v3, little-endian files) is read in place; precis assumes a little-endian host");

/// gguf.md `gguf_metadata_value_type`.
enum class gguf_value_type : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8,
  array = 9, u64 = 10, i64 = 11, f64 = 12
};

/// "u32", "string", "array" — the spelling used in every GGUF message.
[[nodiscard]] constexpr std::string_view gguf_value_type_name(gguf_value_type t) noexcept {
  switch (t) {
    case gguf_value_type::u8: return "u8";
    case gguf_value_type::i8: return "i8";
    case gguf_value_type::u16: return "u16";
    case gguf_value_type::i16: return "i16";
    case gguf_value_type::u32: return "u32";
    case gguf_value_type::i32: return "i32";
    case gguf_value_type::f32: return "f32";
    case gguf_value_type::boolean: return "bool";
    case gguf_value_type::string: return "string";
    case gguf_value_type::array: return "array";
    case gguf_value_type::u64: return "u64";
    case gguf_value_type::i64: return "i64";
    case gguf_value_type::f64: return "f64";
  }
  return "?";
}

/// Bytes of one value of a fixed-size type; 0 for string and array.
[[nodiscard]] constexpr std::size_t gguf_value_type_size(gguf_value_type t) noexcept {
  switch (t) {
    case gguf_value_type::u8: case gguf_value_type::i8: case gguf_value_type::boolean: return 1;
    case gguf_value_type::u16: case gguf_value_type::i16: return 2;
    case gguf_value_type::u32: case gguf_value_type::i32: case gguf_value_type::f32: return 4;
    case gguf_value_type::u64: case gguf_value_type::i64: case gguf_value_type::f64: return 8;
    default: return 0;
  }
}

/// The integer types get<T> converts to: any standard integer except bool and the character types.
template <class T>
concept gguf_integer = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
                       !std::same_as<T, wchar_t> && !std::same_as<T, char8_t> && !std::same_as<T, char16_t> &&
                       !std::same_as<T, char32_t>;

/// Every T GgufValue::get<T> / get_array<T> accepts.
template <class T>
concept gguf_readable = std::same_as<T, bool> || gguf_integer<T> || std::same_as<T, float> ||
                        std::same_as<T, double> || std::same_as<T, std::string>;

namespace detail {

template <class T>
[[nodiscard]] std::string gguf_asked_name() {
  if constexpr (std::same_as<T, bool>) return "bool";
  else if constexpr (std::same_as<T, std::string>) return "string";
  else if constexpr (std::same_as<T, float>) return "float (f32)";
  else if constexpr (std::same_as<T, double>) return "double (f64)";
  else return std::string(std::is_signed_v<T> ? "i" : "u") + std::to_string(8 * sizeof(T));
}

[[nodiscard]] constexpr bool gguf_is_integer(gguf_value_type t) noexcept {
  switch (t) {
    case gguf_value_type::u8: case gguf_value_type::i8: case gguf_value_type::u16: case gguf_value_type::i16:
    case gguf_value_type::u32: case gguf_value_type::i32: case gguf_value_type::u64: case gguf_value_type::i64:
      return true;
    default: return false;
  }
}
[[nodiscard]] constexpr bool gguf_is_signed(gguf_value_type t) noexcept {
  return t == gguf_value_type::i8 || t == gguf_value_type::i16 || t == gguf_value_type::i32 ||
         t == gguf_value_type::i64;
}

/// The little-endian value of `n` bytes at `p`, zero-extended.
[[nodiscard]] inline std::uint64_t gguf_load_le(const std::byte* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, p, n);  // little-endian host (static_assert above)
  return v;
}

/// Sign-extends the low `bytes` bytes of `v`.
[[nodiscard]] constexpr std::int64_t gguf_sign_extend(std::uint64_t v, std::size_t bytes) noexcept {
  if (bytes >= 8) return static_cast<std::int64_t>(v);
  const std::uint64_t sign = std::uint64_t{1} << (8 * bytes - 1);
  const std::uint64_t mask = (std::uint64_t{1} << (8 * bytes)) - 1;
  v &= mask;
  return static_cast<std::int64_t>((v ^ sign) - sign);  // two's complement, no UB
}

}  // namespace detail

class GgufValue {
 public:
  /// A scalar of fixed-size type `t` whose little-endian bits are `bits` (zero-extended).
  [[nodiscard]] static GgufValue scalar(std::string key, std::shared_ptr<const std::string> source,
                                        std::uint64_t offset, gguf_value_type t, std::uint64_t bits) {
    GgufValue v(std::move(key), std::move(source), offset, t);
    v.bits_ = bits;
    return v;
  }
  /// A string scalar viewing `s` (which must outlive the value).
  [[nodiscard]] static GgufValue string(std::string key, std::shared_ptr<const std::string> source,
                                        std::uint64_t offset, std::string_view s) {
    GgufValue v(std::move(key), std::move(source), offset, gguf_value_type::string);
    v.str_ = s;
    return v;
  }
  /// An array of `n` fixed-size elements of type `elem`, stored in `raw` (n × size bytes).
  [[nodiscard]] static GgufValue numeric_array(std::string key, std::shared_ptr<const std::string> source,
                                               std::uint64_t offset, gguf_value_type elem,
                                               std::span<const std::byte> raw) {
    GgufValue v(std::move(key), std::move(source), offset, gguf_value_type::array);
    v.elem_ = elem;
    v.raw_ = raw;
    v.n_ = raw.size() / gguf_value_type_size(elem);
    return v;
  }
  /// An array of strings.
  [[nodiscard]] static GgufValue string_array(std::string key, std::shared_ptr<const std::string> source,
                                              std::uint64_t offset, std::vector<std::string_view> strings) {
    GgufValue v(std::move(key), std::move(source), offset, gguf_value_type::array);
    v.elem_ = gguf_value_type::string;
    v.n_ = strings.size();
    v.strs_ = std::move(strings);
    return v;
  }

  /// The key this value is stored under ("llama.block_count").
  [[nodiscard]] const std::string& key() const noexcept { return key_; }
  /// The stored type; `array` for arrays (see array_type()).
  [[nodiscard]] gguf_value_type type() const noexcept { return type_; }
  [[nodiscard]] bool is_array() const noexcept { return type_ == gguf_value_type::array; }
  /// The element type of an array; format_error naming the key for a scalar.
  [[nodiscard]] gguf_value_type array_type() const {
    if (!is_array()) fail_key("holds ", describe(), ", not an array (array_type() needs an array)");
    return elem_;
  }
  /// Number of elements of an array; 1 for a scalar.
  [[nodiscard]] std::size_t size() const noexcept { return is_array() ? static_cast<std::size_t>(n_) : 1; }
  /// File offset of the value's type id (for messages).
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

  /// The scalar as T (see the header comment for the conversion rules).
  template <gguf_readable T>
  [[nodiscard]] T get() const {
    if (is_array())
      fail_key("holds ", describe(), ", asked for a scalar ", detail::gguf_asked_name<T>(), " (use get_array)");
    if constexpr (std::same_as<T, std::string>) return std::string(as_string_view());
    else return convert<T>(type_, bits_, nullptr);
  }

  /// Every element of an array as T; format_error for a scalar or an element of the wrong kind,
  /// range_error naming the element's index for one that does not fit.
  template <gguf_readable T>
  [[nodiscard]] std::vector<T> get_array() const {
    if (!is_array())
      fail_key("holds ", describe(), ", asked for an array of ", detail::gguf_asked_name<T>());
    std::vector<T> out;
    out.reserve(static_cast<std::size_t>(n_));
    if constexpr (std::same_as<T, std::string>) {
      if (elem_ != gguf_value_type::string)
        fail_key("holds ", describe(), ", asked for an array of ", detail::gguf_asked_name<T>());
      for (std::string_view s : strs_) out.emplace_back(s);
    } else {
      if (elem_ == gguf_value_type::string)
        fail_key("holds ", describe(), ", asked for an array of ", detail::gguf_asked_name<T>());
      const std::size_t w = gguf_value_type_size(elem_);
      for (std::size_t i = 0; i < n_; ++i) {
        const std::uint64_t bits = detail::gguf_load_le(raw_.data() + i * w, w);
        out.push_back(convert<T>(elem_, bits, &i));
      }
    }
    return out;
  }

  /// A string scalar, zero-copy (valid while the GgufFile lives).
  [[nodiscard]] std::string_view as_string_view() const {
    if (type_ != gguf_value_type::string) fail_key("holds ", describe(), ", asked for string");
    return str_;
  }
  /// Element `i` of a string array, zero-copy.
  [[nodiscard]] std::string_view string_at(std::size_t i) const {
    if (!is_array() || elem_ != gguf_value_type::string)
      fail_key("holds ", describe(), ", asked for a string array element");
    if (i >= strs_.size())
      fail<range_error>("[gguf] '", source_name(), "': key '", key_, "': index ", i, " out of range [0, ",
                        strs_.size(), ")");
    return strs_[i];
  }
  /// The raw little-endian bytes of a numeric array (empty for strings and scalars).
  [[nodiscard]] std::span<const std::byte> array_bytes() const noexcept { return raw_; }

  /// "u32 7", "string \"llama\"", "array of 512 string" — for messages.
  [[nodiscard]] std::string describe() const {
    std::ostringstream os;
    if (is_array()) {
      os << "array of " << n_ << ' ' << gguf_value_type_name(elem_);
    } else if (type_ == gguf_value_type::string) {
      constexpr std::size_t shown = 40;
      os << "string \"" << str_.substr(0, shown) << (str_.size() > shown ? "...\"" : "\"");
    } else {
      os << gguf_value_type_name(type_) << ' ' << scalar_text(type_, bits_);
    }
    return os.str();
  }

 private:
  GgufValue(std::string key, std::shared_ptr<const std::string> source, std::uint64_t offset, gguf_value_type t)
      : key_(std::move(key)), source_(std::move(source)), offset_(offset), type_(t) {}

  [[nodiscard]] std::string_view source_name() const noexcept {
    return source_ ? std::string_view(*source_) : std::string_view("<memory>");
  }

  template <class... Parts>
  [[noreturn]] void fail_key(const Parts&... parts) const {
    fail<format_error>("[gguf] '", source_name(), "': key '", key_, "' ", parts...);
  }

  /// The value of a fixed-size scalar as text ("-3", "0.5", "true").
  [[nodiscard]] static std::string scalar_text(gguf_value_type t, std::uint64_t bits) {
    std::ostringstream os;
    if (detail::gguf_is_integer(t)) {
      const std::size_t w = gguf_value_type_size(t);
      if (detail::gguf_is_signed(t)) os << detail::gguf_sign_extend(bits, w);
      else os << bits;
    } else if (t == gguf_value_type::f32) {
      os << as_f32(bits);
    } else if (t == gguf_value_type::f64) {
      os << as_f64(bits);
    } else if (t == gguf_value_type::boolean) {
      os << (bits != 0 ? "true" : "false");
    }
    return os.str();
  }
  [[nodiscard]] static float as_f32(std::uint64_t bits) noexcept {
    const auto b32 = static_cast<std::uint32_t>(bits);
    float f;
    std::memcpy(&f, &b32, sizeof f);
    return f;
  }
  [[nodiscard]] static double as_f64(std::uint64_t bits) noexcept {
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }

  /// One stored fixed-size value → T. `index` names the array element in messages (null for a
  /// scalar).
  template <class T>
  [[nodiscard]] T convert(gguf_value_type t, std::uint64_t bits, const std::size_t* index) const {
    const auto where = [&]() -> std::string {
      return index ? "element " + std::to_string(*index) + " " : std::string{};
    };
    const auto wrong_kind = [&]() {
      fail_key(where(), index ? "is " : "holds ", gguf_value_type_name(t), ' ', scalar_text(t, bits),
               ", asked for ", detail::gguf_asked_name<T>());
    };
    if constexpr (std::same_as<T, bool>) {
      if (t != gguf_value_type::boolean) wrong_kind();
      return bits != 0;
    } else if constexpr (gguf_integer<T>) {
      if (!detail::gguf_is_integer(t)) wrong_kind();
      const std::size_t w = gguf_value_type_size(t);
      bool fits;
      if (detail::gguf_is_signed(t)) fits = std::in_range<T>(detail::gguf_sign_extend(bits, w));
      else fits = std::in_range<T>(bits);
      if (!fits)
        fail<range_error>("[gguf] '", source_name(), "': key '", key_, "' ", where(), "value ", scalar_text(t, bits),
                          " (", gguf_value_type_name(t), ") does not fit in ", detail::gguf_asked_name<T>());
      if (detail::gguf_is_signed(t)) return static_cast<T>(detail::gguf_sign_extend(bits, w));
      return static_cast<T>(bits);
    } else {  // float or double
      static_assert(std::same_as<T, float> || std::same_as<T, double>);
      if (t == gguf_value_type::f32) return static_cast<T>(as_f32(bits));
      if (t != gguf_value_type::f64) wrong_kind();
      const double d = as_f64(bits);
      if constexpr (std::same_as<T, float>) {
        // Finite doubles beyond float's range would become ±inf; NaN and ±inf stay what they are.
        if (d == d && d - d == 0.0 && (d > std::numeric_limits<float>::max() || d < -std::numeric_limits<float>::max()))
          fail<range_error>("[gguf] '", source_name(), "': key '", key_, "' ", where(), "value ", scalar_text(t, bits),
                            " (f64) does not fit in float (f32)");
        return static_cast<float>(d);
      } else {
        return d;
      }
    }
  }

  std::string key_;
  std::shared_ptr<const std::string> source_;  // the file's name, shared by all its values
  std::uint64_t offset_ = 0;
  gguf_value_type type_ = gguf_value_type::u8;
  std::uint64_t bits_ = 0;                    // fixed-size scalars
  std::string_view str_;                      // string scalars
  gguf_value_type elem_ = gguf_value_type::u8;  // arrays
  std::uint64_t n_ = 0;
  std::span<const std::byte> raw_;            // numeric arrays
  std::vector<std::string_view> strs_;        // string arrays
};

}  // namespace precis::io
