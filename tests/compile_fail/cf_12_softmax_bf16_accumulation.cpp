// compile_fail 12 — dtype-bugs §3 entry 12: softmax accumulating in bf16 without the _lowacc
// opt-in name. Class C6 (E19 llama.cpp f16 KQ overflow → NaN / "GGGG"; E20 "softmax_lastdim_
// kernel_impl not implemented for 'Half'" and finfo(fp16).min + x = -inf → NaN; E21 bf16
// RMSNorm reductions). softmax takes f32 only (softmax_input_is_f32, ops/softmax.hpp); a bf16
// reduction must be asked for by name: softmax_lowacc<bf16>.
// expect-error: (satisfaction of|because|does not satisfy) 'softmax_input_is_f32[<']
#include <precis/ops/softmax.hpp>  // precis::softmax, softmax_lowacc

using namespace precis;

index_t cf_12(const Tensor<bf16, 2>& scores);  // [T, S]
index_t cf_12(const Tensor<bf16, 2>& scores) {
#ifdef PRECIS_SHOULD_FAIL
  const auto p = softmax(scores);
#else
  const auto p = softmax_lowacc<bf16>(scores);  // the opt-in is visible at the call site
#endif
  return p.numel();
}
