// compile_fail 03 — dtype-bugs §3 entry 3: bf16 scores combined with f32 sinks, the sinks case.
// Class C4 (E23: HF gpt-oss eager attention does `torch.cat([attn_weights, sinks], -1)`; with
// trtllm's f32 sinks the bf16 scores are promoted to f32, and some versions then need a
// `.to(value_states.dtype)`). In precis the sink never joins the scores: it is a separate f32
// parameter of the backend's attend op (cf_14b), and no backend op combines two dtypes — the
// elementwise op the models use, add_inplace, requires one dtype (same_dtype_no_implicit_cast).
// expect-error: (satisfaction of|because|does not satisfy|the expression) '\(?same_dtype_no_implicit_cast[<']
#include <precis/backends/reference/backend.hpp>  // precis::backends::Reference
#include <precis/core/cast.hpp>                   // precis::cast

using namespace precis;

index_t cf_03(Tensor<bf16, 2>& scores, const Tensor<f32, 2>& sinks);  // [T, S], [T, S] (broadcast)
index_t cf_03(Tensor<bf16, 2>& scores, const Tensor<f32, 2>& sinks) {
  const backends::Reference be;
#ifdef PRECIS_SHOULD_FAIL
  be.add_inplace(scores.view(), sinks);
#else
  be.add_inplace(scores.view(), cast<bf16>(sinks));  // the rounding is written down
#endif
  return scores.numel();
}
