// precis/nn/activation.hpp — the gated-MLP activations (the reference; the CPU kernel is
// backends/cpu/activation.hpp): Llama/Qwen's SiLU gate and gpt-oss's clamped SwiGLU, on
// separate gate/up tensors or on one fused gate_up tensor in either column layout.
//
// Math (one output element from one gate value g and one up value u, all in f32):
//   SiluGate        out = silu(g) · u = g·σ(g) · u                 Llama, SmolLM2, Qwen3 experts:
//                                                                  `down(act(gate(x)) * up(x))`
//   ClampedSwiglu   g' = min(g, limit)            (max side only)  gpt-oss experts (model-semantics
//                   u' = clamp(u, −limit, limit)  (both sides)     §1a "Experts"; HF GptOssExperts,
//                   out = g'·σ(α·g') · (u' + 1)   ("+1" on up)     OpenAI `swiglu`): α = 1.702,
//                                                                  limit = swiglu_limit = 7.0
//   σ(z) = 1 / (1 + exp(−z)).
// Precision: inputs are widened exactly to f32, the whole expression is evaluated in f32 and
// rounded once to the activation dtype D. (HF's eager bf16 path rounds after every torch op —
// silu, then the product — so its bf16 results can differ from this by one unit in the last
// place; the f32 evaluation is the more accurate of the two and the one a fused kernel computes.)
// The parameters α and limit are Scalar<f32>: they meet f32 values, and a config value enters
// through `Scalar<f32>::from(config.swiglu_limit)`. NaN propagates (min/clamp keep a NaN gate).
//
// Gate/up layouts of a fused [T, 2I] tensor (model-semantics §1.7 item 3) are named types:
//   gate_up::interleaved   columns g0 u0 g1 u1 …   gpt-oss `gate_up_proj` (even = gate, odd = up)
//   gate_up::halves        columns g0 … g_{I−1} | u0 … u_{I−1}   HF v5 fused Qwen experts (chunk(2))
// so `glu<gate_up::interleaved>(ClampedSwiglu{}, gu)` reads the gpt-oss layout, and reading it as
// halves is a different, visible type — not a flag. Separate gate [T, I] and up [T, I] tensors
// (two Linear outputs) use `glu(act, gate, up)`; they must have one dtype
// (same_dtype_no_implicit_cast).
#pragma once

#include <algorithm>    // std::min, std::clamp
#include <cmath>        // std::exp
#include <concepts>     // std::same_as
#include <string_view>  // std::string_view

#include <precis/core/dtype.hpp>       // precis::f32, ActivationDtype, same_dtype_no_implicit_cast
#include <precis/core/error.hpp>       // precis::config_error, shape_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>      // precis::Scalar, to_compute, from_compute
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/ops/host_tensor.hpp>  // precis::HostTensorOfRank, format_extents

namespace precis {

// ---------------------------------------------------------------------------------------------
// Activation policies
// ---------------------------------------------------------------------------------------------

/// silu(gate) · up (Llama, SmolLM2, Qwen3-MoE experts; HF `hidden_act: silu`).
struct SiluGate {
  static constexpr std::string_view name = "SiluGate";
  [[nodiscard]] float operator()(float gate, float up) const noexcept {
    const float sigmoid = 1.0f / (1.0f + std::exp(-gate));
    return (gate * sigmoid) * up;
  }
};

/// gpt-oss's SwiGLU: gate clamped above at `limit`, up clamped to ±limit, σ(α·gate), up + 1.
struct ClampedSwiglu {
  static constexpr std::string_view name = "ClampedSwiglu";
  Scalar<f32> alpha = 1.702;  ///< HF-GO hard-codes 1.702 (newer configs: `swiglu_alpha`)
  Scalar<f32> limit = 7.0;    ///< config `swiglu_limit`

