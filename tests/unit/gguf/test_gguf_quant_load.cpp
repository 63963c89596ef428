// io::quant_view<F, R> / io::load_quant<F, R> (include/precis/io/quant_load.hpp): a block-format
// AnyTensor becomes a typed QuantView only when its stored format is F (dtype_error naming the
// tensor and both formats otherwise), its rank is R, its innermost extent a multiple of 32, its
// byte count numel/32 × block bytes, and its data aligned for the block struct. Element loading
// (io::load<D, R>) refuses block formats the same way.
#include <cstddef>  // std::byte
#include <cstdint>  // std::uint64_t
#include <memory>   // std::shared_ptr
#include <optional> // std::optional
#include <vector>   // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, CHECK

#include <precis/core/dtype.hpp>        // q8_0, q4_0, q4_1, mxfp4_ggml, f32
#include <precis/core/error.hpp>        // dtype_error, shape_error, format_error
#include <precis/io/any_tensor.hpp>     // precis::io::AnyTensor
#include <precis/io/gguf.hpp>           // precis::io::GgufFile
#include <precis/io/load.hpp>           // precis::io::load
#include <precis/io/quant_load.hpp>     // quant_view, load_quant
#include <precis/quant/dequantize.hpp>  // precis::dequantize

#include "gguf_test_support.hpp"  // gguf_fixture, GgufBuilder, TempDir
#include "support/any_tensor_bytes.hpp"  // io::detail::AnyTensorBytes (hand-made tensors)

using precis::dtype_error;
using precis::format_error;
using precis::shape_error;
using precis::io::AnyTensor;
using precis::io::GgufFile;
using precis::io::quant_view;

TEST_CASE("quant_view checks the stored format against the declared one", "[gguf][quant_load]") {
  const GgufFile f = GgufFile::open(precis::test::gguf_fixture("reference.gguf"));
  const AnyTensor q8 = f.tensor("q8_0_2d");
  CHECK(quant_view<precis::q8_0, 2>(q8).extents() == precis::extents_t<2>{3, 64});
  CHECK_THROWS_AS((quant_view<precis::q4_0, 2>(q8)), dtype_error);
  CHECK_THROWS_WITH((quant_view<precis::q4_0, 2>(q8)), Catch::Contains("q8_0_2d") && Catch::Contains("reference.gguf") &&
                                                          Catch::Contains("stored dtype q8_0, declared q4_0"));
  CHECK_THROWS_AS((quant_view<precis::q4_0, 2>(f.tensor("q4_1_3d"))), dtype_error);  // rank is checked after dtype
  CHECK_THROWS_AS((quant_view<precis::q8_0, 1>(f.tensor("f32_1d"))), dtype_error);
  CHECK_THROWS_WITH((quant_view<precis::q8_0, 1>(f.tensor("f32_1d"))), Catch::Contains("stored dtype F32, declared q8_0"));
  CHECK_THROWS_AS((quant_view<precis::mxfp4_ggml, 2>(q8)), dtype_error);
  // And the element loader refuses block formats.
  CHECK_THROWS_AS((precis::io::load<precis::f32, 2>(q8)), dtype_error);
}

