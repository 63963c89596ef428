// precis/nn/moe.hpp — the expert half of a sparse MoE block: expert weight stacks in any
// storage format, the gated-MLP variants of the target models as named policies, and the scalar
// reference that computes Σ_j w_j · Expert_{e_j}(x) token by token (the math spec the CPU
// grouped kernel, backends/cpu/moe.hpp, is differential-tested against).
//
//   ExpertStack<F>            E matrices [E, N, K] (rows = outputs, checkpoint layout) in storage
//                             format F: f32/bf16/f16 (a TensorView<const F, 3>) or any BlockFormat
//                             (QuantView<F, 3>, experts on the leading axis — the HF/OpenAI
//                             `_blocks`/`_scales` [E, N, K/32, (16)] tensors as they are) — one
//                             [E, N, K] tensor, or E separate [N, K] matrices (per-expert
//                             checkpoint tensors, viewed in place rather than copied).
//   SeparateGateUp<F>         gate [E, I, H] and up [E, I, H]: Qwen3-MoE checkpoints store
//                             experts.{e}.gate_proj / up_proj (model-semantics §1b).
//   InterleavedGateUp<F>      gate_up [E, 2I, H]: even rows gate, odd rows up (gpt-oss §1a,
//                             gotcha §1.7.3; HF-MX `gate_up_proj_blocks` along dim 1).
//   gating G                  nn/activation.hpp's policies: SiluGate (a = silu(g)·u: Qwen3-MoE,
//                             Llama, §1b) and ClampedSwiglu{α = 1.702, limit = 7.0} (gpt-oss §1a:
//                             gate clamped above only, up clamped both sides, "+1" on up).
//   MoeExperts<G, L, Act, D>  one MoE layer's experts: gating G, gate/up layout L, down [E, H, I]
//                             in format D (default: L's format), optional biases [E, 2I] / [E, H]
//                             of dtype Act (gpt-oss: "the down bias is added per expert, before
//                             the routing weight"). D is its own parameter because the files
//                             people download mix them: llama.cpp's Q4_K_M stores a Qwen3-MoE's
//                             ffn_down_exps as Q6_K in some layers and Q4_K in others
//                             (llama-quant.cpp `use_more_bits`), its gate/up experts as Q4_K.
//   moe_experts(experts, x, routing) → Tensor<Act, 2>   the reference.
//
// The reference reads weights one row at a time through detail::expert_rows (an expert stack with
// its format erased), so the run-time-format layer (weights/any_experts.hpp) dispatches each
// projection on its own format: code grows with the number of formats, not with their product.
//
// Dtypes (dtype-bugs C7, E24 — HF's MXFP4 fallback met bf16 weights with f32 states and
// biases). The layer's type names its activation dtype Act, and that alone decides the output:
// x must be Tensor<Act> (moe_input_matches_activation), the biases are Act (like the bias of the
// backends' linear op), the result is Tensor<Act>. The weights are *storage* (like cpu::as_weight
// and QuantView): an f32 or mxfp4 stack under bf16 activations is a declared part of the type,
// never a fallback's choice. The gate/up layout is structural, so it is a type too.
//
// Rounding points (the spec; the CPU kernel follows it): per token t and selected expert e,
//   g, u  = f32 dot products of x_t (widened exactly) with the exact f32 weight values, + bias
//   h     = act(g, u) in f32, rounded once to Act (h is the down GEMM's activation input)
//   y     = f32 dot of h with the down row, + bias (f32, not rounded)
//   out_t = Σ_j w_j·y_j accumulated in f32 in routing order j = 0..k−1, rounded once to Act.
// Block formats dequantize exactly to f32 (quant/block_reference.hpp), so the weights enter
// without error; products accumulate in f32 (error ≤ γ_K·Σ|x·w|, Higham §3.1).
//
// What this is not: the router (nn/router.hpp computes the Routing), shared experts (none of
// the target models has one, §1b), fused half-split gate_up (HF v5 Qwen in-memory layout,
// §1.7.3: pass its two row halves as SeparateGateUp — float stacks are strided views).
#pragma once

