// precis/backends/cpu/matmul.hpp — the CPU backend's matmul: y[m, n] = Σ_k x[m, k]·W[n, k] (+ b[n])
// for every weight format, accumulated in f32, rounded once to the output dtype.
//
//   namespace cpu_backend = precis::backends::cpu;  // (precis::host is the memory tag)
//   Tensor<bf16, 2> y = cpu_backend::matmul(x_bf16, w_q4_1);          // [M, N], bf16 like x
//   Tensor<f32, 2> logits = cpu_backend::matmul<f32>(x_bf16, w_bf16);  // f32 output, declared
//   cpu_backend::matmul_into(x, w, bias, y.view());                     // into existing memory
//
// Type rules (the reference ops/matmul.hpp's, extended to weight formats):
//   - x is [M, K] of an ActivationDtype (f32, bf16, f16), or Q8Activations<A> (q8_activation.hpp).
//   - W is [N, K] (rows = outputs, checkpoint layout): a float tensor of x's own dtype
//     (same_dtype_no_implicit_cast, dtype-bugs C1), a WeightView<D> from as_weight (a float
//     weight named as storage, any activation), or a QuantView/QuantTensor of any BlockFormat.
//     Q8Activations pair only with block formats.
//   - the output dtype is `Out`: by default the activation dtype, or f32 declared explicitly
//     (matmul_out_is_operand_or_f32). A bf16 x with an f32 y needs `matmul_into<f32>(...)`:
//     passing an f32 y alone does not compile (matmul_output_has_declared_dtype).
//   - the bias [N] has the output dtype (as in ops/matmul.hpp): a bf16 layer's checkpoint bias
//     is bf16 (gpt-oss stores its biases in bf16); an f32-output matmul takes an f32 bias, e.g.
//     the pinned-f32 router bias, or `cast<f32>(b)` of a bf16 one (exact). It is added to the
//     f32 accumulator before the one rounding.
// Extents are checked at run time (shape_error naming both shapes); weight rows must be
// contiguous (stride(1) == 1), x and y may have any strides, y must not overlap x or W.
//
// Paths: M ≤ decode_max_rows → GEMV (gemv.hpp: weights streamed once, dequantized in registers);
// larger M → panel GEMM (gemm.hpp: weight panels dequantized once to f32, then an AVX-512
// micro-kernel, or Eigen in portable builds). Both parallelise over weight rows with oneTBB and
// give results independent of the thread count. docs/performance.md has the measured figures.
#pragma once

#include <concepts>     // std::same_as
#include <optional>     // std::optional
#include <string_view>  // std::string_view
#include <type_traits>  // std::remove_cvref_t, std::is_lvalue_reference_v
#include <vector>       // std::vector

#include <precis/backends/cpu/gemm.hpp>           // detail::gemm_f32
#include <precis/backends/cpu/gemv.hpp>           // detail::gemv_float, gemv_q8, decode_max_rows
#include <precis/backends/cpu/parallel.hpp>       // detail::float_buffer
#include <precis/backends/cpu/q8_activation.hpp>  // Q8Activations, dequantize_q8_activations
#include <precis/backends/cpu/weights.hpp>        // WeightView, cpu_weight, quant_weight
#include <precis/core/dtype.hpp>                  // precis::ActivationDtype, same_dtype_no_implicit_cast
#include <precis/core/error.hpp>                  // precis::shape_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>                 // precis::Tensor
#include <precis/ops/host_tensor.hpp>             // precis::HostTensorOfRank, format_extents
#include <precis/ops/matmul.hpp>                  // precis::operand_dtype, resolve_out_t, matmul_out_is_operand_or_f32

