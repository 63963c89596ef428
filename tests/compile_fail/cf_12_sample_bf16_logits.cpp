// compile_fail 12 — dtype-bugs §3 entry 12: a softmax accumulating in bf16. Class C6 (E19
// llama.cpp f16 KQ overflow → NaN / "GGGG"; E20 "softmax_lastdim_kernel_impl not implemented for
// 'Half'" and finfo(fp16).min + x = -inf → NaN; E21 bf16 RMSNorm reductions). precis has two
// softmaxes and both are f32 by construction: attention's inside the backend's attend op (scores
// are f32 whatever the activation dtype, nn/attention.hpp) and the sampler's over the logits,
// which accepts f32 logits only (sampler_logits_are_f32, nn/sampling.hpp). The model's head is
// linear<f32> for that reason; a bf16 logits row must be widened by name.
// expect-error: (satisfaction of|because|does not satisfy) 'sampler_logits_are_f32[<']
#include <precis/core/cast.hpp>     // precis::cast
#include <precis/nn/sampling.hpp>   // precis::sampling::Candidates

using namespace precis;

index_t cf_12(const Tensor<bf16, 1>& logits);  // [V]
index_t cf_12(const Tensor<bf16, 1>& logits) {
#ifdef PRECIS_SHOULD_FAIL
  const sampling::Candidates c(logits);
#else
  const sampling::Candidates c(cast<f32>(logits));  // exact widening, visible at the call site
#endif
  return logits.numel();
}
