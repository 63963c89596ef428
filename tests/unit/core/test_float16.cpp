// tests/unit/core/test_float16.cpp — precis::float16 against numpy.float16, bit for bit.
//
// ml_dtypes has no float16 of its own (it uses numpy's), so the reference is numpy's IEEE
// binary16 conversion: tests/fixtures/dtype/{decode,encode}_f16.bin (tools/make_dtype_tables.py).
// Tolerance: none — widening is exact and f32 → f16 round-to-nearest-even (including into the
// subnormal range and the overflow to ±Inf at 65520) has one answer.
#include <limits>       // std::numeric_limits
#include <type_traits>  // std::is_convertible_v, std::is_constructible_v

#include <catch2/catch.hpp>  // TEST_CASE, STATIC_REQUIRE

#include <precis/numeric/bfloat16.hpp>  // precis::bfloat16
#include <precis/numeric/float16.hpp>   // precis::float16

#include "narrow_float_checks.hpp"  // check_decode_table, check_encode_table, check_round_trip

using precis::float16;

TEST_CASE("f16 widening matches numpy for all 65536 bit patterns", "[numeric][f16]") {
  precis::test::check_decode_table<float16>();
}

TEST_CASE("f32 to f16 rounds like numpy on values, ties, ties +- 1 ulp, overflow, NaN, subnormals",
          "[numeric][f16]") {
  precis::test::check_encode_table<float16>();
}

TEST_CASE("f16 to f32 to f16 is the identity for every non-NaN pattern", "[numeric][f16]") {
  precis::test::check_round_trip<float16>();
}

TEST_CASE("f16 conversions are usable in constant expressions", "[numeric][f16]") {
  constexpr float inf = std::numeric_limits<float>::infinity();
  // f16 keeps 11 significant bits: 1 + 2^-11 is the tie between 1 (even) and 1 + 2^-10 (odd).
  STATIC_REQUIRE(static_cast<float>(float16(1.0f + 0x1p-11f)) == 1.0f);
  STATIC_REQUIRE(static_cast<float>(float16(1.0f + 0x3p-11f)) == 1.0f + 0x1p-9f);
  // Subnormals are multiples of 2^-24: 2^-25 ties to 0, 3·2^-25 ties to the even 2·2^-24.
  STATIC_REQUIRE(static_cast<float>(float16(0x1p-25f)) == 0.0f);
  STATIC_REQUIRE(static_cast<float>(float16(0x3p-25f)) == 0x1p-23f);
  // Max finite is 65504 = (2 - 2^-10)·2^15; 65520 is the tie with the next step, 2^16 → +Inf.
  STATIC_REQUIRE(static_cast<float>(float16(65504.0f)) == 65504.0f);
  STATIC_REQUIRE(static_cast<float>(float16(65520.0f - 0x1p-8f)) == 65504.0f);
  STATIC_REQUIRE(static_cast<float>(float16(65520.0f)) == inf);
  STATIC_REQUIRE(static_cast<float>(float16(-inf)) == -inf);
}

TEST_CASE("f16 never converts implicitly and has no arithmetic", "[numeric][f16][static]") {
  STATIC_REQUIRE_FALSE(std::is_convertible_v<float16, float>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<float, float16>);
  STATIC_REQUIRE_FALSE(precis::test::has_arithmetic<float16>);
  STATIC_REQUIRE_FALSE(precis::test::compares_with_float<float16>);
  // No route between the two 16-bit formats except through an explicit float.
  STATIC_REQUIRE_FALSE(std::is_constructible_v<float16, precis::bfloat16>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<precis::bfloat16, float16>);
  STATIC_REQUIRE(std::is_constructible_v<float, float16>);
  STATIC_REQUIRE(sizeof(float16) == 2);
  STATIC_REQUIRE(std::is_trivially_copyable_v<float16>);
}
