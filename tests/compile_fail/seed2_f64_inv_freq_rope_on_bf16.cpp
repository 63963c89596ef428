// compile_fail seed 2 — written literally (dtype-bugs §0): a Qwen3-Omni MoE re-implementation
// whose `inv_freq` buffer is float64 (created without a dtype, or stored as F64 in the
// checkpoint); `.to(device)` kept f64, cos/sin became f64 and bf16 Q/K were promoted:
// `Buffer dtype mismatch, expected 'const float' but got 'double'`. Classes C8, C5, C4, C3.
//
// In precis inv_freq is held by InvFreq, which accepts an f32 tensor only (inv_freq_is_f32,
// nn/rope.hpp); a float64 inv_freq enters through an explicit cast<f32> — one visible narrowing —
// and RoPE then runs on bf16 Q/K with an f32 table, returning bf16.
// expect-error: (satisfaction of|because|does not satisfy) 'inv_freq_is_f32[<']
#include <cmath>  // std::pow

#include <precis/core/cast.hpp>  // precis::cast
#include <precis/nn/rope.hpp>    // precis::InvFreq, RopeTable, apply_rope

using namespace precis;

index_t seed2(const Tensor<bf16, 3>& q, const Tensor<i64, 1>& positions);  // q [T, H, Dh=128]
index_t seed2(const Tensor<bf16, 3>& q, const Tensor<i64, 1>& positions) {
  // inv_freq = 1 / θ^(arange(0, d, 2) / d), computed (or loaded) as float64.
  Tensor<f64, 1> inv_freq_f64({64});
  for (index_t i = 0; i < 64; ++i) inv_freq_f64(i) = std::pow(1e6, -2.0 * static_cast<double>(i) / 128.0);
#ifdef PRECIS_SHOULD_FAIL
  const InvFreq inv_freq(inv_freq_f64);
#else
  const InvFreq inv_freq(cast<f32>(inv_freq_f64));
#endif
  const auto table = RopeTable<f32>::from_positions(positions, inv_freq);
  const Tensor<bf16, 3> q_rot = apply_rope(q, table);  // [T, H, Dh], still bf16
  return q_rot.numel();
}
