// compile_fail 02a — dtype-bugs §3 entry 2, first misuse: add(Tensor<f16>, Tensor<bf16>).
// Class C4 (E10: under autocast, fp16 q/k met bf16 cos/sin and `float16 * bfloat16` silently
// became float32, breaking the KV cache and flex_attention). bf16 and f16 have no common type
// in precis; the only bridge is cast<To>.
// expect-error: (satisfaction of|because|does not satisfy) 'same_dtype_no_implicit_cast[<']
#include <precis/core/cast.hpp>        // precis::cast
#include <precis/ops/elementwise.hpp>  // precis::add

using namespace precis;

index_t cf_02a(const Tensor<f16, 2>& q, const Tensor<bf16, 2>& rotary);
index_t cf_02a(const Tensor<f16, 2>& q, const Tensor<bf16, 2>& rotary) {
#ifdef PRECIS_SHOULD_FAIL
  const auto y = add(q, rotary);
#else
  const auto y = add(q, cast<f16>(rotary));
#endif
  return y.numel();
}
