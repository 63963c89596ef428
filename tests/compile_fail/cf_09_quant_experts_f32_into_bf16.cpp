// compile_fail 09 — dtype-bugs §3 entry 9: quantized weights fed Tensor<f32> inside a bf16 model.
// Class C7 (E3: bitsandbytes `bnb_4bit_compute_dtype` defaulted to float32, so 4-bit blocks
// produced f32 hidden states that met an fp16 lm_head — "expected scalar type Half but found
// Float"; E25 GPTQ/AWQ kernels dequantizing to fp16 in a bf16 model). A quantized expert stack
// (MXFP4 / q4_0 blocks, weights/any_experts.hpp) carries the activation dtype it computes in as a
// template parameter, AnyMoeExperts<G, Act>, never a config knob; every backend's moe op takes
// and returns exactly Act (moe_input_matches_activation).
// expect-error: (satisfaction of|because|does not satisfy) 'moe_input_matches_activation[<']
#include <precis/backends/reference/backend.hpp>  // precis::backends::Reference
#include <precis/core/cast.hpp>                   // precis::cast

using namespace precis;

index_t cf_09(const AnyMoeExperts<SiluGate, bf16>& experts, const Tensor<f32, 2>& hidden,  // hidden [T, H]
              const Routing& routing);
index_t cf_09(const AnyMoeExperts<SiluGate, bf16>& experts, const Tensor<f32, 2>& hidden, const Routing& routing) {
  const backends::Reference be;
#ifdef PRECIS_SHOULD_FAIL
  const auto y = be.moe(experts, hidden, routing);  // f32 states from a previous f32-compute block
#else
  const auto y = be.moe(experts, cast<bf16>(hidden), routing);
#endif
  return y.numel();
}
