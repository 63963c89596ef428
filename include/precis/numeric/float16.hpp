// precis/numeric/float16.hpp — the IEEE-754 binary16 storage type and its conversions.
//
// 1 sign, 5 exponent (bias 15), 10 mantissa bits; max finite 65504, smallest subnormal 2^-24.
// float → f16 rounds to nearest, ties to even, including into and out of the subnormal range;
// values ≥ 65520 round to ±Inf; NaN stays NaN (quieted, sign kept). Conversions are explicit.
#pragma once

#include <bit>      // std::bit_cast
#include <cstdint>  // std::uint16_t, std::uint32_t

#include <precis/core/config.hpp>  // PRECIS_HD

namespace precis {

namespace detail {
[[nodiscard]] PRECIS_HD constexpr std::uint16_t f32_to_f16_bits(float f) noexcept {
  std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  std::uint32_t out;
  if (u >= 0x47800000u) {
    // |f| ≥ 65536 (or Inf/NaN): Inf, or a quiet NaN keeping the top payload bits.
    out = (u > 0x7f800000u) ? (0x7e00u | ((u >> 13) & 0x3ffu)) : 0x7c00u;
  } else if (u < 0x38800000u) {
    // |f| < 2^-14: the result is subnormal or zero. The result is round(|f| · 2^24) with
    // ties to even, done on the integer significand so it does not depend on FTZ/DAZ modes.
    const std::uint32_t exp = u >> 23;  // biased f32 exponent, ≤ 112
    if (exp < 102) {
      out = 0;  // |f| < 2^-25: rounds to zero (2^-25 itself is the tie, handled below)
    } else {
      const std::uint32_t mant = (u & 0x7fffffu) | 0x800000u;  // 24-bit significand
      const std::uint32_t shift = 126u - exp;                  // value·2^24 = mant >> shift
      std::uint32_t q = mant >> shift;
      const std::uint32_t rem = mant & ((1u << shift) - 1u);
      const std::uint32_t half = 1u << (shift - 1u);
      if (rem > half || (rem == half && (q & 1u))) ++q;
      out = q;  // q == 0x400 is the smallest normal, encoded correctly by the same bits
    }
  } else {
    // Normal range: rebias the exponent and round the mantissa at bit 13 to nearest even;
    // a carry propagates into the exponent and up to Inf (65520 → Inf).
    const std::uint32_t mant_odd = (u >> 13) & 1u;
    u += (static_cast<std::uint32_t>(15 - 127) << 23) + 0xfffu + mant_odd;
    out = u >> 13;
  }
  return static_cast<std::uint16_t>(out | sign);
}

[[nodiscard]] PRECIS_HD constexpr float f16_bits_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t em = h & 0x7fffu;
  if (em >= 0x7c00u) return std::bit_cast<float>(sign | 0x7f800000u | ((em & 0x3ffu) << 13));  // Inf/NaN
  if (em >= 0x0400u) return std::bit_cast<float>(sign | ((em << 13) + (static_cast<std::uint32_t>(127 - 15) << 23)));
  // Subnormal or zero: em · 2^-24 is exact in float.
  const float mag = static_cast<float>(em) * 5.9604644775390625e-8f;
  return std::bit_cast<float>(sign | std::bit_cast<std::uint32_t>(mag));
}
}  // namespace detail

/// Storage for one IEEE binary16 value. No arithmetic: compute in float.
struct float16 {
  std::uint16_t bits;

  float16() = default;
  PRECIS_HD explicit constexpr float16(float f) noexcept : bits(detail::f32_to_f16_bits(f)) {}
  PRECIS_HD explicit constexpr operator float() const noexcept { return detail::f16_bits_to_f32(bits); }

  [[nodiscard]] PRECIS_HD static constexpr float16 from_bits(std::uint16_t b) noexcept {
    float16 r;
    r.bits = b;
    return r;
  }
  friend PRECIS_HD constexpr bool operator==(float16 a, float16 b) noexcept { return a.bits == b.bits; }
};

static_assert(sizeof(float16) == 2);

}  // namespace precis
