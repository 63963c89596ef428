// precis/ops/softmax.hpp — softmax over the last axis: f32 only, plus an opt-in low-precision twin.
//
// Why two names: softmax is a reduction, and running it in 16-bit is a recurring silent failure
// (dtype-bugs class C6): llama.cpp's f16 KQ product overflowed into NaN / "GGGG" output until
// f32 became the default (E19); `finfo(fp16).min + x = -inf` turned into NaN after softmax
// (E20); 16-bit reductions drift layer by layer (E21). So:
//
//   softmax(x)              accepts Tensor<f32> only (softmax_input_is_f32) and accumulates
//                           in f32. `softmax(Tensor<bf16>)` does not compile; cast<f32> first.
//   softmax_lowacc<D>(x)    the explicit opt-in: input, every intermediate (exp, running sum,
//                           quotient) and output rounded to D — the reference for what a
//                           kernel that accumulates in D computes. Its name is the opt-in
//                           (there is no `softmax<bf16, Acc = bf16>`).
//
// Both subtract the row maximum first. A row whose every logit is -inf has no distribution;
// it throws range_error (a NaN row is what E20 shipped silently).
#pragma once

#include <cmath>     // std::exp
#include <concepts>  // std::same_as
#include <limits>    // std::numeric_limits

#include <precis/core/dtype.hpp>       // precis::f32, FloatDtype, same_dtype_no_implicit_cast
#include <precis/core/error.hpp>       // precis::range_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>      // precis::to_compute, from_compute
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/ops/host_tensor.hpp>  // precis::HostTensor

namespace precis {

/// softmax's input (and accumulator) dtype is f32 (E19–E21).
template <class D>
concept softmax_input_is_f32 = std::same_as<std::remove_cv_t<D>, f32>;

namespace detail {
/// Calls `row(in_offsets_base, out_base)` for every row of the last axis of `v`.
template <class View, class F>
void for_each_last_axis_row(const View& v, F&& row) {
  constexpr std::size_t R = View::rank;
  const index_t cols = v.extent(R - 1);
  const index_t rows = cols == 0 ? 0 : v.numel() / cols;
  extents_t<R> idx{};
  for (index_t r = 0; r < rows; ++r) {
    index_t base = 0;
    for (std::size_t d = 0; d + 1 < R; ++d) base += idx[d] * v.stride(d);
    row(r, base);
    for (std::size_t d = R - 1; d-- > 0;) {
      if (++idx[d] < v.extent(d)) break;
      idx[d] = 0;
    }
  }
}
}  // namespace detail

/// Softmax over the last axis of an f32 tensor, accumulated in f32.
template <HostTensor X>
  requires softmax_input_is_f32<dtype_of<X>>
[[nodiscard]] Tensor<f32, rank_of<X>> softmax(const X& x) {
  constexpr std::size_t R = rank_of<X>;
  const const_view_t<X> in = x;
  Tensor<f32, R> out(in.extents());
  const index_t cols = in.extent(R - 1);
  const index_t col_stride = in.stride(R - 1);
  detail::for_each_last_axis_row(in, [&](index_t r, index_t base) {
    const float* row = in.data() + base;
    float* o = out.data() + r * cols;
    float m = -std::numeric_limits<float>::infinity();
    for (index_t j = 0; j < cols; ++j) m = row[j * col_stride] > m ? row[j * col_stride] : m;
    PRECIS_CHECK(m > -std::numeric_limits<float>::infinity(), range_error, "[softmax] row ", r,
                 ": every logit is -inf, there is no distribution to normalise");
    float sum = 0.0f;
    for (index_t j = 0; j < cols; ++j) {
      o[j] = std::exp(row[j * col_stride] - m);
      sum += o[j];
    }
    for (index_t j = 0; j < cols; ++j) o[j] /= sum;
  });
  return out;
}

/// Softmax over the last axis with every intermediate rounded to `D` — opt-in low-precision
/// accumulation. `D` is named explicitly and must be the input's dtype.
template <FloatDtype D, HostTensor X>
  requires same_dtype_no_implicit_cast<dtype_of<X>, D>
[[nodiscard]] Tensor<D, rank_of<X>> softmax_lowacc(const X& x) {
  constexpr std::size_t R = rank_of<X>;
  const const_view_t<X> in = x;
  Tensor<D, R> out(in.extents());
  const index_t cols = in.extent(R - 1);
  const index_t col_stride = in.stride(R - 1);
  // Every arithmetic result is rounded back to D before it is used again.
  const auto rnd = [](compute_t<D> v) { return to_compute<D>(from_compute<D>(v)); };
  detail::for_each_last_axis_row(in, [&](index_t r, index_t base) {
    const auto* row = in.data() + base;
    auto* o = out.data() + r * cols;
    compute_t<D> m = -std::numeric_limits<compute_t<D>>::infinity();
    for (index_t j = 0; j < cols; ++j) {
      const compute_t<D> v = to_compute<D>(row[j * col_stride]);
      m = v > m ? v : m;
    }
    PRECIS_CHECK(m > -std::numeric_limits<compute_t<D>>::infinity(), range_error, "[softmax_lowacc<",
                 dtype_name<D>, ">] row ", r, ": every logit is -inf, there is no distribution to normalise");
    compute_t<D> sum = 0;
    for (index_t j = 0; j < cols; ++j) {
      const compute_t<D> e = rnd(std::exp(rnd(to_compute<D>(row[j * col_stride]) - m)));
      o[j] = from_compute<D>(e);
      sum = rnd(sum + e);
    }
    for (index_t j = 0; j < cols; ++j) o[j] = from_compute<D>(to_compute<D>(o[j]) / sum);
  });
  return out;
}

}  // namespace precis
