// precis/ops/matmul.hpp — matmul<Out>(x [M, K], w [N, K]) = x · wᵀ (+ bias): the reference GEMM.
//
// Layout: `w` is row-major [N, K] with rows = output features, exactly as checkpoints store
// projection weights (HF `nn.Linear.weight`, safetensors, GGUF after dim reversal), so no
// transpose is ever materialised.
//
// Type rules (dtype-bugs class C1 and C6):
//   - x and w have ONE dtype (same_dtype_no_implicit_cast): `matmul(Tensor<bf16>, Tensor<f32>)`
//     does not compile (E1 DeBERTa, E2 Megatron router, E24 gpt-oss MXFP4 fallback).
//   - products are accumulated in f32 (double for f64 operands) and rounded once to `Out`.
//   - `Out` defaults to the operand dtype and may be declared f32 — the out-dtype GEMM that
//     router logits (E18) and attention scores (E19) need: `matmul<f32>(x_bf16, w_bf16)`.
//     No other output dtype exists (matmul_out_is_operand_or_f32).
//   - the optional bias [N] has dtype `Out` (it is added to the f32 accumulator before the one
//     rounding): a bf16 Linear has a bf16 bias; the gpt-oss router, whose bias is pinned to f32
//     (precision_policy role::router_bias, E28), calls matmul<f32>(x, w, bias_f32).
// Extents are checked at run time (shape_error names both shapes).
#pragma once

#include <concepts>  // std::same_as
#include <optional>  // std::optional
#include <type_traits>  // std::conditional_t

#include <precis/core/dtype.hpp>       // precis::FloatDtype, same_dtype_no_implicit_cast, f32
#include <precis/core/error.hpp>       // precis::shape_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>      // precis::compute_t, to_compute, from_compute
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/ops/host_tensor.hpp>  // precis::HostTensorOfRank, format_extents

namespace precis {

/// Marker for "the output dtype is the operands' dtype" (matmul's default `Out`).
struct operand_dtype {};

/// `Out` resolved against the operand dtype `D`.
template <class Out, class D>
using resolve_out_t = std::conditional_t<std::same_as<Out, operand_dtype>, D, Out>;

/// matmul writes either the operand dtype or f32 (an explicitly declared wider output).
template <class Out, class D>
concept matmul_out_is_operand_or_f32 = std::same_as<Out, D> || std::same_as<Out, f32>;

/// Both matmul operands: host matrices of one floating dtype.
template <class X, class W>
concept matmul_operands = HostTensorOfRank<X, 2> && HostTensorOfRank<W, 2> &&
                          same_dtype_no_implicit_cast<dtype_of<X>, dtype_of<W>> && FloatDtype<dtype_of<X>>;

namespace detail {
template <class Out, class X, class W>
[[nodiscard]] Tensor<Out, 2> matmul_impl(const X& x, const W& w,
                                         std::optional<TensorView<const Out, 1>> bias) {
  using D = dtype_of<X>;
  using Acc = std::conditional_t<std::same_as<D, f64> || std::same_as<Out, f64>, double, float>;
  const const_view_t<X> xv = x;
  const const_view_t<W> wv = w;
  PRECIS_CHECK(xv.extent(1) == wv.extent(1), shape_error, "[matmul] x ", format_extents(xv.extents()), " · wᵀ with w ",
               format_extents(wv.extents()), ": inner dimensions differ (w is [N, K], rows = outputs)");
  const index_t m = xv.extent(0), n = wv.extent(0), k = xv.extent(1);
  if (bias)
    PRECIS_CHECK(bias->extent(0) == n, shape_error, "[matmul] bias ", format_extents(bias->extents()),
                 " for an output of ", n, " features");
  Tensor<Out, 2> out({m, n});
  for (index_t i = 0; i < m; ++i) {
    for (index_t j = 0; j < n; ++j) {
      Acc acc = 0;
      for (index_t p = 0; p < k; ++p)
        acc += static_cast<Acc>(to_compute<D>(xv(i, p))) * static_cast<Acc>(to_compute<D>(wv(j, p)));
      if (bias) acc += static_cast<Acc>(to_compute<Out>((*bias)(j)));
      out(i, j) = from_compute<Out>(static_cast<compute_t<Out>>(acc));
    }
  }
  return out;
}
}  // namespace detail

/// x [M, K] · wᵀ (w [N, K]) → [M, N] of dtype `Out` (default: the operand dtype; or f32).
template <class Out = operand_dtype, class X, class W>
  requires matmul_operands<X, W> && matmul_out_is_operand_or_f32<resolve_out_t<Out, dtype_of<X>>, dtype_of<X>>
[[nodiscard]] Tensor<resolve_out_t<Out, dtype_of<X>>, 2> matmul(const X& x, const W& w) {
  return detail::matmul_impl<resolve_out_t<Out, dtype_of<X>>>(x, w, std::nullopt);
}

/// x [M, K] · wᵀ + bias [N]; the bias has the output dtype.
template <class Out = operand_dtype, class X, class W, HostTensorOfRank<1> B>
  requires matmul_operands<X, W> && matmul_out_is_operand_or_f32<resolve_out_t<Out, dtype_of<X>>, dtype_of<X>> &&
           same_dtype_no_implicit_cast<dtype_of<B>, resolve_out_t<Out, dtype_of<X>>>
[[nodiscard]] Tensor<resolve_out_t<Out, dtype_of<X>>, 2> matmul(const X& x, const W& w, const B& bias) {
  using O = resolve_out_t<Out, dtype_of<X>>;
  return detail::matmul_impl<O>(x, w, TensorView<const O, 1>(as_const_view(bias)));
}

}  // namespace precis
