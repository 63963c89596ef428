// compile_fail 02b — dtype-bugs §3 entry 2, second misuse: mul(Tensor<bf16>, Scalar<f32>).
// Class C4 (E27: `a = mx.array(1.0, dtype=float32); (a * x).dtype → float32` — an f32 scalar
// promoted bf16 activations, doubling the KV cache). A scalar operand carries its dtype
// (core/scalar.hpp) and must match the tensor's.
// expect-error: (satisfaction of|because|does not satisfy) 'same_dtype_no_implicit_cast[<']
#include <precis/core/scalar.hpp>      // precis::Scalar
#include <precis/ops/elementwise.hpp>  // precis::mul

using namespace precis;

index_t cf_02b(const Tensor<bf16, 2>& x);
index_t cf_02b(const Tensor<bf16, 2>& x) {
#ifdef PRECIS_SHOULD_FAIL
  const auto y = mul(x, Scalar<f32>{0.125});  // e.g. head_dim^-0.5 written as an f32 constant
#else
  const auto y = mul(x, Scalar<bf16>{0.125});
#endif
  return y.numel();
}
