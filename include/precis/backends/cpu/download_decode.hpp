// precis/backends/cpu/download_decode.hpp — AVX-512 decoders of the GGUF download formats
// (Q5_0, Q5_1, IQ4_NL and the K-quants Q2_K … Q6_K, IQ4_XS): one 32-value chunk of a weight row
// → its 32 dequantized f32 values in two zmm (elements 0–15, 16–31, natural order).
//
// Unlike the q4/q8/mxfp4 decoders in gemv.hpp, which hand out codes and one scale per block and
// let the dot product apply the scale, these produce the *values*: a K-quant chunk has up to two
// sub-block scales and two mins (16-value sub-blocks in Q2_K/Q3_K/Q6_K), so the factored form
// would need per-half activation sums; dequantizing once per chunk is shared by all M activation
// rows of a GEMV and is what the GEMM panel stores anyway. Each value is formed as the scalar
// spec (quant/kquants.hpp) forms it — sub-block scale dl = d·sc first, then dl·q (− ml, + m) —
// so it equals dequantize_block's value up to the compiler's contraction of the multiply and
// subtract (g++ contracts vector `a*b - c` into one FMA under its default -ffp-contract=fast);
// the kernel tests compare with the reference at the GEMV tolerance, not bit for bit.
//
// Chunk c of a row: block c/8, sub-chunk c%8 for the 256-value formats (kquants.hpp's
// dequantize_chunk gives the index arithmetic), block c for the 32-value ones.
#pragma once

#include <concepts>  // std::same_as
#include <cstdint>   // std::uint8_t

#include <precis/backends/cpu/arch.hpp>  // PRECIS_CPU_AVX512
#include <precis/core/dtype.hpp>            // the format tags
#include <precis/quant/block_formats.hpp>   // download_format
#include <precis/quant/dequantize.hpp>      // precis::detail::chunks_per_block
#include <precis/quant/kquants.hpp>         // block structs, iq4nl_value, detail sub-block scales

namespace precis::backends::cpu::detail {

/// The formats decoded here (quant/block_formats.hpp's download_block_formats).
using precis::download_format;

#if PRECIS_CPU_AVX512

/// 16 bytes → 16 dword lanes.
[[nodiscard]] inline __m512i widen_u8(const std::uint8_t* p) noexcept {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
/// (v >> s) & mask per lane, s a run-time count.
[[nodiscard]] inline __m512i bits_at(__m512i v, int s, int mask) noexcept {
  return _mm512_and_si512(_mm512_srlv_epi32(v, _mm512_set1_epi32(s)), _mm512_set1_epi32(mask));
}
/// dl·q − ml with one rounding per operation, as the scalar spec.
[[nodiscard]] inline __m512 scale_sub(__m512i q, float dl, float ml) noexcept {
  return _mm512_sub_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(dl)), _mm512_set1_ps(ml));
}
[[nodiscard]] inline __m512 scale_only(__m512i q, float dl) noexcept {
  return _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(dl));
}
[[nodiscard]] inline float f16_value(float16 h) noexcept {
  return _mm_cvtss_f32(_mm_maskz_cvtph_ps(0xf, _mm_cvtsi32_si128(h.bits)));
}
/// The IQ4 code book as 16 f32 lanes (vpermps reads the low 4 index bits).
[[nodiscard]] inline __m512 iq4_table() noexcept {
  alignas(64) float t[16];
  for (int i = 0; i < 16; ++i) t[i] = static_cast<float>(iq4nl_value(static_cast<unsigned>(i)));
  return _mm512_load_ps(t);
}

/// The 5-bit codes of a Q5_0 / Q5_1 block, 0 … 31: low nibbles | bit j of qh << 4 (elements
/// 0–15), high nibbles | bit j + 16 of qh << 4 (16–31).
inline void q5_codes(const std::uint8_t qs[16], const std::uint8_t qh[4], __m512i& q0, __m512i& q1) noexcept {
  const __m512i raw = widen_u8(qs);
  const __m512i bits = _mm512_set1_epi32(static_cast<int>(precis::detail::q5_high_bits(qh)));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i b0 = _mm512_and_si512(_mm512_srlv_epi32(bits, lane), one);
  const __m512i b1 = _mm512_and_si512(_mm512_srlv_epi32(bits, _mm512_add_epi32(lane, _mm512_set1_epi32(16))), one);
  q0 = _mm512_or_si512(_mm512_and_si512(raw, _mm512_set1_epi32(0xF)), _mm512_slli_epi32(b0, 4));
  q1 = _mm512_or_si512(_mm512_srli_epi32(raw, 4), _mm512_slli_epi32(b1, 4));
}

