// Tests of include/precis/quant/quantize.hpp.
//
// Differential: quantize<F> must reproduce, byte for byte, the blocks that gguf-py's numpy port
// of ggml-quants.c's reference quantisers wrote for the same f32 input
// (tools/make_quant_fixtures.py). The input includes the rounding corner cases (ties of roundf,
// of trunc(x + 8.5), of the MXFP4 nearest-code search, amax just below powers of two where
// log2f rounds up, f16-subnormal scales). For HF/OpenAI mxfp4 the reference is gguf's MXFP4
// re-packed by an independent numpy port of llama.cpp's nibble transform.
//
// Properties: quantize → dequantize error bounds per format, derived from the format (stated
// per test case), checked on the fixture input and on fresh random data.
#include <cmath>    // std::fabs, std::floor, std::log2, std::ldexp
#include <cstring>  // std::memcmp
#include <limits>   // std::numeric_limits
#include <random>   // std::mt19937, std::normal_distribution

#include <catch2/catch.hpp>

#include <precis/quant/dequantize.hpp>  // precis::dequantize (for the round trips)
#include <precis/quant/quantize.hpp>    // the function under test

#include "quant_fixture.hpp"  // read_quant_fixture, fixture_tensor, bits

using namespace precis;
using namespace precis::test;
using Catch::Matchers::Contains;

namespace {

constexpr index_t rows = 8;
constexpr index_t k = 256;

Tensor<f32, 2> fixture_input() { return fixture_tensor<2>(read_quant_fixture("input_f32.bin"), {rows, k}); }

template <BlockFormat F>
void check_bytes_match(const std::string& name) {
  const auto x = fixture_input();
  const auto q = quantize<F>(x);
  const auto ref = read_quant_fixture(name + ".bin");
  REQUIRE(q.bytes() == ref.payload.size());
  const auto* got = reinterpret_cast<const std::uint8_t*>(q.blocks());
  constexpr std::size_t bb = dtype_traits<F>::stored_bytes;
  for (std::size_t i = 0; i < q.bytes(); ++i) {
    INFO(name << " block " << i / bb << " (row " << i / bb / 8 << "), byte " << i % bb);
    REQUIRE(static_cast<int>(got[i]) == static_cast<int>(ref.payload[i]));
  }
}

/// Rows of 32·n values: N(0, 1) scaled per block by 2^[-12, 12], with a few outliers.
Tensor<f32, 2> random_rows(index_t n_rows, index_t kk, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> expo(-12, 12);
  Tensor<f32, 2> x({n_rows, kk});
  for (index_t b = 0; b < x.numel() / 32; ++b) {
    const float s = std::ldexp(1.0f, expo(rng));
    for (index_t j = 0; j < 32; ++j) x.data()[b * 32 + j] = normal(rng) * s;
    if (b % 7 == 0) x.data()[b * 32 + (b % 32)] *= 30.0f;
  }
  return x;
}

/// Calls check(block_index, x[32], xhat[32]) for every block of a quantize → dequantize trip.
template <BlockFormat F, class Check>
void for_each_round_trip(const Tensor<f32, 2>& x, Check&& check) {
  const auto q = quantize<F>(x);
  const auto y = dequantize<f32>(q);
  for (index_t b = 0; b < x.numel() / 32; ++b) check(b, x.data() + b * 32, y.data() + b * 32);
}

float f16_round(float v) { return static_cast<float>(float16(v)); }

float max_abs(const float* x) {
  float a = 0.0f;
  for (int j = 0; j < 32; ++j) a = std::fmax(a, std::fabs(x[j]));
  return a;
}

}  // namespace

TEST_CASE("quantize reproduces gguf-py's blocks byte for byte", "[quant][quantize][fixture]") {
  SECTION("q8_0") { check_bytes_match<q8_0>("q8_0"); }
  SECTION("q4_0") { check_bytes_match<q4_0>("q4_0"); }
  SECTION("q4_1") { check_bytes_match<q4_1>("q4_1"); }
  SECTION("mxfp4_ggml") { check_bytes_match<mxfp4_ggml>("mxfp4_ggml"); }
}

