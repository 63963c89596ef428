// tests/unit/core/test_bfloat16.cpp — precis::bfloat16 against ml_dtypes.bfloat16, bit for bit.
//
// Reference: tests/fixtures/dtype/{decode,encode}_bf16.bin (tools/make_dtype_tables.py).
// Tolerance: none — widening is exact and f32 → bf16 round-to-nearest-even has one answer.
#include <bit>          // std::bit_cast
#include <cstdint>      // std::uint16_t, std::uint32_t
#include <type_traits>  // std::is_convertible_v, std::is_trivially_copyable_v

#include <catch2/catch.hpp>  // TEST_CASE, STATIC_REQUIRE

#include <precis/numeric/bfloat16.hpp>  // precis::bfloat16

#include "narrow_float_checks.hpp"  // check_decode_table, check_encode_table, check_round_trip

using precis::bfloat16;

TEST_CASE("bf16 widening matches ml_dtypes for all 65536 bit patterns", "[numeric][bf16]") {
  precis::test::check_decode_table<bfloat16>();
}

TEST_CASE("f32 to bf16 rounds like ml_dtypes on values, ties, ties +- 1 ulp, overflow, NaN, subnormals",
          "[numeric][bf16]") {
  precis::test::check_encode_table<bfloat16>();
}

TEST_CASE("bf16 to f32 to bf16 is the identity for every non-NaN pattern", "[numeric][bf16]") {
  precis::test::check_round_trip<bfloat16>();
}

TEST_CASE("bf16 conversions are usable in constant expressions", "[numeric][bf16]") {
  // bf16 is the top half of an f32: a value with a zero low half converts exactly.
  STATIC_REQUIRE(bfloat16(3.140625f).bits == (std::bit_cast<std::uint32_t>(3.140625f) >> 16));
  STATIC_REQUIRE(static_cast<float>(bfloat16::from_bits(0x4049)) == std::bit_cast<float>(0x40490000u));
  // 1 + 2^-8 is the tie between 1 (even mantissa) and 1 + 2^-7 (odd): even wins.
  STATIC_REQUIRE(static_cast<float>(bfloat16(1.0f + 0x1p-8f)) == 1.0f);
  // 1 + 3·2^-8 is the tie between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
  STATIC_REQUIRE(static_cast<float>(bfloat16(1.0f + 0x3p-8f)) == 1.0f + 0x1p-6f);
}

TEST_CASE("bf16 never converts implicitly and has no arithmetic", "[numeric][bf16][static]") {
  // `float f = bfloat16{};` must not compile (style-anchors §3.2: explicit scalar widening).
  STATIC_REQUIRE_FALSE(std::is_convertible_v<bfloat16, float>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<float, bfloat16>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<bfloat16, double>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<int, bfloat16>);
  STATIC_REQUIRE_FALSE(precis::test::has_arithmetic<bfloat16>);
  STATIC_REQUIRE_FALSE(precis::test::compares_with_float<bfloat16>);
  // ...but the explicit spellings work.
  STATIC_REQUIRE(std::is_constructible_v<float, bfloat16>);
  STATIC_REQUIRE(std::is_constructible_v<bfloat16, float>);
  // Storage: two bytes, copied as bits.
  STATIC_REQUIRE(sizeof(bfloat16) == 2);
  STATIC_REQUIRE(std::is_trivially_copyable_v<bfloat16>);
}
