// compile_fail 14b — dtype-bugs §3 entry 14, second misuse: a backend that needs f32 sinks given
// bf16 sinks. Class C10/C4 (E23 SGLang#9161: "Choose dtype of sinks based on attention
// backend: trtllm_mha requires float32, others can use bfloat16"; vLLM#23016). A backend's
// attend takes sinks only as f32 logits (attention_sinks_are_f32, backends/backend.hpp; the
// role is pinned to f32 in every precision policy). Checkpoint sinks stored as bf16 become f32
// by an explicit, exact widening.
// expect-error: (satisfaction of|because|does not satisfy) 'attention_sinks_are_f32[<']
#include <array>  // std::array

#include <precis/backends/reference/backend.hpp>  // backends::Reference
#include <precis/core/cast.hpp>                   // precis::cast

using namespace precis;

index_t cf_14b(PagedKvCache<bf16>& cache, KvSeqId seq, const Tensor<bf16, 3>& q, const Tensor<bf16, 3>& k,
               const Tensor<bf16, 3>& v, const Tensor<bf16, 1>& checkpoint_sinks);
index_t cf_14b(PagedKvCache<bf16>& cache, KvSeqId seq, const Tensor<bf16, 3>& q, const Tensor<bf16, 3>& k,
               const Tensor<bf16, 3>& v, const Tensor<bf16, 1>& checkpoint_sinks) {
  const backends::Reference backend;
  const AttentionConfig cfg{.n_heads = 8, .n_kv_heads = 2, .head_dim = 64};
  const std::array<KvSeqId, 1> seqs{seq};
#ifdef PRECIS_SHOULD_FAIL
  const Tensor<bf16, 1>& sinks = checkpoint_sinks;
#else
  const Tensor<f32, 1> sinks = cast<f32>(checkpoint_sinks);
#endif
  const auto o = backend.attend<bf16>(cache, 0, seqs, q, k, v, cfg, sinks);
  return o.numel();
}
