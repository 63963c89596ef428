// compile_fail 15a — dtype-bugs §3 entry 15, first misuse: Tensor<i64> positions; positions.to<bf16>().
// Class C12 (E13: bf16 positions above 256 are not exact — 15962 becomes 15936; E17 Qwen3-Omni
// position_ids corrupted as bf16). cast<To> converts within one kind of number
// (cast_within_kind, core/cast.hpp); integer → float is the named, range-checked to_float<f32|f64>.
// expect-error: (satisfaction of|because|does not satisfy) 'cast_within_kind[<']
#include <precis/core/cast.hpp>  // precis::cast, to_float

using namespace precis;

index_t cf_15a(const Tensor<i64, 1>& positions);
index_t cf_15a(const Tensor<i64, 1>& positions) {
#ifdef PRECIS_SHOULD_FAIL
  const auto pos = cast<bf16>(positions);
#else
  const auto pos = to_float<f32>(positions);  // exact for |p| ≤ 2^24, else range_error
#endif
  return pos.numel();
}
