// precis/quant/block_reference.hpp — the scalar math spec of every block format: how 32 values
// become one block and one block becomes 32 floats.
//
// Every backend (CPU SIMD tails, CUDA kernels, tests) dequantizes through these functions or is
// differential-tested against them (style-anchors §3.8: one scalar reference per op is the spec).
// They reproduce the engines that produced the checkpoints, byte for byte:
//
//   ggml layouts (q8_0, q4_0, q4_1, mxfp4_ggml)  ggml-quants.c `dequantize_row_*` and the
//       reference quantisers `quantize_row_*_ref` (model-semantics.md §1d), including their
//       rounding quirks: Q8_0 rounds half away from zero (roundf), Q4_0/Q4_1 round half up by
//       truncating x/d + 8.5 (resp. + 0.5), MXFP4 picks the first of equally near codes, i.e.
//       ties go toward zero.
//   HF/OpenAI mxfp4 (two planes)  transformers' `convert_moe_packed_tensors` / OpenAI
//       weights.py (§1a): element 2j in the low nibble of byte j, 2j+1 in the high nibble,
//       value = FP4[nibble] · 2^(scale − 127). Nibble 8 is −0.0 here (HF's table) and +0.0 in
//       the ggml layout (ggml's integer kvalues); every other value is identical.
//
// E8M0 scales follow the engines rather than the OCP text: scale byte 255 is 2^128 (values
// overflow to ±Inf, 0.5·2^128 = 2^127 stays finite) instead of NaN — HF's ldexp and ggml's
// `ggml_e8m0_to_fp32_half` both compute it that way, and dequantizing a checkpoint must give
// what the checkpoint's producer saw. (numeric/microscaling.hpp's e8m0_to_f32 follows OCP.)
//
// Where ggml-quants.c has undefined behaviour (a float → int8/uint8 conversion out of range,
// reached only by blocks whose scale underflows: MXFP4 amax < 2^-125, Q4_0/Q4_1 scales that are
// deep f32 subnormals so that 1/d overflows), precis saturates: the MXFP4 exponent clamps at 0
// and quantized codes clamp to their nibble range.
//
// Bit-exactness holds when the compiler does not contract `a*b + c` into an FMA (x86-64 without
// -mfma, or -ffp-contract=off); ggml's own C code is subject to the same contraction.
// MXFP4 quantization calls log2f exactly as ggml does (floor(log2f(amax)) rounds *up* for some
// amax just below a power of two, giving a larger scale); it is therefore the one quantizer that
// is not constexpr, and it inherits the host libm's log2f (glibc and numpy agree, see
// tools/make_quant_fixtures.py).
#pragma once

#include <bit>      // std::bit_cast
#include <cfloat>   // FLT_MAX
#include <cmath>    // std::log2, std::floor (MXFP4 scale exponent)
#include <cstdint>  // std::int8_t, std::uint8_t, std::uint32_t

#include <precis/core/config.hpp>           // PRECIS_HD
#include <precis/core/dtype.hpp>            // block_q8_0, block_q4_0, block_q4_1, block_mxfp4_ggml
#include <precis/numeric/float16.hpp>       // precis::float16 (block scales)
#include <precis/numeric/microscaling.hpp>  // fp4_e2m1_to_f32 (HF FP4 table, with −0.0)

namespace precis {

namespace detail {

/// |x| by clearing the sign bit, as fabsf does (−0.0 → +0.0; `x < 0 ? -x : x` keeps −0.0).
[[nodiscard]] PRECIS_HD constexpr float abs_bits(float x) noexcept {
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(x) & 0x7fffffffu);
}

/// C roundf: round half away from zero (Q8_0's rounding; not the FPU's ties-to-even).
[[nodiscard]] PRECIS_HD constexpr float roundf_away(float x) noexcept {
  const float a = abs_bits(x);
  if (!(a < 8388608.0f)) return x;  // ≥ 2^23: already an integer (or Inf/NaN)
  float t = static_cast<float>(static_cast<std::int32_t>(a));  // trunc(a), exact
  if (a - t >= 0.5f) t += 1.0f;                                 // a − t is exact (same binade)
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(t) | (std::bit_cast<std::uint32_t>(x) & 0x80000000u));
}

