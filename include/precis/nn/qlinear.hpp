// precis/nn/qlinear.hpp — QLinear<F, Act>: a linear layer with block-quantized weights whose
// output dtype is the activation dtype Act, decided by the layer's type and nothing else.
//
// Why (dtype-bugs class C7): bitsandbytes' `bnb_4bit_compute_dtype` defaulted to f32, so 4-bit
// blocks emitted f32 into an fp16 lm_head (E3); AWQ/GPTQ kernels dequantized to fp16 inside a
// bf16 model (E25); MLX typed quantized outputs as promote(activation, scales) (E27); HF's
// MXFP4 fallback hard-coded bf16 (E24, seed bug 1). Here:
//
//   QLinear<q4_0, bf16>::forward(x)   x must be Tensor<bf16> (qlinear_input_matches_activation);
//                                     the result is Tensor<bf16>. Feeding Tensor<f32> does not
//                                     compile — cast the activations, or declare QLinear<q4_0, f32>.
//
// The format F's internal scales (f16 in q4_0/q8_0, E8M0 in mxfp4) never reach the output type.
// Math: each weight row is dequantized to f32 (quant/dequantize.hpp, exact), products with the
// widened activations are accumulated in f32, the optional bias (dtype Act) is added, and the
// sum is rounded once to Act — equal to matmul<f32>(cast<f32>(x), dequantize<f32>(W)) rounded to Act.
#pragma once

#include <concepts>  // std::same_as
#include <optional>  // std::optional
#include <vector>    // std::vector

#include <precis/core/dtype.hpp>         // precis::BlockFormat, ActivationDtype
#include <precis/core/error.hpp>         // precis::shape_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>        // precis::to_compute, from_compute
#include <precis/core/tensor.hpp>        // precis::Tensor
#include <precis/ops/host_tensor.hpp>    // precis::HostTensorOfRank, format_extents
#include <precis/quant/dequantize.hpp>   // precis::dequantize_row
#include <precis/quant/quant_tensor.hpp> // precis::QuantTensor

namespace precis {

/// A QLinear<F, Act> takes activations of exactly Act (E3, E25, E27).
template <class In, class Act>
concept qlinear_input_matches_activation = std::same_as<std::remove_cv_t<In>, Act>;

template <BlockFormat F, ActivationDtype Act>
class QLinear {
 public:
  using format = F;
  using activation = Act;

  /// weight: logical [out_features, in_features], blocks along in_features.
  explicit QLinear(QuantTensor<F, 2> weight) : weight_(std::move(weight)) {}
  /// weight [out, in] and bias [out] of the activation dtype.
  QLinear(QuantTensor<F, 2> weight, Tensor<Act, 1> bias) : weight_(std::move(weight)), bias_(std::move(bias)) {
    PRECIS_CHECK(bias_->extent(0) == weight_.extent(0), shape_error, "[QLinear] bias of ", bias_->extent(0),
                 " entries for ", weight_.extent(0), " output features");
  }

  [[nodiscard]] index_t in_features() const noexcept { return weight_.extent(1); }
  [[nodiscard]] index_t out_features() const noexcept { return weight_.extent(0); }
  [[nodiscard]] QuantView<F, 2> weight() const noexcept { return weight_.view(); }

  /// x [T, in] of dtype Act → [T, out] of dtype Act.
  template <HostTensorOfRank<2> X>
    requires qlinear_input_matches_activation<dtype_of<X>, Act>
  [[nodiscard]] Tensor<Act, 2> forward(const X& x) const {
    const const_view_t<X> xv = x;
    const index_t n_tok = xv.extent(0), k = in_features(), n_out = out_features();
    PRECIS_CHECK(xv.extent(1) == k, shape_error, "[QLinear<", dtype_name<F>, ", ", dtype_name<Act>, ">::forward] x ",
                 format_extents(xv.extents()), " for ", k, " input features");
    Tensor<Act, 2> out({n_tok, n_out});  // [T, out]
    Tensor<f32, 1> row({k});             // one dequantized weight row, f32
    const QuantView<F, 2> w = weight_.view();
    for (index_t n = 0; n < n_out; ++n) {
      dequantize_row<f32>(w[n], row.view());
      for (index_t t = 0; t < n_tok; ++t) {
        float acc = 0.0f;
        for (index_t p = 0; p < k; ++p) acc += static_cast<float>(to_compute<Act>(xv(t, p))) * row(p);
        if (bias_) acc += static_cast<float>(to_compute<Act>((*bias_)(n)));
        out(t, n) = from_compute<Act>(acc);
      }
    }
    return out;
  }

 private:
  QuantTensor<F, 2> weight_;            // logical [out_features, in_features]
  std::optional<Tensor<Act, 1>> bias_;  // [out_features]
};

}  // namespace precis