TEST_CASE("quant_view checks rank, block multiple, byte count and alignment", "[gguf][quant_load]") {
  const GgufFile f = GgufFile::open(precis::test::gguf_fixture("reference.gguf"));
  const AnyTensor q = f.tensor("q4_1_3d");  // [2, 3, 32]
  CHECK_THROWS_AS((quant_view<precis::q4_1, 2>(q)), shape_error);
  CHECK_THROWS_WITH((quant_view<precis::q4_1, 2>(q)), Catch::Contains("q4_1_3d") && Catch::Contains("rank 3"));

  // Hand-made AnyTensors: the GGUF reader never produces these, other producers might.
  alignas(64) static const std::byte buf[4096] = {};
  const std::span<const std::byte> bytes(buf);
  const AnyTensor misfit = precis::io::detail::AnyTensorBytes::make("w", precis::dtype_code::q8_0, {2, 16}, bytes.first(34), "mem");
  CHECK_THROWS_AS((quant_view<precis::q8_0, 2>(misfit)), shape_error);
  CHECK_THROWS_WITH((quant_view<precis::q8_0, 2>(misfit)), Catch::Contains("innermost extent 16") &&
                                                               Catch::Contains("multiple of the block size 32"));
  const AnyTensor short_bytes = precis::io::detail::AnyTensorBytes::make("w", precis::dtype_code::q8_0, {2, 32}, bytes.first(67), "mem");
  CHECK_THROWS_AS((quant_view<precis::q8_0, 2>(short_bytes)), format_error);
  CHECK_THROWS_WITH((quant_view<precis::q8_0, 2>(short_bytes)), Catch::Contains("67 bytes") && Catch::Contains("needs 68"));
  const AnyTensor misaligned = precis::io::detail::AnyTensorBytes::make("w", precis::dtype_code::q8_0, {1, 32}, bytes.subspan(1, 34), "mem");
  CHECK_THROWS_AS((quant_view<precis::q8_0, 2>(misaligned)), format_error);
  CHECK_THROWS_WITH((quant_view<precis::q8_0, 2>(misaligned)), Catch::Contains("not aligned"));
  // mxfp4_ggml's block struct is all bytes: any address will do.
  const AnyTensor mx = precis::io::detail::AnyTensorBytes::make("m", precis::dtype_code::mxfp4_ggml, {32}, bytes.subspan(1, 17), "mem");
  CHECK(quant_view<precis::mxfp4_ggml, 1>(mx).num_blocks() == 1);
}

TEST_CASE("a GGUF with alignment 1: element tensors are copied when misaligned, blocks refused", "[gguf][quant_load]") {
  precis::test::TempDir dir;
  const auto build = [](std::uint64_t q_offset) {
    precis::test::GgufBuilder b;
    b.kv_u32("general.alignment", 1).pad_to(1).tensor("q", {32}, 8, q_offset).tensor("f", {1}, 0, q_offset + 34);
    b.data_zeros(q_offset).data(std::vector<std::byte>{std::byte{0x00}, std::byte{0x3c}}).data_zeros(32).data_f32({1.5f});
    return b.bytes();
  };
  const std::uint64_t start = precis::test::open_bytes(dir, build(1), "probe.gguf").data_offset();
  const std::uint64_t odd = start % 2 == 0 ? 1 : 2;  // makes data_offset + offset odd; mmap is page-aligned
  const GgufFile f = precis::test::open_bytes(dir, build(odd), "align1.gguf");
  CHECK(f.alignment() == 1);
  CHECK_THROWS_WITH((quant_view<precis::q8_0, 1>(f.tensor("q"))), Catch::Contains("'q'") && Catch::Contains("not aligned"));
  const auto loaded = precis::io::load<precis::f32, 1>(f.tensor("f"));  // at an odd address too
  CHECK_FALSE(loaded.is_zero_copy());
  CHECK(loaded(0) == 1.5f);
}

TEST_CASE("load_quant keeps the mapping alive after the GgufFile is gone", "[gguf][quant_load]") {
  std::optional<precis::io::LoadedQuant<precis::q4_1, 3>> q;
  {
    const GgufFile f = GgufFile::open(precis::test::gguf_fixture("reference.gguf"));
    q.emplace(precis::io::load_quant<precis::q4_1, 3>(f.tensor("q4_1_3d")));
  }
  const GgufFile again = GgufFile::open(precis::test::gguf_fixture("reference.gguf"));
  const auto expected = precis::dequantize<precis::f32>(quant_view<precis::q4_1, 3>(again.tensor("q4_1_3d")));
  const auto got = precis::dequantize<precis::f32>(q->view());
  REQUIRE(got.numel() == expected.numel());
  for (precis::index_t i = 0; i < got.numel(); ++i) CHECK(got.data()[i] == expected.data()[i]);
  // A sub-view (one [3, 32] slab of the [2, 3, 32] tensor) is the matching part of the whole.
  const auto slab = precis::dequantize<precis::f32>(q->view()[1]);
  for (precis::index_t i = 0; i < slab.numel(); ++i) CHECK(slab.data()[i] == expected.data()[96 + i]);
}