TEST_CASE("quantize<mxfp4> reproduces the HF planes (gguf MXFP4, re-packed)", "[quant][quantize][fixture][mxfp4]") {
  const auto q = quantize<mxfp4>(fixture_input());
  const auto nib = read_quant_fixture("mxfp4_openai_nibbles.bin");
  const auto sc = read_quant_fixture("mxfp4_openai_scales.bin");
  REQUIRE(nib.payload.size() == static_cast<std::size_t>(q.num_blocks()) * 16);
  REQUIRE(sc.payload.size() == static_cast<std::size_t>(q.num_blocks()));
  for (std::size_t i = 0; i < nib.payload.size(); ++i) {
    INFO("nibble byte " << i);
    REQUIRE(static_cast<int>(q.nibbles()[i]) == static_cast<int>(nib.payload[i]));
  }
  for (std::size_t i = 0; i < sc.payload.size(); ++i) {
    INFO("scale " << i);
    REQUIRE(static_cast<int>(q.scales()[i]) == static_cast<int>(sc.payload[i]));
  }
}

TEST_CASE("Q8_0 round trip: |x - x̂| <= d/2 plus f16 rounding of d", "[quant][quantize][bounds]") {
  // d = amax/127, q = roundf(x/d) so |x - q·d| <= d/2 (+ 2e-5·d for the two f32 roundings in
  // x·(1/d)); the stored scale is f16(d), moving q·d by |q|·|d - d16| <= 127·|d - d16|; the
  // product q·d16 is rounded once (<= 2^-23·amax).
  for (const auto& x : {fixture_input(), random_rows(16, 512, 1)}) {
    for_each_round_trip<q8_0>(x, [](index_t b, const float* in, const float* out) {
      const float amax = max_abs(in);
      const float d = amax / 127.0f;
      const float bound = d * (0.5f + 2e-5f) + 127.0f * std::fabs(d - f16_round(d)) + std::ldexp(amax, -23);
      for (int j = 0; j < 32; ++j) {
        INFO("block " << b << " element " << j << ": x = " << in[j] << ", x̂ = " << out[j] << ", bound " << bound);
        REQUIRE(std::fabs(in[j] - out[j]) <= bound);
      }
    });
  }
}

TEST_CASE("Q4_0 round trip: |x - x̂| <= |d|/2, or |x - 7d| where code 16 clamps to 15", "[quant][quantize][bounds]") {
  // d = max/-8 (|d| = amax/8), t = x/d in [-8, 8], code = min(15, floor(t + 8.5)): round half up
  // for t <= 7.5 (error <= |d|/2), clamped to value 7d above (error |t - 7|·|d| <= |d|). Plus
  // 8·|d - d16| for the f16 scale, 2e-6·|d| for f32 rounding of t + 8.5 and 2^-23·amax.
  for (const auto& x : {fixture_input(), random_rows(16, 512, 2)}) {
    for_each_round_trip<q4_0>(x, [](index_t b, const float* in, const float* out) {
      float amax = 0.0f, max = 0.0f;
      for (int j = 0; j < 32; ++j) {
        if (std::fabs(in[j]) > amax) {
          amax = std::fabs(in[j]);
          max = in[j];
        }
      }
      const double d = static_cast<double>(max) / -8.0;
      const double slack = 8.0 * std::fabs(static_cast<double>(f16_round(static_cast<float>(d))) - d) +
                           2e-6 * std::fabs(d) + std::ldexp(static_cast<double>(amax), -23);
      for (int j = 0; j < 32; ++j) {
        const double t = d == 0.0 ? 0.0 : in[j] / d;
        const double bound = std::fabs(d) * (t <= 7.5 ? 0.5 : std::fabs(t - 7.0)) + slack;
        INFO("block " << b << " element " << j << ": x = " << in[j] << ", x̂ = " << out[j] << ", bound " << bound);
        REQUIRE(std::fabs(static_cast<double>(in[j]) - out[j]) <= bound);
      }
    });
  }
}

TEST_CASE("Q4_1 round trip: |x - x̂| <= d/2 plus f16 rounding of d and m", "[quant][quantize][bounds]") {
  // d = (max - min)/15, t = (x - min)/d in [0, 15], code = floor(t + 0.5): error <= d/2
  // (+ 1e-5·d for f32 rounding); stored f16(d) and f16(min) add 15·|d - d16| + |min - m16|;
  // q·d16 + m16 is rounded twice (<= 2^-22·max(|max|, |min|)).
  for (const auto& x : {fixture_input(), random_rows(16, 512, 3)}) {
    for_each_round_trip<q4_1>(x, [](index_t b, const float* in, const float* out) {
      float lo = in[0], hi = in[0];
      for (int j = 0; j < 32; ++j) {
        lo = std::fmin(lo, in[j]);
        hi = std::fmax(hi, in[j]);
      }
      const float d = (hi - lo) / 15.0f;
      const float bound = d * (0.5f + 1e-5f) + 15.0f * std::fabs(d - f16_round(d)) + std::fabs(lo - f16_round(lo)) +
                          std::ldexp(std::fmax(std::fabs(lo), std::fabs(hi)), -22);
      for (int j = 0; j < 32; ++j) {
        INFO("block " << b << " element " << j << ": x = " << in[j] << ", x̂ = " << out[j] << ", bound " << bound);
        REQUIRE(std::fabs(in[j] - out[j]) <= bound);
      }
    });
  }
}

