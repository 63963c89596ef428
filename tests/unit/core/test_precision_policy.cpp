// tests/unit/core/test_precision_policy.cpp — what PrecisionPolicy accepts and rejects, and which
// dtype each model role gets (core/precision_policy.hpp).
//
// Everything here is a compile-time fact: a rule that stops holding fails the build of this file.
// The rejected policies are archetypes of real bugs: a policy that moves a pinned role to bf16
// (dtype-bugs E12, E18–E21, E23, E28) and a KV store that differs from the compute dtype
// without a named quantizer (E5, E8, E9).
#include <concepts>  // std::same_as

#include <catch2/catch.hpp>  // TEST_CASE, TEMPLATE_TEST_CASE, STATIC_REQUIRE

#include <precis/core/dtype.hpp>             // dtype tags
#include <precis/core/precision_policy.hpp>  // precision_policy, PrecisionPolicy, role, role_dtype_t

using namespace precis;  // NOLINT(google-build-using-namespace): tests read better with bare dtype tags

namespace {

/// A stand-in for a KV quantizer (e.g. fp8 with per-head f32 scales); the policy only names it.
struct per_head_fp8_quantizer {};

// Policies that try to change a pinned role, one per role, each otherwise a valid bf16 policy.
struct rope_table_bf16_policy : bf16_policy {
  using rope_table = bf16;
};
struct sinks_bf16_policy : bf16_policy {
  using sinks = bf16;
};
struct router_logits_bf16_policy : bf16_policy {
  using router_logits = bf16;
};
struct router_bias_bf16_policy : bf16_policy {
  using router_bias = bf16;
};
struct norm_accumulator_bf16_policy : bf16_policy {
  using norm_accumulator = bf16;
};
struct attention_scores_f16_policy : precision_policy<f16> {
  using attention_scores = f16;
};
// Restating a pinned role as f32 is allowed: it changes nothing.
struct sinks_f32_policy : bf16_policy {
  using sinks = f32;
};

// Hand-written policies with an invalid free role.
struct f64_activation_policy {
  using activation = f64;  // f64 is host-side setup math only (E15)
  using weight = f64;
  using kv_store = f64;
  using accumulator = f64;
};
struct integer_accumulator_policy {
  using activation = bf16;
  using weight = bf16;
  using kv_store = bf16;
  using accumulator = i32;
};
struct missing_weight_policy {
  using activation = bf16;
  using kv_store = bf16;
  using accumulator = f32;
};

}  // namespace

TEST_CASE("PrecisionPolicy accepts the standard policies", "[core][policy][static]") {
  STATIC_REQUIRE(PrecisionPolicy<f32_policy>);
  STATIC_REQUIRE(PrecisionPolicy<bf16_policy>);
  STATIC_REQUIRE(PrecisionPolicy<precision_policy<f16>>);
  // Weights may stay in a block format; activations stay bf16.
  STATIC_REQUIRE(PrecisionPolicy<precision_policy<bf16, q4_0>>);
  STATIC_REQUIRE(PrecisionPolicy<precision_policy<bf16, mxfp4>>);
  // A KV store of another dtype is fine through a named quantizer.
  STATIC_REQUIRE(PrecisionPolicy<precision_policy<bf16, bf16, quantized_kv<f8_e4m3, per_head_fp8_quantizer>>>);
  STATIC_REQUIRE(PrecisionPolicy<sinks_f32_policy>);
}

