// compile_fail 07b — dtype-bugs §3 entry 7, second misuse: apply_rope(Tensor<bf16>, RopeTable<f64>).
// Class C3/C4 (E15; seed bug 2: f64 cos/sin would promote bf16 Q/K to f64). The only table type
// is RopeTable<f32> (rope_table_is_f32); naming RopeTable<f64> fails before apply_rope is reached.
// expect-error: (satisfaction of|because|does not satisfy) 'rope_table_is_f32[<']
#include <precis/nn/rope.hpp>  // precis::RopeTable, InvFreq, apply_rope

using namespace precis;

index_t cf_07b(const Tensor<bf16, 3>& q, const Tensor<i64, 1>& positions);  // q [T, H, Dh]
index_t cf_07b(const Tensor<bf16, 3>& q, const Tensor<i64, 1>& positions) {
  const auto inv_freq = InvFreq::standard(1e6, 128);
#ifdef PRECIS_SHOULD_FAIL
  const RopeTable<f64> table = RopeTable<f64>::from_positions(positions, inv_freq);
#else
  const RopeTable<f32> table = RopeTable<f32>::from_positions(positions, inv_freq);
#endif
  const Tensor<bf16, 3> q_rot = apply_rope(q, table);
  return q_rot.numel();
}
