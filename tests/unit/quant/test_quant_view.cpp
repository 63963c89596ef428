// Tests of include/precis/quant/quant_view.hpp and quant_tensor.hpp: what a quantized weight is
// (and is not) at the type level, and the run-time checks of its logical extents.
#include <cstdint>      // std::uint8_t
#include <type_traits>  // std::is_copy_constructible_v, ...

#include <catch2/catch.hpp>

#include <precis/core/tensor.hpp>         // precis::Tensor
#include <precis/core/tensor_view.hpp>    // precis::TensorLike
#include <precis/quant/dequantize.hpp>    // precis::dequantize, dequantize_row
#include <precis/quant/quant_tensor.hpp>  // precis::QuantTensor
#include <precis/quant/quant_view.hpp>    // precis::QuantView
#include <precis/quant/quantize.hpp>      // precis::quantize

using namespace precis;
using Catch::Matchers::Contains;

namespace {

// Named concepts: a requires-expression must sit in a template to yield false instead of a hard
// error (style-anchors §5.1).
template <class To, class Q>
concept can_dequantize_to = requires(const Q& q) { precis::dequantize<To>(q); };

template <class F, class X>
concept can_quantize_to = requires(const X& x) { precis::quantize<F>(x); };

template <class To, class Q, class Out>
concept can_dequantize_row_into = requires(const Q& q, Out out) { precis::dequantize_row<To>(q, out); };

template <class D>
concept can_form_tensor = requires { typename precis::Tensor<D, 1>; };

template <class T>
concept has_dtype_member = requires { typename T::dtype; };

template <class Q>
concept has_element_access = requires(const Q& q) { q(0, 0); } || requires(const Q& q) { q.at(0, 0); };

using View = QuantView<q4_0, 2>;
using HfView = QuantView<mxfp4, 3>;

}  // namespace

TEST_CASE("a quantized weight is not a tensor and has no dtype (dtype-bugs E26, class C7)", "[quant][view][static]") {
  STATIC_REQUIRE_FALSE(TensorLike<View>);
  STATIC_REQUIRE_FALSE(TensorLike<HfView>);
  STATIC_REQUIRE_FALSE(TensorLike<QuantTensor<q8_0, 2>>);
  STATIC_REQUIRE_FALSE(has_dtype_member<View>);
  STATIC_REQUIRE_FALSE(has_dtype_member<QuantTensor<mxfp4, 3>>);
  STATIC_REQUIRE(std::same_as<View::format, q4_0>);
  STATIC_REQUIRE_FALSE(has_element_access<View>);
  STATIC_REQUIRE_FALSE(has_element_access<QuantTensor<q4_0, 2>>);
  // Block formats cannot be the element type of a Tensor at all.
  STATIC_REQUIRE(can_form_tensor<f32>);
  STATIC_REQUIRE_FALSE(can_form_tensor<q4_0>);
  STATIC_REQUIRE_FALSE(can_form_tensor<mxfp4>);
}

TEST_CASE("dequantize targets only activation dtypes (dtype-bugs E15, E24)", "[quant][view][static]") {
  STATIC_REQUIRE(can_dequantize_to<f32, View>);
  STATIC_REQUIRE(can_dequantize_to<bf16, View>);
  STATIC_REQUIRE(can_dequantize_to<f16, HfView>);
  STATIC_REQUIRE(can_dequantize_to<f32, QuantTensor<q8_0, 1>>);
  STATIC_REQUIRE_FALSE(can_dequantize_to<f64, View>);
  STATIC_REQUIRE_FALSE(can_dequantize_to<i32, View>);
  STATIC_REQUIRE_FALSE(can_dequantize_to<f8_e4m3, View>);
  STATIC_REQUIRE_FALSE(can_dequantize_to<q8_0, View>);
  // dequantize_row writes into a writable activation view only.
  STATIC_REQUIRE(can_dequantize_row_into<f32, QuantView<q4_0, 1>, TensorView<f32, 1>>);
  STATIC_REQUIRE_FALSE(can_dequantize_row_into<f64, QuantView<q4_0, 1>, TensorView<f64, 1>>);
  STATIC_REQUIRE_FALSE(can_dequantize_row_into<const f32, QuantView<q4_0, 1>, TensorView<const f32, 1>>);
}

