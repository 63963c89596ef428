// compile_fail 11 — dtype-bugs §3 entry 11: routing (top-k) on Tensor<bf16> logits.
// Class C6 (E18: gpt-oss/DeepSeek routers computed logits in bf16 "while the HF reference
// forces the router to use fp32 ... can flip which experts get selected"). The routing
// functions accept only f32 logits (router_logits_are_f32, nn/router.hpp); the router's own
// logits(x) is an out-dtype GEMM, matmul<f32>.
// expect-error: (satisfaction of|because|does not satisfy) 'router_logits_are_f32[<']
#include <precis/nn/router.hpp>   // precis::Router, TopKThenSoftmax
#include <precis/ops/matmul.hpp>  // precis::matmul

using namespace precis;

index_t cf_11(const Tensor<bf16, 2>& x, const Tensor<bf16, 2>& gate);  // x [T, hidden], gate [E, hidden]
index_t cf_11(const Tensor<bf16, 2>& x, const Tensor<bf16, 2>& gate) {
#ifdef PRECIS_SHOULD_FAIL
  const Tensor<bf16, 2> logits = matmul(x, gate);  // bf16 logits
#else
  const Tensor<f32, 2> logits = matmul<f32>(x, gate);  // what Router<bf16>::logits does
#endif
  const Routing r = TopKThenSoftmax{}(logits, 4);
  return r.experts.numel();
}
