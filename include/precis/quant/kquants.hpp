// precis/quant/kquants.hpp — the block formats of the GGUF files people download (llama.cpp's
// `llama-quantize` types Q2_K … Q6_K, Q5_0, Q5_1, IQ4_NL, IQ4_XS): their byte layout, stated once
// as packed structs (ggml-common.h), and the scalar reference dequantizer of each — the math
// spec their kernels are tested against, bit-exact against gguf-py's `gguf.quants.dequantize`
// (tests/unit/quant/test_kquants.cpp, fixtures from tools/make_kquant_fixtures.py).
//
// K-quants hold 256 values (QK_K) in a super-block: an f16 scale `d` (and for the "asymmetric"
// types an f16 `dmin`) times small per-sub-block integer scales, times the quant codes:
//
//   type    bytes  bits/value  sub-blocks               value
//   Q2_K      84     2.625     16 × 16, 4-bit sc / m    d·sc·q − dmin·m        q ∈ 0..3
//   Q3_K     110     3.4375    16 × 16, 6-bit sc        d·(sc − 32)·q          q ∈ −4..3 (2 low bits + high-bit mask)
//   Q4_K     144     4.5       8 × 32, 6-bit sc / m     d·sc·q − dmin·m        q ∈ 0..15
//   Q5_K     176     5.5       8 × 32, 6-bit sc / m     d·sc·q − dmin·m        q ∈ 0..31
//   Q6_K     210     6.5625    16 × 16, int8 sc         d·sc·q                 q ∈ −32..31
//   IQ4_XS   136     4.25      8 × 32, 6-bit sc         d·(sc − 32)·kv[q]      kv the IQ4_NL table
// and the 32-value blocks
//   Q5_0      22     5.5                                d·q                    q ∈ −16..15
//   Q5_1      24     6                                  d·q + m                q ∈ 0..31
//   IQ4_NL    18     4.5                                d·kv[q]                kv non-uniform, 16 entries
//
// Rounding points (what bit-exactness needs; each product rounded once in f32, no FMA — the same
// contraction caveat as block_reference.hpp): the sub-block scale is formed first,
// dl = d·float(sc) (and ml = dmin·float(m)), then y = dl·float(q) (− ml, or + m for Q5_1).
#pragma once

#include <cstdint>  // std::uint8_t, std::int8_t, std::uint16_t, std::uint32_t

#include <precis/core/config.hpp>          // PRECIS_HD
#include <precis/numeric/float16.hpp>      // precis::float16
#include <precis/quant/kquant_blocks.hpp>  // block_q2_K ... block_iq4_xs, qk_k

