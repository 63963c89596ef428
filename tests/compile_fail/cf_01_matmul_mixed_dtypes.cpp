// compile_fail 01 — dtype-bugs §3 entry 1: matmul(Tensor<bf16>, Tensor<f32>).
// Class C1 (E1 DeBERTa: "expected m1 and m2 to have the same dtype, but got: float !=
// c10::BFloat16"; E2 Megatron's router built without the model dtype; E24 gpt-oss MXFP4
// fallback). matmul's operands share one dtype (ops/matmul.hpp); converting one of them is an
// explicit, visible cast.
// expect-error: (satisfaction of|because|does not satisfy) 'same_dtype_no_implicit_cast[<']
#include <precis/core/cast.hpp>   // precis::cast
#include <precis/ops/matmul.hpp>  // precis::matmul

using namespace precis;

index_t cf_01(const Tensor<bf16, 2>& hidden, const Tensor<f32, 2>& weight);
index_t cf_01(const Tensor<bf16, 2>& hidden, const Tensor<f32, 2>& weight) {
#ifdef PRECIS_SHOULD_FAIL
  const auto y = matmul(hidden, weight);  // bf16 activations meet a weight created as f32
#else
  const auto y = matmul(hidden, cast<bf16>(weight));
#endif
  return y.numel();
}
