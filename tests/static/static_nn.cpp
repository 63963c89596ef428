// tests/static/static_nn.cpp — compile-time facts about the block-level dtype rules (building
// this file is the test). dtype-bugs §3 "must not compile" entries 4–7, 9–11, 13, 14, 16 and
// both seed bugs.

#include "can.hpp"  // precis::static_checks::can_*

namespace precis::static_checks {

// --- RoPE (C3; E11–E15, seed bug 2) --------------------------------------------------------
static_assert(can_name_rope_table<f32>);
static_assert(!can_name_rope_table<bf16>);
static_assert(!can_name_rope_table<f64>);
static_assert(can_make_inv_freq<Tensor<f32, 1>>);
static_assert(!can_make_inv_freq<Tensor<f64, 1>>);
static_assert(!can_make_inv_freq<Tensor<bf16, 1>>);
static_assert(can_build_rope_table<Tensor<i32, 1>>);
static_assert(can_build_rope_table<TensorView<const i64, 1>>);
static_assert(!can_build_rope_table<Tensor<bf16, 1>>);
static_assert(!can_build_rope_table<Tensor<f32, 1>>);
static_assert(!can_build_rope_table<Tensor<i32, 2>>);
static_assert(can_apply_rope<Tensor<bf16, 3>>);
static_assert(can_apply_rope<TensorView<const f16, 3>>);
static_assert(!can_apply_rope<Tensor<f64, 3>>);
static_assert(!can_apply_rope<Tensor<bf16, 2>>);

// --- KV cache (C2; E5–E9, seed bug 1) ------------------------------------------------------
using fp8_store = quantized_kv<f8_e4m3, PerHeadScale>;
static_assert(can_name_kv_cache<bf16>);
static_assert(can_name_kv_cache<fp8_store>);
static_assert(!can_name_kv_cache<f8_e4m3>);  // a bare fp8 store: no quantizer named (E8, E9)
static_assert(!can_name_kv_cache<f64>);
static_assert(can_append<KvCache<f32>, Tensor<f32, 3>>);
static_assert(!can_append<KvCache<f32>, Tensor<bf16, 3>>);  // seed bug 1
static_assert(!can_append<KvCache<bf16>, Tensor<f16, 3>>);
static_assert(!can_append<KvCache<fp8_store>, Tensor<bf16, 3>>);
static_assert(!can_append<KvCache<fp8_store>, Tensor<f8_e4m3, 3>>);
static_assert(can_append<KvCache<fp8_store>, QuantizedKv<f8_e4m3, PerHeadScale>>);
static_assert(!can_append<KvCache<fp8_store>, QuantizedKv<f8_e5m2, PerHeadScale>>);
static_assert(has_typed_keys<KvCache<bf16>>);
static_assert(!has_typed_keys<KvCache<fp8_store>>);
static_assert(!has_view_as<KvCache<bf16>, f16>);  // E9: no reinterpretation of cache storage
static_assert(!has_reinterpret_as<KvCache<bf16>, f16>);
static_assert(std::same_as<decltype(backends::Reference{}.make_kv_cache<bf16>(KvLayerPlan(full_attention_layers{}, 1),
                                                                           PagedKvSize{})),
                           PagedKvCache<bf16>>);  // a backend makes the cache of the compute type

// --- attention and sinks through a backend (C10; E16, E23, E30) ----------------------------
static_assert(can_attend<backends::Reference, bf16, Tensor<bf16, 3>>);
static_assert(can_attend<backends::Reference, f32, TensorView<const f32, 3>>);
static_assert(!can_attend<backends::Reference, bf16, Tensor<f32, 3>>);  // q/k/v of another dtype
static_assert(can_attend_with_sinks<backends::Reference, bf16, Tensor<f32, 1>>);
static_assert(!can_attend_with_sinks<backends::Reference, bf16, Tensor<bf16, 1>>);  // E23: f32 sinks
static_assert(!can_attend_with_sinks<backends::Reference, f32, Tensor<f16, 1>>);

// --- router (C6; E18) ----------------------------------------------------------------------
static_assert(can_route<TopKThenSoftmax, Tensor<f32, 2>>);
static_assert(can_route<SoftmaxThenTopK, TensorView<const f32, 2>>);
static_assert(!can_route<TopKThenSoftmax, Tensor<bf16, 2>>);
static_assert(!can_route<SoftmaxThenTopK, Tensor<bf16, 2>>);
static_assert(can_router_logits<bf16, Tensor<bf16, 2>>);
static_assert(!can_router_logits<bf16, Tensor<f32, 2>>);  // E2

// --- quantized weights (C7; E25, E26) -------------------------------------------------------
static_assert(!TensorLike<QuantTensor<q4_0, 2>>);               // E26: no dtype to borrow
static_assert(can_dequantize<bf16, QuantTensor<mxfp4, 3>>);
static_assert(!can_dequantize<f64, QuantTensor<mxfp4, 3>>);

// --- precision policies: pinned roles (C5; E12, E28) ---------------------------------------
struct policy_inv_freq_bf16 : bf16_policy {
  using rope_table = bf16;
};
struct policy_sinks_bf16 : bf16_policy {
  using sinks = bf16;
};
struct policy_router_bf16 : bf16_policy {
  using router_logits = bf16;
};
struct policy_bare_fp8_kv : bf16_policy {
  using kv_store = f8_e4m3;
};
static_assert(PrecisionPolicy<bf16_policy>);
static_assert(PrecisionPolicy<precision_policy<bf16, q4_0, quantized_kv<f8_e4m3, PerHeadScale>>>);
static_assert(!PrecisionPolicy<policy_inv_freq_bf16>);
static_assert(!PrecisionPolicy<policy_sinks_bf16>);
static_assert(!PrecisionPolicy<policy_router_bf16>);
static_assert(!PrecisionPolicy<policy_bare_fp8_kv>);
static_assert(can_resolve_role<role::sinks, bf16_policy>);
static_assert(std::same_as<role_dtype_t<role::sinks, bf16_policy>, f32>);
static_assert(!can_resolve_role<role::sinks, policy_sinks_bf16>);
// There is no "cast every parameter": pinned parameters are not tensors cast<> can see.
static_assert(!can_cast<bf16, InvFreq>);
static_assert(!can_cast<bf16, AnyWeight>);  // a stored weight is not a tensor (C11, cf_16)

}  // namespace precis::static_checks
