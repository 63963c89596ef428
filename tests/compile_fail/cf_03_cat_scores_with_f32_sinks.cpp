// compile_fail 03 — dtype-bugs §3 entry 3: cat({Tensor<bf16>, Tensor<f32>}), the sinks case.
// Class C4 (E23: HF gpt-oss eager attention does `torch.cat([attn_weights, sinks], -1)`; with
// trtllm's f32 sinks the bf16 scores are promoted to f32, and some versions then need a
// `.to(value_states.dtype)`). cat requires one dtype (ops/cat.hpp); in precis the sink never
// joins the scores at all — it is a separate Sinks<f32> parameter of the attention kernel.
// expect-error: (satisfaction of|because|does not satisfy|the expression) '\(?same_dtype_no_implicit_cast[<']
#include <precis/core/cast.hpp>  // precis::cast
#include <precis/ops/cat.hpp>    // precis::cat

using namespace precis;

index_t cf_03(const Tensor<bf16, 2>& scores, const Tensor<f32, 2>& sinks);  // [T, S], [T, 1]
index_t cf_03(const Tensor<bf16, 2>& scores, const Tensor<f32, 2>& sinks) {
#ifdef PRECIS_SHOULD_FAIL
  const auto combined = cat(1, scores, sinks);
#else
  const auto combined = cat(1, cast<f32>(scores), sinks);  // f32 scores: explicit widening
#endif
  return combined.numel();
}