namespace precis::backends::cpu {

// ---------------------------------------------------------------------------------------------
// Concepts
// ---------------------------------------------------------------------------------------------

/// Float activations [M, K] in host memory.
template <class X>
concept float_activation = HostTensorOfRank<X, 2> && ActivationDtype<dtype_of<X>>;

/// Activations pre-quantized to 8 bits (the integer-dot opt-in).
template <class X>
concept q8_activation = detail::is_q8_activations<std::remove_cvref_t<X>>;

namespace detail {
template <class X>
struct activation_dtype;
template <class X>
  requires float_activation<X>
struct activation_dtype<X> {
  using type = dtype_of<X>;
};
template <class X>
  requires q8_activation<X>
struct activation_dtype<X> {
  using type = typename std::remove_cvref_t<X>::source_dtype;
};
}  // namespace detail

/// The activation dtype of x: its element dtype, or the dtype Q8Activations were made from.
template <class X>
using activation_dtype_of = typename detail::activation_dtype<X>::type;

/// A plain float tensor weight takes only activations of its own dtype (C1).
template <class X, class W>
concept plain_weight_matches_activation =
    float_activation<X> && HostTensorOfRank<W, 2> && weight_storage_dtype<dtype_of<W>> &&
    same_dtype_no_implicit_cast<dtype_of<X>, dtype_of<W>>;

/// Q8Activations meet only block-quantized weights.
template <class X, class W>
concept q8_activations_need_block_weight = q8_activation<X> && quant_weight<W>;

/// Every (activation, weight) pair the CPU matmul computes.
template <class X, class W>
concept cpu_matmul_operands =
    plain_weight_matches_activation<X, W> ||
    (float_activation<X> && (detail::is_weight_view<std::remove_cvref_t<W>> || quant_weight<W>)) ||
    q8_activations_need_block_weight<X, W>;

/// The output dtype `Out` resolved against the activation dtype of X.
template <class Out, class X>
using cpu_out_t = resolve_out_t<Out, activation_dtype_of<X>>;

/// A writable host matrix of dtype O (a Tensor lvalue or any TensorView<O, 2>): a y of another
/// dtype than the resolved Out does not compile.
template <class Y, class O>
concept matmul_output_has_declared_dtype =
    TensorLike<Y> && rank_of<Y> == 2 && std::same_as<device_of<Y>, precis::host> && std::same_as<dtype_of<Y>, O> &&
    tensor_traits<std::remove_cvref_t<Y>>::writable &&
    (std::is_lvalue_reference_v<Y> || !std::same_as<std::remove_cvref_t<Y>, Tensor<O, 2>>);

/// A bias [N] of the output dtype.
template <class B, class O>
concept matmul_bias_of = HostTensorOfRank<B, 1> && same_dtype_no_implicit_cast<dtype_of<B>, O>;

// ---------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------

namespace detail {

inline constexpr const char* matmul_op = "backends::cpu::matmul";

template <class W>
[[nodiscard]] auto weight_rows(const W& w) {
  using WT = std::remove_cvref_t<W>;
  if constexpr (is_weight_view<WT>) {
    return rows_of(w.view(), matmul_op);
  } else if constexpr (quant_weight<WT>) {
    using F = quant_format_of<WT>;
    const QuantView<F, 2> q = w;
    return quant_rows<F>{q, q.extent(0), q.extent(1)};
  } else {
    return rows_of(TensorView<const dtype_of<W>, 2>(w), matmul_op);
  }
}

/// [M, N] of x·Wᵀ.
template <class X, class W>
[[nodiscard]] extents_t<2> output_extents(const X& x, const W& w) {
  if constexpr (q8_activation<X>) return {x.rows(), w.extent(0)};
  else return {x.extent(0), w.extent(0)};
}

template <class W>
[[nodiscard]] std::string_view weight_format_name() {
  using WT = std::remove_cvref_t<W>;
  if constexpr (is_weight_view<WT>) return dtype_name<typename WT::storage_dtype>;
  else if constexpr (quant_weight<WT>) return dtype_name<quant_format_of<WT>>;
  else return dtype_name<dtype_of<W>>;
}

/// Stores g results of weight row n for activation rows r0.. (bias added in f32, one rounding).
template <ActivationDtype O>
struct gemv_store {
  TensorView<O, 2> y;
  const storage_t<O>* bias;  // nullptr: no bias
  index_t bias_stride;
  void operator()(index_t n, index_t r0, index_t g, const float* dots) const noexcept {
    const float b = bias != nullptr ? widen<O>(bias[n * bias_stride]) : 0.0f;
    for (index_t i = 0; i < g; ++i) y(r0 + i, n) = precis::detail::from_f32<O>(dots[i] + b);
  }
};

/// GEMM epilogue: the transposed f32 panel result ct[j][i] + bias → y(r0 + i, n0 + j), one
/// rounding. Rows i run inside so each pass writes along a row of y; ct's columns stay in L1.
template <ActivationDtype O>
struct gemm_store {
  TensorView<O, 2> y;
  const storage_t<O>* bias;
  index_t bias_stride;
  void operator()(index_t r0, index_t mc, index_t n0, index_t nb, const float* ct, index_t ldc) const noexcept {
    for (index_t i = 0; i < mc; ++i)
      for (index_t j = 0; j < nb; ++j) {
        const float b = bias != nullptr ? widen<O>(bias[(n0 + j) * bias_stride]) : 0.0f;
        y(r0 + i, n0 + j) = precis::detail::from_f32<O>(ct[j * ldc + i] + b);
      }
  }
};

/// Runs the GEMM path for f32 activations x [m, K] (leading dimension ldx ≥ K).
template <class Src, ActivationDtype O>
void run_gemm(const Src& w, const float* x, index_t ldx, index_t m, TensorView<O, 2> y, const storage_t<O>* bias,
              index_t bias_stride) {
  gemm_f32(w, x, ldx, m, gemm_store<O>{y, bias, bias_stride});
}

template <class O, class X, class W>
void matmul_impl(const X& x, const W& w, std::optional<TensorView<const O, 1>> bias, TensorView<O, 2> y) {
  const auto src = weight_rows(w);
  const index_t n = src.n, k = src.k;
  index_t m, kx;
  if constexpr (q8_activation<X>) {
    m = x.rows();
    kx = x.cols();
  } else {
    m = x.extent(0);
    kx = x.extent(1);
  }
  PRECIS_CHECK(kx == k, shape_error, "[", matmul_op, "] x ", format_extents(extents_t<2>{m, kx}), " · wᵀ with w ",
               format_extents(extents_t<2>{n, k}), " (", weight_format_name<W>(),
               "): inner dimensions differ (w is [N, K], rows = outputs)");
  PRECIS_CHECK(y.extent(0) == m && y.extent(1) == n, shape_error, "[", matmul_op, "] output y ",
               format_extents(y.extents()), " for x ", format_extents(extents_t<2>{m, k}), " · wᵀ with w ",
               format_extents(extents_t<2>{n, k}), ": expected ", format_extents(extents_t<2>{m, n}));
  const storage_t<O>* bp = nullptr;
  index_t bs = 0;
  if (bias) {
    PRECIS_CHECK(bias->extent(0) == n, shape_error, "[", matmul_op, "] bias ", format_extents(bias->extents()),
                 " for w ", format_extents(extents_t<2>{n, k}), ": expected [", n, "]");
    bp = bias->data();
    bs = bias->stride(0);
  }
  if (m == 0 || n == 0) return;

  if constexpr (q8_activation<X>) {
    using F = typename decltype(src)::format;
    if constexpr (download_format<F> && (PRECIS_CPU_AVX512_VNNI == 0)) {
      // Without VNNI there are no integer-dot kernels for the download formats: the float kernels
      // run on the quantized activations' values q·d, which is the q8_blocks rule exactly as the
      // reference backend states it (activations rounded through 8-bit blocks, then an f32 dot).
      const index_t ld = round_up(k, 16);
      float_buffer xb(m * ld);
      dequantize_q8_activations(x, xb.data(), ld);
      if (m <= decode_max_rows) {
        prepared_x px;
        px.x = xb.data();
        px.ldx = ld;
        px.m = m;
        gemv_float(src, px, gemv_store<O>{y, bp, bs});
      } else {
        run_gemm(src, xb.data(), ld, m, y, bp, bs);
      }
    } else if (m <= decode_max_rows) {
      std::vector<block_q8_act> copy;
      const prepared_q8 px = prepare_q8_x<F>(x, copy);
      gemv_q8(src, px, gemv_store<O>{y, bp, bs});
    } else {
      // Prefill with quantized activations: the f32 GEMM on their values q·d (same numbers).
      const index_t ld = round_up(k, 16);
      float_buffer xb(m * ld);
      dequantize_q8_activations(x, xb.data(), ld);
      run_gemm(src, xb.data(), ld, m, y, bp, bs);
    }
  } else {
    using A = dtype_of<X>;
    const TensorView<const A, 2> xv = x;  // [M, K]
    float_buffer xb, sb;
    if (m <= decode_max_rows) {
      const prepared_x px = prepare_float_x<std::remove_cvref_t<decltype(src)>>(xv, xb, sb);
      gemv_float(src, px, gemv_store<O>{y, bp, bs});
    } else if (std::same_as<A, f32> && (xv.stride(1) == 1 || k <= 1) && xv.stride(0) >= k) {
      run_gemm(src, reinterpret_cast<const float*>(xv.data()), xv.stride(0), m, y, bp, bs);
    } else {
      const index_t ld = round_up(k, 16);
      xb.resize(m * ld);
      for (index_t r = 0; r < m; ++r) widen_row<A>(xv, r, xb.data() + r * ld);
      run_gemm(src, xb.data(), ld, m, y, bp, bs);
    }
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

/// y = x·Wᵀ into `y` [M, N] of dtype Out (default: the activation dtype; or f32, declared).
template <class Out = operand_dtype, class X, cpu_weight W, class Y>
  requires cpu_matmul_operands<X, W> && matmul_out_is_operand_or_f32<cpu_out_t<Out, X>, activation_dtype_of<X>> &&
           matmul_output_has_declared_dtype<Y, cpu_out_t<Out, X>>
void matmul_into(const X& x, const W& w, Y&& y) {
  using O = cpu_out_t<Out, X>;
  detail::matmul_impl<O>(x, w, std::nullopt, TensorView<O, 2>(y));
}

/// y = x·Wᵀ + bias into `y`; the bias [N] has the output dtype.
template <class Out = operand_dtype, class X, cpu_weight W, class B, class Y>
  requires cpu_matmul_operands<X, W> && matmul_out_is_operand_or_f32<cpu_out_t<Out, X>, activation_dtype_of<X>> &&
           matmul_bias_of<B, cpu_out_t<Out, X>> && matmul_output_has_declared_dtype<Y, cpu_out_t<Out, X>>
void matmul_into(const X& x, const W& w, const B& bias, Y&& y) {
  using O = cpu_out_t<Out, X>;
  detail::matmul_impl<O>(x, w, TensorView<const O, 1>(as_const_view(bias)), TensorView<O, 2>(y));
}

/// x [M, K]·Wᵀ → a new Tensor<Out, 2> [M, N].
template <class Out = operand_dtype, class X, cpu_weight W>
  requires cpu_matmul_operands<X, W> && matmul_out_is_operand_or_f32<cpu_out_t<Out, X>, activation_dtype_of<X>>
[[nodiscard]] Tensor<cpu_out_t<Out, X>, 2> matmul(const X& x, const W& w) {
  using O = cpu_out_t<Out, X>;
  Tensor<O, 2> y(detail::output_extents(x, w));  // [M, N]
  detail::matmul_impl<O>(x, w, std::nullopt, y.view());
  return y;
}

/// x [M, K]·Wᵀ + bias [N] → a new Tensor<Out, 2> [M, N].
template <class Out = operand_dtype, class X, cpu_weight W, class B>
  requires cpu_matmul_operands<X, W> && matmul_out_is_operand_or_f32<cpu_out_t<Out, X>, activation_dtype_of<X>> &&
           matmul_bias_of<B, cpu_out_t<Out, X>>
[[nodiscard]] Tensor<cpu_out_t<Out, X>, 2> matmul(const X& x, const W& w, const B& bias) {
  using O = cpu_out_t<Out, X>;
  Tensor<O, 2> y(detail::output_extents(x, w));  // [M, N]
  detail::matmul_impl<O>(x, w, TensorView<const O, 1>(as_const_view(bias)), y.view());
  return y;
}

}  // namespace precis::backends::cpu
