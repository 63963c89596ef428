// precis/quant/kquant_blocks.hpp — the packed block structs of the K-quant, Q5 and IQ4 formats
// (ggml-common.h, byte for byte), apart from their math so that core/dtype.hpp can name them as
// the block_type of the format tags without pulling in the dequantizers (quant/kquants.hpp).
#pragma once

#include <cstdint>  // std::uint8_t, std::int8_t, std::uint16_t

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

}  // namespace precis
