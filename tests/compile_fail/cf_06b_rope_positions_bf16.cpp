// compile_fail 06b — dtype-bugs §3 entry 6, second misuse: RopeTable<f32>::from_positions(Tensor<bf16>).
// Class C3/C12 (E13: "position 15962 rounds to neighbouring bf16 values ... cos(15962) ≈ -0.547
// vs cos(15968) ≈ -0.882"; E17 Qwen3-Omni position_ids carried as bf16). Positions are integer
// tensors (rope_positions_are_integer); a float tensor of "integer values" is not accepted.
// expect-error: (satisfaction of|because|does not satisfy) 'rope_positions_are_integer[<']
#include <precis/nn/rope.hpp>  // precis::RopeTable, InvFreq

using namespace precis;

index_t cf_06b(const Tensor<bf16, 1>& positions_bf16, const Tensor<i32, 1>& positions);
index_t cf_06b(const Tensor<bf16, 1>& positions_bf16, const Tensor<i32, 1>& positions) {
  const auto inv_freq = InvFreq::standard(1e6, 128);
#ifdef PRECIS_SHOULD_FAIL
  const auto table = RopeTable<f32>::from_positions(positions_bf16, inv_freq);
#else
  (void)positions_bf16;
  const auto table = RopeTable<f32>::from_positions(positions, inv_freq);
#endif
  return table.n_positions();
}