#include <algorithm>    // std::fill, std::max
#include <cmath>        // std::isfinite
#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <optional>     // std::optional
#include <type_traits>  // std::remove_cvref_t
#include <utility>      // std::move
#include <vector>       // std::vector

#include <precis/core/dtype.hpp>        // precis::ActivationDtype, BlockFormat, f32, bf16, f16
#include <precis/core/error.hpp>        // precis::shape_error, range_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>       // precis::to_compute, from_compute
#include <precis/core/tensor.hpp>       // precis::Tensor
#include <precis/core/tensor_view.hpp>  // precis::TensorView
#include <precis/nn/activation.hpp>     // precis::SiluGate, ClampedSwiglu, GatedActivation, gate_up
#include <precis/nn/router.hpp>         // precis::Routing
#include <precis/ops/host_tensor.hpp>   // precis::HostTensorOfRank, materialize, format_extents
#include <precis/quant/dequantize.hpp>  // precis::dequantize_row
#include <precis/quant/quant_tensor.hpp>  // precis::QuantTensor
#include <precis/quant/quant_view.hpp>  // precis::QuantView

namespace precis {

// ---------------------------------------------------------------------------------------------
// Expert weight stacks
// ---------------------------------------------------------------------------------------------

/// Float dtypes an expert stack may be stored in (the CPU kernels' weight_storage_dtype).
template <class F>
concept expert_float_storage = std::same_as<F, f32> || std::same_as<F, bf16> || std::same_as<F, f16>;

/// Every storage format of expert weights: a float dtype or a block format.
template <class F>
concept ExpertWeightFormat = expert_float_storage<F> || BlockFormat<F>;

namespace detail {
/// What an expert stack of format F is made of (selected lazily: QuantView<f32> is ill-formed).
template <class F, bool Block = BlockFormat<F>>
struct expert_storage {
  using stack = TensorView<const F, 3>;   // [E, N, K]
  using matrix = TensorView<const F, 2>;  // [N, K]
};
template <class F>
struct expert_storage<F, true> {
  using stack = QuantView<F, 3>;
  using matrix = QuantView<F, 2>;
};
}  // namespace detail

/// E weight matrices [E, N, K] in format F (non-owning: the weights live in a checkpoint
/// mapping, a Tensor or a QuantTensor that must outlive the stack, like any view).
///
/// Two shapes of storage, one type: a stack ([E, N, K] in one tensor: GGUF `ffn_*_exps`, HF
/// `_blocks`/`_scales`, HF v5 fused `gate_up_proj`), or E separate matrices [N, K] (one view per
/// expert: Qwen3-MoE checkpoints store `mlp.experts.{e}.gate_proj.weight` as E tensors, model-
/// semantics §1b). Per-expert views read the checkpoint in place instead of copying the E
/// tensors into one allocation; every reader goes through expert(e), so the kernels do not care.
template <ExpertWeightFormat F>
class ExpertStack {
 public:
  using format = F;
  /// What one expert's matrix is: TensorView<const F, 2> or QuantView<F, 2>.
  using matrix_type = typename detail::expert_storage<F>::matrix;
  using storage_type = typename detail::expert_storage<F>::stack;

  ExpertStack() = default;
  explicit ExpertStack(storage_type w) : extents_(w.extents()), stack_(w) {
    if constexpr (!BlockFormat<F>)
      PRECIS_CHECK(w.extent(2) <= 1 || w.stride(2) == 1, shape_error, "[ExpertStack<", dtype_name<F>, ">] stack ",
                   format_extents(w.extents()), " has element stride ", w.stride(2),
                   "; weight rows must be contiguous (stride(2) == 1)");
    experts_.reserve(static_cast<std::size_t>(w.extent(0)));
    for (index_t e = 0; e < w.extent(0); ++e) experts_.push_back(w[e]);
  }

