// precis/nn/norm.hpp — RMSNorm with its two cast orders as named policies (the reference; the
// CPU kernel is backends/cpu/rmsnorm.hpp), including Qwen3's per-head q/k norm.
//
// Why the cast order is a type: the target models disagree on *where* the one rounding to the
// activation dtype D happens (model-semantics §1a, §1b, §1.7 item 1), and the two orders give
// different bf16 values on ordinary inputs:
//
//   x̂ = x · rsqrt(mean(x²) + eps)      f32: Σx² accumulated in f32 (role::norm_accumulator is
//                                       pinned to f32 — dtype-bugs E21), eps added in f32
//   NormThenCast      y = round_D(w · round_D(x̂))   Llama, SmolLM2, Qwen3(-MoE/-Omni):
//                                                    HF `self.weight * hidden.to(input_dtype)`
//   MultiplyThenCast  y = round_D(w · x̂)            gpt-oss: HF `(self.weight * hidden).to(
//                                                    input_dtype)`, "main diff with Llama"
//
// Products are f32 (a bf16·bf16 torch multiply is an f32 product rounded once), so for D = f32
// the two orders are the same function; for bf16/f16 NormThenCast rounds twice and differs from
// MultiplyThenCast by one unit in the last place on a fraction of the elements
// (tests/unit/blocks/test_norm.cpp derives one such case by hand: x = [3, 4], w = 1.75 gives
// 1.984375 vs 1.9765625). A model picks its order by naming the policy:
// `rms_norm<MultiplyThenCast>(x, w, eps)` — there is no boolean to forget.
//
// Weight typing (role::norm_weight; the rule is in the signature, rms_norm_weight_dtype_allowed):
//   NormThenCast      w has x's dtype. HF Llama with an f32 weight and bf16 x returns *f32*
//                     (f32 · bf16 promotes — dtype-bugs class C1/C4); precis rejects the pair and
//                     the fix is an explicit cast<bf16>(w) (or an f32 model).
//   MultiplyThenCast  w has x's dtype or is f32. gpt-oss ships bf16 norm weights and HF keeps the
//                     norm modules in fp32 (`_keep_in_fp32_modules`); because the multiply is an
//                     f32 multiply either way, a bf16 weight and its exact widening cast<f32>(w)
//                     give bit-identical outputs (tested). precis loads the checkpoint's bf16 as
//                     it is (role::norm_weight → the activation dtype); an f32 copy is allowed,
//                     never required.
//
// Shapes: the norm runs over the last axis of x [..., n] with w [n]:
//   [T, hidden] with w [hidden]          the block norms (input/post-attention/final)
//   [T, H, Dh]  with w [Dh]              Qwen3 q_norm / k_norm: per head over head_dim, applied
//                                        before RoPE, V not normalised (model-semantics §1b)
// eps is a Scalar<f32> (rms_norm_eps: 1e-5 gpt-oss and SmolLM2, 1e-6 Qwen3): it is added to the
// f32 accumulator, so it is an f32 value, checked once (`Scalar<f32>::from(config.eps)`).
#pragma once

#include <cmath>        // std::sqrt
#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <string_view>  // std::string_view
#include <type_traits>  // std::remove_cv_t
#include <utility>      // std::move

#include <precis/core/dtype.hpp>       // precis::f32, ActivationDtype
#include <precis/core/error.hpp>       // precis::config_error, shape_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>      // precis::Scalar, to_compute, from_compute
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/ops/host_tensor.hpp>  // precis::HostTensor, HostTensorOfRank, materialize, format_extents

