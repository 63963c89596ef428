// precis/numeric/round_to_odd.hpp — double → float rounding that makes a second rounding exact.
//
// Converting f64 → bf16/f16/fp8 through f32 rounds twice, and double rounding can be wrong by one
// ulp at ties. Rounding the first step to odd (truncate, then set the last bit if inexact) makes
// the second, round-to-nearest-even step equal the correctly rounded f64 → D conversion
// (Boldo & Melquiond, "When double rounding is odd", 2005): the target formats have at least two
// fewer mantissa bits than f32.
#pragma once

#include <bit>      // std::bit_cast
#include <cstdint>  // std::uint32_t

#include <precis/core/config.hpp>  // PRECIS_HD

namespace precis {

/// `v` rounded to float with round-to-odd; NaN stays NaN, values beyond FLT_MAX stay beyond it
/// (FLT_MAX with the odd bit, or Inf), so a later narrowing still overflows correctly.
[[nodiscard]] PRECIS_HD constexpr float f64_to_f32_round_to_odd(double v) noexcept {
  float f = static_cast<float>(v);
  const double back = static_cast<double>(f);
  if (back != v && v == v) {
    std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
    const bool away = (v > 0) ? (back > v) : (back < v);
    if (away) bits -= 1u;                  // step toward zero (sign-magnitude)
    f = std::bit_cast<float>(bits | 1u);   // sticky "inexact" bit
  }
  return f;
}

}  // namespace precis
