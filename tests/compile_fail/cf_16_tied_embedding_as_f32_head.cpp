// compile_fail 16 — dtype-bugs §3 entry 16: Tied<Embedding<bf16>> used as a Linear<f32> head
// without untie(). Class C11 (prime-rl#2438: "casting lm_head.weight in place would also cast
// embed_tokens"; ROCm vLLM#1016 / E26: int8 lm_head quantisation hitting tied embeddings).
// Tied weights are one object of one dtype; the constructor Linear(const Tied<...>&) is deleted
// (tied_weights_need_untie, nn/linear.hpp) and untie<W>(tied) is the named copy-and-convert.
// The diagnostic is the deleted constructor of Linear, in both compilers' words.
// expect-error: deleted (function|constructor of) '(const )?(precis::)?Linear<
#include <precis/nn/embedding.hpp>  // precis::Embedding, Tied, untie
#include <precis/nn/linear.hpp>     // precis::Linear

using namespace precis;

index_t cf_16(const Tied<Embedding<bf16>>& tied, const Tensor<f32, 2>& final_hidden);  // [T, hidden]
index_t cf_16(const Tied<Embedding<bf16>>& tied, const Tensor<f32, 2>& final_hidden) {
#ifdef PRECIS_SHOULD_FAIL
  const Linear<f32> lm_head(tied);  // an f32 head "from" the bf16 tied table
#else
  const Linear<f32> lm_head = untie<f32>(tied);  // a separate f32 copy; the embedding stays bf16
#endif
  return lm_head.forward(final_hidden).numel();
}
