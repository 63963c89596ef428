// precis/quant/dequantize.hpp — dequantize<ActT>(QuantView) → Tensor<ActT>: the host reference
// path from a block-quantized weight to activations.
//
// The output dtype is a template argument constrained to ActivationDtype (f32, bf16, f16) and is
// chosen by the caller — the layer's activation type — never by the format or by a fallback
// path. HF's MXFP4 fallback hard-codes bf16 (`convert_moe_packed_tensors(..., dtype=bf16)`)
// and met f32 biases and KV tensors (dtype-bugs E24, seed bug 1, load-time test 7); here the
// fallback returns the declared type or does not compile. `dequantize<f64>` and
// `dequantize<i32>` do not compile (f64 is not an activation dtype: E15).
//
// Each block is dequantized to f32 by quant/block_reference.hpp (exact), then rounded once to
// `To` (round to nearest even), so dequantize<bf16>(q) == cast<bf16>(dequantize<f32>(q)).
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <type_traits>  // std::is_const_v, std::remove_cv_t

#include <precis/core/config.hpp>            // precis::index_t
#include <precis/core/dtype.hpp>             // precis::ActivationDtype, BlockFormat, storage_t, dtype_name
#include <precis/core/error.hpp>             // precis::shape_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/core/tensor_view.hpp>       // precis::TensorView
#include <precis/quant/block_reference.hpp>  // dequantize_block, dequantize_block_mxfp4
#include <precis/quant/kquants.hpp>          // dequantize_block / dequantize_chunk of the GGUF download formats
#include <precis/quant/quant_tensor.hpp>     // precis::QuantTensor
#include <precis/quant/quant_view.hpp>       // precis::QuantView

namespace precis {

namespace detail {

/// Values per chunk: the granularity every kernel walks a block-quantized row in. A chunk is a
/// whole block of the 32-value formats and one eighth of a 256-value K-quant super-block.
inline constexpr index_t chunk_values = 32;

/// 32-value chunks per block of F (1, or 8 for the K-quants).
template <BlockFormat F>
inline constexpr index_t chunks_per_block = static_cast<index_t>(dtype_traits<F>::block_size) / chunk_values;

/// Chunk `c` (row-major over all 32-value chunks of `q`: values 32c … 32c + 31) → 32 floats.
template <BlockFormat F, std::size_t R, Device Dev>
void dequantize_block_at(const QuantView<F, R, Dev>& q, index_t c, float out[32]) noexcept {
  if constexpr (is_two_plane_mxfp4<F>) dequantize_block_mxfp4(q.nibbles() + 16 * c, q.scales()[c], out);
  else if constexpr (chunks_per_block<F> == 1) dequantize_block(q.blocks()[c], out);
  else dequantize_chunk(q.blocks()[c / chunks_per_block<F>], static_cast<int>(c % chunks_per_block<F>), out);
}

/// One rounding from f32 to the activation storage type.
template <ActivationDtype To>
[[nodiscard]] constexpr storage_t<To> from_f32(float v) noexcept {
  if constexpr (std::same_as<std::remove_cv_t<To>, f32>) return v;
  else return storage_t<To>(v);
}

}  // namespace detail

/// The whole quantized tensor as a new Tensor<To> of the same logical extents.
template <ActivationDtype To, BlockFormat F, std::size_t R>
  requires(!std::is_const_v<To>)
[[nodiscard]] Tensor<To, R> dequantize(const QuantView<F, R>& q) {
  Tensor<To, R> out(q.extents());  // (..., K)
  float buf[32];
  const index_t nb = q.numel() / detail::chunk_values;
  for (index_t b = 0; b < nb; ++b) {
    detail::dequantize_block_at(q, b, buf);
    for (index_t j = 0; j < 32; ++j) out.data()[b * 32 + j] = detail::from_f32<To>(buf[j]);
  }
  return out;
}

template <ActivationDtype To, BlockFormat F, std::size_t R>
  requires(!std::is_const_v<To>)
[[nodiscard]] Tensor<To, R> dequantize(const QuantTensor<F, R>& q) {
  return dequantize<To>(q.view());
}

/// One row of K values into `out` (any stride); shape_error when out's length is not K.
template <ActivationDtype To, BlockFormat F>
  requires(!std::is_const_v<To>)
void dequantize_row(const QuantView<F, 1>& q, TensorView<To, 1> out) {
  PRECIS_CHECK(out.extent(0) == q.extent(0), shape_error, "[dequantize_row<", dtype_name<To>, ">] output has ",
               out.extent(0), " elements, the ", dtype_name<F>, " row has K=", q.extent(0));
  float buf[32];
  const index_t nb = q.numel() / detail::chunk_values;
  for (index_t b = 0; b < nb; ++b) {
    detail::dequantize_block_at(q, b, buf);
    for (index_t j = 0; j < 32; ++j) out(b * 32 + j) = detail::from_f32<To>(buf[j]);
  }
}

}  // namespace precis
