// tests/unit/nn/test_scalar.cpp — Scalar<D>: literals checked at compile time, run-time values
// range-checked, one correct rounding (core/scalar.hpp; dtype-bugs E1, E27, Gemma normaliser).
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, REQUIRE_THROWS_AS, STATIC_REQUIRE

#include <cmath>   // std::sqrt
#include <limits>  // std::numeric_limits

#include <precis/core/error.hpp>   // precis::range_error
#include <precis/core/scalar.hpp>  // precis::Scalar

using namespace precis;

TEST_CASE("a Scalar literal is rounded to its dtype at compile time", "[scalar]") {
  constexpr Scalar<bf16> half = 0.5;
  STATIC_REQUIRE(half.value() == 0.5f);
  // Gemma's normaliser sqrt(3072) = 55.4256...: bf16 has 8 significant bits, spacing 0.25 in
  // [32, 64), so the nearest bf16 is 55.5 (transformers#29402).
  constexpr Scalar<bf16> gemma = 55.42562584220407;
  STATIC_REQUIRE(gemma.value() == 55.5f);
  constexpr Scalar<f32> f = 0.1;
  STATIC_REQUIRE(f.value() == 0.1f);
  constexpr Scalar<f64> d = 0.1;
  STATIC_REQUIRE(d.value() == 0.1);
}

TEST_CASE("a double literal is rounded once to bf16, not twice through f32", "[scalar]") {
  // 1 + 2^-8 + 2^-30 lies just above the midpoint between the bf16 neighbours 1 and 1 + 2^-7, so
  // the correctly rounded bf16 is 1 + 2^-7. Rounding to f32 first lands exactly on the
  // midpoint (2^-30 is below f32's spacing at 1), and ties-to-even would then give 1.
  constexpr Scalar<bf16> s = 1.0 + 0x1p-8 + 0x1p-30;
  STATIC_REQUIRE(s.value() == 1.0f + 0x1p-7f);
  CHECK(Scalar<bf16>::from(1.0 + 0x1p-8 + 0x1p-30).value() == 1.0f + 0x1p-7f);
  // The exact midpoint still rounds to even.
  CHECK(Scalar<bf16>::from(1.0 + 0x1p-8).value() == 1.0f);
}

TEST_CASE("Scalar::from rejects values that are not finite in the dtype", "[scalar]") {
  // E1: the DeBERTa mask value finfo(f32).min cannot be written into bf16 ("without overflow").
  REQUIRE_THROWS_AS(Scalar<bf16>::from(static_cast<double>(std::numeric_limits<float>::lowest())), range_error);
  REQUIRE_THROWS_AS(Scalar<bf16>::from(-std::numeric_limits<double>::infinity()), range_error);
  REQUIRE_THROWS_AS(Scalar<f32>::from(std::numeric_limits<double>::quiet_NaN()), range_error);
  REQUIRE_THROWS_AS(Scalar<f32>::from(1e39), range_error);
  // f16 overflows above 65504 (65520 and up round to Inf); E20: finfo(fp16).min + x = -inf.
  REQUIRE_THROWS_AS(Scalar<f16>::from(70000.0), range_error);
  CHECK(Scalar<f16>::from(65504.0).value() == 65504.0f);
  // e4m3 has no Inf: 448 is the largest finite value, 500 overflows to NaN.
  REQUIRE_THROWS_AS(Scalar<f8_e4m3>::from(500.0), range_error);
  CHECK(Scalar<f8_e4m3>::from(448.0).value() == 448.0f);
  // A non-zero value that rounds to zero is an error, zero itself is not.
  REQUIRE_THROWS_AS(Scalar<bf16>::from(1e-60), range_error);
  REQUIRE_THROWS_AS(Scalar<f16>::from(1e-9), range_error);
  CHECK(Scalar<bf16>::from(0.0).value() == 0.0f);
  CHECK(Scalar<f64>::from(1e300).value() == 1e300);
}

TEST_CASE("Scalar::from names the dtype and the value in its message", "[scalar]") {
  REQUIRE_THROWS_WITH(Scalar<f16>::from(70000.0), Catch::Matchers::Contains("Scalar<f16>") &&
                                                       Catch::Matchers::Contains("70000") &&
                                                       Catch::Matchers::Contains("overflows f16"));
}
