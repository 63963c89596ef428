// tests/unit/core/test_float8.cpp — precis::float8_e4m3 / float8_e5m2 against ml_dtypes'
// float8_e4m3fn / float8_e5m2, bit for bit.
//
// Reference: tests/fixtures/dtype/{decode,encode}_{e4m3fn,e5m2}.bin (tools/make_dtype_tables.py).
// Overflow is non-saturating in both (numeric/float8.hpp): E5M2 → ±Inf, E4M3FN → NaN.
// Tolerance: none — each conversion has exactly one correctly rounded result.
#include <limits>       // std::numeric_limits
#include <type_traits>  // std::is_convertible_v

#include <catch2/catch.hpp>  // TEMPLATE_TEST_CASE, STATIC_REQUIRE

#include <precis/numeric/float8.hpp>  // precis::float8_e4m3, precis::float8_e5m2

#include "narrow_float_checks.hpp"  // check_decode_table, check_encode_table, check_round_trip, narrow_format

using precis::float8_e4m3;
using precis::float8_e5m2;
using precis::test::narrow_format;

TEMPLATE_TEST_CASE("fp8 widening matches ml_dtypes for all 256 bit patterns", "[numeric][fp8]", float8_e4m3,
                   float8_e5m2) {
  precis::test::check_decode_table<TestType>();
}

TEMPLATE_TEST_CASE("f32 to fp8 rounds like ml_dtypes on values, ties, ties +- 1 ulp, overflow, NaN, subnormals",
                   "[numeric][fp8]", float8_e4m3, float8_e5m2) {
  precis::test::check_encode_table<TestType>();
}

TEMPLATE_TEST_CASE("fp8 to f32 to fp8 is the identity for every non-NaN pattern", "[numeric][fp8]", float8_e4m3,
                   float8_e5m2) {
  precis::test::check_round_trip<TestType>();
}

TEST_CASE("E4M3FN conversions are usable in constant expressions", "[numeric][fp8]") {
  constexpr float inf = std::numeric_limits<float>::infinity();
  // Max finite 448 = 1.75·2^8; 464 is the tie with the (missing) next step 480: even 448 wins.
  STATIC_REQUIRE(static_cast<float>(float8_e4m3(464.0f)) == 448.0f);
  // Above the tie there is no finite value and no Inf: the result is NaN (OCP E4M3FN, ml_dtypes).
  STATIC_REQUIRE(narrow_format<float8_e4m3>::is_nan(float8_e4m3(464.0f + 0x1p-15f).bits));
  STATIC_REQUIRE(narrow_format<float8_e4m3>::is_nan(float8_e4m3(inf).bits));
  // Subnormals are multiples of 2^-9: 2^-10 ties to 0, 3·2^-10 ties to the even 2·2^-9.
  STATIC_REQUIRE(static_cast<float>(float8_e4m3(0x1p-10f)) == 0.0f);
  STATIC_REQUIRE(static_cast<float>(float8_e4m3(0x3p-10f)) == 0x1p-8f);
}

TEST_CASE("E5M2 conversions are usable in constant expressions", "[numeric][fp8]") {
  constexpr float inf = std::numeric_limits<float>::infinity();
  // Max finite 57344 = 1.75·2^15; 61440 is the tie with 2^16 and rounds to +Inf.
  STATIC_REQUIRE(static_cast<float>(float8_e5m2(61440.0f - 0x1p-8f)) == 57344.0f);
  STATIC_REQUIRE(static_cast<float>(float8_e5m2(61440.0f)) == inf);
  STATIC_REQUIRE(static_cast<float>(float8_e5m2(-inf)) == -inf);
  // Subnormals are multiples of 2^-16: 2^-17 ties to 0.
  STATIC_REQUIRE(static_cast<float>(float8_e5m2(0x1p-17f)) == 0.0f);
  STATIC_REQUIRE(static_cast<float>(float8_e5m2(0x1p-17f + 0x1p-40f)) == 0x1p-16f);
}

TEMPLATE_TEST_CASE("fp8 never converts implicitly and has no arithmetic", "[numeric][fp8][static]", float8_e4m3,
                   float8_e5m2) {
  STATIC_REQUIRE_FALSE(std::is_convertible_v<TestType, float>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<float, TestType>);
  STATIC_REQUIRE_FALSE(precis::test::has_arithmetic<TestType>);
  STATIC_REQUIRE_FALSE(precis::test::compares_with_float<TestType>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<float8_e4m3, float8_e5m2>);
  STATIC_REQUIRE(std::is_constructible_v<float, TestType>);
  STATIC_REQUIRE(sizeof(TestType) == 1);
  STATIC_REQUIRE(std::is_trivially_copyable_v<TestType>);
}
