// tests/unit/core/test_microscaling.cpp — the MXFP4 element (FP4 E2M1) and scale (E8M0) helpers
// of numeric/microscaling.hpp against ml_dtypes' float4_e2m1fn and float8_e8m0fnu.
//
// Reference: tests/fixtures/dtype/{decode_fp4_e2m1,decode_e8m0,encode_fp4_e2m1}.bin
// (tools/make_dtype_tables.py). ml_dtypes' float4_e2m1fn saturates (|x| > 5, ±Inf included, → ±6), as
// the OCP MX v1.0 spec prescribes for conversion into MX element types and as precis does; the
// encode table holds no NaN input (ml_dtypes returns an arbitrary signed zero there, precis
// documents NaN → ±0). Tolerance: none — every value involved is exact in f32.
#include <bit>      // std::bit_cast
#include <cmath>    // std::ldexp, std::isnan, std::nanf
#include <cstdint>  // std::uint8_t, std::uint32_t
#include <limits>   // std::numeric_limits
#include <string>   // std::string

#include <catch2/catch.hpp>  // TEST_CASE, STATIC_REQUIRE, CHECK

#include <precis/numeric/microscaling.hpp>  // fp4_e2m1_to_f32, e8m0_to_f32, f32_to_fp4_e2m1

#include "dtype_table.hpp"          // precis::test::load_dtype_table
#include "narrow_float_checks.hpp"  // precis::test::MismatchLog, f32_bits_are_nan

using precis::e8m0_to_f32;
using precis::f32_to_fp4_e2m1;
using precis::fp4_e2m1_to_f32;

TEST_CASE("FP4 E2M1 nibbles decode like ml_dtypes float4_e2m1fn", "[numeric][mxfp4]") {
  const auto t = precis::test::load_dtype_table("decode_fp4_e2m1");
  REQUIRE(t.size() == 16);
  precis::test::MismatchLog log("decode fp4_e2m1");
  // Only the low nibble of the byte counts: every byte decodes like its low nibble's entry.
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    const std::uint32_t actual = std::bit_cast<std::uint32_t>(fp4_e2m1_to_f32(static_cast<std::uint8_t>(byte)));
    const std::uint32_t expected = t.outputs[byte & 0x0fu];
    if (actual != expected) log.add(byte, expected, actual);
  }
  INFO(log.summary());
  CHECK(log.count() == 0);
}

TEST_CASE("E8M0 scale bytes decode like ml_dtypes float8_e8m0fnu", "[numeric][mxfp4]") {
  const auto t = precis::test::load_dtype_table("decode_e8m0");
  REQUIRE(t.size() == 256);
  precis::test::MismatchLog log("decode e8m0");
  for (std::uint32_t e = 0; e < 256; ++e) {
    const float v = e8m0_to_f32(static_cast<std::uint8_t>(e));
    const std::uint32_t actual = std::bit_cast<std::uint32_t>(v);
    const bool ok = precis::test::f32_bits_are_nan(t.outputs[e]) ? std::isnan(v) : actual == t.outputs[e];
    if (!ok) log.add(e, t.outputs[e], actual);
  }
  INFO(log.summary());
  CHECK(log.count() == 0);
}

TEST_CASE("f32 to FP4 E2M1 rounds to nearest even and saturates like ml_dtypes float4_e2m1fn",
          "[numeric][mxfp4]") {
  const auto t = precis::test::load_dtype_table("encode_fp4_e2m1");
  REQUIRE(t.size() > 1000);
  precis::test::MismatchLog log("encode fp4_e2m1");
  for (std::size_t i = 0; i < t.size(); ++i) {
    const std::uint32_t actual = f32_to_fp4_e2m1(std::bit_cast<float>(t.inputs[i]));
    if (actual != t.outputs[i]) log.add(t.inputs[i], t.outputs[i], actual);
  }
  INFO(log.summary() << " over " << t.size() << " inputs");
  CHECK(log.count() == 0);
}

TEST_CASE("FP4 E2M1 nibble to f32 to nibble is the identity", "[numeric][mxfp4]") {
  for (std::uint8_t n = 0; n < 16; ++n) {
    INFO("nibble " << int{n});
    CHECK(f32_to_fp4_e2m1(fp4_e2m1_to_f32(n)) == n);
  }
}

TEST_CASE("NaN converts to a signed FP4 zero, the documented choice for a format without NaN", "[numeric][mxfp4]") {
  CHECK(f32_to_fp4_e2m1(std::numeric_limits<float>::quiet_NaN()) == 0x0);
  CHECK(f32_to_fp4_e2m1(-std::numeric_limits<float>::quiet_NaN()) == 0x8);
  CHECK(f32_to_fp4_e2m1(std::bit_cast<float>(0x7f800001u)) == 0x0);  // signalling payload
}

TEST_CASE("ggml's doubled E2M1 table with 2^(e-128) gives the OCP value FP4 * 2^(e-127)", "[numeric][mxfp4]") {
  // kvalues_mxfp4 from ggml-common.h (model-semantics.md §1d): E2M1 values times two, as int8.
  constexpr int kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  precis::test::MismatchLog log("ggml vs OCP MXFP4 value");
  for (int e = 0; e < 255; ++e) {  // e = 255 is NaN; small e give f32 subnormals, still exact
    for (std::uint8_t n = 0; n < 16; ++n) {
      const float ggml = std::ldexp(static_cast<float>(kvalues_mxfp4[n]), e - 128);
      const float ocp = fp4_e2m1_to_f32(n) * e8m0_to_f32(static_cast<std::uint8_t>(e));
      // Compare values (−0 == +0: ggml's table has no negative zero).
      if (!(ggml == ocp)) {
        log.add(static_cast<std::uint32_t>(e << 8 | n), std::bit_cast<std::uint32_t>(ggml),
                std::bit_cast<std::uint32_t>(ocp));
      }
    }
  }
  INFO(log.summary());
  CHECK(log.count() == 0);
}

TEST_CASE("MXFP4 helpers are usable in constant expressions", "[numeric][mxfp4]") {
  STATIC_REQUIRE(fp4_e2m1_to_f32(f32_to_fp4_e2m1(5.0f)) == 4.0f);    // tie between 4 (even) and 6
  STATIC_REQUIRE(fp4_e2m1_to_f32(f32_to_fp4_e2m1(0.75f)) == 1.0f);   // tie between 0.5 (odd) and 1
  STATIC_REQUIRE(fp4_e2m1_to_f32(f32_to_fp4_e2m1(-100.0f)) == -6.0f);  // saturates
  STATIC_REQUIRE(e8m0_to_f32(127) == 1.0f);
  STATIC_REQUIRE(e8m0_to_f32(0) == 0x1p-127f);
  STATIC_REQUIRE(e8m0_to_f32(254) == 0x1p127f);
}