  /// E separate matrices [N, K] of one shape (at least one: the shape comes from them).
  explicit ExpertStack(std::vector<matrix_type> experts) : experts_(std::move(experts)) {
    PRECIS_CHECK(!experts_.empty(), shape_error, "[ExpertStack<", dtype_name<F>,
                 ">] no expert matrices; per-expert storage needs at least one [N, K] matrix");
    const extents_t<2> nk = experts_.front().extents();
    for (std::size_t e = 0; e < experts_.size(); ++e) {
      PRECIS_CHECK(experts_[e].extents() == nk, shape_error, "[ExpertStack<", dtype_name<F>, ">] expert ", e,
                   " has shape ", format_extents(experts_[e].extents()), ", expert 0 has ", format_extents(nk),
                   "; every expert of a stack has one [N, K] shape");
      if constexpr (!BlockFormat<F>)
        PRECIS_CHECK(nk[1] <= 1 || experts_[e].stride(1) == 1, shape_error, "[ExpertStack<", dtype_name<F>,
                     ">] expert ", e, " matrix ", format_extents(nk), " has element stride ", experts_[e].stride(1),
                     "; weight rows must be contiguous (stride(1) == 1)");
    }
    extents_ = {static_cast<index_t>(experts_.size()), nk[0], nk[1]};
  }

  [[nodiscard]] index_t n_experts() const noexcept { return extents_[0]; }
  [[nodiscard]] index_t rows() const noexcept { return extents_[1]; }  // N: outputs
  [[nodiscard]] index_t cols() const noexcept { return extents_[2]; }  // K: inputs
  [[nodiscard]] extents_t<3> extents() const noexcept { return extents_; }
  /// True when the E matrices are one [E, N, K] tensor (false: one view per expert).
  [[nodiscard]] bool is_stacked() const noexcept { return stack_.has_value(); }
  /// The [E, N, K] tensor of a stacked store (shape_error for per-expert storage).
  [[nodiscard]] const storage_type& storage() const {
    PRECIS_CHECK(stack_.has_value(), shape_error, "[ExpertStack<", dtype_name<F>, ">] ", format_extents(extents_),
                 " is stored as one matrix per expert, not as one [E, N, K] tensor");
    return *stack_;
  }

  /// Expert e's matrix [N, K].
  [[nodiscard]] const matrix_type& expert(index_t e) const {
    PRECIS_CHECK(e >= 0 && e < n_experts(), range_error, "[ExpertStack] expert ", e, " outside [0, ", n_experts(),
                 ")");
    return experts_[static_cast<std::size_t>(e)];
  }

  /// Bytes of one expert's matrix as stored (what streaming it reads).
  [[nodiscard]] std::size_t expert_bytes() const noexcept {
    const auto values = static_cast<std::size_t>(rows() * cols());
    if constexpr (BlockFormat<F>) return values / dtype_traits<F>::block_size * dtype_traits<F>::stored_bytes;
    else return values * sizeof(storage_t<F>);
  }

  /// Row n of expert e as exact f32 values into `out` [K] (the reference's weight access).
  void row_f32(index_t e, index_t n, float* out) const {
    const matrix_type& m = expert(e);
    if constexpr (BlockFormat<F>) {
      dequantize_row<f32>(m[n], TensorView<f32, 1>(out, {cols()}));
    } else {
      const storage_t<F>* src = &m(n, index_t{0});
      for (index_t i = 0; i < cols(); ++i) out[i] = static_cast<float>(to_compute<F>(src[i]));
    }
  }

