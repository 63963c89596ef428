// compile_fail 15b — dtype-bugs §3 entry 15, second misuse: x.to_like(positions).
// Class C12 (E17 / transformers#47674 Grounding DINO: `.to(pos_tensor.dtype)` with an int64
// pos_tensor truncated sin/cos to {-1, 0, 1}, collapsing 93% of embeddings). precis has no
// type_as / to_like; the generic spelling — cast to "the dtype of that tensor" — names an
// integer target for float data, which cast rejects (cast_within_kind). A float → integer
// conversion is the named round_to<To>; here the intent was f32.
// expect-error: (satisfaction of|because|does not satisfy) 'cast_within_kind[<']
#include <precis/core/cast.hpp>  // precis::cast

using namespace precis;

index_t cf_15b(const Tensor<f32, 2>& sin_embed, const Tensor<i64, 1>& positions);
index_t cf_15b(const Tensor<f32, 2>& sin_embed, const Tensor<i64, 1>& positions) {
#ifdef PRECIS_SHOULD_FAIL
  const auto y = cast<dtype_of<decltype(positions)>>(sin_embed);  // "like positions"
#else
  const auto y = cast<f32>(sin_embed);  // casts name their target
#endif
  return y.numel() + positions.numel();
}
