// compile_fail 14b — dtype-bugs §3 entry 14, second misuse: a backend that needs f32 sinks given
// Sinks<bf16>. Class C10/C4 (E23 SGLang#9161: "Choose dtype of sinks based on attention
// backend: trtllm_mha requires float32, others can use bfloat16"; vLLM#23016). Each backend
// declares `using sinks_t = ...`; wiring any other Sinks<T> is ill-formed
// (attention_backend_sinks_match, nn/attention.hpp). Checkpoint sinks stored as bf16 become
// Sinks<f32> by an explicit, exact widening.
// expect-error: (satisfaction of|because|does not satisfy) 'attention_backend_sinks_match[<']
#include <precis/core/cast.hpp>     // precis::cast
#include <precis/nn/attention.hpp>  // precis::Attention, Sinks, attention_backend

using namespace precis;

index_t cf_14b(const Attention<attention_backend::flash_bf16, bf16>& attn, const Tensor<bf16, 3>& q,
               const Tensor<bf16, 3>& k, const Tensor<bf16, 3>& v, const Tensor<bf16, 1>& checkpoint_sinks);
index_t cf_14b(const Attention<attention_backend::flash_bf16, bf16>& attn, const Tensor<bf16, 3>& q,
               const Tensor<bf16, 3>& k, const Tensor<bf16, 3>& v, const Tensor<bf16, 1>& checkpoint_sinks) {
#ifdef PRECIS_SHOULD_FAIL
  const Sinks<bf16> sinks(checkpoint_sinks);
#else
  const Sinks<f32> sinks(cast<f32>(checkpoint_sinks));
#endif
  const auto o = attn(q, k, v, sinks);
  return o.numel();
}