namespace precis {

// ---------------------------------------------------------------------------------------------
// Cast-order policies
// ---------------------------------------------------------------------------------------------

/// Llama / Qwen order: normalise, round x̂ to D, multiply by w in f32, round again.
struct NormThenCast {
  static constexpr std::string_view name = "NormThenCast";
  /// One output element from the f32 weight value and the f32 normalised value x̂.
  template <ActivationDtype D>
  [[nodiscard]] static storage_t<D> finish(float w, float x_hat) noexcept {
    return from_compute<D>(w * to_compute<D>(from_compute<D>(x_hat)));
  }
};

/// gpt-oss order: normalise, multiply by w in f32, round once.
struct MultiplyThenCast {
  static constexpr std::string_view name = "MultiplyThenCast";
  template <ActivationDtype D>
  [[nodiscard]] static storage_t<D> finish(float w, float x_hat) noexcept {
    return from_compute<D>(w * x_hat);
  }
};

/// One of the two RMSNorm cast orders (a policy type, never a flag).
template <class P>
concept RmsNormCastOrder = std::same_as<P, NormThenCast> || std::same_as<P, MultiplyThenCast>;

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/// RMSNorm normalises activations of the compute dtypes (f32/bf16/f16), never f64.
template <class D>
concept rms_norm_input_is_activation = ActivationDtype<D>;

/// The weight has the activation dtype (NormThenCast: an f32 weight would promote y to f32).
template <class W, class D>
concept norm_weight_is_activation_dtype = std::same_as<std::remove_cv_t<W>, std::remove_cv_t<D>>;

/// The weight has the activation dtype or is f32 (MultiplyThenCast multiplies in f32 anyway).
template <class W, class D>
concept norm_weight_is_activation_dtype_or_f32 =
    norm_weight_is_activation_dtype<W, D> || std::same_as<std::remove_cv_t<W>, f32>;

/// Which weight dtypes each cast order accepts for activations of dtype D (see header comment).
template <class Order, class W, class D>
concept rms_norm_weight_dtype_allowed =
    (std::same_as<Order, NormThenCast> && norm_weight_is_activation_dtype<W, D>) ||
    (std::same_as<Order, MultiplyThenCast> && norm_weight_is_activation_dtype_or_f32<W, D>);

namespace detail {

/// Throws config_error unless eps ≥ 0 (a Scalar<f32> is already finite).
inline void check_norm_eps(const char* op, const Scalar<f32>& eps) {
  PRECIS_CHECK(eps.value() >= 0.0f, config_error, "[", op, "] eps must be >= 0, got ", eps.value());
}

/// The f32 reciprocal RMS from the f32 sum of squares of n values: 1 / sqrt(Σx²/n + eps), each
/// step one f32 operation (torch: `pow(2).mean(-1)`, `+ eps`, `rsqrt` = 1/sqrt).
[[nodiscard]] inline float rms_reciprocal(float sum_sq, index_t n, float eps) noexcept {
  const float mean = sum_sq / static_cast<float>(n);
  return 1.0f / std::sqrt(mean + eps);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// rms_norm (reference)
// ---------------------------------------------------------------------------------------------

/// RMSNorm over the last axis of x [..., n] with weight [n], in cast order `Order`; returns x's
/// dtype and extents. Σx² is a sequential f32 sum (the pinned f32 accumulator).
template <RmsNormCastOrder Order, HostTensor X, HostTensorOfRank<1> Wt>
  requires rms_norm_input_is_activation<dtype_of<X>> && rms_norm_weight_dtype_allowed<Order, dtype_of<Wt>, dtype_of<X>>
[[nodiscard]] Tensor<dtype_of<X>, rank_of<X>> rms_norm(const X& x, const Wt& weight, const Scalar<f32>& eps) {
  using D = dtype_of<X>;
  using W = dtype_of<Wt>;
  constexpr std::size_t R = rank_of<X>;
  static_assert(R >= 1, "rms_norm needs at least one axis");
  const const_view_t<X> in = x;
  const const_view_t<Wt> w = weight;
  const index_t n = in.extent(R - 1);
  PRECIS_CHECK(n > 0, shape_error, "[rms_norm] x ", format_extents(in.extents()), " has an empty last axis");
  PRECIS_CHECK(w.extent(0) == n, shape_error, "[rms_norm] weight ", format_extents(w.extents()),
               " does not match the last axis of x ", format_extents(in.extents()));
  detail::check_norm_eps("rms_norm", eps);
  const float e = eps.value();
  Tensor<D, R> out(in.extents());  // [..., n]
  const index_t rows = in.numel() / n;
  extents_t<R> idx{};
  for (index_t r = 0; r < rows; ++r) {
    index_t base = 0;
    for (std::size_t d = 0; d + 1 < R; ++d) base += idx[d] * in.stride(d);
    const auto* row = in.data() + base;
    const index_t s = in.stride(R - 1);
    float sum_sq = 0.0f;  // role::norm_accumulator: f32
    for (index_t j = 0; j < n; ++j) {
      const float v = to_compute<D>(row[j * s]);
      sum_sq += v * v;
    }
    const float rstd = detail::rms_reciprocal(sum_sq, n, e);
    storage_t<D>* y = out.data() + r * n;
    for (index_t j = 0; j < n; ++j) {
      const float x_hat = to_compute<D>(row[j * s]) * rstd;
      y[j] = Order::template finish<D>(to_compute<W>(w(j)), x_hat);
    }
    for (std::size_t d = R - 1; d-- > 0;) {
      if (++idx[d] < in.extent(d)) break;
      idx[d] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RmsNorm (the layer)
// ---------------------------------------------------------------------------------------------

/// An RMSNorm layer: weight [n] of dtype W and eps, in cast order `Order`. `forward` accepts the
/// activation dtypes the order allows for W (rms_norm_weight_dtype_allowed).
template <RmsNormCastOrder Order, ActivationDtype W>
class RmsNorm {
 public:
  using cast_order = Order;
  using weight_dtype = W;

  RmsNorm(Tensor<W, 1> weight, const Scalar<f32>& eps) : weight_(std::move(weight)), eps_(eps) {
    PRECIS_CHECK(weight_.extent(0) > 0, shape_error, "[RmsNorm] empty weight");
    detail::check_norm_eps("RmsNorm", eps_);
  }

  [[nodiscard]] index_t size() const noexcept { return weight_.extent(0); }
  [[nodiscard]] TensorView<const W, 1> weight() const noexcept { return weight_.cview(); }  // [n]
  [[nodiscard]] const Scalar<f32>& eps() const noexcept { return eps_; }

  /// x [..., n] → [..., n], x's dtype.
  template <HostTensor X>
    requires rms_norm_input_is_activation<dtype_of<X>> && rms_norm_weight_dtype_allowed<Order, W, dtype_of<X>>
  [[nodiscard]] Tensor<dtype_of<X>, rank_of<X>> forward(const X& x) const {
    return rms_norm<Order>(x, weight_, eps_);
  }

 private:
  Tensor<W, 1> weight_;  // [n]
  Scalar<f32> eps_;
};

}  // namespace precis
