// precis/numeric/float8.hpp — OCP 8-bit floats: E4M3FN and E5M2, with bit-exact conversions.
//
//   E4M3FN: 1 sign, 4 exponent (bias 7), 3 mantissa. No infinities; S.1111.111 is NaN; max 448.
//   E5M2:   1 sign, 5 exponent (bias 15), 2 mantissa. IEEE-like: Inf and NaN; max 57344.
//
// float → fp8 rounds to nearest, ties to even, with subnormals. Overflow follows ml_dtypes and
// torch (non-saturating): E5M2 overflows to ±Inf; E4M3FN has no Inf, so overflow and ±Inf
// become NaN. Saturating conversion is a different, named operation (not provided here).
#pragma once

#include <bit>      // std::bit_cast
#include <cstdint>  // std::uint8_t, std::uint32_t

#include <precis/core/config.hpp>  // PRECIS_HD

namespace precis {

namespace detail {

/// Layout of an 8-bit float: exponent/mantissa widths and whether the all-ones exponent is Inf/NaN
/// (IEEE style) or a normal binade whose top mantissa code alone is NaN (the "FN" formats).
template <int ExpBits, int MantBits, bool IeeeSpecials>
struct fp8_format {
  static constexpr int exp_bits = ExpBits;
  static constexpr int mant_bits = MantBits;
  static constexpr int bias = (1 << (ExpBits - 1)) - 1;
  static constexpr bool ieee_specials = IeeeSpecials;
  static constexpr std::uint32_t exp_mask = (1u << ExpBits) - 1u;
  static constexpr std::uint32_t mant_mask = (1u << MantBits) - 1u;
  /// Largest finite magnitude's code (without sign).
  static constexpr std::uint32_t max_code = IeeeSpecials ? ((exp_mask - 1u) << MantBits) | mant_mask
                                                         : (exp_mask << MantBits) | (mant_mask - 1u);
  static constexpr std::uint32_t nan_code = IeeeSpecials ? (exp_mask << MantBits) | (1u << (MantBits - 1))
                                                         : (exp_mask << MantBits) | mant_mask;
  static constexpr std::uint32_t inf_code = exp_mask << MantBits;  // only meaningful when IeeeSpecials
};

using e4m3fn_format = fp8_format<4, 3, false>;
using e5m2_format = fp8_format<5, 2, true>;

template <class Fmt>
[[nodiscard]] PRECIS_HD constexpr float fp8_bits_to_f32(std::uint8_t b) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(b & 0x80u) << 24;
  const std::uint32_t e = (b >> Fmt::mant_bits) & Fmt::exp_mask;
  const std::uint32_t m = b & Fmt::mant_mask;
  if constexpr (Fmt::ieee_specials) {
    if (e == Fmt::exp_mask) return std::bit_cast<float>(sign | 0x7f800000u | (m << (23 - Fmt::mant_bits)));
  } else {
    if (e == Fmt::exp_mask && m == Fmt::mant_mask) return std::bit_cast<float>(sign | 0x7fc00000u);
  }
  if (e == 0) {
    // Subnormal: m · 2^(1 - bias - mant_bits), exact in float.
    float mag = static_cast<float>(m);
    for (int i = 0; i < Fmt::bias - 1 + Fmt::mant_bits; ++i) mag *= 0.5f;
    return std::bit_cast<float>(sign | std::bit_cast<std::uint32_t>(mag));
  }
  const std::uint32_t f32_exp = e - static_cast<std::uint32_t>(Fmt::bias) + 127u;
  return std::bit_cast<float>(sign | (f32_exp << 23) | (m << (23 - Fmt::mant_bits)));
}

template <class Fmt>
[[nodiscard]] PRECIS_HD constexpr std::uint8_t f32_to_fp8_bits(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (u >> 24) & 0x80u;
  const std::uint32_t a = u & 0x7fffffffu;
  const auto overflow = [&]() -> std::uint8_t {
    return static_cast<std::uint8_t>(sign | (Fmt::ieee_specials ? Fmt::inf_code : Fmt::nan_code));
  };
  if (a > 0x7f800000u) return static_cast<std::uint8_t>(sign | Fmt::nan_code);
  if (a == 0x7f800000u) return overflow();

  const int exp32 = static_cast<int>(a >> 23);  // biased, 0..254
  const int e = exp32 - 127 + Fmt::bias;         // target biased exponent if normal
  std::uint32_t code;
  if (e >= 1) {
    // Normal in the target: round the 23-bit mantissa to mant_bits, ties to even. The sum
    // carries into the exponent field exactly as the rounded value requires.
    constexpr int drop = 23 - Fmt::mant_bits;
    const std::uint32_t m = a & 0x7fffffu;
    std::uint32_t q = (static_cast<std::uint32_t>(e) << Fmt::mant_bits) | (m >> drop);
    const std::uint32_t rem = m & ((1u << drop) - 1u);
    const std::uint32_t half = 1u << (drop - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    code = q;
  } else {
    // Subnormal (or zero) in the target: round(|f| · 2^(bias - 1 + mant_bits)).
    if (exp32 == 0) return static_cast<std::uint8_t>(sign);  // f32 zero/subnormal → ±0
    const int shift = (23 - Fmt::mant_bits) + (1 - e);  // significand (24 bits) >> shift
    if (shift > 24) return static_cast<std::uint8_t>(sign);
    const std::uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    std::uint32_t q = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    code = q;  // q == 1 << mant_bits is the smallest normal, encoded by the same bits
  }
  if (code > Fmt::max_code) return overflow();
  return static_cast<std::uint8_t>(sign | code);
}

}  // namespace detail

/// Storage for one OCP FP8 value of format `Fmt`. No arithmetic: compute in float.
template <class Fmt>
struct basic_float8 {
  std::uint8_t bits;

  basic_float8() = default;
  PRECIS_HD explicit constexpr basic_float8(float f) noexcept : bits(detail::f32_to_fp8_bits<Fmt>(f)) {}
  PRECIS_HD explicit constexpr operator float() const noexcept { return detail::fp8_bits_to_f32<Fmt>(bits); }

  [[nodiscard]] PRECIS_HD static constexpr basic_float8 from_bits(std::uint8_t b) noexcept {
    basic_float8 r;
    r.bits = b;
    return r;
  }
  friend PRECIS_HD constexpr bool operator==(basic_float8 a, basic_float8 b) noexcept { return a.bits == b.bits; }
};

using float8_e4m3 = basic_float8<detail::e4m3fn_format>;
using float8_e5m2 = basic_float8<detail::e5m2_format>;

static_assert(sizeof(float8_e4m3) == 1 && sizeof(float8_e5m2) == 1);

}  // namespace precis
