// tests/static/can.hpp — named "can this be written?" concepts for the dtype rules.
//
// Each concept wraps one expression in a requires-expression, so `!can_add<Tensor<f16, 2>,
// Tensor<bf16, 2>>` is a compile-time fact. This works only because precis puts its rules in
// signatures (constraints or constrained deleted overloads): a rule enforced by a static_assert
// in a function body would leave the call well-formed here (style-anchors §5.1, "the trap").
// The requires-expressions sit inside named concepts because a bare `requires { ... }` outside
// a template hard-errors instead of yielding false (style-anchors §5.1).
#pragma once

#include <precis/core/cast.hpp>              // cast, to_float, round_to
#include <precis/core/precision_policy.hpp>  // PrecisionPolicy, role_dtype_t
#include <precis/core/scalar.hpp>            // Scalar
#include <precis/core/tensor.hpp>            // Tensor
#include <precis/backends/reference/backend.hpp>  // backends::Reference (attend)
#include <precis/nn/kv_cache.hpp>            // KvCache, PagedKvCache
#include <precis/nn/rope.hpp>                // InvFreq, RopeTable, apply_rope
#include <precis/nn/router.hpp>              // Router, SoftmaxThenTopK, TopKThenSoftmax
#include <precis/ops/elementwise.hpp>        // add, mul
#include <precis/ops/matmul.hpp>             // matmul
#include <precis/quant/dequantize.hpp>       // dequantize
#include <precis/quant/quant_tensor.hpp>     // QuantTensor
#include <precis/weights/any_weight.hpp>     // AnyWeight

namespace precis::static_checks {

// --- types ---------------------------------------------------------------------------------
template <class D, std::size_t R, class Dev = host>
concept can_name_tensor = requires { typename Tensor<D, R, Dev>; };

// --- ops -----------------------------------------------------------------------------------
template <class A, class B>
concept can_add = requires(const A& a, const B& b) { add(a, b); };
template <class A, class B>
concept can_mul = requires(const A& a, const B& b) { mul(a, b); };
template <class X, class W>
concept can_matmul = requires(const X& x, const W& w) { matmul(x, w); };
template <class Out, class X, class W>
concept can_matmul_out = requires(const X& x, const W& w) { matmul<Out>(x, w); };
template <class Out, class X, class W, class B>
concept can_matmul_bias = requires(const X& x, const W& w, const B& b) { matmul<Out>(x, w, b); };
template <class To, class X>
concept can_cast = requires(const X& x) { cast<To>(x); };
template <class To, class X>
concept can_to_float = requires(const X& x) { to_float<To>(x); };
template <class To, class X>
concept can_round_to = requires(const X& x) { round_to<To>(x); };

// --- RoPE ----------------------------------------------------------------------------------
template <class T>
concept can_name_rope_table = requires { typename RopeTable<T>; };
template <class X>
concept can_make_inv_freq = requires(const X& x) { InvFreq(x); };
template <class P>
concept can_build_rope_table = requires(const P& p, const InvFreq& inv) { RopeTable<f32>::from_positions(p, inv); };
template <class X>
concept can_apply_rope = requires(const X& x, const RopeTable<f32>& t) { apply_rope(x, t); };

// --- KV cache ------------------------------------------------------------------------------
template <class Store>
concept can_name_kv_cache = requires { typename KvCache<Store>; };
template <class Cache, class K>
concept can_append = requires(Cache& c, const K& k) { c.append(0, k, k); };
template <class Cache>
concept has_typed_keys = requires(const Cache& c) { c.keys(0); };
template <class Cache, class Other>
concept has_view_as = requires(const Cache& c) { c.template view<Other>(); };
template <class Cache, class Other>
concept has_reinterpret_as = requires(const Cache& c) { c.template reinterpret<Other>(); };

// --- attention (through a backend's attend: what models call) -----------------------------
template <class B, class Act, class X>
concept can_attend = requires(const B& b, PagedKvCache<Act>& c, std::span<const KvSeqId> s, const X& x,
                              const AttentionConfig& cfg) { b.template attend<Act>(c, 0, s, x, x, x, cfg); };
template <class B, class Act, class S>
concept can_attend_with_sinks = requires(const B& b, PagedKvCache<Act>& c, std::span<const KvSeqId> s,
                                         const Tensor<Act, 3>& x, const AttentionConfig& cfg, const S& sinks) {
  b.template attend<Act>(c, 0, s, x, x, x, cfg, sinks);
};

// --- router, layers ------------------------------------------------------------------------
template <class R, class L>
concept can_route = requires(const R& r, const L& l) { r(l, index_t{1}); };
template <class W, class X>
concept can_router_logits = requires(const Router<W>& r, const X& x) { r.logits(x); };

// --- quantized weights ---------------------------------------------------------------------
template <class To, class Q>
concept can_dequantize = requires(const Q& q) { dequantize<To>(q); };

// --- policies ------------------------------------------------------------------------------
template <class Role, class P>
concept can_resolve_role = requires { typename role_dtype_t<Role, P>; };

}  // namespace precis::static_checks
