// precis/backends/cpu/download_q8.hpp — integer dot products of the GGUF download formats (Q5_0,
// Q5_1, IQ4_NL, Q2_K … Q6_K, IQ4_XS) with 8-bit activation blocks (`--act-quant q8`), as
// llama.cpp computes its K-quant dots against q8_K activations.
//
// Why: the value decoders (download_decode.hpp) turn every weight into an f32 before the FMA,
// about a dozen vector operations per 32 weights, which keeps decode far below the memory
// roofline (docs/performance.md: 11–45 %). Against quantized activations the weights can stay
// integers: per 32-value chunk one vpdpbusd (u8 codes × s8 activations → 8 exact int32 lane sums)
// and one FMA with the chunk's scales.
//
// The math. Every download format writes a weight of chunk c as
//     w = s_h · (u − offset) − m_h          (h = the 16-value half of the chunk the weight is in)
// with u an unsigned code (≤ 8 bits), s_h the (sub-block) scale and m_h the (sub-block) min —
// one s and m for the whole chunk except in Q2_K, Q3_K and Q6_K, whose sub-blocks are 16 values.
// With activation block x̂_i = d_x · q_i (q8_activation.hpp):
//     Σ_i w_i x̂_i = d_x · Σ_h [ s_h · (Σ_{i∈h} u_i q_i − offset · Σ_{i∈h} q_i) − m_h · Σ_{i∈h} q_i ].
// vpdpbusd lanes 0–3 sum bytes 0–15 (half 0), lanes 4–7 bytes 16–31 (half 1); the offset term is
// added into lane 0 / lane 4 from the activation block's half sums, so every lane holds an exact
// integer (|lane| < 2^24: exact in f32), scaled by s_h·d_x per lane. This is the q8_blocks rule
// of the reference backend (the f32 dot of the exact weight values with the q8-rounded
// activations) up to f32 rounding of the scale products and of the sum order; the kernel tests
// compare both at the GEMV tolerance.
//
// Codes, by format (natural element order within the chunk, 32 bytes):
//   Q5_0  u = nibble | qh bit << 4 ∈ [0, 31], offset 16        Q5_1  offset 0, m = −block min
//   IQ4_NL, IQ4_XS  u = code-book value + 128 ∈ [1, 241], offset 128 (vpshufb of the nibble)
//   Q2_K  u ∈ [0, 3], s_h = d·(sc & 15), m_h = dmin·(sc >> 4)   Q3_K  u = low2 | hbit << 2, offset 4
//   Q4_K  u = nibble, s = d·sc, m = dmin·min (6-bit pairs)      Q5_K  u = nibble | qh bit << 4
//   Q6_K  u = ql nibble | 2 qh bits << 4 ∈ [0, 63], offset 32, s_h = d·sc_h (int8 scales)
#pragma once

#include <concepts>  // std::same_as
#include <cstdint>   // std::uint8_t, std::int32_t

#include <precis/backends/cpu/arch.hpp>           // PRECIS_CPU_AVX512_VNNI
#include <precis/backends/cpu/download_decode.hpp>  // f16_value, download_format
#include <precis/backends/cpu/q8_activation.hpp>  // block_q8_act
#include <precis/quant/kquants.hpp>               // block structs, iq4nl_value, sub-block scales

namespace precis::backends::cpu::detail {

#if PRECIS_CPU_AVX512_VNNI

/// (v >> s) & mask in every byte (s < 8: the 16-bit shift's spill from the upper byte is masked).
[[nodiscard]] inline __m256i byte_bits(__m256i v, int s, int mask) noexcept {
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(s)), _mm256_set1_epi8(static_cast<char>(mask)));
}
[[nodiscard]] inline __m256i load32(const std::uint8_t* p) noexcept {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
/// 16 bytes → 32: low nibbles (elements 0–15) in the lower 128 bits, high nibbles above.
[[nodiscard]] inline __m256i nibbles_32(const std::uint8_t* qs) noexcept {
  const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0f));
}
/// Bit i of a 32-bit word in byte i, as 0 or `value`: bytes 0–7 take word byte 0, 8–15 byte 1
/// (lower 128-bit lane), 16–23 byte 2, 24–31 byte 3, then byte k of each group tests bit k.
[[nodiscard]] inline __m256i bit_bytes(std::uint32_t bits, char value) noexcept {
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                                             _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202,
                                                                0x0303030303030303));
  const __m256i mask = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask), _mm256_set1_epi8(value));
}
[[nodiscard]] inline float hsum_ps256(__m256 v) noexcept {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}
/// The IQ4 code book + 128 as unsigned bytes (vpshufb table, both 128-bit lanes).
[[nodiscard]] inline __m256i iq4_u8_table() noexcept {
  alignas(32) std::uint8_t t[32];
  for (int i = 0; i < 32; ++i) t[i] = static_cast<std::uint8_t>(iq4nl_value(static_cast<unsigned>(i % 16)) + 128);
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
}

