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

#include <precis/core/config.hpp>      // PRECIS_HD
#include <precis/numeric/float16.hpp>  // precis::float16

namespace precis {

inline constexpr int qk_k = 256;  ///< values per K-quant super-block (ggml QK_K)

// ggml-common.h layouts; f16 fields are bit patterns (precis::float16).
struct block_q2_K {
  std::uint8_t scales[16];  // sub-block j: scale = low nibble, min = high nibble
  std::uint8_t qs[64];      // 2-bit codes: byte l of each 32-byte group, shifts 0, 2, 4, 6
  float16 d, dmin;
};
struct block_q3_K {
  std::uint8_t hmask[32];   // high bit of each code (set: no −4 offset)
  std::uint8_t qs[64];      // low 2 bits, as Q2_K
  std::uint8_t scales[12];  // 16 × 6-bit scales (low nibbles in 0..7, high 2-bit pairs in 8..11)
  float16 d;
};
struct block_q4_K {
  float16 d, dmin;
  std::uint8_t scales[12];  // 8 × (6-bit scale, 6-bit min), ggml's get_scale_min_k4 packing
  std::uint8_t qs[128];     // 4-bit codes: 32-byte groups, low nibbles then high nibbles
};
struct block_q5_K {
  float16 d, dmin;
  std::uint8_t scales[12];  // as Q4_K
  std::uint8_t qh[32];      // fifth bit: bit 2g (low nibbles) / 2g+1 (high) of byte l, group g
  std::uint8_t qs[128];     // low 4 bits, as Q4_K
};
struct block_q6_K {
  std::uint8_t ql[128];     // low 4 bits
  std::uint8_t qh[64];      // high 2 bits
  std::int8_t scales[16];   // per 16 values
  float16 d;
};
struct block_q5_0 {
  float16 d;
  std::uint8_t qh[4];       // fifth bit of code j at bit j (little-endian u32)
  std::uint8_t qs[16];
};
struct block_q5_1 {
  float16 d, m;
  std::uint8_t qh[4];
  std::uint8_t qs[16];
};
struct block_iq4_nl {
  float16 d;
  std::uint8_t qs[16];
};
struct block_iq4_xs {
  float16 d;
  std::uint16_t scales_h;   // high 2 bits of the 8 sub-block scales
  std::uint8_t scales_l[4]; // low 4 bits, two per byte
  std::uint8_t qs[128];
};
static_assert(sizeof(block_q2_K) == 84 && sizeof(block_q3_K) == 110 && sizeof(block_q4_K) == 144 &&
                  sizeof(block_q5_K) == 176 && sizeof(block_q6_K) == 210 && sizeof(block_q5_0) == 22 &&
                  sizeof(block_q5_1) == 24 && sizeof(block_iq4_nl) == 18 && sizeof(block_iq4_xs) == 136,
              "ggml block layouts must be packed exactly");

/// The IQ4_NL / IQ4_XS code book (ggml kvalues_iq4nl): a non-uniform 4-bit grid.
inline constexpr std::int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                  1,    13,   25,  38,  53,  69,  89,  113};

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
}  // namespace detail

/// Q2_K (`dequantize_row_q2_K`).
PRECIS_HD constexpr void dequantize_block(const block_q2_K& b, float out[256]) noexcept {
  const float d = static_cast<float>(b.d), dmin = static_cast<float>(b.dmin);
  int is = 0;
  for (int n = 0; n < 2; ++n) {  // two halves of 128 values, 32 bytes of qs each
    const std::uint8_t* q = b.qs + 32 * n;
    for (int shift = 0; shift < 8; shift += 2)
      for (int half = 0; half < 2; ++half) {
        const std::uint8_t sc = b.scales[is++];
        const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l)
          *out++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
      }
  }
}