TEST_CASE("MXFP4 round trip: error within half a grid step of the block scale, scale from log2(amax)",
          "[quant][quantize][bounds][mxfp4]") {
  // Half-scale s = 2^(e-128), representable magnitudes {0,1,2,3,4,6,8,12}·s. For t = |x|/s the
  // nearest-code error is <= s·(0.5 for t <= 4, 1 for t <= 8, 2 for t <= 12) and t - 12 above
  // (saturation; t < 16 since amax/s < 16). Slack 2^-20·(|x| + s) covers the f32 rounding of the
  // candidate errors the quantizer compares. The scale byte is floor(log2 amax) + 125, or one more
  // when log2f rounds up, which can only happen for amax within 2^-20 (relative) below a power of 2.
  for (const auto& x : {fixture_input(), random_rows(16, 512, 4)}) {
    const auto q = quantize<mxfp4_ggml>(x);
    const auto y = dequantize<f32>(q);
    const auto hf = dequantize<f32>(quantize<mxfp4>(x));
    for (index_t b = 0; b < q.num_blocks(); ++b) {
      const float* in = x.data() + b * 32;
      const float amax = max_abs(in);
      const int e = q.blocks()[b].e;
      if (amax >= std::ldexp(1.0f, -125)) {
        const int fl = static_cast<int>(std::floor(std::log2(static_cast<double>(amax))));
        const bool near_power = static_cast<double>(amax) >= std::ldexp(1.0, fl + 1) * (1.0 - std::ldexp(1.0, -20));
        INFO("block " << b << ": amax = " << amax << ", e = " << e);
        REQUIRE((e == fl + 125 || (near_power && e == fl + 126)));
      }
      const double s = std::ldexp(1.0, e - 128);
      for (int j = 0; j < 32; ++j) {
        const double t = std::fabs(static_cast<double>(in[j])) / s;
        const double step = t <= 4 ? 0.5 : t <= 8 ? 1.0 : t <= 12 ? 2.0 : t - 12.0;
        const double bound = s * step + std::ldexp(std::fabs(static_cast<double>(in[j])) + s, -20);
        const float got = y.data()[b * 32 + j];
        INFO("block " << b << " element " << j << ": x = " << in[j] << ", x̂ = " << got << ", bound " << bound);
        REQUIRE(std::fabs(static_cast<double>(in[j]) - got) <= bound);
        REQUIRE(hf.data()[b * 32 + j] == got);  // both layouts hold the same numbers
      }
    }
  }
}

TEST_CASE("quantize accepts strided input and equals quantizing a contiguous copy", "[quant][quantize]") {
  const auto x = random_rows(3, 64, 5);  // (3, 64)
  Tensor<f32, 2> xt({64, 3});            // its transpose, stored column-major for x
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < 64; ++j) xt(j, i) = x(i, j);
  const TensorView<const f32, 2> strided(xt.data(), {3, 64}, {1, 3});
  const auto a = quantize<q4_1>(strided);
  const auto b = quantize<q4_1>(x);
  REQUIRE(std::memcmp(a.blocks(), b.blocks(), a.bytes()) == 0);
  const auto c = quantize<mxfp4>(strided);
  const auto d = quantize<mxfp4>(x.view());
  REQUIRE(std::memcmp(c.nibbles(), d.nibbles(), 16 * static_cast<std::size_t>(c.num_blocks())) == 0);
  REQUIRE(std::memcmp(c.scales(), d.scales(), static_cast<std::size_t>(c.num_blocks())) == 0);
}

TEST_CASE("quantize rejects a K that is not a multiple of 32, and non-finite values", "[quant][quantize]") {
  const Tensor<f32, 2> bad({2, 40});
  CHECK_THROWS_AS(quantize<q8_0>(bad), shape_error);
  CHECK_THROWS_WITH(quantize<q4_0>(bad), Contains("quantize<q4_0>") && Contains("40") && Contains("32"));
  Tensor<f32, 2> x({2, 64});
  x(1, 5) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(quantize<q4_1>(x), range_error);
  CHECK_THROWS_WITH(quantize<mxfp4>(x), Contains("non-finite") && Contains("flat index 69"));
  x(1, 5) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(quantize<mxfp4_ggml>(x), Contains("flat index 69"));
}