/// One chunk's codes and per-half scale / min (see the header comment).
struct chunk_codes {
  __m256i u;
  float s[2];
  float m[2];
};

struct qdec_q5_0 {
  static constexpr int offset = 16;
  static constexpr bool split = false, has_min = false;
  const block_q5_0* blk;
  void operator()(index_t c, chunk_codes& k) const noexcept {
    const block_q5_0& B = blk[c];
    k.u = _mm256_or_si256(nibbles_32(B.qs), bit_bytes(precis::detail::q5_high_bits(B.qh), 0x10));
    k.s[0] = k.s[1] = f16_value(B.d);
  }
};
struct qdec_q5_1 {
  static constexpr int offset = 0;
  static constexpr bool split = false, has_min = true;
  const block_q5_1* blk;
  void operator()(index_t c, chunk_codes& k) const noexcept {
    const block_q5_1& B = blk[c];
    k.u = _mm256_or_si256(nibbles_32(B.qs), bit_bytes(precis::detail::q5_high_bits(B.qh), 0x10));
    k.s[0] = k.s[1] = f16_value(B.d);
    k.m[0] = k.m[1] = -f16_value(B.m);  // w = d·u + m
  }
};
struct qdec_iq4_nl {
  static constexpr int offset = 128;
  static constexpr bool split = false, has_min = false;
  const block_iq4_nl* blk;
  __m256i tab = iq4_u8_table();
  void operator()(index_t c, chunk_codes& k) const noexcept {
    const block_iq4_nl& B = blk[c];
    k.u = _mm256_shuffle_epi8(tab, nibbles_32(B.qs));
    k.s[0] = k.s[1] = f16_value(B.d);
  }
};
/// A super-block's per-chunk, per-half scales s and mins m (the 256-value formats' `scales`).
struct block_scales {
  float s[8][2];
  float m[8][2];
};

/// Q4_K / Q5_K: the 8 sub-blocks' 6-bit (scale, min) pairs times d and dmin (one per chunk).
template <class Block>
inline void k4_scales(const Block& B, block_scales& k) noexcept {
    const float d = f16_value(B.d), dmin = f16_value(B.dmin);
    for (int j = 0; j < 8; ++j) {
      precis::detail::k4_sub_scale(d, dmin, B.scales, j, k.s[j][0], k.m[j][0]);
      k.s[j][1] = k.s[j][0];
      k.m[j][1] = k.m[j][0];
    }
}

