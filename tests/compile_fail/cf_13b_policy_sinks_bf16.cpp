// compile_fail 13b — dtype-bugs §3 entry 13, policy part: a precision policy mapping Sinks
// (role::sinks) to bf16. Class C5/C8 (E28: DeepSeek-V4 `save_pretrained` "silently downcasts 417
// FP32 tensors to BF16 ... including attn_sink"). The sinks role is pinned to f32
// (sinks_pinned_f32, core/precision_policy.hpp).
// expect-error: (satisfaction of|because|does not satisfy) 'sinks_pinned_f32[<']
#include <precis/core/precision_policy.hpp>  // precis::bf16_policy, role_dtype_t, role::sinks

using namespace precis;

struct all_bf16_policy : bf16_policy {
#ifdef PRECIS_SHOULD_FAIL
  using sinks = bf16;
#endif
};

using sinks_dtype = role_dtype_t<role::sinks, all_bf16_policy>;
static_assert(std::same_as<sinks_dtype, f32>);
