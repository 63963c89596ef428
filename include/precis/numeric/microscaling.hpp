// precis/numeric/microscaling.hpp — the element and scale types of OCP Microscaling (MX) formats.
//
// MXFP4 (OCP MX v1.0): a block of 32 FP4 E2M1 elements shares one E8M0 scale.
//   E2M1 nibble: bit 3 sign, 2 exponent bits (bias 1), 1 mantissa bit; values
//     0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives (no Inf/NaN).
//   E8M0 byte: 2^(e - 127); e = 255 is NaN.
// ggml stores the same value as a "doubled" table (0,1,2,3,4,6,8,12) times 2^(e-128);
// both give FP4[n] · 2^(e-127) (model-semantics.md §1d).
#pragma once

#include <bit>      // std::bit_cast
#include <cstdint>  // std::uint8_t, std::uint32_t

#include <precis/core/config.hpp>  // PRECIS_HD

namespace precis {

/// Value of an FP4 E2M1 nibble (low 4 bits of `nibble`), exact in float.
[[nodiscard]] PRECIS_HD constexpr float fp4_e2m1_to_f32(std::uint8_t nibble) noexcept {
  constexpr float table[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                               -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
  return table[nibble & 0x0fu];
}

/// Value of an E8M0 scale byte: 2^(e-127), exact in float except e = 0 (2^-127, a float
/// subnormal, still exact) and e = 255 (NaN).
[[nodiscard]] PRECIS_HD constexpr float e8m0_to_f32(std::uint8_t e) noexcept {
  if (e == 0xffu) return std::bit_cast<float>(0x7fc00000u);
  if (e == 0) return std::bit_cast<float>(0x00400000u);  // 2^-127 as a float subnormal
  return std::bit_cast<float>(static_cast<std::uint32_t>(e) << 23);
}

/// Nearest FP4 E2M1 nibble to `x` (round to nearest, ties to even; saturates at ±6, which is
/// what the OCP spec prescribes for conversions into MX element types).
[[nodiscard]] PRECIS_HD constexpr std::uint8_t f32_to_fp4_e2m1(float x) noexcept {
  const std::uint8_t sign = std::bit_cast<std::uint32_t>(x) >> 31 ? 0x8u : 0x0u;
  const float a = x < 0 ? -x : x;
  // Decision boundaries are the midpoints between representable magnitudes; at a tie the
  // even code (mantissa bit 0) wins: 0.25→0, 0.75→1.0, 1.25→1.0, 1.75→2.0, 2.5→2, 3.5→4, 5→4.
  std::uint8_t code;
  if (!(a > 0.25f)) code = 0;          // also maps NaN to 0, the only finite choice
  else if (a < 0.75f) code = 1;
  else if (a <= 1.25f) code = 2;
  else if (a < 1.75f) code = 3;
  else if (a <= 2.5f) code = 4;
  else if (a < 3.5f) code = 5;
  else if (a <= 5.0f) code = 6;
  else code = 7;
  return static_cast<std::uint8_t>(sign | code);
}

}  // namespace precis