TEST_CASE("quantize takes f32 and produces a block format", "[quant][view][static]") {
  STATIC_REQUIRE(can_quantize_to<q4_0, Tensor<f32, 2>>);
  STATIC_REQUIRE(can_quantize_to<mxfp4, TensorView<f32, 3>>);
  STATIC_REQUIRE(can_quantize_to<q8_0, TensorView<const f32, 1>>);
  STATIC_REQUIRE_FALSE(can_quantize_to<q4_0, Tensor<bf16, 2>>);  // cast<f32> first, explicitly
  STATIC_REQUIRE_FALSE(can_quantize_to<f32, Tensor<f32, 2>>);    // f32 is not a block format
  STATIC_REQUIRE_FALSE(can_quantize_to<bf16, Tensor<f32, 2>>);
}

TEST_CASE("each layout has its own constructor and raw accessors", "[quant][view][static]") {
  using Nibbles = const std::uint8_t*;
  STATIC_REQUIRE(std::is_constructible_v<QuantView<q4_0, 2>, const block_q4_0*, const extents_t<2>&>);
  STATIC_REQUIRE(std::is_constructible_v<QuantView<mxfp4_ggml, 1>, const block_mxfp4_ggml*, const extents_t<1>&>);
  STATIC_REQUIRE(std::is_constructible_v<HfView, Nibbles, Nibbles, const extents_t<3>&>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<QuantView<q4_0, 2>, Nibbles, Nibbles, const extents_t<2>&>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<HfView, const block_mxfp4_ggml*, const extents_t<3>&>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<QuantView<q4_1, 1>, const block_q4_0*, const extents_t<1>&>);
  // The two MXFP4 layouts are different types: no conversion either way (§1.7 item 8).
  STATIC_REQUIRE_FALSE(std::is_convertible_v<QuantView<mxfp4, 2>, QuantView<mxfp4_ggml, 2>>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<QuantTensor<mxfp4_ggml, 2>, QuantView<mxfp4, 2>>);
  // Owning tensors are move-only, like Tensor.
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<QuantTensor<q4_0, 2>>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<QuantTensor<q4_0, 2>>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<QuantTensor<mxfp4, 2>>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<QuantTensor<mxfp4, 2>>);
}

TEST_CASE("logical extents: the last one must be a multiple of 32", "[quant][view]") {
  block_q4_0 blocks[4] = {};
  std::uint8_t nib[64] = {};
  std::uint8_t sc[4] = {};
  CHECK_NOTHROW((QuantView<q4_0, 2>(blocks, {2, 64})));
  CHECK_THROWS_AS((QuantView<q4_0, 2>(blocks, {2, 48})), shape_error);
  CHECK_THROWS_WITH((QuantView<q4_0, 2>(blocks, {2, 48})), Contains("QuantView<q4_0>") && Contains("48") &&
                                                             Contains("multiple of the block size 32"));
  CHECK_THROWS_WITH((QuantView<mxfp4, 2>(nib, sc, {4, 31})), Contains("mxfp4") && Contains("31"));
  CHECK_THROWS_WITH((QuantView<q8_0, 2>(nullptr, {-1, 32})), Contains("negative extent -1"));
  CHECK_THROWS_AS((QuantTensor<q4_1, 3>({2, 3, 100})), shape_error);
  CHECK_THROWS_WITH((QuantTensor<mxfp4_ggml, 1>({40})), Contains("QuantTensor<mxfp4_ggml>") && Contains("40"));
  CHECK_NOTHROW((QuantTensor<q8_0, 2>({0, 32})));
}