  [[nodiscard]] float operator()(float gate, float up) const noexcept {
    const float a = alpha.value(), l = limit.value();
    const float g = std::min(gate, l);        // clamp(max = limit); a NaN gate stays NaN
    const float u = std::clamp(up, -l, l);    // clamp(-limit, limit)
    const float sigmoid = 1.0f / (1.0f + std::exp(-(a * g)));
    return (g * sigmoid) * (u + 1.0f);
  }
};

/// One of the gated activations above (a policy type).
template <class A>
concept GatedActivation = std::same_as<A, SiluGate> || std::same_as<A, ClampedSwiglu>;

/// The column layouts of a fused gate_up tensor [T, 2I].
namespace gate_up {
/// Even columns are gate, odd columns are up (gpt-oss; on disk too, model-semantics §1a).
struct interleaved {
  static constexpr std::string_view name = "interleaved";
  [[nodiscard]] static constexpr index_t gate_column(index_t j, index_t /*intermediate*/) noexcept { return 2 * j; }
  [[nodiscard]] static constexpr index_t up_column(index_t j, index_t /*intermediate*/) noexcept { return 2 * j + 1; }
};
/// The first I columns are gate, the last I are up (HF v5 fused Qwen experts, `chunk(2)`).
struct halves {
  static constexpr std::string_view name = "halves";
  [[nodiscard]] static constexpr index_t gate_column(index_t j, index_t /*intermediate*/) noexcept { return j; }
  [[nodiscard]] static constexpr index_t up_column(index_t j, index_t intermediate) noexcept { return intermediate + j; }
};
}  // namespace gate_up

template <class L>
concept GateUpLayout = std::same_as<L, gate_up::interleaved> || std::same_as<L, gate_up::halves>;

/// Gated activations run on the compute dtypes (f32/bf16/f16), never f64.
template <class D>
concept glu_input_is_activation = ActivationDtype<D>;

namespace detail {
/// Throws config_error for parameters no model uses and the math does not survive.
template <GatedActivation A>
void check_activation(const char* op, const A& act) {
  if constexpr (std::same_as<A, ClampedSwiglu>) {
    PRECIS_CHECK(act.limit.value() > 0.0f, config_error, "[", op, "] ClampedSwiglu limit must be > 0, got ",
                 act.limit.value());
  } else {
    (void)op;
    (void)act;
  }
}
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// glu (reference)
// ---------------------------------------------------------------------------------------------

/// act(gate, up) elementwise for separate gate [T, I] and up [T, I] of one dtype → [T, I].
template <GatedActivation A, HostTensorOfRank<2> G, HostTensorOfRank<2> U>
  requires glu_input_is_activation<dtype_of<G>> && same_dtype_no_implicit_cast<dtype_of<G>, dtype_of<U>>
[[nodiscard]] Tensor<dtype_of<G>, 2> glu(const A& act, const G& gate, const U& up) {
  using D = dtype_of<G>;
  const const_view_t<G> g = gate;
  const const_view_t<U> u = up;
  PRECIS_CHECK(g.extents() == u.extents(), shape_error, "[glu] gate ", format_extents(g.extents()), " and up ",
               format_extents(u.extents()), " differ");
  detail::check_activation("glu", act);
  Tensor<D, 2> out(g.extents());  // [T, I]
  for (index_t t = 0; t < g.extent(0); ++t)
    for (index_t j = 0; j < g.extent(1); ++j)
      out(t, j) = from_compute<D>(act(to_compute<D>(g(t, j)), to_compute<D>(u(t, j))));
  return out;
}

/// act(gate, up) for a fused gate_up [T, 2I] in layout L → [T, I].
template <GateUpLayout L, GatedActivation A, HostTensorOfRank<2> GU>
  requires glu_input_is_activation<dtype_of<GU>>
[[nodiscard]] Tensor<dtype_of<GU>, 2> glu(const A& act, const GU& gate_up) {
  using D = dtype_of<GU>;
  const const_view_t<GU> gu = gate_up;
  PRECIS_CHECK(gu.extent(1) % 2 == 0, shape_error, "[glu<", L::name, ">] fused gate_up ", format_extents(gu.extents()),
               " has an odd number of columns");
  detail::check_activation("glu", act);
  const index_t n_tok = gu.extent(0), inter = gu.extent(1) / 2;
  Tensor<D, 2> out({n_tok, inter});  // [T, I]
  for (index_t t = 0; t < n_tok; ++t)
    for (index_t j = 0; j < inter; ++j)
      out(t, j) = from_compute<D>(act(to_compute<D>(gu(t, L::gate_column(j, inter))),
                                      to_compute<D>(gu(t, L::up_column(j, inter)))));
  return out;
}

}  // namespace precis
