// Tests of include/precis/quant/block_reference.hpp: the scalar spec of each block format.
//
// Expected values are worked out by hand from the format definitions (model-semantics.md §1a,
// §1d, §1.6) and ggml-quants.c's rounding rules, not produced by the code under test. The
// differential tests against gguf-py are in test_dequantize.cpp / test_quantize.cpp.
#include <array>    // std::array
#include <bit>      // std::bit_cast
#include <cmath>    // std::nextafter, std::ldexp
#include <cstdint>  // std::uint8_t
#include <random>   // std::mt19937

#include <catch2/catch.hpp>

#include <precis/quant/block_reference.hpp>  // the functions under test

#include "quant_fixture.hpp"  // precis::test::bits

using namespace precis;
using precis::test::bits;

namespace {

std::array<float, 32> dequant(const auto& block) {
  std::array<float, 32> out{};
  dequantize_block(block, out.data());
  return out;
}

// §1.6 worked examples, evaluated at compile time: the reference is constexpr.
constexpr float q4_0_example(int j) {
  block_q4_0 b{};
  b.d = float16(0.5f);
  for (auto& q : b.qs) q = 0x93;
  float out[32] = {};
  dequantize_block(b, out);
  return out[j];
}
constexpr float hf_mxfp4_example(int j) {
  std::uint8_t nib[16] = {0x2F};
  float out[32] = {};
  dequantize_block_mxfp4(nib, 128, out);
  return out[j];
}

// The ggml quantisers (all but MXFP4, which calls log2f) are constexpr too.
constexpr float q4_0_round_trip(int j) {
  float in[32] = {-8.0f, 0.5f, -0.5f, 7.5f};
  block_q4_0 b{};
  quantize_block_q4_0(in, b);
  float out[32] = {};
  dequantize_block(b, out);
  return out[j];
}
constexpr float q8_0_round_trip(int j) {
  float in[32] = {127.0f, 2.5f, -2.5f};
  block_q8_0 b{};
  quantize_block_q8_0(in, b);
  float out[32] = {};
  dequantize_block(b, out);
  return out[j];
}

}  // namespace

TEST_CASE("the reference is usable in constant expressions", "[quant][reference]") {
  // Q4_0 with max = -8 (d = 1): codes 0, 9, 8, 15 → -8, 1, 0, 7 (7.5 clamps to code 15).
  STATIC_REQUIRE(q4_0_round_trip(0) == -8.0f);
  STATIC_REQUIRE(q4_0_round_trip(1) == 1.0f);
  STATIC_REQUIRE(q4_0_round_trip(2) == 0.0f);
  STATIC_REQUIRE(q4_0_round_trip(3) == 7.0f);
  // Q8_0 with amax = 127 (d = 1): roundf(±2.5) = ±3.
  STATIC_REQUIRE(q8_0_round_trip(1) == 3.0f);
  STATIC_REQUIRE(q8_0_round_trip(2) == -3.0f);
}

TEST_CASE("block layouts have the ggml sizes (model-semantics §1.6)", "[quant][reference]") {
  STATIC_REQUIRE(sizeof(block_q4_0) == 18);
  STATIC_REQUIRE(sizeof(block_q4_1) == 20);
  STATIC_REQUIRE(sizeof(block_q8_0) == 34);
  STATIC_REQUIRE(sizeof(block_mxfp4_ggml) == 17);
  // One source of truth: the nibble plane's struct is 16 bytes, the scale plane 1, 17 stored.
  STATIC_REQUIRE(sizeof(dtype_traits<mxfp4>::block_type) == 16);
  STATIC_REQUIRE(dtype_traits<mxfp4>::scale_plane_bytes == 1);
  STATIC_REQUIRE(dtype_traits<mxfp4>::stored_bytes == 17);
  STATIC_REQUIRE(dtype_traits<mxfp4_ggml>::stored_bytes == sizeof(dtype_traits<mxfp4_ggml>::block_type));
}

TEST_CASE("MXFP4 worked example: HF byte 0x2F, scale 128 -> -12, +2 (§1.6)", "[quant][reference][mxfp4]") {
  // Low nibble 0xF = -6 is element 2j, high nibble 0x2 = +1.0 is element 2j+1; 2^(128-127) = 2.
  STATIC_REQUIRE(hf_mxfp4_example(0) == -12.0f);
  STATIC_REQUIRE(hf_mxfp4_example(1) == 2.0f);
  std::uint8_t nib[16] = {0x2F};
  float out[32];
  dequantize_block_mxfp4(nib, 128, out);
  CHECK(out[0] == -12.0f);
  CHECK(out[1] == 2.0f);
  // Every other nibble is 0 → +0.0 (the HF table's +0 at code 0).
  for (int j = 2; j < 32; ++j) CHECK(bits(out[j]) == 0u);
}

