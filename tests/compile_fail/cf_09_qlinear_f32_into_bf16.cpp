// compile_fail 09 — dtype-bugs §3 entry 9: a quantized matmul fed Tensor<f32> inside a bf16 model.
// Class C7 (E3: bitsandbytes `bnb_4bit_compute_dtype` defaulted to float32, so 4-bit blocks
// produced f32 hidden states that met an fp16 lm_head — "expected scalar type Half but found
// Float"; E25 GPTQ/AWQ kernels dequantizing to fp16 in a bf16 model). QLinear<F, Act>::forward
// takes and returns Act (qlinear_input_matches_activation, nn/qlinear.hpp): the activation type
// of a quantized layer is its template parameter, never a config knob.
// expect-error: (satisfaction of|because|does not satisfy) 'qlinear_input_matches_activation[<']
#include <precis/core/cast.hpp>   // precis::cast
#include <precis/nn/qlinear.hpp>  // precis::QLinear

using namespace precis;

index_t cf_09(const QLinear<q4_0, bf16>& layer, const Tensor<f32, 2>& hidden);  // hidden [T, in]
index_t cf_09(const QLinear<q4_0, bf16>& layer, const Tensor<f32, 2>& hidden) {
#ifdef PRECIS_SHOULD_FAIL
  const auto y = layer.forward(hidden);  // f32 states from a previous f32-compute block
#else
  const auto y = layer.forward(cast<bf16>(hidden));
#endif
  return y.numel();
}