TEST_CASE("sizes: blocks per row, block count and stored bytes", "[quant][view]") {
  const QuantTensor<q4_0, 2> q4({3, 96});
  CHECK(q4.numel() == 288);
  CHECK(q4.blocks_per_row() == 3);
  CHECK(q4.num_blocks() == 9);
  CHECK(q4.bytes() == 9 * 18);
  CHECK(q4.view().bytes() == 9 * 18);
  CHECK(q4.view().rows() == 3);
  const QuantTensor<mxfp4, 3> hf({2, 5, 64});
  CHECK(hf.num_blocks() == 20);
  CHECK(hf.bytes() == 20 * 17);  // 16 nibble bytes + 1 scale byte per block
  CHECK(hf.view().extents() == extents_t<3>{2, 5, 64});
  CHECK(QuantTensor<q8_0, 1>({64}).bytes() == 2 * 34);
  CHECK(QuantTensor<q4_1, 1>({64}).bytes() == 2 * 20);
}

TEST_CASE("a fresh QuantTensor is zero-filled and dequantizes to zeros", "[quant][view]") {
  const QuantTensor<mxfp4, 2> hf({3, 64});
  for (index_t i = 0; i < hf.num_blocks() * 16; ++i) REQUIRE(hf.nibbles()[i] == 0);
  for (index_t i = 0; i < hf.num_blocks(); ++i) REQUIRE(hf.scales()[i] == 0);
  const auto y = dequantize<f32>(hf);
  for (index_t i = 0; i < y.numel(); ++i) REQUIRE(y.data()[i] == 0.0f);
  const QuantTensor<q4_1, 2> q({2, 32});
  const auto* raw = reinterpret_cast<const std::uint8_t*>(q.blocks());
  for (std::size_t i = 0; i < q.bytes(); ++i) REQUIRE(raw[i] == 0);
}

TEST_CASE("operator[] selects the blocks of one leading index", "[quant][view]") {
  QuantTensor<q8_0, 3> q({2, 3, 64});  // [E=2, N=3, K=64]: 2 blocks per row, 6 per expert
  const auto v = q.view();
  const auto expert1 = v[1];
  STATIC_REQUIRE(std::same_as<decltype(expert1), const QuantView<q8_0, 2>>);
  CHECK(expert1.extents() == extents_t<2>{3, 64});
  CHECK(expert1.blocks() == q.blocks() + 6);
  const auto row = expert1[2];
  CHECK(row.extents() == extents_t<1>{64});
  CHECK(row.blocks() == q.blocks() + 6 + 4);
  CHECK_THROWS_AS(v[2], range_error);
  CHECK_THROWS_WITH(v[-1], Contains("index -1 out of range [0, 2)"));

  QuantTensor<mxfp4, 3> hf({2, 3, 64});
  const auto hrow = hf.view()[1][2];
  CHECK(hrow.nibbles() == hf.nibbles() + 16 * (6 + 4));
  CHECK(hrow.scales() == hf.scales() + 6 + 4);
  CHECK(hrow.num_blocks() == 2);
}

TEST_CASE("QuantTensor moves and clones", "[quant][view]") {
  QuantTensor<mxfp4, 2> a({2, 32});
  a.nibbles()[5] = 0x7A;
  a.scales()[1] = 131;
  QuantTensor<mxfp4, 2> c = a.clone();
  CHECK(c.nibbles() != a.nibbles());
  CHECK(c.nibbles()[5] == 0x7A);
  CHECK(c.scales()[1] == 131);
  const std::uint8_t* p = a.nibbles();
  QuantTensor<mxfp4, 2> b = std::move(a);
  CHECK(b.nibbles() == p);
  CHECK(a.empty());           // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  CHECK(a.view().empty());    // NOLINT(bugprone-use-after-move)
  CHECK(a.nibbles() == nullptr);  // NOLINT(bugprone-use-after-move)
}