struct vdec_q5_0 {
  const block_q5_0* blk;
  void operator()(index_t c, __m512& lo, __m512& hi) const noexcept {
    const block_q5_0& B = blk[c];
    const float d = f16_value(B.d);
    __m512i q0, q1;
    q5_codes(B.qs, B.qh, q0, q1);
    const __m512i c16 = _mm512_set1_epi32(16);
    lo = scale_only(_mm512_sub_epi32(q0, c16), d);
    hi = scale_only(_mm512_sub_epi32(q1, c16), d);
  }
};

struct vdec_q5_1 {
  const block_q5_1* blk;
  void operator()(index_t c, __m512& lo, __m512& hi) const noexcept {
    const block_q5_1& B = blk[c];
    const float d = f16_value(B.d), m = f16_value(B.m);
    __m512i q0, q1;
    q5_codes(B.qs, B.qh, q0, q1);
    lo = _mm512_add_ps(scale_only(q0, d), _mm512_set1_ps(m));
    hi = _mm512_add_ps(scale_only(q1, d), _mm512_set1_ps(m));
  }
};

struct vdec_iq4_nl {
  const block_iq4_nl* blk;
  __m512 tab = iq4_table();
  void operator()(index_t c, __m512& lo, __m512& hi) const noexcept {
    const block_iq4_nl& B = blk[c];
    const __m512 d = _mm512_set1_ps(f16_value(B.d));
    const __m512i raw = widen_u8(B.qs);
    lo = _mm512_mul_ps(_mm512_permutexvar_ps(raw, tab), d);
    hi = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(raw, 4), tab), d);
  }
};

struct vdec_q2_K {
  const block_q2_K* blk;
  void operator()(index_t c, __m512& lo, __m512& hi) const noexcept {
    const block_q2_K& B = blk[c / 8];
    const int j = static_cast<int>(c % 8), n = j / 4, p = j % 4;
    const float d = f16_value(B.d), dmin = f16_value(B.dmin);
    const std::uint8_t s0 = B.scales[8 * n + 2 * p], s1 = B.scales[8 * n + 2 * p + 1];
    const std::uint8_t* q = B.qs + 32 * n;
    lo = scale_sub(bits_at(widen_u8(q), 2 * p, 3), d * static_cast<float>(s0 & 0xF), dmin * static_cast<float>(s0 >> 4));
    hi = scale_sub(bits_at(widen_u8(q + 16), 2 * p, 3), d * static_cast<float>(s1 & 0xF),
                   dmin * static_cast<float>(s1 >> 4));
  }
};

struct vdec_q3_K {
  const block_q3_K* blk;
  void operator()(index_t c, __m512& lo, __m512& hi) const noexcept {
    const block_q3_K& B = blk[c / 8];
    const int j = static_cast<int>(c % 8), n = j / 4, p = j % 4;
    const float d = f16_value(B.d);
    const std::uint8_t* q = B.qs + 32 * n;
    const __m512i four = _mm512_set1_epi32(4);
    // code = low 2 bits − 4 + 4·(high bit set)
    const auto code = [&](int h) {
      const __m512i low = bits_at(widen_u8(q + 16 * h), 2 * p, 3);
      const __m512i hb = bits_at(widen_u8(B.hmask + 16 * h), 4 * n + p, 1);
      return _mm512_add_epi32(_mm512_sub_epi32(low, four), _mm512_slli_epi32(hb, 2));
    };
    lo = scale_only(code(0), d * static_cast<float>(precis::detail::q3_k_scale(B.scales, 8 * n + 2 * p)));
    hi = scale_only(code(1), d * static_cast<float>(precis::detail::q3_k_scale(B.scales, 8 * n + 2 * p + 1)));
  }
};

struct vdec_q4_K {
  const block_q4_K* blk;
  void operator()(index_t c, __m512& lo, __m512& hi) const noexcept {
    const block_q4_K& B = blk[c / 8];
    const int j = static_cast<int>(c % 8);
    float dl = 0.0f, ml = 0.0f;
    precis::detail::k4_sub_scale(f16_value(B.d), f16_value(B.dmin), B.scales, j, dl, ml);
    const std::uint8_t* q = B.qs + 32 * (j / 2);
    const int sh = 4 * (j % 2);
    lo = scale_sub(bits_at(widen_u8(q), sh, 0xF), dl, ml);
    hi = scale_sub(bits_at(widen_u8(q + 16), sh, 0xF), dl, ml);
  }
};