// The 256-value formats: `scales(B, k)` decodes a super-block's 8 chunks' scales and mins once
// (f16 conversions, 6-bit unpacking), `codes(B, j)` chunk j's 32 codes (dot_superblocks_q8).
struct qdec_q2_K {
  static constexpr int offset = 0;
  static constexpr bool split = true, has_min = true;
  using block = block_q2_K;
  const block_q2_K* blk;
  static void scales(const block_q2_K& B, block_scales& k) noexcept {
    const float d = f16_value(B.d), dmin = f16_value(B.dmin);
    for (int j = 0; j < 8; ++j)
      for (int h = 0; h < 2; ++h) {
        const std::uint8_t sc = B.scales[8 * (j / 4) + 2 * (j % 4) + h];
        k.s[j][h] = d * static_cast<float>(sc & 0xF);
        k.m[j][h] = dmin * static_cast<float>(sc >> 4);
      }
  }
  static __m256i codes(const block_q2_K& B, int j) noexcept { return byte_bits(load32(B.qs + 32 * (j / 4)), 2 * (j % 4), 3); }
};
struct qdec_q3_K {
  static constexpr int offset = 4;
  static constexpr bool split = true, has_min = false;
  using block = block_q3_K;
  const block_q3_K* blk;
  static void scales(const block_q3_K& B, block_scales& k) noexcept {
    const float d = f16_value(B.d);
    for (int j = 0; j < 8; ++j)
      for (int h = 0; h < 2; ++h)
        k.s[j][h] = d * static_cast<float>(precis::detail::q3_k_scale(B.scales, 8 * (j / 4) + 2 * (j % 4) + h));
  }
  static __m256i codes(const block_q3_K& B, int j) noexcept {
    const int n = j / 4, p = j % 4;
    const __m256i low = byte_bits(load32(B.qs + 32 * n), 2 * p, 3);
    const __m256i hb = byte_bits(load32(B.hmask), 4 * n + p, 1);
    return _mm256_or_si256(low, _mm256_slli_epi16(hb, 2));
  }
};
struct qdec_q4_K {
  static constexpr int offset = 0;
  static constexpr bool split = false, has_min = true;
  using block = block_q4_K;
  const block_q4_K* blk;
  static void scales(const block_q4_K& B, block_scales& k) noexcept { k4_scales(B, k); }
  static __m256i codes(const block_q4_K& B, int j) noexcept { return byte_bits(load32(B.qs + 32 * (j / 2)), 4 * (j % 2), 0xF); }
};
struct qdec_q5_K {
  static constexpr int offset = 0;
  static constexpr bool split = false, has_min = true;
  using block = block_q5_K;
  const block_q5_K* blk;
  static void scales(const block_q5_K& B, block_scales& k) noexcept { k4_scales(B, k); }
  static __m256i codes(const block_q5_K& B, int j) noexcept {
    const __m256i lo = byte_bits(load32(B.qs + 32 * (j / 2)), 4 * (j % 2), 0xF);
    return _mm256_or_si256(lo, _mm256_slli_epi16(byte_bits(load32(B.qh), j, 1), 4));
  }
};
struct qdec_q6_K {
  static constexpr int offset = 32;
  static constexpr bool split = true, has_min = false;
  using block = block_q6_K;
  const block_q6_K* blk;
  static void scales(const block_q6_K& B, block_scales& k) noexcept {
    const float d = f16_value(B.d);
    for (int j = 0; j < 8; ++j)
      for (int h = 0; h < 2; ++h) k.s[j][h] = d * static_cast<float>(B.scales[8 * (j / 4) + 2 * (j % 4) + h]);
  }
  static __m256i codes(const block_q6_K& B, int j) noexcept {
    const int n = j / 4, p = j % 4;
    const __m256i lo = byte_bits(load32(B.ql + 64 * n + 32 * (p % 2)), 4 * (p / 2), 0xF);
    const __m256i hi = byte_bits(load32(B.qh + 32 * n), 2 * p, 3);
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
  }
};
struct qdec_iq4_xs {
  static constexpr int offset = 128;
  static constexpr bool split = false, has_min = false;
  using block = block_iq4_xs;
  const block_iq4_xs* blk;
  __m256i tab = iq4_u8_table();
  static void scales(const block_iq4_xs& B, block_scales& k) noexcept {
    const float d = f16_value(B.d);
    for (int j = 0; j < 8; ++j) k.s[j][0] = k.s[j][1] = d * static_cast<float>(precis::detail::iq4_xs_scale(B, j));
  }
  __m256i codes(const block_iq4_xs& B, int j) const noexcept { return _mm256_shuffle_epi8(tab, nibbles_32(B.qs + 16 * j)); }
};

template <class F>
struct q8_decoder_of;
template <> struct q8_decoder_of<q5_0> { using type = qdec_q5_0; };
template <> struct q8_decoder_of<q5_1> { using type = qdec_q5_1; };
template <> struct q8_decoder_of<iq4_nl> { using type = qdec_iq4_nl; };
template <> struct q8_decoder_of<q2_K> { using type = qdec_q2_K; };
template <> struct q8_decoder_of<q3_K> { using type = qdec_q3_K; };
template <> struct q8_decoder_of<q4_K> { using type = qdec_q4_K; };
template <> struct q8_decoder_of<q5_K> { using type = qdec_q5_K; };
template <> struct q8_decoder_of<q6_K> { using type = qdec_q6_K; };
template <> struct q8_decoder_of<iq4_xs> { using type = qdec_iq4_xs; };

/// The integer decoder of row n (of `chunks` chunks) of a download-format weight: the 32-value
/// formats' for dot_chunks_q8, the 256-value formats' for dot_superblocks_q8.
template <download_format F>
[[nodiscard]] inline auto q8_chunk_decoder(const typename dtype_traits<F>::block_type* blocks, index_t n,
                                           index_t chunks) noexcept {
  return typename q8_decoder_of<F>::type{blocks + n * (chunks / precis::detail::chunks_per_block<F>)};
}