TEST_CASE("PrecisionPolicy rejects a policy that changes a pinned role", "[core][policy][static]") {
  STATIC_REQUIRE_FALSE(PrecisionPolicy<rope_table_bf16_policy>);
  STATIC_REQUIRE_FALSE(PrecisionPolicy<sinks_bf16_policy>);
  STATIC_REQUIRE_FALSE(PrecisionPolicy<router_logits_bf16_policy>);
  STATIC_REQUIRE_FALSE(PrecisionPolicy<router_bias_bf16_policy>);
  STATIC_REQUIRE_FALSE(PrecisionPolicy<norm_accumulator_bf16_policy>);
  STATIC_REQUIRE_FALSE(PrecisionPolicy<attention_scores_f16_policy>);
  // ...and the concept that fails is the one named after the role (the diagnostic users see).
  STATIC_REQUIRE_FALSE(sinks_pinned_f32<sinks_bf16_policy>);
  STATIC_REQUIRE_FALSE(rope_table_pinned_f32<rope_table_bf16_policy>);
  STATIC_REQUIRE(rope_table_pinned_f32<sinks_bf16_policy>);
}

TEST_CASE("PrecisionPolicy rejects a KV store that differs from the compute dtype without quantized_kv<>",
          "[core][policy][static]") {
  STATIC_REQUIRE_FALSE(PrecisionPolicy<precision_policy<bf16, bf16, f8_e4m3>>);  // E8: fp8 bits reinterpreted
  STATIC_REQUIRE_FALSE(PrecisionPolicy<precision_policy<bf16, bf16, f16>>);      // E9: f16 view of a bf16 cache
  STATIC_REQUIRE_FALSE(PrecisionPolicy<precision_policy<bf16, bf16, f32>>);      // E5: default-f32 cache
  STATIC_REQUIRE_FALSE(kv_store_is_compute_type_or_named_quantizer<precision_policy<bf16, bf16, f8_e4m3>>);
}

TEST_CASE("PrecisionPolicy rejects invalid free roles", "[core][policy][static]") {
  STATIC_REQUIRE_FALSE(PrecisionPolicy<f64_activation_policy>);
  STATIC_REQUIRE_FALSE(PrecisionPolicy<integer_accumulator_policy>);
  STATIC_REQUIRE_FALSE(PrecisionPolicy<missing_weight_policy>);
  STATIC_REQUIRE_FALSE(PrecisionPolicy<int>);
}

TEMPLATE_TEST_CASE("pinned roles are f32 whatever the policy", "[core][policy][static]", role::rope_table,
                   role::sinks, role::router_logits, role::router_bias, role::norm_accumulator,
                   role::attention_scores) {
  STATIC_REQUIRE(is_pinned_role<TestType>);
  STATIC_REQUIRE(std::same_as<role_dtype_t<TestType, bf16_policy>, f32>);
  STATIC_REQUIRE(std::same_as<role_dtype_t<TestType, precision_policy<f16>>, f32>);
  STATIC_REQUIRE(std::same_as<role_dtype_t<TestType, precision_policy<bf16, q4_0>>, f32>);
  STATIC_REQUIRE(std::same_as<role_dtype_t<TestType, f32_policy>, f32>);
}

TEST_CASE("free roles take the policy's dtypes", "[core][policy][static]") {
  using P = precision_policy<bf16, q4_0, quantized_kv<f8_e4m3, per_head_fp8_quantizer>>;
  STATIC_REQUIRE(std::same_as<role_dtype_t<role::activation, P>, bf16>);
  STATIC_REQUIRE(std::same_as<role_dtype_t<role::weight, P>, q4_0>);
  STATIC_REQUIRE(std::same_as<role_dtype_t<role::bias, P>, bf16>);
  STATIC_REQUIRE(std::same_as<role_dtype_t<role::norm_weight, P>, bf16>);
  STATIC_REQUIRE(std::same_as<role_dtype_t<role::kv_store, P>, quantized_kv<f8_e4m3, per_head_fp8_quantizer>>);
  STATIC_REQUIRE(std::same_as<role_dtype_t<role::positions, P>, i64>);  // positions are integers (E13, E17)
  STATIC_REQUIRE_FALSE(is_pinned_role<role::activation>);
  STATIC_REQUIRE_FALSE(is_pinned_role<role::weight>);
  STATIC_REQUIRE_FALSE(is_pinned_role<role::positions>);
}
