// Tests of include/precis/quant/dequantize.hpp against independent references.
//
// Reference data (tests/fixtures/quant, tools/make_quant_fixtures.py):
//   ggml layouts      gguf-py's numpy dequantizers (gguf.quants.dequantize), a port of
//                     ggml-quants.c `dequantize_row_*` — on quantizer outputs and on random
//                     blocks (random f16 scales incl. subnormals; every E8M0 byte incl. 0, 255).
//   HF/OpenAI mxfp4   a numpy re-implementation of transformers' convert_moe_packed_tensors
//                     (lut[blk & 0xF] even, lut[blk >> 4] odd, ldexp(scale − 127)).
// Tolerance: none. Every dequantized value is an exact product (or sum, Q4_1) rounded once in
// f32, so the comparison is on bit patterns — including −0.0 and ±Inf.
#include <cstdint>  // std::uint16_t
#include <string>   // std::string

#include <catch2/catch.hpp>

#include <precis/core/cast.hpp>         // precis::cast (the bf16/f16 property)
#include <precis/quant/dequantize.hpp>  // the functions under test

#include "quant_fixture.hpp"  // read_quant_fixture, fixture_blocks, fixture_mxfp4, bits

using namespace precis;
using namespace precis::test;
using Catch::Matchers::Contains;

namespace {

constexpr index_t rows = 8;  // the fixture's [8, 256] rows
constexpr index_t k = 256;

template <class Y>
void require_bits_equal(const Y& y, const std::vector<float>& expected) {
  REQUIRE(static_cast<std::size_t>(y.numel()) == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("flat index " << i << ": got " << y.data()[i] << ", reference " << expected[i]);
    REQUIRE(bits(y.data()[i]) == bits(expected[i]));
  }
}

template <BlockFormat F>
void check_quantized_fixture(const std::string& name) {
  const auto q = fixture_blocks<F, 2>(read_quant_fixture(name + ".bin"), {rows, k});
  const auto y = dequantize<f32>(q.view());  // (8, 256)
  require_bits_equal(y, read_quant_fixture(name + "_dequant.bin").f32());
}

template <BlockFormat F>
void check_random_fixture(const std::string& name) {
  const auto blocks = read_quant_fixture("random_" + name + ".bin");
  const index_t n = blocks.dims.at(0);
  const auto q = fixture_blocks<F, 2>(blocks, {n, 32});
  const auto y = dequantize<f32>(q);  // (n, 32)
  require_bits_equal(y, read_quant_fixture("random_" + name + "_dequant.bin").f32());
}

template <ActivationDtype To, class Q>
void check_matches_cast_of_f32(const Q& q) {
  const auto y32 = dequantize<f32>(q);
  const auto direct = dequantize<To>(q);
  const auto via_cast = cast<To>(y32);
  REQUIRE(direct.extents() == via_cast.extents());
  for (index_t i = 0; i < direct.numel(); ++i) {
    INFO("flat index " << i << ", f32 value " << y32.data()[i]);
    REQUIRE(direct.data()[i].bits == via_cast.data()[i].bits);
  }
}

}  // namespace

TEST_CASE("dequantize is bit-exact with gguf-py on quantized rows", "[quant][dequantize][fixture]") {
  SECTION("q8_0") { check_quantized_fixture<q8_0>("q8_0"); }
  SECTION("q4_0") { check_quantized_fixture<q4_0>("q4_0"); }
  SECTION("q4_1") { check_quantized_fixture<q4_1>("q4_1"); }
  SECTION("mxfp4_ggml") { check_quantized_fixture<mxfp4_ggml>("mxfp4_ggml"); }
}

TEST_CASE("dequantize is bit-exact with gguf-py on random blocks", "[quant][dequantize][fixture]") {
  SECTION("q8_0") { check_random_fixture<q8_0>("q8_0"); }
  SECTION("q4_0") { check_random_fixture<q4_0>("q4_0"); }
  SECTION("q4_1") { check_random_fixture<q4_1>("q4_1"); }
  SECTION("mxfp4_ggml, every scale byte") { check_random_fixture<mxfp4_ggml>("mxfp4_ggml"); }
}