/// Chunk c's contribution for M activation rows (`x` [M, ld] blocks): the codes `u`, the scale
/// s_h·d_x per lane into acc[r], the min term into macc[r] (the header comment's formula).
template <int M, class Dec>
inline void chunk_step(__m256i u, const float s2[2], const float m2[2], const block_q8_act* x, index_t ld, index_t c,
                       __m256 acc[M], float macc[M]) noexcept {
  const __m256 s = Dec::split ? _mm256_setr_m128(_mm_set1_ps(s2[0]), _mm_set1_ps(s2[1])) : _mm256_set1_ps(s2[0]);
  for (int r = 0; r < M; ++r) {
    const block_q8_act& xb = x[r * ld + c];
    __m256i corr = _mm256_setzero_si256();
    if constexpr (Dec::offset != 0) {
      if constexpr (Dec::split)
        corr = _mm256_setr_epi32(-Dec::offset * xb.half_sum[0], 0, 0, 0, -Dec::offset * xb.half_sum[1], 0, 0, 0);
      else
        corr = _mm256_zextsi128_si256(_mm_cvtsi32_si128(-Dec::offset * xb.sum));
    }
    const __m256i v = _mm256_dpbusd_epi32(corr, u, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs)));
    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(s, _mm256_set1_ps(xb.d)), acc[r]);
    if constexpr (Dec::has_min) {
      if constexpr (Dec::split)
        macc[r] -= xb.d * (m2[0] * static_cast<float>(xb.half_sum[0]) + m2[1] * static_cast<float>(xb.half_sum[1]));
      else
        macc[r] -= m2[0] * xb.s;
    }
  }
}

/// out[r] = Σ_c Σ_i w_{c,i} · x̂_{r,c,i} for M activation rows (`x` [M, ld] blocks, chunk c of
/// row r at x[r·ld + c]) over a 32-value format; two accumulator sets (even and odd chunks)
/// hide the FMA latency.
template <int M, class Dec>
inline void dot_chunks_q8(const Dec& dec, index_t chunks, const block_q8_act* x, index_t ld, float* out) noexcept {
  __m256 acc[2][M];
  float macc[M] = {};
  for (int r = 0; r < M; ++r) acc[0][r] = acc[1][r] = _mm256_setzero_ps();
  chunk_codes k{};
  index_t c = 0;
  for (; c + 2 <= chunks; c += 2) {
    dec(c, k);
    chunk_step<M, Dec>(k.u, k.s, k.m, x, ld, c, acc[0], macc);
    dec(c + 1, k);
    chunk_step<M, Dec>(k.u, k.s, k.m, x, ld, c + 1, acc[1], macc);
  }
  if (c < chunks) {
    dec(c, k);
    chunk_step<M, Dec>(k.u, k.s, k.m, x, ld, c, acc[0], macc);
  }
  for (int r = 0; r < M; ++r) out[r] = hsum_ps256(_mm256_add_ps(acc[0][r], acc[1][r])) + macc[r];
}

/// dot_chunks_q8 for the 256-value formats, a super-block at a time: its scales and mins are
/// decoded once for its 8 chunks (per chunk, the f16 conversions and the 6-bit unpacking cost
/// more than the dot itself: q4_K went from 40 % to 66 % of the read roofline).
template <int M, class Dec>
inline void dot_superblocks_q8(const Dec& dec, index_t chunks, const block_q8_act* x, index_t ld, float* out) noexcept {
  __m256 acc[2][M];
  float macc[M] = {};
  for (int r = 0; r < M; ++r) acc[0][r] = acc[1][r] = _mm256_setzero_ps();
  block_scales bs{};
  for (index_t b = 0; b < chunks / 8; ++b) {
    const auto& B = dec.blk[b];
    Dec::scales(B, bs);
    for (int j = 0; j < 8; j += 2) {
      chunk_step<M, Dec>(dec.codes(B, j), bs.s[j], bs.m[j], x, ld, b * 8 + j, acc[0], macc);
      chunk_step<M, Dec>(dec.codes(B, j + 1), bs.s[j + 1], bs.m[j + 1], x, ld, b * 8 + j + 1, acc[1], macc);
    }
  }
  for (int r = 0; r < M; ++r) out[r] = hsum_ps256(_mm256_add_ps(acc[0][r], acc[1][r])) + macc[r];
}

#endif  // PRECIS_CPU_AVX512_VNNI

}  // namespace precis::backends::cpu::detail