 private:
  extents_t<3> extents_{};
  std::optional<storage_type> stack_;  // [E, N, K] when stored as one tensor
  std::vector<matrix_type> experts_;   // E views [N, K] (into stack_ or into separate tensors)
};

/// A float stack [E, N, K] (Tensor lvalue or TensorView) as expert weights.
template <HostTensorOfRank<3> W>
  requires expert_float_storage<dtype_of<W>>
[[nodiscard]] ExpertStack<dtype_of<W>> expert_stack(const W& w) {
  return ExpertStack<dtype_of<W>>(TensorView<const dtype_of<W>, 3>(w));
}
/// A block-quantized stack [E, N, K] (blocks along K) as expert weights.
template <BlockFormat F>
[[nodiscard]] ExpertStack<F> expert_stack(const QuantView<F, 3>& w) {
  return ExpertStack<F>(w);
}
template <BlockFormat F>
[[nodiscard]] ExpertStack<F> expert_stack(const QuantTensor<F, 3>& w) {
  return ExpertStack<F>(w.view());
}
/// E separate float matrices [N, K] (one checkpoint tensor per expert) as expert weights.
template <class F>
  requires expert_float_storage<F>
[[nodiscard]] ExpertStack<F> expert_stack(std::vector<TensorView<const F, 2>> experts) {
  return ExpertStack<F>(std::move(experts));
}
/// E separate block-quantized matrices [N, K] as expert weights.
template <BlockFormat F>
[[nodiscard]] ExpertStack<F> expert_stack(std::vector<QuantView<F, 2>> experts) {
  return ExpertStack<F>(std::move(experts));
}
/// Not from temporaries: the stack is a view and would dangle at the end of the expression.
template <class D>
void expert_stack(Tensor<D, 3>&&) = delete;
template <class F>
void expert_stack(QuantTensor<F, 3>&&) = delete;

// ---------------------------------------------------------------------------------------------
// Gate/up layouts (structural: a type each)
// ---------------------------------------------------------------------------------------------

/// Qwen3-MoE: separate gate [E, I, H] and up [E, I, H] stacks (§1b). Their outputs, and a
/// gate/up bias [E, 2I] (no Qwen3 checkpoint has one), are laid out as [gate | up]
/// (gate_up::halves).
template <ExpertWeightFormat F>
struct SeparateGateUp {
  using format = F;
  using columns = gate_up::halves;  // of the [T, 2I] pre-activations and of the bias
  ExpertStack<F> gate;  // [E, I, H]
  ExpertStack<F> up;    // [E, I, H]

  [[nodiscard]] index_t n_experts() const noexcept { return gate.n_experts(); }
  [[nodiscard]] index_t intermediate() const noexcept { return gate.rows(); }
  [[nodiscard]] index_t hidden() const noexcept { return gate.cols(); }
  void check(const char* op) const {
    PRECIS_CHECK(gate.extents() == up.extents(), shape_error, "[", op, "] gate stack ", format_extents(gate.extents()),
                 " and up stack ", format_extents(up.extents()), " differ; both are [E, I, H]");
  }
};

/// gpt-oss: one gate_up stack [E, 2I, H], row 2i = gate i, row 2i+1 = up i (§1a, §1.7.3); its
/// outputs and the gate_up bias [E, 2I] are interleaved the same way (gate_up::interleaved).
template <ExpertWeightFormat F>
struct InterleavedGateUp {
  using format = F;
  using columns = gate_up::interleaved;
  ExpertStack<F> gate_up;  // [E, 2I, H]