namespace precis {

/// The IQ4_NL / IQ4_XS code book (ggml kvalues_iq4nl): a non-uniform 4-bit grid. A function, not a
/// namespace-scope array, so that device code (CUDA kernels) can index it.
PRECIS_HD constexpr int iq4nl_value(unsigned code) noexcept {
  constexpr std::int8_t table[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  return table[code & 0xF];
}

namespace detail {
/// Q4_K / Q5_K sub-block j's 6-bit (scale, min) (ggml get_scale_min_k4).
PRECIS_HD constexpr void scale_min_k4(int j, const std::uint8_t* q, std::uint8_t& sc, std::uint8_t& m) noexcept {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
/// Q3_K sub-block j's signed scale (6 bits: low nibble in scales[j % 8], two high bits in
/// scales[8 + j % 4]) minus 32 (ggml dequantize_row_q3_K's aux unpacking).
PRECIS_HD constexpr int q3_k_scale(const std::uint8_t scales[12], int j) noexcept {
  const int low = (scales[j % 8] >> (4 * (j / 8))) & 0xF;
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return static_cast<std::int8_t>((low | (high << 4)) - 32);
}
/// IQ4_XS sub-block j's scale ls − 32 (low nibble from scales_l, two high bits from scales_h).
PRECIS_HD constexpr int iq4_xs_scale(const block_iq4_xs& b, int j) noexcept {
  return (((b.scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((b.scales_h >> (2 * j)) & 3) << 4)) - 32;
}
/// Q4_K / Q5_K sub-block j's dl = d·sc and ml = dmin·m (d, dmin: the block's f16 fields as f32),
/// each one f32 product as ggml forms them.
PRECIS_HD constexpr void k4_sub_scale(float d, float dmin, const std::uint8_t scales[12], int j, float& dl,
                                      float& ml) noexcept {
  std::uint8_t sc = 0, mn = 0;
  scale_min_k4(j, scales, sc, mn);
  dl = d * static_cast<float>(sc);
  ml = dmin * static_cast<float>(mn);
}
}  // namespace detail






namespace detail {
/// The fifth bits of a Q5_0 / Q5_1 block as one little-endian u32.
PRECIS_HD constexpr std::uint32_t q5_high_bits(const std::uint8_t qh[4]) noexcept {
  return static_cast<std::uint32_t>(qh[0]) | (static_cast<std::uint32_t>(qh[1]) << 8) |
         (static_cast<std::uint32_t>(qh[2]) << 16) | (static_cast<std::uint32_t>(qh[3]) << 24);
}
}  // namespace detail

/// Q5_0 (`dequantize_row_q5_0`): code j = low nibble | bit j of qh << 4, minus 16.
PRECIS_HD constexpr void dequantize_block(const block_q5_0& b, float out[32]) noexcept {
  const float d = static_cast<float>(b.d);
  const std::uint32_t qh = detail::q5_high_bits(b.qh);
  for (int j = 0; j < 16; ++j) {
    const int x0 = static_cast<int>((b.qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
    const int x1 = static_cast<int>((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
    out[j] = d * static_cast<float>(x0);
    out[j + 16] = d * static_cast<float>(x1);
  }
}

/// Q5_1 (`dequantize_row_q5_1`): d·code + m.
PRECIS_HD constexpr void dequantize_block(const block_q5_1& b, float out[32]) noexcept {
  const float d = static_cast<float>(b.d), m = static_cast<float>(b.m);
  const std::uint32_t qh = detail::q5_high_bits(b.qh);
  for (int j = 0; j < 16; ++j) {
    const auto x0 = (b.qs[j] & 0xFu) | (((qh >> j) & 1u) << 4);
    const auto x1 = (b.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4);
    out[j] = d * static_cast<float>(x0) + m;
    out[j + 16] = d * static_cast<float>(x1) + m;
  }
}

/// IQ4_NL (`dequantize_row_iq4_nl`): d·kv[code].
PRECIS_HD constexpr void dequantize_block(const block_iq4_nl& b, float out[32]) noexcept {
  const float d = static_cast<float>(b.d);
  for (int j = 0; j < 16; ++j) {
    out[j] = d * static_cast<float>(iq4nl_value(b.qs[j] & 0xFu));
    out[j + 16] = d * static_cast<float>(iq4nl_value(b.qs[j] >> 4u));
  }
}


// ---------------------------------------------------------------------------------------------
// 32-value chunks of a super-block
// ---------------------------------------------------------------------------------------------
// Kernels walk every format 32 values at a time (one chunk = one ggml block of the classic
// formats), so a 256-value super-block is read as 8 chunks: chunk c holds values 32c … 32c + 31.
// The chunk functions are the spec of the 256-value formats; dequantize_block of a super-block is
// its 8 chunks in order (below). Index arithmetic, from ggml's dequantize_row_* loops:
// Q2_K/Q3_K/Q6_K visit 128-value halves n = c/4 in 32-value steps p = c%4 (two 16-value
// sub-blocks each); Q4_K/Q5_K/IQ4_XS have one 32-value sub-block per chunk.

/// Q2_K chunk c: codes (qs[32n + j] >> 2p) & 3, sub-block 8n + 2p + j/16.
PRECIS_HD constexpr void dequantize_chunk(const block_q2_K& b, int c, float out[32]) noexcept {
  const float d = static_cast<float>(b.d), dmin = static_cast<float>(b.dmin);
  const int n = c / 4, p = c % 4;
  for (int half = 0; half < 2; ++half) {
    const std::uint8_t sc = b.scales[8 * n + 2 * p + half];
    const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
    for (int l = 0; l < 16; ++l)
      out[16 * half + l] = dl * static_cast<float>((b.qs[32 * n + 16 * half + l] >> (2 * p)) & 3) - ml;
  }
}

/// Q3_K chunk c: as Q2_K, the high bit at bit 4n + p of hmask[j].
PRECIS_HD constexpr void dequantize_chunk(const block_q3_K& b, int c, float out[32]) noexcept {
  const float d = static_cast<float>(b.d);
  const int n = c / 4, p = c % 4;
  const std::uint8_t m = static_cast<std::uint8_t>(1u << (4 * n + p));
  for (int half = 0; half < 2; ++half) {
    const float dl = d * static_cast<float>(detail::q3_k_scale(b.scales, 8 * n + 2 * p + half));
    for (int l = 0; l < 16; ++l) {
      const int i = l + 16 * half;
      const int code = ((b.qs[32 * n + i] >> (2 * p)) & 3) - ((b.hmask[i] & m) ? 0 : 4);
      out[i] = dl * static_cast<float>(code);
    }
  }
}

/// Q4_K chunk c: nibble c%2 of qs[32(c/2) + j], sub-block c.
PRECIS_HD constexpr void dequantize_chunk(const block_q4_K& b, int c, float out[32]) noexcept {
  float dl = 0.0f, ml = 0.0f;
  detail::k4_sub_scale(static_cast<float>(b.d), static_cast<float>(b.dmin), b.scales, c, dl, ml);
  const std::uint8_t* q = b.qs + 32 * (c / 2);
  for (int l = 0; l < 32; ++l) out[l] = dl * static_cast<float>((q[l] >> (4 * (c % 2))) & 0xF) - ml;
}

/// Q5_K chunk c: as Q4_K, the fifth bit at bit c of qh[j].
PRECIS_HD constexpr void dequantize_chunk(const block_q5_K& b, int c, float out[32]) noexcept {
  float dl = 0.0f, ml = 0.0f;
  detail::k4_sub_scale(static_cast<float>(b.d), static_cast<float>(b.dmin), b.scales, c, dl, ml);
  const std::uint8_t* q = b.qs + 32 * (c / 2);
  for (int l = 0; l < 32; ++l) {
    const int code = ((q[l] >> (4 * (c % 2))) & 0xF) | (((b.qh[l] >> c) & 1) << 4);
    out[l] = dl * static_cast<float>(code) - ml;
  }
}

/// Q6_K chunk c: low bits nibble p/2 of ql[64n + 32(p%2) + j], high bits (qh[32n + j] >> 2p) & 3,
/// scale scales[8n + 2p + j/16].
PRECIS_HD constexpr void dequantize_chunk(const block_q6_K& b, int c, float out[32]) noexcept {
  const float d = static_cast<float>(b.d);
  const int n = c / 4, p = c % 4;
  const std::uint8_t* ql = b.ql + 64 * n + 32 * (p % 2);
  const std::uint8_t* qh = b.qh + 32 * n;
  for (int l = 0; l < 32; ++l) {
    const int q = (((ql[l] >> (4 * (p / 2))) & 0xF) | (((qh[l] >> (2 * p)) & 3) << 4)) - 32;
    out[l] = d * static_cast<float>(b.scales[8 * n + 2 * p + l / 16]) * static_cast<float>(q);
  }
}

/// IQ4_XS chunk c: sub-block c.
PRECIS_HD constexpr void dequantize_chunk(const block_iq4_xs& b, int c, float out[32]) noexcept {
  const float dl = static_cast<float>(b.d) * static_cast<float>(detail::iq4_xs_scale(b, c));
  const std::uint8_t* q = b.qs + 16 * c;
  for (int j = 0; j < 16; ++j) {
    out[j] = dl * static_cast<float>(iq4nl_value(q[j] & 0xFu));
    out[j + 16] = dl * static_cast<float>(iq4nl_value(q[j] >> 4u));
  }
}

/// A whole 256-value super-block (`dequantize_row_q2_K` … `dequantize_row_iq4_xs`): its 8 chunks.
template <class Block>
  requires requires(const Block& b, float* o) { dequantize_chunk(b, 0, o); }
PRECIS_HD constexpr void dequantize_block(const Block& b, float out[256]) noexcept {
  for (int c = 0; c < 8; ++c) dequantize_chunk(b, c, out + 32 * c);
}

}  // namespace precis
