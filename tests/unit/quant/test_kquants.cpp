// tests/unit/quant/test_kquants.cpp — the K-quant / IQ4 / Q5 block layouts and reference
// dequantizers (quant/kquants.hpp) against gguf-py's dequantize (tools/make_kquant_fixtures.py):
// every value bit for bit, on 64 random blocks per format whose f16 scales include zero, −0,
// subnormals and ±65504. Plus worked examples computed by hand from ggml's dequantize_row_*.
#include <catch2/catch.hpp>

#include <bit>      // std::bit_cast
#include <cstdint>  // std::uint32_t
#include <cstring>  // std::memcpy
#include <string>   // std::string
#include <vector>   // std::vector

#include <precis/quant/kquants.hpp>

#include "quant_fixture.hpp"  // read_quant_fixture

using namespace precis;
using namespace precis::test;

namespace {

/// Dequantizes every block of random_<name>.bin and compares bits with random_<name>_dequant.bin.
template <class Block, int V>
void check_fixture(const std::string& name) {
  const FixtureArray blocks = read_quant_fixture("random_" + name + ".bin");
  const std::vector<float> want = read_quant_fixture("random_" + name + "_dequant.bin").f32();
  REQUIRE(blocks.dims.size() >= 2);
  REQUIRE(blocks.dims[1] == static_cast<index_t>(sizeof(Block)));
  const index_t n = blocks.dims[0];
  REQUIRE(want.size() == static_cast<std::size_t>(n * V));
  int mismatches = 0;
  for (index_t b = 0; b < n; ++b) {
    Block blk;
    std::memcpy(&blk, blocks.payload.data() + b * static_cast<index_t>(sizeof(Block)), sizeof(Block));
    float out[V];
    dequantize_block(blk, out);
    if constexpr (V == 256) {
      // dequantize_chunk (the kernels' 32-value granularity, and the spec dequantize_block is made
      // of) gives gguf-py's values chunk by chunk.
      for (int c = 0; c < 8; ++c) {
        float chunk[32];
        dequantize_chunk(blk, c, chunk);
        for (int j = 0; j < 32; ++j) {
          const float w = want[static_cast<std::size_t>(b * V + 32 * c + j)];
          if (std::bit_cast<std::uint32_t>(chunk[j]) != std::bit_cast<std::uint32_t>(w) && mismatches++ < 5)
            WARN(name << " block " << b << " chunk " << c << " value " << j << ": " << chunk[j] << " vs gguf-py " << w);
        }
      }
    }
    for (int j = 0; j < V; ++j) {
      const float w = want[static_cast<std::size_t>(b * V + j)];
      if (std::bit_cast<std::uint32_t>(out[j]) != std::bit_cast<std::uint32_t>(w)) {
        if (mismatches++ < 5) WARN(name << " block " << b << " value " << j << ": " << out[j] << " vs gguf-py " << w);
      }
    }
  }
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("K-quants and IQ4/Q5 dequantize bit-exactly as gguf-py on random blocks", "[quant][kquants]") {
  check_fixture<block_q2_K, 256>("q2_k");
  check_fixture<block_q3_K, 256>("q3_k");
  check_fixture<block_q4_K, 256>("q4_k");
  check_fixture<block_q5_K, 256>("q5_k");
  check_fixture<block_q6_K, 256>("q6_k");
  check_fixture<block_q5_0, 32>("q5_0");
  check_fixture<block_q5_1, 32>("q5_1");
  check_fixture<block_iq4_nl, 32>("iq4_nl");
  check_fixture<block_iq4_xs, 256>("iq4_xs");
}

TEST_CASE("K-quant worked examples (ggml dequantize_row_*)", "[quant][kquants]") {
  SECTION("Q4_K: sub-block 5's scale/min come from the packed high bits") {
    block_q4_K b{};
    b.d = float16(0.5f);
    b.dmin = float16(0.25f);
    // Sub-block 5 (j >= 4): sc = (scales[9] & 0xF) | (scales[1] >> 6) << 4, m = (scales[9] >> 4) | (scales[5] >> 6) << 4.
    b.scales[9] = 0x3A;  // sc low 0xA, m low 0x3
    b.scales[1] = 0x80;  // sc high bits 0b10 → sc = 0x2A = 42
    b.scales[5] = 0x40;  // m high bits 0b01 → m = 0x13 = 19
    b.qs[64 + 7] = 0x90;  // group 2, byte 7: high nibble 9 → value 2·32 + 32 + 7 = 103 (sub-block 5)
    float out[256];
    dequantize_block(b, out);
    CHECK(out[160 + 7] == 0.5f * 42.0f * 9.0f - 0.25f * 19.0f);
    CHECK(out[160 + 8] == -0.25f * 19.0f);  // code 0: −dmin·m
  }
  SECTION("Q6_K: codes are centred on 32, scales signed") {
    block_q6_K b{};
    b.d = float16(2.0f);
    b.scales[0] = -3;
    b.ql[0] = 0x05;  // q1 low 4 bits 5, high bits 0 → 5 − 32
    float out[256];
    dequantize_block(b, out);
    CHECK(out[0] == 2.0f * -3.0f * static_cast<float>(5 - 32));
  }
  SECTION("Q5_0: bit j of qh is the fifth bit of code j") {
    block_q5_0 b{};
    b.d = float16(1.0f);
    b.qs[2] = 0x31;           // codes 2 and 18: low nibbles 1 and 3
    b.qh[0] = 1 << 2;         // code 2 gets +16
    b.qh[2] = 1 << (18 - 16); // code 18 gets +16
    float out[32];
    dequantize_block(b, out);
    CHECK(out[2] == 1.0f);    // 17 − 16
    CHECK(out[18] == 3.0f);   // 19 − 16
    CHECK(out[0] == -16.0f);
  }
  SECTION("IQ4_XS: scale 6 bits minus 32, the non-uniform code book") {
    block_iq4_xs b{};
    b.d = float16(0.5f);
    b.scales_l[1] = 0x70;     // sub-block 3 low nibble 7
    b.scales_h = 2 << 6;      // sub-block 3 high bits 0b10 → ls = 39
    b.qs[48] = 0xF0;          // sub-block 3, value 16: code 15 (113); value 0: code 0 (−127)
    float out[256];
    dequantize_block(b, out);
    CHECK(out[96 + 16] == 0.5f * 7.0f * 113.0f);
    CHECK(out[96] == 0.5f * 7.0f * -127.0f);
  }
}
