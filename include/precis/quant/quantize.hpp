// precis/quant/quantize.hpp — quantize<F>(TensorView<const f32>) → QuantTensor<F>: the host
// reference quantizer, byte-identical to ggml-quants.c's `quantize_row_*_ref` for the ggml
// formats (model-semantics.md §1d) and, for HF/OpenAI mxfp4, the same scales and codes packed
// in the HF nibble order.
//
// The input is f32 only: quantizing is a weight-preparation step and the reference quantisers
// are defined on f32 (a bf16 weight is cast<f32> first, explicitly). Each row of K values is
// cut into K/32 blocks; the last extent must be a multiple of 32 (shape_error naming it), and
// every value must be finite (range_error naming the flat index) — ggml's quantisers turn a NaN
// or Inf into a garbage scale for the whole block.
#pragma once

#include <cmath>        // std::isfinite
#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <type_traits>  // std::remove_cvref_t

#include <precis/core/config.hpp>            // precis::index_t
#include <precis/core/dtype.hpp>             // precis::BlockFormat, f32, dtype_name
#include <precis/core/error.hpp>             // precis::range_error, PRECIS_CHECK
#include <precis/core/tensor_view.hpp>       // precis::TensorView, TensorLike, dtype_of, rank_of
#include <precis/quant/block_reference.hpp>  // quantize_block, quantize_block_mxfp4
#include <precis/quant/quant_tensor.hpp>     // precis::QuantTensor
#include <precis/quant/quant_view.hpp>       // detail::check_quant_extents

namespace precis {

/// The formats with a reference quantizer in block_reference.hpp. The GGUF download formats
/// (quant/kquants.hpp) are read, never produced: llama.cpp's `llama-quantize` makes those files
/// (its K-quant quantizers search scales iteratively; a second copy of that search would be a
/// second spec to keep in step).
template <class F>
concept reference_quantizable = std::same_as<F, q8_0> || std::same_as<F, q4_0> || std::same_as<F, q4_1> ||
                                std::same_as<F, mxfp4> || std::same_as<F, mxfp4_ggml>;

/// Quantizes `x` (any strides) into a new QuantTensor of the same logical extents.
template <BlockFormat F, std::size_t R>
  requires reference_quantizable<F>
[[nodiscard]] QuantTensor<F, R> quantize(TensorView<const f32, R> x) {
  static_assert(R >= 1, "QUANT_RANK: a quantized tensor has at least its K axis");
  detail::check_quant_extents<F>(x.extents(), "quantize");
  QuantTensor<F, R> out(x.extents());  // (..., K) logical; [..., K/32] blocks
  const index_t k = x.extent(R - 1);
  const index_t rows = k == 0 ? 0 : x.numel() / k;
  const index_t bpr = k / 32;
  extents_t<R> idx{};  // multi-index of the current row; idx[R-1] stays 0
  float buf[32];
  for (index_t r = 0; r < rows; ++r) {
    index_t base = 0;
    for (std::size_t d = 0; d + 1 < R; ++d) base += idx[d] * x.stride(d);
    for (index_t blk = 0; blk < bpr; ++blk) {
      for (index_t j = 0; j < 32; ++j) {
        const float v = x.data()[base + (blk * 32 + j) * x.stride(R - 1)];
        PRECIS_CHECK(std::isfinite(v), range_error, "[quantize<", dtype_name<F>, ">] non-finite value ", v,
                     " at flat index ", r * k + blk * 32 + j);
        buf[j] = v;
      }
      const index_t b = r * bpr + blk;  // row-major block index
      if constexpr (detail::is_two_plane_mxfp4<F>) quantize_block_mxfp4(buf, out.nibbles() + 16 * b, out.scales()[b]);
      else quantize_block(buf, out.blocks()[b]);
    }
    for (std::size_t d = R - 1; d-- > 0;) {  // next row: increment the leading multi-index
      if (++idx[d] < x.extent(d)) break;
      idx[d] = 0;
    }
  }
  return out;
}

/// Any host f32 tensor-like argument (Tensor<f32, R>, TensorView<f32, R>).
template <BlockFormat F, class X>
  requires reference_quantizable<F> && TensorLike<X> && std::same_as<dtype_of<X>, f32> && std::same_as<device_of<X>, host> &&
           (!std::same_as<std::remove_cvref_t<X>, TensorView<const f32, rank_of<X>>>)
[[nodiscard]] QuantTensor<F, rank_of<X>> quantize(const X& x) {
  return quantize<F, rank_of<X>>(TensorView<const f32, rank_of<X>>(x));
}

}  // namespace precis