/// Q3_K (`dequantize_row_q3_K`): 6-bit scales sc − 32; code = low 2 bits − (high bit ? 0 : 4).
PRECIS_HD constexpr void dequantize_block(const block_q3_K& b, float out[256]) noexcept {
  std::int8_t sc[16] = {};
  for (int j = 0; j < 16; ++j) {
    const int low = (b.scales[j % 8] >> (4 * (j / 8))) & 0xF;
    const int high = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    sc[j] = static_cast<std::int8_t>((low | (high << 4)) - 32);
  }
  const float d = static_cast<float>(b.d);
  int is = 0;
  std::uint8_t m = 1;
  for (int n = 0; n < 2; ++n) {
    const std::uint8_t* q = b.qs + 32 * n;
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d * static_cast<float>(sc[is++]);
        for (int l = 0; l < 16; ++l) {
          const int i = l + 16 * half;
          const int code = ((q[i] >> shift) & 3) - ((b.hmask[i] & m) ? 0 : 4);
          *out++ = dl * static_cast<float>(code);
        }
      }
      m = static_cast<std::uint8_t>(m << 1);
    }
  }
}

/// Q4_K (`dequantize_row_q4_K`).
PRECIS_HD constexpr void dequantize_block(const block_q4_K& b, float out[256]) noexcept {
  const float d = static_cast<float>(b.d), dmin = static_cast<float>(b.dmin);
  for (int g = 0; g < 4; ++g) {  // 64 values: 32 low nibbles (sub-block 2g), 32 high (2g + 1)
    const std::uint8_t* q = b.qs + 32 * g;
    for (int half = 0; half < 2; ++half) {
      std::uint8_t sc = 0, mn = 0;
      detail::scale_min_k4(2 * g + half, b.scales, sc, mn);
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) *out++ = dl * static_cast<float>((q[l] >> (4 * half)) & 0xF) - ml;
    }
  }
}

/// Q5_K (`dequantize_row_q5_K`).
PRECIS_HD constexpr void dequantize_block(const block_q5_K& b, float out[256]) noexcept {
  const float d = static_cast<float>(b.d), dmin = static_cast<float>(b.dmin);
  for (int g = 0; g < 4; ++g) {
    const std::uint8_t* q = b.qs + 32 * g;
    for (int half = 0; half < 2; ++half) {
      std::uint8_t sc = 0, mn = 0;
      detail::scale_min_k4(2 * g + half, b.scales, sc, mn);
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(mn);
      const int hb = 2 * g + half;  // the fifth bit's position in qh
      for (int l = 0; l < 32; ++l) {
        const int code = ((q[l] >> (4 * half)) & 0xF) | (((b.qh[l] >> hb) & 1) << 4);
        *out++ = dl * static_cast<float>(code) - ml;
      }
    }
  }
}

/// Q6_K (`dequantize_row_q6_K`).
PRECIS_HD constexpr void dequantize_block(const block_q6_K& b, float out[256]) noexcept {
  const float d = static_cast<float>(b.d);
  for (int n = 0; n < 2; ++n) {  // 128 values from ql[64n..], qh[32n..], scales[8n..]
    const std::uint8_t* ql = b.ql + 64 * n;
    const std::uint8_t* qh = b.qh + 32 * n;
    const std::int8_t* s = b.scales + 8 * n;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[128 * n + l] = d * static_cast<float>(s[is + 0]) * static_cast<float>(q1);
      out[128 * n + l + 32] = d * static_cast<float>(s[is + 2]) * static_cast<float>(q2);
      out[128 * n + l + 64] = d * static_cast<float>(s[is + 4]) * static_cast<float>(q3);
      out[128 * n + l + 96] = d * static_cast<float>(s[is + 6]) * static_cast<float>(q4);
    }
  }
}

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
    out[j] = d * static_cast<float>(kvalues_iq4nl[b.qs[j] & 0xF]);
    out[j + 16] = d * static_cast<float>(kvalues_iq4nl[b.qs[j] >> 4]);
  }
}

/// IQ4_XS (`dequantize_row_iq4_xs`): sub-block ib's scale ls = low nibble | 2 high bits << 4,
/// dl = d·(ls − 32), value dl·kv[code].
PRECIS_HD constexpr void dequantize_block(const block_iq4_xs& b, float out[256]) noexcept {
  const float d = static_cast<float>(b.d);
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4);
    const float dl = d * static_cast<float>(ls - 32);
    const std::uint8_t* q = b.qs + 16 * ib;
    for (int j = 0; j < 16; ++j) {
      out[32 * ib + j] = dl * static_cast<float>(kvalues_iq4nl[q[j] & 0xF]);
      out[32 * ib + j + 16] = dl * static_cast<float>(kvalues_iq4nl[q[j] >> 4]);
    }
  }
}

}  // namespace precis
