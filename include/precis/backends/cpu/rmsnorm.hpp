// precis/backends/cpu/rmsnorm.hpp — the CPU RMSNorm: nn/norm.hpp's math (both cast orders, f32
// variance) with xsimd batches per row and oneTBB across rows.
//
//   namespace cpu = precis::backends::cpu;
//   Tensor<bf16, 2> h = cpu::rms_norm<MultiplyThenCast>(x, w, eps);   // gpt-oss [T, 2880]
//   cpu::rms_norm_into<NormThenCast>(q, q_norm_w, eps, q);           // Qwen3 q_norm, in place
//
// Type rules are the reference's (rms_norm_input_is_activation, rms_norm_weight_dtype_allowed —
// NormThenCast needs w in x's dtype; MultiplyThenCast also takes an f32 w): the same call that
// compiles against nn/norm.hpp compiles here, and no other.
//
// Per row of n values (x [..., n], w [n]): pass 1 accumulates Σx² in f32 with four lanes-wide
// FMA accumulators (then a horizontal add and a scalar tail), rstd = 1/sqrt(Σx²/n + eps) exactly
// as the reference; pass 2 writes round_D(w·x̂) or round_D(w·round_D(x̂)) lanes at a time, with
// the stores of vector_io.hpp (round to nearest even, like the reference). A hidden row of
// 2880–4096 values is ≤ 16 KiB, so pass 2 reads it from L1. Only the order of the f32 sum differs
// from the reference (≤ γ_n relative either way, stated in tests/unit/blocks), so outputs agree
// to a few f32 ulps before the final rounding — bf16 results can differ by one unit in the last
// place where x̂ lies that close to a rounding boundary.
//
// Rows are independent: oneTBB splits them (parallel_ranges, static partitioner) once a call
// has ≥ 2^18 elements; a decode step (T = 1) runs on the calling thread. Each row is computed by
// one thread in a fixed order, so results do not depend on the thread count. x and y must have a
// contiguous last axis (shape_error otherwise); y may be x itself (each row is read before it
// is written) but must not partially overlap it.
#pragma once

#include <cmath>    // std::fma
#include <cstddef>  // std::size_t

#include <precis/backends/cpu/arch.hpp>       // fbatch
#include <precis/backends/cpu/parallel.hpp>   // parallel_ranges
#include <precis/backends/cpu/vector_io.hpp>  // detail::load_f32, store_f32, round_through, writable_host_view_of_rank
#include <precis/core/error.hpp>              // precis::shape_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>             // precis::Scalar, to_compute
#include <precis/core/tensor.hpp>             // precis::Tensor
#include <precis/nn/norm.hpp>                 // NormThenCast, MultiplyThenCast, rules, detail::rms_reciprocal
#include <precis/ops/host_tensor.hpp>         // precis::HostTensor, format_extents

namespace precis::backends::cpu {

namespace detail {

inline constexpr const char* rms_norm_op = "cpu::rms_norm";

/// The cast order's last step on lanes: w·round_D(x̂) (NormThenCast) or w·x̂ (MultiplyThenCast);
/// the store then rounds to D. Lane for lane the reference's Order::finish<D>.
template <RmsNormCastOrder Order, ActivationDtype D>
[[nodiscard]] inline fbatch finish(const fbatch& w, const fbatch& x_hat) noexcept {
  if constexpr (std::same_as<Order, NormThenCast>) return w * round_through<D>(x_hat);
  else return w * x_hat;
}

/// One row: y[j] = Order(w[j], x[j]·rstd), rstd from the f32 Σx² of the row.
template <RmsNormCastOrder Order, ActivationDtype D, ActivationDtype W>
void rms_norm_row(const storage_t<D>* x, const storage_t<W>* w, storage_t<D>* y, index_t n, float eps) noexcept {
  constexpr index_t V = lanes;
  fbatch a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);  // role::norm_accumulator: f32
  index_t j = 0;
  for (; j + 4 * V <= n; j += 4 * V) {
    const fbatch v0 = load_f32<D>(x + j), v1 = load_f32<D>(x + j + V);
    const fbatch v2 = load_f32<D>(x + j + 2 * V), v3 = load_f32<D>(x + j + 3 * V);
    a0 = xsimd::fma(v0, v0, a0);
    a1 = xsimd::fma(v1, v1, a1);
    a2 = xsimd::fma(v2, v2, a2);
    a3 = xsimd::fma(v3, v3, a3);
  }
  for (; j + V <= n; j += V) {
    const fbatch v = load_f32<D>(x + j);
    a0 = xsimd::fma(v, v, a0);
  }
  float sum_sq = xsimd::hadd((a0 + a1) + (a2 + a3));
  for (; j < n; ++j) {
    const float v = to_compute<D>(x[j]);
    sum_sq = std::fma(v, v, sum_sq);
  }
  const float rstd = precis::detail::rms_reciprocal(sum_sq, n, eps);
  const fbatch r(rstd);
  j = 0;
  for (; j + V <= n; j += V) store_f32<D>(y + j, finish<Order, D>(load_f32<W>(w + j), load_f32<D>(x + j) * r));
  for (; j < n; ++j) y[j] = Order::template finish<D>(to_compute<W>(w[j]), to_compute<D>(x[j]) * rstd);
}

/// Element offset of row r (all axes but the last) of a view.
template <class View>
[[nodiscard]] inline index_t row_offset(const View& v, index_t r) noexcept {
  constexpr std::size_t R = View::rank;
  index_t off = 0;
  for (std::size_t d = R - 1; d-- > 0;) {
    off += (r % v.extent(d)) * v.stride(d);
    r /= v.extent(d);
  }
  return off;
}

}  // namespace detail

