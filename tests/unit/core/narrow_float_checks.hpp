// tests/unit/core/narrow_float_checks.hpp — the three table checks every narrow float type gets.
//
// decode:     every bit pattern widened to f32 equals the reference (ml_dtypes / numpy) bits;
// encode:     every f32 input of the encode table rounds to the reference bits;
// round trip: narrow → f32 → narrow is the identity for every non-NaN pattern.
// Where the reference is a NaN only "is NaN" is required: NaN sign and payload legitimately
// differ between libraries (tools/make_dtype_tables.py). Everything else is compared bit for
// bit — these conversions have exactly one correct answer, so the tolerance is zero.
#pragma once

#include <bit>       // std::bit_cast
#include <cmath>     // std::isnan
#include <cstddef>   // std::size_t
#include <cstdint>   // std::uint8_t, std::uint16_t, std::uint32_t
#include <iomanip>   // std::hex, std::setw
#include <sstream>   // std::ostringstream
#include <string>    // std::string
#include <utility>   // std::move

#include <catch2/catch.hpp>  // INFO, CHECK, REQUIRE

#include <precis/numeric/bfloat16.hpp>  // precis::bfloat16
#include <precis/numeric/float16.hpp>   // precis::float16
#include <precis/numeric/float8.hpp>    // precis::float8_e4m3, precis::float8_e5m2

#include "dtype_table.hpp"  // precis::test::load_dtype_table

namespace precis::test {

/// Per-type facts the checks need, written from the format definitions (not from precis code):
/// the table suffix, the bit width and which bit patterns are NaN.
template <class T>
struct narrow_format;

template <>
struct narrow_format<bfloat16> {
  static constexpr const char* table = "bf16";
  static constexpr int bits = 16;
  // exponent all ones (0x7f80) with a non-zero mantissa
  static constexpr bool is_nan(std::uint32_t b) noexcept { return (b & 0x7fffu) > 0x7f80u; }
};

template <>
struct narrow_format<float16> {
  static constexpr const char* table = "f16";
  static constexpr int bits = 16;
  // exponent all ones (0x7c00) with a non-zero mantissa
  static constexpr bool is_nan(std::uint32_t b) noexcept { return (b & 0x7fffu) > 0x7c00u; }
};

template <>
struct narrow_format<float8_e4m3> {
  static constexpr const char* table = "e4m3fn";
  static constexpr int bits = 8;
  // OCP E4M3FN: only S.1111.111 is NaN; there are no infinities
  static constexpr bool is_nan(std::uint32_t b) noexcept { return (b & 0x7fu) == 0x7fu; }
};

template <>
struct narrow_format<float8_e5m2> {
  static constexpr const char* table = "e5m2";
  static constexpr int bits = 8;
  // OCP E5M2 is IEEE-like: exponent all ones (0x7c) with a non-zero mantissa
  static constexpr bool is_nan(std::uint32_t b) noexcept { return (b & 0x7fu) > 0x7cu; }
};

/// `a + a` compiles: true for arithmetic types, false for precis' storage-only narrow floats.
template <class T>
concept has_arithmetic = requires(T a) { a + a; };

/// `a == 1.0f` compiles: it would need an implicit narrow ↔ float conversion.
template <class T>
concept compares_with_float = requires(T a, float f) { a == f; };

[[nodiscard]] inline bool f32_bits_are_nan(std::uint32_t b) noexcept { return (b & 0x7fffffffu) > 0x7f800000u; }

/// Counts disagreements and keeps the first few for the failure message.
class MismatchLog {
 public:
  explicit MismatchLog(std::string what) : what_(std::move(what)) {}

  void add(std::uint32_t input, std::uint32_t expected, std::uint32_t actual) {
    if (count_++ < max_listed) {
      detail_ << "\n  input 0x" << std::hex << std::setw(8) << std::setfill('0') << input << ": expected 0x"
              << std::setw(8) << expected << ", got 0x" << std::setw(8) << actual << std::dec;
    }
  }
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  [[nodiscard]] std::string summary() const {
    return what_ + ": " + std::to_string(count_) + " mismatches" + detail_.str();
  }

 private:
  static constexpr std::size_t max_listed = 12;
  std::string what_;
  std::size_t count_ = 0;
  std::ostringstream detail_;
};

/// Every narrow pattern widened by `static_cast<float>(T)` equals the decode table.
template <class T>
void check_decode_table() {
  using F = narrow_format<T>;
  const DtypeTable t = load_dtype_table(std::string("decode_") + F::table);
  REQUIRE(t.size() == (std::size_t{1} << F::bits));  // the table covers every pattern
  MismatchLog log(std::string("decode ") + F::table);
  std::size_t nan_cases = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    using Bits = decltype(T{}.bits);
    const float widened = static_cast<float>(T::from_bits(static_cast<Bits>(t.inputs[i])));
    const std::uint32_t actual = std::bit_cast<std::uint32_t>(widened);
    const std::uint32_t expected = t.outputs[i];
    if (f32_bits_are_nan(expected)) {
      ++nan_cases;
      if (!std::isnan(widened)) log.add(t.inputs[i], expected, actual);
    } else if (actual != expected) {
      log.add(t.inputs[i], expected, actual);
    }
  }
  INFO(log.summary() << " (" << nan_cases << " NaN patterns checked for NaN only)");
  CHECK(log.count() == 0);
}

/// Every f32 input of the encode table rounds, via `T(float)`, to the reference bits.
template <class T>
void check_encode_table() {
  using F = narrow_format<T>;
  const DtypeTable t = load_dtype_table(std::string("encode_") + F::table);
  REQUIRE(t.size() > (std::size_t{1} << F::bits));  // at least one input per pattern plus ties
  MismatchLog log(std::string("encode ") + F::table);
  std::size_t nan_cases = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const std::uint32_t actual = T(std::bit_cast<float>(t.inputs[i])).bits;
    const std::uint32_t expected = t.outputs[i];
    if (F::is_nan(expected)) {
      ++nan_cases;
      if (!F::is_nan(actual)) log.add(t.inputs[i], expected, actual);
    } else if (actual != expected) {
      log.add(t.inputs[i], expected, actual);
    }
  }
  INFO(log.summary() << " over " << t.size() << " inputs (" << nan_cases << " NaN results checked for NaN only)");
  CHECK(log.count() == 0);
}

/// narrow → f32 → narrow is the identity for every non-NaN pattern and keeps NaNs NaN.
template <class T>
void check_round_trip() {
  using F = narrow_format<T>;
  using Bits = decltype(T{}.bits);
  MismatchLog log(std::string("round trip ") + F::table);
  for (std::uint32_t b = 0; b < (std::uint32_t{1} << F::bits); ++b) {
    const T x = T::from_bits(static_cast<Bits>(b));
    const std::uint32_t back = T(static_cast<float>(x)).bits;
    const bool ok = F::is_nan(b) ? F::is_nan(back) : back == b;
    if (!ok) log.add(b, b, back);
  }
  INFO(log.summary());
  CHECK(log.count() == 0);
}

}  // namespace precis::test