TEST_CASE("MXFP4 worked example: the same values in the ggml layout (§1.6)", "[quant][reference][mxfp4]") {
  // ggml: e = 128, d = 2^(128-128) = 1, kv[0xF] = -12, kv[2] = 2. Element 0 is the low nibble of
  // qs[0], element 1 the low nibble of qs[1].
  block_mxfp4_ggml b{};
  b.e = 128;
  b.qs[0] = 0x0F;
  b.qs[1] = 0x02;
  const auto out = dequant(b);
  CHECK(out[0] == -12.0f);
  CHECK(out[1] == 2.0f);
  // Re-packing the HF byte gives exactly that ggml block.
  std::uint8_t nib[16] = {0x2F};
  std::uint8_t qs[16];
  repack_mxfp4_openai_to_ggml(nib, qs);
  CHECK(qs[0] == 0x0F);
  CHECK(qs[1] == 0x02);
  for (int j = 2; j < 16; ++j) CHECK(qs[j] == 0);
}

TEST_CASE("Q4_0 worked example: d = 0.5, qs = 0x93 -> -2.5, 0.5 (§1.6)", "[quant][reference][q4_0]") {
  STATIC_REQUIRE(q4_0_example(0) == -2.5f);   // (0x3 - 8) * 0.5
  STATIC_REQUIRE(q4_0_example(16) == 0.5f);   // (0x9 - 8) * 0.5
  block_q4_0 b{};
  b.d = float16(0.5f);
  for (auto& q : b.qs) q = 0x93;
  const auto out = dequant(b);
  for (int j = 0; j < 16; ++j) {
    CHECK(out[j] == -2.5f);
    CHECK(out[j + 16] == 0.5f);
  }
}

TEST_CASE("Q4_1 worked example: d = 0.5, m = -1, qs = 0x93 -> 0.5, 3.5 (§1.6)", "[quant][reference][q4_1]") {
  block_q4_1 b{};
  b.d = float16(0.5f);
  b.m = float16(-1.0f);
  for (auto& q : b.qs) q = 0x93;
  const auto out = dequant(b);
  for (int j = 0; j < 16; ++j) {
    CHECK(out[j] == 0.5f);        // 3 * 0.5 - 1
    CHECK(out[j + 16] == 3.5f);   // 9 * 0.5 - 1
  }
}

TEST_CASE("Q8_0 dequantizes to qs[j] * d", "[quant][reference][q8_0]") {
  block_q8_0 b{};
  b.d = float16(0.25f);
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<std::int8_t>(j * 8 - 128);  // -128 .. 120
  const auto out = dequant(b);
  for (int j = 0; j < 32; ++j) CHECK(out[j] == static_cast<float>(j * 8 - 128) * 0.25f);
}

TEST_CASE("E8M0 scale bytes follow HF ldexp and ggml: 0, 1 subnormal, 255 = 2^128", "[quant][reference][mxfp4]") {
  std::uint8_t nib[16] = {0x21};  // element 0: 0.5, element 1: 1.0
  float out[32];
  dequantize_block_mxfp4(nib, 0, out);
  CHECK(out[0] == std::ldexp(0.5f, -127));  // 2^-128, an exact f32 subnormal
  CHECK(out[1] == std::ldexp(1.0f, -127));
  dequantize_block_mxfp4(nib, 1, out);
  CHECK(out[0] == std::ldexp(0.5f, -126));
  dequantize_block_mxfp4(nib, 255, out);
  CHECK(out[0] == std::ldexp(1.0f, 127));   // 0.5 * 2^128 is still finite
  CHECK(std::isinf(out[1]));                // 1.0 * 2^128 overflows, as ldexp does
}

TEST_CASE("signed zero at code 8: -0.0 in the HF layout, +0.0 in ggml's", "[quant][reference][mxfp4]") {
  std::uint8_t nib[16] = {0x08};
  float hf[32];
  dequantize_block_mxfp4(nib, 127, hf);
  CHECK(bits(hf[0]) == 0x80000000u);  // HF FP4_VALUES[8] = -0.0
  block_mxfp4_ggml b{};
  b.e = 127;
  b.qs[0] = 0x08;
  CHECK(bits(dequant(b)[0]) == 0u);   // ggml kvalues_mxfp4[8] = 0
}

TEST_CASE("Q8_0 quantizer: d = amax/127 and roundf ties away from zero", "[quant][reference][q8_0]") {
  // amax = 127 gives d = 1 and 1/d = 1 exactly, so x/d = x and every .5 is a true tie.
  const float x[8] = {127.0f, -127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 126.5f, 1.49f};
  const int expected[8] = {127, -127, 3, -3, 1, -1, 127, 1};  // nearest-even would give 2, -2, 0, 0, 126
  float in[32] = {};
  for (int j = 0; j < 8; ++j) in[j] = x[j];
  block_q8_0 b{};
  quantize_block_q8_0(in, b);
  CHECK(b.d.bits == 0x3C00);  // f16 1.0
  for (int j = 0; j < 8; ++j) CHECK(b.qs[j] == expected[j]);
  for (int j = 8; j < 32; ++j) CHECK(b.qs[j] == 0);
}