/// RMSNorm over the last axis of x [..., n] with weight [n] into y (x's dtype and extents).
template <RmsNormCastOrder Order, HostTensor X, HostTensorOfRank<1> Wt, class Y>
  requires rms_norm_input_is_activation<dtype_of<X>> &&
           rms_norm_weight_dtype_allowed<Order, dtype_of<Wt>, dtype_of<X>> &&
           writable_host_view_of_rank<Y, rank_of<X>> && same_dtype_no_implicit_cast<dtype_of<Y>, dtype_of<X>>
void rms_norm_into(const X& x, const Wt& weight, const Scalar<f32>& eps, Y&& y) {
  using D = dtype_of<X>;
  using W = dtype_of<Wt>;
  constexpr std::size_t R = rank_of<X>;
  const TensorView<const D, R> in = x;
  const TensorView<const W, 1> w = weight;
  const TensorView<D, R> out = y;
  const index_t n = in.extent(R - 1);
  PRECIS_CHECK(n > 0, shape_error, "[", detail::rms_norm_op, "] x ", format_extents(in.extents()),
               " has an empty last axis");
  PRECIS_CHECK(w.extent(0) == n, shape_error, "[", detail::rms_norm_op, "] weight ", format_extents(w.extents()),
               " does not match the last axis of x ", format_extents(in.extents()));
  PRECIS_CHECK(out.extents() == in.extents(), shape_error, "[", detail::rms_norm_op, "] y ",
               format_extents(out.extents()), " differs from x ", format_extents(in.extents()));
  PRECIS_CHECK(in.stride(R - 1) == 1 && out.stride(R - 1) == 1 && (n == 1 || w.stride(0) == 1), shape_error, "[",
               detail::rms_norm_op, "] the last axis of x, y and the weight must be contiguous (strides ",
               in.stride(R - 1), ", ", out.stride(R - 1), ", ", w.stride(0), ")");
  precis::detail::check_norm_eps(detail::rms_norm_op, eps);
  const float e = eps.value();
  const index_t rows = in.numel() / n;
  const bool dense = in.is_contiguous() && out.is_contiguous();  // row r at r·n: no index arithmetic
  parallel_ranges(rows, 1, rows * n, [&](index_t begin, index_t end) {
    for (index_t r = begin; r < end; ++r)
      detail::rms_norm_row<Order, D, W>(in.data() + (dense ? r * n : detail::row_offset(in, r)), w.data(),
                                        out.data() + (dense ? r * n : detail::row_offset(out, r)), n, e);
  });
}

/// RMSNorm over the last axis of x [..., n] with weight [n] → a new tensor of x's dtype.
template <RmsNormCastOrder Order, HostTensor X, HostTensorOfRank<1> Wt>
  requires rms_norm_input_is_activation<dtype_of<X>> && rms_norm_weight_dtype_allowed<Order, dtype_of<Wt>, dtype_of<X>>
[[nodiscard]] Tensor<dtype_of<X>, rank_of<X>> rms_norm(const X& x, const Wt& weight, const Scalar<f32>& eps) {
  const const_view_t<X> in = x;
  Tensor<dtype_of<X>, rank_of<X>> out(in.extents());  // [..., n]
  rms_norm_into<Order>(in, weight, eps, out);
  return out;
}

}  // namespace precis::backends::cpu
