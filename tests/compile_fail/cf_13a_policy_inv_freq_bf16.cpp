// compile_fail 13a — dtype-bugs §3 entry 13, policy part: a precision policy mapping InvFreq
// (role::rope_table) to bf16. Class C5 (E12: `model.to(bf16)` / torch_dtype rounded inv_freq
// and rebuilt the cos/sin cache in bf16; NeMo: "a later .float() can't recover the lost bits").
// Pinned roles are f32 by construction: a policy that tries to change one is not a
// PrecisionPolicy (rope_table_pinned_f32, core/precision_policy.hpp), so no model, block or
// loader (role_dtype_t) accepts it.
// expect-error: (satisfaction of|because|does not satisfy) 'rope_table_pinned_f32[<']
#include <precis/core/precision_policy.hpp>  // precis::bf16_policy, role_dtype_t, role::rope_table

using namespace precis;

struct all_bf16_policy : bf16_policy {
#ifdef PRECIS_SHOULD_FAIL
  using rope_table = bf16;  // "make everything bf16", inv_freq included
#endif
};

using inv_freq_dtype = role_dtype_t<role::rope_table, all_bf16_policy>;
static_assert(std::same_as<inv_freq_dtype, f32>);