TEST_CASE("HF/OpenAI mxfp4 dequantize is bit-exact with the convert_moe_packed_tensors rule",
          "[quant][dequantize][fixture][mxfp4]") {
  SECTION("quantized rows, as a [8, 8, 32] view of the [8, 8, 16] + [8, 8] planes") {
    // Rank 3 on purpose: the logical extents are elements, the planes' shapes follow from them.
    const auto q = fixture_mxfp4<3>(read_quant_fixture("mxfp4_openai_nibbles.bin"),
                                    read_quant_fixture("mxfp4_openai_scales.bin"), {rows, 8, 32});
    require_bits_equal(dequantize<f32>(q), read_quant_fixture("mxfp4_openai_dequant.bin").f32());
  }
  SECTION("random nibbles, every scale byte (0 and 1 subnormal, 255 overflowing)") {
    const auto q = fixture_mxfp4<2>(read_quant_fixture("random_mxfp4_openai_nibbles.bin"),
                                    read_quant_fixture("random_mxfp4_openai_scales.bin"), {256, 32});
    require_bits_equal(dequantize<f32>(q), read_quant_fixture("random_mxfp4_openai_dequant.bin").f32());
  }
}

TEST_CASE("dequantize<bf16> and <f16> equal cast of dequantize<f32> (one rounding)", "[quant][dequantize]") {
  // The format's values are exact in f32; rounding them once to the activation type is the
  // spec, so the direct path and the f32 → cast path must agree bit for bit.
  const auto q8 = fixture_blocks<q8_0, 2>(read_quant_fixture("q8_0.bin"), {rows, k});
  const auto q40 = fixture_blocks<q4_0, 2>(read_quant_fixture("q4_0.bin"), {rows, k});
  const auto q41 = fixture_blocks<q4_1, 2>(read_quant_fixture("random_q4_1.bin"), {64, 32});
  const auto mx = fixture_blocks<mxfp4_ggml, 2>(read_quant_fixture("random_mxfp4_ggml.bin"), {256, 32});
  const auto hf = fixture_mxfp4<2>(read_quant_fixture("random_mxfp4_openai_nibbles.bin"),
                                   read_quant_fixture("random_mxfp4_openai_scales.bin"), {256, 32});
  check_matches_cast_of_f32<bf16>(q8.view());
  check_matches_cast_of_f32<bf16>(q40.view());
  check_matches_cast_of_f32<bf16>(q41.view());
  check_matches_cast_of_f32<bf16>(mx.view());
  check_matches_cast_of_f32<bf16>(hf.view());
  check_matches_cast_of_f32<f16>(q8.view());
  check_matches_cast_of_f32<f16>(q41.view());
  check_matches_cast_of_f32<f16>(hf.view());
}

TEST_CASE("dequantize_row writes one row into any-strided output", "[quant][dequantize]") {
  const auto q = fixture_blocks<q4_1, 2>(read_quant_fixture("q4_1.bin"), {rows, k});
  const auto all = dequantize<f32>(q);  // (8, 256)
  Tensor<f32, 2> buf({k, 3});           // write row r into column 1 of a (256, 3) tensor
  for (index_t r = 0; r < rows; ++r) {
    const TensorView<f32, 1> column(buf.data() + 1, {k}, {3});
    dequantize_row<f32>(q.view()[r], column);
    for (index_t j = 0; j < k; ++j) REQUIRE(bits(buf(j, 1)) == bits(all(r, j)));
  }
  // bf16 output, deduced from the view.
  Tensor<bf16, 1> row_bf16({k});
  dequantize_row(q.view()[3], row_bf16.view());
  for (index_t j = 0; j < k; ++j) REQUIRE(row_bf16(j) == bfloat16(all(3, j)));
}

TEST_CASE("dequantize_row rejects an output of the wrong length", "[quant][dequantize]") {
  const QuantTensor<q8_0, 1> q({64});
  Tensor<f32, 1> out({63});
  CHECK_THROWS_AS(dequantize_row<f32>(q.view(), out.view()), shape_error);
  CHECK_THROWS_WITH(dequantize_row<f32>(q.view(), out.view()),
                    Contains("dequantize_row<f32>") && Contains("63") && Contains("q8_0") && Contains("K=64"));
}