struct vdec_q5_K {
  const block_q5_K* blk;
  void operator()(index_t c, __m512& lo, __m512& hi) const noexcept {
    const block_q5_K& B = blk[c / 8];
    const int j = static_cast<int>(c % 8);
    float dl = 0.0f, ml = 0.0f;
    precis::detail::k4_sub_scale(f16_value(B.d), f16_value(B.dmin), B.scales, j, dl, ml);
    const std::uint8_t* q = B.qs + 32 * (j / 2);
    const int sh = 4 * (j % 2);
    const auto code = [&](int h) {
      return _mm512_or_si512(bits_at(widen_u8(q + 16 * h), sh, 0xF),
                             _mm512_slli_epi32(bits_at(widen_u8(B.qh + 16 * h), j, 1), 4));
    };
    lo = scale_sub(code(0), dl, ml);
    hi = scale_sub(code(1), dl, ml);
  }
};

struct vdec_q6_K {
  const block_q6_K* blk;
  void operator()(index_t c, __m512& lo, __m512& hi) const noexcept {
    const block_q6_K& B = blk[c / 8];
    const int j = static_cast<int>(c % 8), n = j / 4, p = j % 4;
    const float d = f16_value(B.d);
    const std::uint8_t* ql = B.ql + 64 * n + 32 * (p % 2);
    const std::uint8_t* qh = B.qh + 32 * n;
    const __m512i c32 = _mm512_set1_epi32(32);
    const auto code = [&](int h) {
      return _mm512_sub_epi32(_mm512_or_si512(bits_at(widen_u8(ql + 16 * h), 4 * (p / 2), 0xF),
                                              _mm512_slli_epi32(bits_at(widen_u8(qh + 16 * h), 2 * p, 3), 4)),
                              c32);
    };
    lo = scale_only(code(0), d * static_cast<float>(B.scales[8 * n + 2 * p]));
    hi = scale_only(code(1), d * static_cast<float>(B.scales[8 * n + 2 * p + 1]));
  }
};

struct vdec_iq4_xs {
  const block_iq4_xs* blk;
  __m512 tab = iq4_table();
  void operator()(index_t c, __m512& lo, __m512& hi) const noexcept {
    const block_iq4_xs& B = blk[c / 8];
    const int j = static_cast<int>(c % 8);
    const __m512 dl = _mm512_set1_ps(f16_value(B.d) * static_cast<float>(precis::detail::iq4_xs_scale(B, j)));
    const __m512i raw = widen_u8(B.qs + 16 * j);
    lo = _mm512_mul_ps(_mm512_permutexvar_ps(raw, tab), dl);
    hi = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(raw, 4), tab), dl);
  }
};

template <class F>
struct value_decoder_of;
template <> struct value_decoder_of<q5_0> { using type = vdec_q5_0; };
template <> struct value_decoder_of<q5_1> { using type = vdec_q5_1; };
template <> struct value_decoder_of<iq4_nl> { using type = vdec_iq4_nl; };
template <> struct value_decoder_of<q2_K> { using type = vdec_q2_K; };
template <> struct value_decoder_of<q3_K> { using type = vdec_q3_K; };
template <> struct value_decoder_of<q4_K> { using type = vdec_q4_K; };
template <> struct value_decoder_of<q5_K> { using type = vdec_q5_K; };
template <> struct value_decoder_of<q6_K> { using type = vdec_q6_K; };
template <> struct value_decoder_of<iq4_xs> { using type = vdec_iq4_xs; };

/// The decoder of row n (of `chunks` 32-value chunks) of a download-format weight whose blocks
/// start at `blocks`: chunk c of the row is chunk n·chunks + c of the tensor.
template <download_format F>
[[nodiscard]] inline auto value_decoder(const typename dtype_traits<F>::block_type* blocks, index_t n,
                                        index_t chunks) noexcept {
  return typename value_decoder_of<F>::type{blocks + n * (chunks / precis::detail::chunks_per_block<F>)};
}

#endif  // PRECIS_CPU_AVX512

}  // namespace precis::backends::cpu::detail