TEST_CASE("Q4_0 quantizer: d = max/-8, codes trunc(x/d + 8.5) clamped to 15", "[quant][reference][q4_0]") {
  // max (largest |x|, signed) = -8 → d = 1: code = trunc(x + 8.5).
  float in[32] = {};
  in[0] = -8.0f;   // → 0 (exactly -8 d)
  in[1] = 0.5f;    // 9.0 → 9 (round half up)
  in[2] = -0.5f;   // 8.0 → 8
  in[3] = 7.5f;    // 16.0 → 16, clamped to 15
  in[4] = -7.4f;   // 1.1 → 1
  in[16] = 3.2f;   // 11.7 → 11, high nibble of byte 0
  block_q4_0 b{};
  quantize_block_q4_0(in, b);
  CHECK(b.d.bits == 0x3C00);
  CHECK(b.qs[0] == (0 | (11 << 4)));
  CHECK(b.qs[1] == (9 | (8 << 4)));  // in[17] = 0 → code 8
  CHECK(b.qs[2] == (8 | (8 << 4)));
  CHECK(b.qs[3] == (15 | (8 << 4)));
  CHECK(b.qs[4] == (1 | (8 << 4)));
}

TEST_CASE("Q4_0 quantizer keeps ggml's d = -0.0 for an all-zero block", "[quant][reference][q4_0]") {
  // ggml-quants.c starts max at +0.0 and replaces it only for a strictly larger |v|, so an
  // all-zero block (whatever the signs of its zeros) has d = +0/-8 = -0.0. gguf-py would take
  // the first element's sign instead (tools/make_quant_fixtures.py docstring).
  float in[32] = {};
  in[0] = -0.0f;
  block_q4_0 b{};
  quantize_block_q4_0(in, b);
  CHECK(b.d.bits == 0x8000);
  for (auto q : b.qs) CHECK(q == 0x88);
}

TEST_CASE("Q4_1 quantizer: d = (max-min)/15, m = min, codes trunc((x-min)/d + 0.5)", "[quant][reference][q4_1]") {
  float in[32];
  for (int j = 0; j < 32; ++j) in[j] = 2.0f;  // fill between min and max
  in[0] = -1.0f;   // min → code 0
  in[1] = 14.0f;   // max → d = 1, code 15
  in[2] = 0.5f;    // (1.5 + 0.5) → 2
  in[16] = 1.4f;   // 2.4 + 0.5 = 2.9 → 2
  block_q4_1 b{};
  quantize_block_q4_1(in, b);
  CHECK(static_cast<float>(b.d) == 1.0f);
  CHECK(static_cast<float>(b.m) == -1.0f);
  CHECK(b.qs[0] == (0 | (2 << 4)));
  CHECK(b.qs[1] == (15 | (3 << 4)));  // in[17] = 2 → 3 + 0.5 → 3
  CHECK(b.qs[2] == (2 | (3 << 4)));
  // A constant block: d = 0, every code 0, m carries the value.
  for (float& v : in) v = 0.7f;
  quantize_block_q4_1(in, b);
  CHECK(b.d.bits == 0);
  CHECK(b.m == float16(0.7f));
  for (auto q : b.qs) CHECK(q == 0);
}

TEST_CASE("MXFP4 quantizer: e = floor(log2 amax) - 2 + 127, nearest code, ties toward zero", "[quant][reference][mxfp4]") {
  // amax = 11 → floor(log2 11) = 3 → e = 128 → ggml half-scale 2^0 = 1: codes are kv indices of x.
  float in[32] = {};
  const float x[10] = {11.0f, 0.5f, 1.5f, 5.0f, 10.0f, 7.0f, -1.5f, -0.5f, 10.5f, -11.0f};
  // kv = {0,1,2,3,4,6,8,12, 0,-1,-2,-3,-4,-6,-8,-12}
  // 11 → 12 (idx 7); 0.5: tie 0|1 → 0; 1.5: tie 1|2 → 1; 5: tie 4|6 → 4 (idx 4); 10: tie 8|12 → 8
  // (idx 6); 7: tie 6|8 → 6 (idx 5); -1.5: tie -1|-2 → -1 (idx 9); -0.5: tie 0|-1 → 0 (idx 0);
  // 10.5 → 12 (idx 7, 1.5 away vs 2.5); -11 → -12 (idx 15)
  const std::uint8_t expected[10] = {7, 0, 1, 4, 6, 5, 9, 0, 7, 15};
  for (int j = 0; j < 10; ++j) in[j] = x[j];
  block_mxfp4_ggml b{};
  quantize_block_mxfp4_ggml(in, b);
  CHECK(b.e == 128);
  for (int j = 0; j < 10; ++j) {
    INFO("element " << j << " = " << x[j]);
    CHECK((b.qs[j] & 0x0F) == expected[j]);
  }
  // The HF-layout quantizer produces the same scale and codes, packed 2j | 2j+1.
  std::uint8_t nib[16];
  std::uint8_t scale = 0;
  quantize_block_mxfp4(in, nib, scale);
  CHECK(scale == 128);
  for (int j = 0; j < 5; ++j) CHECK(nib[j] == (expected[2 * j] | (expected[2 * j + 1] << 4)));
}