/// C's `(int8_t)x` (truncation toward zero) where it is defined; saturating where C is not.
[[nodiscard]] PRECIS_HD constexpr int trunc_to_i8_sat(float x) noexcept {
  if (!(x > -128.0f)) return x != x ? 0 : -128;  // also NaN → 0
  if (!(x < 127.0f)) return 127;
  return static_cast<int>(x);
}

/// A nibble code in [0, 15] from ggml's `MIN(15, (int8_t)v)`; the lower clamp only matters where
/// ggml's conversion is undefined (see the header comment).
[[nodiscard]] PRECIS_HD constexpr std::uint8_t nibble_code(float v) noexcept {
  const int q = trunc_to_i8_sat(v);
  return static_cast<std::uint8_t>(q < 0 ? 0 : (q > 15 ? 15 : q));
}

/// ggml `kvalues_mxfp4`: the E2M1 values doubled, so that they are integers (+0 at nibble 8).
[[nodiscard]] PRECIS_HD constexpr int mxfp4_kvalue(std::uint8_t nibble) noexcept {
  constexpr std::int8_t kvalues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  return kvalues[nibble & 0x0fu];
}

/// ggml `ggml_e8m0_to_fp32_half`: 2^(e − 128), half the E8M0 scale, to pair with the doubled
/// kvalues. e = 0, 1 are f32 subnormals (exact); e = 255 is 2^127 (not NaN, see above).
[[nodiscard]] PRECIS_HD constexpr float e8m0_to_f32_half(std::uint8_t e) noexcept {
  const std::uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<std::uint32_t>(e - 1u) << 23);
  return std::bit_cast<float>(bits);
}

/// ggml `best_index_mxfp4`: the first code whose value kvalue·d is nearest to x (ties → the
/// lower index, i.e. toward zero; x = ±0 → code 0).
[[nodiscard]] PRECIS_HD constexpr std::uint8_t mxfp4_best_code(float x, float d) noexcept {
  int best = 0;
  float best_err = abs_bits(static_cast<float>(mxfp4_kvalue(0)) * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = abs_bits(static_cast<float>(mxfp4_kvalue(static_cast<std::uint8_t>(i))) * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return static_cast<std::uint8_t>(best);
}

/// ggml `quantize_row_mxfp4_ref` for one block, layout-free: the shared E8M0 byte (returned) and
/// the 32 codes, code[i] belonging to element i.
[[nodiscard]] PRECIS_HD inline std::uint8_t mxfp4_quantize_codes(const float in[32], std::uint8_t codes[32]) noexcept {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j)
    if (amax < abs_bits(in[j])) amax = abs_bits(in[j]);
  std::uint8_t e = 0;
  if (amax > 0.0f) {
    // e = floor(log2f(amax)) − 2 + 127: the scale puts amax in [4, 8) of the E2M1 grid (or just
    // below 8 → 4 when log2f rounds up). Negative only for amax < 2^-125 (UB in ggml): clamp to 0.
    const float l = std::floor(std::log2(amax)) - 2.0f + 127.0f;
    e = l < 0.0f ? std::uint8_t{0} : static_cast<std::uint8_t>(l);
  }
  const float d = e8m0_to_f32_half(e);
  for (int j = 0; j < 32; ++j) codes[j] = mxfp4_best_code(in[j], d);
  return e;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Dequantize: one block → 32 floats (exact products, rounded once)
// ---------------------------------------------------------------------------------------------

/// Q8_0 (ggml `dequantize_row_q8_0`): y[j] = qs[j]·d.
PRECIS_HD constexpr void dequantize_block(const block_q8_0& b, float out[32]) noexcept {
  const float d = static_cast<float>(b.d);
  for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(b.qs[j]) * d;
}

/// Q4_0 (`dequantize_row_q4_0`): y[j] = ((qs[j] & 0xF) − 8)·d, y[j+16] = ((qs[j] >> 4) − 8)·d.
PRECIS_HD constexpr void dequantize_block(const block_q4_0& b, float out[32]) noexcept {
  const float d = static_cast<float>(b.d);
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<float>((b.qs[j] & 0x0f) - 8) * d;
    out[j + 16] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
  }
}

/// Q4_1 (`dequantize_row_q4_1`): y[j] = (qs[j] & 0xF)·d + m, y[j+16] = (qs[j] >> 4)·d + m.
PRECIS_HD constexpr void dequantize_block(const block_q4_1& b, float out[32]) noexcept {
  const float d = static_cast<float>(b.d);
  const float m = static_cast<float>(b.m);
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<float>(b.qs[j] & 0x0f) * d + m;
    out[j + 16] = static_cast<float>(b.qs[j] >> 4) * d + m;
  }
}

