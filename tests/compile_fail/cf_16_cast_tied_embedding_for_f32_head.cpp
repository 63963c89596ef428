// compile_fail 16 — dtype-bugs §3 entry 16: an f32 lm_head made by converting the tied bf16
// embedding. Class C11 (prime-rl#2438: "casting lm_head.weight in place would also cast
// embed_tokens"; ROCm vLLM#1016 / E26: int8 lm_head quantisation hitting tied embeddings).
// A tied head is the embedding's weight object itself (models' head(), one copy in backend
// memory), and a weight is a stored format, not a tensor: cast<> accepts host tensors only
// (host_tensor_input), so there is no converted copy to make and nothing to convert in place.
// f32 logits from the bf16 table are the declared-output op linear<f32> over the same weight.
// g++ reports the failed constraint; clang++ the same fact on cast's return type (rank_of).
// expect-error: (satisfaction of|because|does not satisfy) 'host_tensor_input[<']|constraints not satisfied for variable template 'rank_of' \[with T = precis::AnyWeight
#include <precis/backends/reference/backend.hpp>  // precis::backends::Reference
#include <precis/core/cast.hpp>                   // precis::cast

using namespace precis;

index_t cf_16(const AnyWeight& tied_embedding, const Tensor<bf16, 2>& final_hidden);  // [V, H], [T, H]
index_t cf_16(const AnyWeight& tied_embedding, const Tensor<bf16, 2>& final_hidden) {
  const backends::Reference be;
#ifdef PRECIS_SHOULD_FAIL
  const auto lm_head = cast<f32>(tied_embedding);  // an f32 head "from" the bf16 tied table
  return lm_head.numel();
#else
  return be.linear<f32>(final_hidden, tied_embedding, activation_quantization::none).numel();  // [T, V] f32
#endif
}