TEST_CASE("MXFP4 quantizer uses the rounded log2f, as ggml does", "[quant][reference][mxfp4]") {
  // log2(nextafter(128, 0)) = 7 - 8.6e-8; the nearest float is 7.0 (float spacing below 7 is
  // 4.8e-7), so a correctly rounded log2f (glibc, numpy; gguf-py wrote e = 132 for this block in
  // tests/fixtures/quant) gives e = 7 - 2 + 127 = 132, not the exact floor's 131.
  float in[32] = {};
  block_mxfp4_ggml b{};
  in[3] = std::nextafter(128.0f, 0.0f);
  quantize_block_mxfp4_ggml(in, b);
  CHECK(b.e == 132);
  in[3] = 127.0f;  // log2 = 6.989 → 131
  quantize_block_mxfp4_ggml(in, b);
  CHECK(b.e == 131);
  in[3] = std::nextafter(4.0f, 0.0f);  // 2 - 8.6e-8: spacing below 2 is 1.2e-7 → stays below 2 → 126
  quantize_block_mxfp4_ggml(in, b);
  CHECK(b.e == 126);
}

TEST_CASE("MXFP4 quantizer: zero and deep-subnormal blocks get e = 0", "[quant][reference][mxfp4]") {
  float in[32] = {};
  block_mxfp4_ggml b{};
  b.e = 99;
  quantize_block_mxfp4_ggml(in, b);
  CHECK(b.e == 0);
  for (auto q : b.qs) CHECK(q == 0);
  // amax = 2^-130: ggml's (uint8_t)(-130 - 2 + 127) is undefined; precis clamps to e = 0, whose
  // half-scale 2^-128 still represents 2^-130 as 0 or 2^-128 (error ≤ 2^-129).
  in[0] = std::ldexp(1.0f, -130);
  quantize_block_mxfp4_ggml(in, b);
  CHECK(b.e == 0);
  float out[32];
  dequantize_block(b, out);
  CHECK(std::fabs(out[0] - in[0]) <= std::ldexp(1.0f, -129));
}

TEST_CASE("quantizers saturate where ggml's float->int8 conversion is undefined", "[quant][reference]") {
  // max = 2^-140: d = 2^-143 is an f32 subnormal, 1/d overflows to Inf, x·(1/d) is ±Inf or NaN.
  float in[32] = {};
  in[0] = std::ldexp(1.0f, -140);
  in[1] = -std::ldexp(1.0f, -141);
  block_q4_0 b4{};
  quantize_block_q4_0(in, b4);
  CHECK((b4.qs[0] & 0x0F) == 0);   // -Inf + 8.5 → clamped to code 0
  CHECK((b4.qs[1] & 0x0F) == 15);  // +Inf → code 15
  CHECK((b4.qs[2] & 0x0F) == 0);   // 0 · Inf = NaN → 0
  block_q8_0 b8{};
  quantize_block_q8_0(in, b8);     // d = 2^-140/127 underflows to a subnormal; 1/d = Inf
  CHECK(b8.qs[0] == 127);
  CHECK(b8.qs[1] == -127 - 1);
}

TEST_CASE("MXFP4 nibble re-packing is a bijection between the layouts", "[quant][reference][mxfp4]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::uint8_t nib[16], qs[16], back[16];
    for (auto& v : nib) v = static_cast<std::uint8_t>(rng() & 0xFF);
    repack_mxfp4_openai_to_ggml(nib, qs);
    repack_mxfp4_ggml_to_openai(qs, back);
    for (int j = 0; j < 16; ++j) REQUIRE(back[j] == nib[j]);
    // Element i has the same code in both layouts.
    for (int i = 0; i < 32; ++i) {
      const int hf_code = (nib[i / 2] >> (4 * (i % 2))) & 0x0F;
      const int ggml_code = (qs[i % 16] >> (i < 16 ? 0 : 4)) & 0x0F;
      REQUIRE(hf_code == ggml_code);
    }
  }
}