/// MXFP4, ggml layout (`dequantize_row_mxfp4`): y[j] = kv[qs[j] & 0xF]·2^(e−128),
/// y[j+16] = kv[qs[j] >> 4]·2^(e−128), kv the doubled E2M1 table.
PRECIS_HD constexpr void dequantize_block(const block_mxfp4_ggml& b, float out[32]) noexcept {
  const float d = detail::e8m0_to_f32_half(b.e);
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<float>(detail::mxfp4_kvalue(static_cast<std::uint8_t>(b.qs[j] & 0x0fu))) * d;
    out[j + 16] = static_cast<float>(detail::mxfp4_kvalue(static_cast<std::uint8_t>(b.qs[j] >> 4))) * d;
  }
}

/// MXFP4, HF/OpenAI layout (`convert_moe_packed_tensors`): y[2j] = FP4[nib[j] & 0xF]·2^(s−127),
/// y[2j+1] = FP4[nib[j] >> 4]·2^(s−127). Computed as (2·FP4)·2^(s−128), the same exact product
/// as HF's ldexp, rounded once (to ±Inf for s = 255 and |FP4| ≥ 1).
PRECIS_HD constexpr void dequantize_block_mxfp4(const std::uint8_t nibbles[16], std::uint8_t scale,
                                                float out[32]) noexcept {
  const float d = detail::e8m0_to_f32_half(scale);
  for (int j = 0; j < 16; ++j) {
    out[2 * j] = (fp4_e2m1_to_f32(static_cast<std::uint8_t>(nibbles[j] & 0x0fu)) * 2.0f) * d;
    out[2 * j + 1] = (fp4_e2m1_to_f32(static_cast<std::uint8_t>(nibbles[j] >> 4)) * 2.0f) * d;
  }
}

// ---------------------------------------------------------------------------------------------
// Quantize: 32 floats → one block (ggml-quants.c reference quantisers, finite inputs)
// ---------------------------------------------------------------------------------------------

/// Q8_0 (`quantize_row_q8_0_ref`): d = amax/127, qs[j] = roundf(x[j]·(1/d)).
PRECIS_HD constexpr void quantize_block_q8_0(const float in[32], block_q8_0& out) noexcept {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float a = detail::abs_bits(in[j]);
    amax = amax > a ? amax : a;  // ggml MAX(amax, fabsf(v))
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  out.d = float16(d);
  for (int j = 0; j < 32; ++j)
    out.qs[j] = static_cast<std::int8_t>(detail::trunc_to_i8_sat(detail::roundf_away(in[j] * id)));
}

