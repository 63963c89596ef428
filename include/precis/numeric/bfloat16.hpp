// precis/numeric/bfloat16.hpp — the bf16 storage type and its bit-exact conversions.
//
// bf16 is the top half of an IEEE-754 binary32: 1 sign, 8 exponent, 7 mantissa bits.
// Conversions from float round to nearest, ties to even (what torch, ml_dtypes, Eigen and
// `cvt.rn.bf16.f32` do); NaN stays NaN (quieted, sign kept), ±Inf stays ±Inf, subnormals
// round like every other value and overflow rounds to ±Inf.
//
// Both directions are *explicit*: `float f = b;` does not compile. Tensor-level checks cannot
// see scalar expressions inside user lambdas, so the scalar type must not widen silently either
// (style-anchors §3.2 — CUTLASS and Eigen chose an implicit `operator float`, we do not).
#pragma once

#include <bit>      // std::bit_cast
#include <cstdint>  // std::uint16_t, std::uint32_t

#include <precis/core/config.hpp>  // PRECIS_HD

namespace precis {

namespace detail {
[[nodiscard]] PRECIS_HD constexpr std::uint16_t f32_to_bf16_bits(float f) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    // NaN: keep the sign and the top payload bits, force the quiet bit so the payload
    // cannot truncate to zero (which would turn a NaN into an infinity).
    return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
  }
  // Round to nearest even on bit 16; a carry into the exponent correctly yields the next
  // binade or ±Inf.
  const std::uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>((u + rounding_bias) >> 16);
}

[[nodiscard]] PRECIS_HD constexpr float bf16_bits_to_f32(std::uint16_t b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}
}  // namespace detail

/// Storage for one bf16 value. Trivially copyable, 2 bytes, no arithmetic: compute in float.
struct bfloat16 {
  std::uint16_t bits;

  bfloat16() = default;
  PRECIS_HD explicit constexpr bfloat16(float f) noexcept : bits(detail::f32_to_bf16_bits(f)) {}
  PRECIS_HD explicit constexpr operator float() const noexcept { return detail::bf16_bits_to_f32(bits); }

  /// Reinterprets raw bits (e.g. read from a checkpoint) as a bf16 value.
  [[nodiscard]] PRECIS_HD static constexpr bfloat16 from_bits(std::uint16_t b) noexcept {
    bfloat16 r;
    r.bits = b;
    return r;
  }
  friend PRECIS_HD constexpr bool operator==(bfloat16 a, bfloat16 b) noexcept { return a.bits == b.bits; }
};

static_assert(sizeof(bfloat16) == 2);

}  // namespace precis
