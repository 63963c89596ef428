// Tests of include/precis/quant/mxfp4_layout.hpp: HF/OpenAI ↔ ggml MXFP4 layout conversion.
//
// References: the fixture's HF planes were produced from gguf-py's ggml MXFP4 blocks by an
// independent numpy port of llama.cpp's nibble transform (tools/make_quant_fixtures.py), so
// to_ggml_layout must give gguf's bytes back exactly; the round trips must be the identity on
// arbitrary bytes (the conversion is a permutation of nibbles plus a copied scale byte).
#include <cstdint>  // std::uint8_t
#include <cstring>  // std::memcmp
#include <random>   // std::mt19937

#include <catch2/catch.hpp>

#include <precis/quant/dequantize.hpp>    // precis::dequantize
#include <precis/quant/mxfp4_layout.hpp>  // the functions under test

#include "quant_fixture.hpp"  // read_quant_fixture, fixture_mxfp4, fixture_blocks

using namespace precis;
using namespace precis::test;

TEST_CASE("to_ggml_layout of the HF planes gives gguf's MXFP4 blocks", "[quant][layout][fixture][mxfp4]") {
  const auto hf = fixture_mxfp4<2>(read_quant_fixture("mxfp4_openai_nibbles.bin"),
                                   read_quant_fixture("mxfp4_openai_scales.bin"), {8, 256});
  const auto ggml = to_ggml_layout(hf);
  const auto ref = read_quant_fixture("mxfp4_ggml.bin");
  REQUIRE(ggml.bytes() == ref.payload.size());
  REQUIRE(std::memcmp(ggml.blocks(), ref.payload.data(), ggml.bytes()) == 0);
  // And back.
  const auto back = to_openai_layout(ggml);
  REQUIRE(std::memcmp(back.nibbles(), hf.nibbles(), 16 * static_cast<std::size_t>(hf.num_blocks())) == 0);
  REQUIRE(std::memcmp(back.scales(), hf.scales(), static_cast<std::size_t>(hf.num_blocks())) == 0);
}

TEST_CASE("to_openai_layout ∘ to_ggml_layout and the reverse are the identity on random bytes",
          "[quant][layout][mxfp4]") {
  std::mt19937 rng(11);
  QuantTensor<mxfp4, 3> hf({3, 4, 96});  // [E, N, K]: 36 blocks
  for (index_t i = 0; i < hf.num_blocks() * 16; ++i) hf.nibbles()[i] = static_cast<std::uint8_t>(rng() & 0xFF);
  for (index_t i = 0; i < hf.num_blocks(); ++i) hf.scales()[i] = static_cast<std::uint8_t>(rng() & 0xFF);
  const auto round = to_openai_layout(to_ggml_layout(hf));
  CHECK(round.extents() == hf.extents());
  REQUIRE(std::memcmp(round.nibbles(), hf.nibbles(), 16 * static_cast<std::size_t>(hf.num_blocks())) == 0);
  REQUIRE(std::memcmp(round.scales(), hf.scales(), static_cast<std::size_t>(hf.num_blocks())) == 0);

  QuantTensor<mxfp4_ggml, 2> g({5, 64});
  auto* raw = reinterpret_cast<std::uint8_t*>(g.blocks());
  for (std::size_t i = 0; i < g.bytes(); ++i) raw[i] = static_cast<std::uint8_t>(rng() & 0xFF);
  const auto g2 = to_ggml_layout(to_openai_layout(g));
  REQUIRE(std::memcmp(g2.blocks(), g.blocks(), g.bytes()) == 0);
}

TEST_CASE("both layouts dequantize to the same numbers", "[quant][layout][mxfp4]") {
  // Same values element by element; == treats the HF table's -0.0 (code 8) and ggml's +0 alike.
  std::mt19937 rng(12);
  QuantTensor<mxfp4, 2> hf({6, 64});
  for (index_t i = 0; i < hf.num_blocks() * 16; ++i) hf.nibbles()[i] = static_cast<std::uint8_t>(rng() & 0xFF);
  for (index_t i = 0; i < hf.num_blocks(); ++i) hf.scales()[i] = static_cast<std::uint8_t>(100 + rng() % 50);
  const auto a = dequantize<f32>(hf);
  const auto b = dequantize<f32>(to_ggml_layout(hf));
  for (index_t i = 0; i < a.numel(); ++i) REQUIRE(a.data()[i] == b.data()[i]);
}

TEST_CASE("the §1.6 example survives the layout conversion", "[quant][layout][mxfp4]") {
  // HF byte 0x2F with scale 128 → elements 0, 1 = -12, +2; in ggml the block has e = 128 and
  // those elements are the low nibbles of qs[0] (0xF) and qs[1] (0x2).
  QuantTensor<mxfp4, 1> hf({32});
  hf.nibbles()[0] = 0x2F;
  hf.scales()[0] = 128;
  const auto g = to_ggml_layout(hf);
  CHECK(g.blocks()[0].e == 128);
  CHECK(g.blocks()[0].qs[0] == 0x0F);
  CHECK(g.blocks()[0].qs[1] == 0x02);
  const auto y = dequantize<f32>(g);
  CHECK(y(0) == -12.0f);
  CHECK(y(1) == 2.0f);
}