/// Q4_0 (`quantize_row_q4_0_ref`): max = the first value of largest |x|, d = max/−8,
/// q = min(15, (int8)(x·(1/d) + 8.5)); element j in the low nibble of byte j, j+16 in the high.
/// An all-zero block keeps ggml's d = +0/−8 = −0.0.
PRECIS_HD constexpr void quantize_block_q4_0(const float in[32], block_q4_0& out) noexcept {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < detail::abs_bits(in[j])) {
      amax = detail::abs_bits(in[j]);
      max = in[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  out.d = float16(d);
  for (int j = 0; j < 16; ++j) {
    const std::uint8_t lo = detail::nibble_code(in[j] * id + 8.5f);
    const std::uint8_t hi = detail::nibble_code(in[j + 16] * id + 8.5f);
    out.qs[j] = static_cast<std::uint8_t>(lo | (hi << 4));
  }
}

/// Q4_1 (`quantize_row_q4_1_ref`): d = (max − min)/15, m = min,
/// q = min(15, (int8)((x − min)·(1/d) + 0.5)).
PRECIS_HD constexpr void quantize_block_q4_1(const float in[32], block_q4_1& out) noexcept {
  float min = FLT_MAX;
  float max = -FLT_MAX;
  for (int j = 0; j < 32; ++j) {
    if (in[j] < min) min = in[j];
    if (in[j] > max) max = in[j];
  }
  const float d = (max - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  out.d = float16(d);
  out.m = float16(min);
  for (int j = 0; j < 16; ++j) {
    const std::uint8_t lo = detail::nibble_code((in[j] - min) * id + 0.5f);
    const std::uint8_t hi = detail::nibble_code((in[j + 16] - min) * id + 0.5f);
    out.qs[j] = static_cast<std::uint8_t>(lo | (hi << 4));
  }
}

/// MXFP4, ggml layout (`quantize_row_mxfp4_ref`): e = floor(log2f(amax)) − 2 + 127, each value
/// the nearest doubled-E2M1 code at scale 2^(e−128). Not constexpr: log2f (see header comment).
PRECIS_HD inline void quantize_block_mxfp4_ggml(const float in[32], block_mxfp4_ggml& out) noexcept {
  std::uint8_t codes[32];
  out.e = detail::mxfp4_quantize_codes(in, codes);
  for (int j = 0; j < 16; ++j) out.qs[j] = static_cast<std::uint8_t>(codes[j] | (codes[j + 16] << 4));
}

/// MXFP4, HF/OpenAI layout: the same scale and codes as quantize_block_mxfp4_ggml (there is no
/// quantizer in HF's loader; llama.cpp's converter maps the layouts 1:1), packed 2j | 2j+1.
PRECIS_HD inline void quantize_block_mxfp4(const float in[32], std::uint8_t nibbles[16], std::uint8_t& scale) noexcept {
  std::uint8_t codes[32];
  scale = detail::mxfp4_quantize_codes(in, codes);
  for (int j = 0; j < 16; ++j) nibbles[j] = static_cast<std::uint8_t>(codes[2 * j] | (codes[2 * j + 1] << 4));
}

/// Overloads by block type, for code generic over the ggml formats.
PRECIS_HD constexpr void quantize_block(const float in[32], block_q8_0& out) noexcept { quantize_block_q8_0(in, out); }
PRECIS_HD constexpr void quantize_block(const float in[32], block_q4_0& out) noexcept { quantize_block_q4_0(in, out); }
PRECIS_HD constexpr void quantize_block(const float in[32], block_q4_1& out) noexcept { quantize_block_q4_1(in, out); }
PRECIS_HD inline void quantize_block(const float in[32], block_mxfp4_ggml& out) noexcept {
  quantize_block_mxfp4_ggml(in, out);
}

// ---------------------------------------------------------------------------------------------
// MXFP4 nibble re-packing (llama.cpp convert_hf_to_gguf `transform_nibble_layout`, §1d)
// ---------------------------------------------------------------------------------------------
//
//   HF/OpenAI byte j:  [ hi: element 2j+1 | lo: element 2j  ]
//   ggml      byte j:  [ hi: element j+16 | lo: element j   ]
// The scale byte is the same number in both layouts (FP4·2^(s−127) = kv·2^(s−128)).

/// HF/OpenAI nibbles → ggml qs.
PRECIS_HD constexpr void repack_mxfp4_openai_to_ggml(const std::uint8_t nibbles[16], std::uint8_t qs[16]) noexcept {
  for (int j = 0; j < 16; ++j) {
    // element j lives in byte j/2 (low nibble if j even); element j+16 in byte 8 + j/2
    const int lo = (nibbles[j / 2] >> (4 * (j % 2))) & 0x0f;
    const int hi = (nibbles[8 + j / 2] >> (4 * (j % 2))) & 0x0f;
    qs[j] = static_cast<std::uint8_t>(lo | (hi << 4));
  }
}

/// ggml qs → HF/OpenAI nibbles.
PRECIS_HD constexpr void repack_mxfp4_ggml_to_openai(const std::uint8_t qs[16], std::uint8_t nibbles[16]) noexcept {
  for (int j = 0; j < 16; ++j) {
    // elements 2j and 2j+1: both in the low half (j < 8) or both in the high half of ggml bytes
    const int shift = j < 8 ? 0 : 4;
    const int e0 = (qs[(2 * j) % 16] >> shift) & 0x0f;
    const int e1 = (qs[(2 * j + 1) % 16] >> shift) & 0x0f;
    nibbles[j] = static_cast<std::uint8_t>(e0 | (e1 << 4));
  }
}

}  // namespace precis
