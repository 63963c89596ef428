// compile_fail 06a — dtype-bugs §3 entry 6, first misuse: RopeTable<bf16> construction.
// Class C3 (E11: "the RoPE embeddings get autocast to bfloat16, when we require it to be in
// float32 ... lose precision dramatically especially for very large context lengths"; E13
// candle qwen2's bf16 cos/sin). RopeTable<T> exists only for T = f32 (rope_table_is_f32,
// nn/rope.hpp); apply_rope upcasts bf16 activations internally, so no bf16 table is needed.
// expect-error: (satisfaction of|because|does not satisfy) 'rope_table_is_f32[<']
#include <precis/nn/rope.hpp>  // precis::RopeTable, InvFreq

using namespace precis;

index_t cf_06a(const Tensor<i64, 1>& positions);
index_t cf_06a(const Tensor<i64, 1>& positions) {
  const auto inv_freq = InvFreq::standard(1e6, 128);
#ifdef PRECIS_SHOULD_FAIL
  const auto table = RopeTable<bf16>::from_positions(positions, inv_freq);
#else
  const auto table = RopeTable<f32>::from_positions(positions, inv_freq);
#endif
  return table.n_positions();
}