  [[nodiscard]] index_t n_experts() const noexcept { return gate_up.n_experts(); }
  [[nodiscard]] index_t intermediate() const noexcept { return gate_up.rows() / 2; }
  [[nodiscard]] index_t hidden() const noexcept { return gate_up.cols(); }
  void check(const char* op) const {
    PRECIS_CHECK(gate_up.rows() % 2 == 0, shape_error, "[", op, "] interleaved gate_up stack ",
                 format_extents(gate_up.extents()), " has an odd number of rows; expected [E, 2I, H]");
  }
};

/// How an MoE layer stores its gate/up projections (a type each: the layout is structural).
template <class L>
concept ExpertGateUpLayout = requires(const L& l) {
  typename L::format;
  requires GateUpLayout<typename L::columns>;  // nn/activation.hpp's column layouts
  { l.n_experts() } -> std::same_as<index_t>;
  { l.intermediate() } -> std::same_as<index_t>;
  { l.hidden() } -> std::same_as<index_t>;
  l.check("");
};

// ---------------------------------------------------------------------------------------------
// MoeExperts
// ---------------------------------------------------------------------------------------------

/// x reaching a MoeExperts<…, Act> is Tensor<Act> (C7; E24).
template <class In, class Act>
concept moe_input_matches_activation = std::same_as<std::remove_cv_t<In>, Act>;

/// Expert biases have the layer's activation dtype (as a linear op's bias has its output dtype).
template <class B, class Act>
concept expert_bias_matches_activation = std::same_as<std::remove_cv_t<B>, Act>;

namespace detail {
/// Checks the down stack [E, H, I] and the optional biases [E, 2I] / [E, H] against the gate/up
/// geometry (shared by MoeExperts and the run-time-format AnyMoeExperts).
template <class Bias>
void check_moe_geometry(const char* op, index_t n_exp, index_t hid, index_t inter, const extents_t<3>& down,
                        const Bias* gate_up_bias, const Bias* down_bias) {
  PRECIS_CHECK(down == (extents_t<3>{n_exp, hid, inter}), shape_error, "[", op, "] down stack ", format_extents(down),
               "; expected [E, H, I] = ", format_extents(extents_t<3>{n_exp, hid, inter}));
  if (gate_up_bias != nullptr)
    PRECIS_CHECK(gate_up_bias->extents() == (extents_t<2>{n_exp, 2 * inter}), shape_error, "[", op, "] gate_up bias ",
                 format_extents(gate_up_bias->extents()), "; expected [E, 2I] = ",
                 format_extents(extents_t<2>{n_exp, 2 * inter}));
  if (down_bias != nullptr)
    PRECIS_CHECK(down_bias->extents() == (extents_t<2>{n_exp, hid}), shape_error, "[", op, "] down bias ",
                 format_extents(down_bias->extents()), "; expected [E, H] = ", format_extents(extents_t<2>{n_exp, hid}));
}
}  // namespace detail

/// The experts of one MoE layer: gating G, gate/up layout L, down [E, H, I] in format D,
/// optional biases.
template <GatedActivation G, ExpertGateUpLayout L, ActivationDtype Act, ExpertWeightFormat D = typename L::format>
class MoeExperts {
 public:
  using gating = G;
  using layout = L;
  using format = typename L::format;  // of the gate/up stacks
  using down_format = D;
  using activation = Act;

  /// No biases (Qwen3-MoE).
  MoeExperts(G gating_fn, L gate_up, ExpertStack<D> down)
      : gating_(gating_fn), gate_up_(gate_up), down_(down) {
    check();
  }

  /// With gate_up bias [E, 2I] (in L's row order) and down bias [E, H], both of dtype Act (gpt-oss).
  template <HostTensorOfRank<2> B1, HostTensorOfRank<2> B2>
    requires expert_bias_matches_activation<dtype_of<B1>, Act> && expert_bias_matches_activation<dtype_of<B2>, Act>
  MoeExperts(G gating_fn, L gate_up, ExpertStack<D> down, const B1& gate_up_bias, const B2& down_bias)
      : gating_(gating_fn),
        gate_up_(gate_up),
        down_(down),
        gate_up_bias_(materialize(gate_up_bias)),
        down_bias_(materialize(down_bias)) {
    check();
  }

  [[nodiscard]] index_t n_experts() const noexcept { return gate_up_.n_experts(); }
  [[nodiscard]] index_t hidden() const noexcept { return gate_up_.hidden(); }
  [[nodiscard]] index_t intermediate() const noexcept { return gate_up_.intermediate(); }
  [[nodiscard]] const G& gating_fn() const noexcept { return gating_; }
  [[nodiscard]] const L& gate_up() const noexcept { return gate_up_; }
  [[nodiscard]] const ExpertStack<D>& down() const noexcept { return down_; }
  [[nodiscard]] bool has_bias() const noexcept { return gate_up_bias_.has_value(); }
  [[nodiscard]] const Tensor<Act, 2>& gate_up_bias() const { return *gate_up_bias_; }  // [E, 2I]
  [[nodiscard]] const Tensor<Act, 2>& down_bias() const { return *down_bias_; }        // [E, H]

  /// Weight bytes one expert's MLP streams (gate + up + down, as stored).
  [[nodiscard]] std::size_t expert_bytes() const noexcept {
    if constexpr (requires { gate_up_.gate_up; }) return gate_up_.gate_up.expert_bytes() + down_.expert_bytes();
    else return gate_up_.gate.expert_bytes() + gate_up_.up.expert_bytes() + down_.expert_bytes();
  }

