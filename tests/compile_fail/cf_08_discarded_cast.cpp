// compile_fail 08 — dtype-bugs §3 entry 8: discarding the result of cast<bf16>(cos).
// Class C4 (E15 vllm-omni review: "calls `cos.to(query.dtype)`/`sin.to(query.dtype)` without
// assigning the result, so cos/sin stay at ... float64"). Conversions return a new tensor and
// are [[nodiscard]] (core/cast.hpp); this target adds -Werror=unused-result, so a discarded
// cast is a compile error with either compiler.
// expect-error: ignoring return value of .*nodiscard
#include <precis/core/cast.hpp>  // precis::cast

using namespace precis;

index_t cf_08(const Tensor<f32, 2>& cos);  // [T, rotary_dim/2]
index_t cf_08(const Tensor<f32, 2>& cos) {
#ifdef PRECIS_SHOULD_FAIL
  cast<bf16>(cos);  // "convert" cos — the result is dropped, cos is unchanged
  return cos.numel();
#else
  const Tensor<bf16, 2> cos_bf16 = cast<bf16>(cos);
  return cos_bf16.numel();
#endif
}
