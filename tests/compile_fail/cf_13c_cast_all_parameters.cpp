// compile_fail 13c — dtype-bugs §3 entry 13, `model.cast_all<bf16>()`: a generic "cast every
// floating parameter" cannot be formed. Class C5 (E12: `nn.Module.to` rounds floating-point
// buffers, inv_freq included; keys_values#5: f32 score buffers end up bf16).
//
// precis has no cast_all member to call, so this case tests the nearest thing a user can write:
// a generic visitor applying cast<bf16> to each parameter of a block. It cannot be
// instantiated, because the precision-pinned parameters (InvFreq) are their own types, not
// tensors: `cast` accepts host tensors only (detail::host_tensor_input, i.e.
// TensorLike), so there is no way to reach their storage generically. Changing a block's
// precision means instantiating it with another policy — whose pinned roles stay f32 (13a/13b).
// The twin visits only the policy-following weight tensors, by name.
// g++ reports the failed constraint (host_tensor_input); clang++ reports the same fact one step
// earlier, on cast's return type Tensor<To, rank_of<X>>, whose rank_of requires TensorLike.
// expect-error: (satisfaction of|because|does not satisfy) 'host_tensor_input[<']|constraints not satisfied for variable template 'rank_of' \[with T = precis::InvFreq
#include <tuple>  // std::apply, std::tie

#include <precis/core/cast.hpp>     // precis::cast
#include <precis/nn/rope.hpp>       // precis::InvFreq

using namespace precis;

struct AttentionParams {
  Tensor<f32, 2> q_proj;  // [H·Dh, hidden]
  Tensor<f32, 2> o_proj;  // [hidden, H·Dh]
  InvFreq inv_freq;       // pinned f32
};

index_t cf_13c(const AttentionParams& p);
index_t cf_13c(const AttentionParams& p) {
  index_t converted = 0;
  const auto cast_to_bf16 = [&](const auto&... param) { ((converted += cast<bf16>(param).numel()), ...); };
#ifdef PRECIS_SHOULD_FAIL
  std::apply(cast_to_bf16, std::tie(p.q_proj, p.o_proj, p.inv_freq));  // "cast_all"
#else
  std::apply(cast_to_bf16, std::tie(p.q_proj, p.o_proj));
#endif
  return converted;
}
