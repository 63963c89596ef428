// precis/core/precision_policy.hpp — which dtype each role of a model uses.
//
// A precision policy is a compile-time template parameter of every model and block. It maps
// the four free roles — activation, weight, KV-store, accumulator — to dtypes. Roles whose
// precision decides correctness are *pinned* to f32 and a policy cannot change them:
//
//   rope_table        cos/sin tables and inv_freq   (dtype-bugs E11–E15, seed bug 2)
//   sinks             gpt-oss attention sinks         (E23, E28)
//   router_logits     MoE router logits and top-k     (E18)
//   router_bias       MoE router bias                 (E28)
//   norm_accumulator  RMSNorm variance                (E21)
//   attention_scores  QKᵀ and softmax                 (E19, E20)
//
// There is no global default dtype and no "auto" (E6, E30): a policy names its types.
#pragma once

#include <concepts>  // std::same_as

#include <precis/core/dtype.hpp>  // dtype tags and concepts

namespace precis {

/// The dtype of every pinned role. Not a policy parameter.
using pinned_f32 = f32;

/// Marks a KV store type that differs from the compute type: reading and writing it goes through
/// the named quantizer `Quantizer` (e.g. fp8 with per-head f32 scales). A bare `f8_e4m3` or
/// `f16` KV store under a bf16 policy is rejected (dtype-bugs E8, E9: reinterpreted bits).
template <ElementDtype Store, class Quantizer>
struct quantized_kv {
  using store = Store;
  using quantizer = Quantizer;
};

template <class T>
inline constexpr bool is_quantized_kv = false;
template <class S, class Q>
inline constexpr bool is_quantized_kv<quantized_kv<S, Q>> = true;

/// The standard policy. `Weight` may be a block format (weights stay in their stored format).
template <ActivationDtype Act, Dtype Weight = Act, class KvStore = Act, FloatDtype Acc = f32>
struct precision_policy {
  using activation = Act;
  using weight = Weight;
  using kv_store = KvStore;
  using accumulator = Acc;
};

using f32_policy = precision_policy<f32>;
using bf16_policy = precision_policy<bf16>;

// One concept per pinned role, so that the diagnostic names the role a policy tried to change
// ("because 'sinks_pinned_f32<my_policy>' evaluated to false").
template <class P>
concept rope_table_pinned_f32 = (!requires { typename P::rope_table; }) || std::same_as<typename P::rope_table, f32>;
template <class P>
concept sinks_pinned_f32 = (!requires { typename P::sinks; }) || std::same_as<typename P::sinks, f32>;
template <class P>
concept router_logits_pinned_f32 =
    (!requires { typename P::router_logits; }) || std::same_as<typename P::router_logits, f32>;
template <class P>
concept router_bias_pinned_f32 = (!requires { typename P::router_bias; }) || std::same_as<typename P::router_bias, f32>;
template <class P>
concept norm_accumulator_pinned_f32 =
    (!requires { typename P::norm_accumulator; }) || std::same_as<typename P::norm_accumulator, f32>;
template <class P>
concept attention_scores_pinned_f32 =
    (!requires { typename P::attention_scores; }) || std::same_as<typename P::attention_scores, f32>;

/// The KV store is the compute (activation) type, or a named quantizer around another store type.
template <class P>
concept kv_store_is_compute_type_or_named_quantizer =
    std::same_as<typename P::kv_store, typename P::activation> || is_quantized_kv<typename P::kv_store>;

/// What every model and block accepts as its precision parameter.
template <class P>
concept PrecisionPolicy = requires {
  typename P::activation;
  typename P::weight;
  typename P::kv_store;
  typename P::accumulator;
} && ActivationDtype<typename P::activation> && Dtype<typename P::weight> && FloatDtype<typename P::accumulator> &&
                          kv_store_is_compute_type_or_named_quantizer<P> && rope_table_pinned_f32<P> &&
                          sinks_pinned_f32<P> && router_logits_pinned_f32<P> && router_bias_pinned_f32<P> &&
                          norm_accumulator_pinned_f32<P> && attention_scores_pinned_f32<P>;

static_assert(PrecisionPolicy<f32_policy> && PrecisionPolicy<bf16_policy>);

// ---------------------------------------------------------------------------------------------
// Roles: what a tensor *is* in a model decides its declared dtype. Loaders check a checkpoint
// tensor against `role_dtype_t<Role, Policy>`; pinned roles ignore the policy.
// ---------------------------------------------------------------------------------------------
namespace role {
struct activation {};        // hidden states                  → P::activation
struct weight {};            // projection / embedding weights  → P::weight (may be a block format)
struct bias {};              // projection biases               → P::activation
struct norm_weight {};       // RMSNorm gains                   → P::activation
struct kv_store {};          // KV-cache storage                → P::kv_store
struct rope_table {};        // inv_freq, cos/sin               → f32 (pinned)
struct sinks {};             // attention sinks                 → f32 (pinned)
struct router_logits {};     // MoE router logits               → f32 (pinned)
struct router_bias {};       // MoE router bias                 → f32 (pinned)
struct norm_accumulator {};  // RMSNorm variance                → f32 (pinned)
struct attention_scores {};  // QKᵀ, softmax                    → f32 (pinned)
struct positions {};         // token positions                 → i64
}  // namespace role

template <class Role, PrecisionPolicy P>
struct role_dtype;
template <PrecisionPolicy P> struct role_dtype<role::activation, P> { using type = typename P::activation; };
template <PrecisionPolicy P> struct role_dtype<role::weight, P> { using type = typename P::weight; };
template <PrecisionPolicy P> struct role_dtype<role::bias, P> { using type = typename P::activation; };
template <PrecisionPolicy P> struct role_dtype<role::norm_weight, P> { using type = typename P::activation; };
template <PrecisionPolicy P> struct role_dtype<role::kv_store, P> { using type = typename P::kv_store; };
template <PrecisionPolicy P> struct role_dtype<role::rope_table, P> { using type = pinned_f32; };
template <PrecisionPolicy P> struct role_dtype<role::sinks, P> { using type = pinned_f32; };
template <PrecisionPolicy P> struct role_dtype<role::router_logits, P> { using type = pinned_f32; };
template <PrecisionPolicy P> struct role_dtype<role::router_bias, P> { using type = pinned_f32; };
template <PrecisionPolicy P> struct role_dtype<role::norm_accumulator, P> { using type = pinned_f32; };
template <PrecisionPolicy P> struct role_dtype<role::attention_scores, P> { using type = pinned_f32; };
template <PrecisionPolicy P> struct role_dtype<role::positions, P> { using type = i64; };

/// The declared dtype of `Role` under policy `P`.
template <class Role, PrecisionPolicy P>
using role_dtype_t = typename role_dtype<Role, P>::type;

template <class Role>
inline constexpr bool is_pinned_role =
    std::same_as<Role, role::rope_table> || std::same_as<Role, role::sinks> || std::same_as<Role, role::router_logits> ||
    std::same_as<Role, role::router_bias> || std::same_as<Role, role::norm_accumulator> ||
    std::same_as<Role, role::attention_scores>;

}  // namespace precis