 private:
  void check() const {
    gate_up_.check("MoeExperts");
    detail::check_activation("MoeExperts", gating_);
    detail::check_moe_geometry("MoeExperts", n_experts(), hidden(), intermediate(), down_.extents(),
                               gate_up_bias_ ? &*gate_up_bias_ : nullptr, down_bias_ ? &*down_bias_ : nullptr);
  }

  G gating_;
  L gate_up_;
  ExpertStack<D> down_;                         // [E, H, I]
  std::optional<Tensor<Act, 2>> gate_up_bias_;  // [E, 2I]
  std::optional<Tensor<Act, 2>> down_bias_;     // [E, H]
};

template <class T>
inline constexpr bool is_moe_experts = false;
template <class G, class L, class Act, class D>
inline constexpr bool is_moe_experts<MoeExperts<G, L, Act, D>> = true;

namespace detail {

/// Checks x [T, H] and routing [T, k] against the experts (shared by every implementation).
template <class Experts, class XV>
void check_moe_args(const char* op, const Experts& ex, const XV& xv, const Routing& routing) {
  PRECIS_CHECK(xv.extent(1) == ex.hidden(), shape_error, "[", op, "] x ", format_extents(xv.extents()),
               " for experts of hidden size ", ex.hidden());
  PRECIS_CHECK(routing.experts.extents() == routing.weights.extents(), shape_error, "[", op, "] routing experts ",
               format_extents(routing.experts.extents()), " and weights ", format_extents(routing.weights.extents()),
               " differ");
  PRECIS_CHECK(routing.experts.extent(0) == xv.extent(0), shape_error, "[", op, "] routing for ",
               routing.experts.extent(0), " tokens, x has ", xv.extent(0));
  for (index_t t = 0; t < routing.experts.extent(0); ++t)
    for (index_t j = 0; j < routing.experts.extent(1); ++j) {
      const index_t e = routing.experts(t, j);
      PRECIS_CHECK(e >= 0 && e < ex.n_experts(), range_error, "[", op, "] token ", t, " slot ", j, ": expert ", e,
                   " outside [0, ", ex.n_experts(), ")");
      PRECIS_CHECK(std::isfinite(routing.weights(t, j)), range_error, "[", op, "] token ", t, " slot ", j,
                   ": routing weight ", routing.weights(t, j), " is not finite");
    }
}

[[nodiscard]] inline float dot_f32(const float* a, const float* b, index_t n) noexcept {
  float s = 0.0f;
  for (index_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace detail

namespace detail {

/// One expert stack with its format erased, for the reference: row n of expert e as exact f32
/// values. Points at the stack (which must outlive it); one indirect call per row.
struct expert_rows {
  const void* stack = nullptr;
  void (*read)(const void*, index_t e, index_t n, float* out) = nullptr;

  template <ExpertWeightFormat F>
  [[nodiscard]] static expert_rows of(const ExpertStack<F>& s) noexcept {
    return {&s, [](const void* p, index_t e, index_t n, float* out) {
              static_cast<const ExpertStack<F>*>(p)->row_f32(e, n, out);
            }};
  }
  void operator()(index_t e, index_t n, float* out) const { read(stack, e, n, out); }
};

/// What the reference computes with, formats erased: gating, the gate and up rows (for the
/// interleaved layout both are the one gate_up stack, rows in its order), the down rows, biases.
template <class G, ActivationDtype Act>
struct moe_reference_args {
  G gating;
  expert_rows gate, up, down;
  const Tensor<Act, 2>* gate_up_bias = nullptr;  // [E, 2I], C's column order
  const Tensor<Act, 2>* down_bias = nullptr;     // [E, H]
  index_t n_experts = 0, hid = 0, inter = 0;
};

/// The spec, token by token and expert by expert, in the rounding points of the header comment.
/// C: where gate i and up i sit in the bias row (and in the gate_up rows when interleaved).
template <GateUpLayout C, class G, ActivationDtype Act, class XV>
[[nodiscard]] Tensor<Act, 2> moe_reference(const moe_reference_args<G, Act>& a, const XV& xv, const Routing& routing) {
  const index_t n_tok = xv.extent(0), k = routing.experts.extent(1);
  const index_t hid = a.hid, inter = a.inter;
  // Separate stacks: gate i and up i are row i of each; one interleaved stack: rows C's columns.
  constexpr bool one_stack = std::same_as<C, gate_up::interleaved>;
  Tensor<Act, 2> out({n_tok, hid});  // [T, H]
  std::vector<float> xt(static_cast<std::size_t>(hid)), h(static_cast<std::size_t>(inter));
  std::vector<float> acc(static_cast<std::size_t>(hid)), row(static_cast<std::size_t>(std::max(hid, inter)));
  const auto bias = [](const Tensor<Act, 2>& b, index_t e, index_t i) { return static_cast<float>(to_compute<Act>(b(e, i))); };
  for (index_t t = 0; t < n_tok; ++t) {
    for (index_t p = 0; p < hid; ++p) xt[static_cast<std::size_t>(p)] = static_cast<float>(to_compute<Act>(xv(t, p)));
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (index_t j = 0; j < k; ++j) {
      const index_t e = routing.experts(t, j);
      for (index_t i = 0; i < inter; ++i) {
        a.gate(e, one_stack ? C::gate_column(i, inter) : i, row.data());
        float g = detail::dot_f32(xt.data(), row.data(), hid);
        a.up(e, one_stack ? C::up_column(i, inter) : i, row.data());
        float u = detail::dot_f32(xt.data(), row.data(), hid);
        if (a.gate_up_bias != nullptr) {
          g += bias(*a.gate_up_bias, e, C::gate_column(i, inter));
          u += bias(*a.gate_up_bias, e, C::up_column(i, inter));
        }
        // h is the down GEMM's Act input: one rounding of the f32 activation value.
        h[static_cast<std::size_t>(i)] = static_cast<float>(to_compute<Act>(from_compute<Act>(a.gating(g, u))));
      }
      const float w = routing.weights(t, j);
      for (index_t n = 0; n < hid; ++n) {
        a.down(e, n, row.data());
        float y = detail::dot_f32(h.data(), row.data(), inter);
        if (a.down_bias != nullptr) y += bias(*a.down_bias, e, n);
        acc[static_cast<std::size_t>(n)] += w * y;
      }
    }
    for (index_t n = 0; n < hid; ++n) out(t, n) = from_compute<Act>(acc[static_cast<std::size_t>(n)]);
  }
  return out;
}

}  // namespace detail

/// The reference: out[t] = Σ_j w[t, j]·Expert_{e[t, j]}(x[t]) for x [T, H] → [T, H] of dtype Act.
/// Token by token, expert by expert, in the rounding points of the header comment.
template <class G, class L, ActivationDtype Act, class D, HostTensorOfRank<2> X>
  requires moe_input_matches_activation<dtype_of<X>, Act>
[[nodiscard]] Tensor<Act, 2> moe_experts(const MoeExperts<G, L, Act, D>& ex, const X& x, const Routing& routing) {
  const const_view_t<X> xv = x;  // [T, H]
  detail::check_moe_args("moe_experts", ex, xv, routing);
  const L& gu = ex.gate_up();
  detail::moe_reference_args<G, Act> a{ex.gating_fn(), {}, {}, detail::expert_rows::of(ex.down())};
  if constexpr (requires { gu.gate_up; }) {
    a.gate = a.up = detail::expert_rows::of(gu.gate_up);
  } else {
    a.gate = detail::expert_rows::of(gu.gate);
    a.up = detail::expert_rows::of(gu.up);
  }
  if (ex.has_bias()) {
    a.gate_up_bias = &ex.gate_up_bias();
    a.down_bias = &ex.down_bias();
  }
  a.n_experts = ex.n_experts();
  a.hid = ex.hidden();
  a.inter = ex.intermediate();
  return detail::moe_reference<typename L::columns>(a, xv, routing);
}

}  // namespace precis
