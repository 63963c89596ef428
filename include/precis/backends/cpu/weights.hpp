// precis/backends/cpu/weights.hpp — what the CPU matmul accepts as a weight, and the row-major
// row sources its kernels read.
//
// A weight W [N, K] is stored like checkpoints store projections: N output rows of K inputs.
//   Tensor / TensorView<D> with D == the activation dtype   the plain case (dtype-bugs C1: a
//       bf16 activation never meets an f32 tensor by accident; `matmul(x_bf16, w_f32)` does not
//       compile, dtype-bugs §3 rule 1).
//   WeightView<D> (as_weight(w), D ∈ {f32, bf16, f16})      a float weight read as a *storage
//       format*, like q4_0: weight-only f16 storage under bf16 activations, an f32 master copy
//       under bf16 activations. Naming it is what makes the mixed pair legal; the output dtype is
//       still the activation's (or the declared Out), never the weight's.
//   QuantView / QuantTensor<F, 2> for every BlockFormat      block-quantized weights (C7).
// Each weight row must be contiguous (stride(1) == 1: the kernels stream rows); the row stride is
// free, so a slice of rows or columns of a larger weight works without a copy.
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <type_traits>  // std::remove_cvref_t

#include <precis/core/dtype.hpp>         // precis::f32, bf16, f16, BlockFormat, storage_t
#include <precis/weights/weight_view.hpp>  // precis::WeightView, as_weight (the storage types, shared by backends)
#include <precis/core/error.hpp>         // precis::shape_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>        // precis::Tensor
#include <precis/core/tensor_view.hpp>   // precis::TensorView
#include <precis/ops/host_tensor.hpp>    // precis::HostTensorOfRank, format_extents
#include <precis/quant/quant_tensor.hpp> // precis::QuantTensor
#include <precis/quant/quant_view.hpp>   // precis::QuantView

namespace precis::backends::cpu {

using precis::as_weight;
using precis::weight_storage_dtype;
using precis::WeightView;

namespace detail {

template <class W>
inline constexpr bool is_weight_view = false;
template <class D>
inline constexpr bool is_weight_view<WeightView<D>> = true;

template <class W>
struct quant_weight_format {};
template <class F>
struct quant_weight_format<QuantView<F, 2, precis::host>> {
  using type = F;
};
template <class F>
struct quant_weight_format<QuantTensor<F, 2, precis::host>> {
  using type = F;
};

// Row sources: what a kernel needs to read row n of W.

/// Float rows: row n starts at data + n·ld, K contiguous values.
template <weight_storage_dtype D>
struct float_rows {
  using dtype = D;
  const storage_t<D>* data;
  index_t ld;  // elements between rows
  index_t n, k;
  [[nodiscard]] const storage_t<D>* row(index_t i) const noexcept { return data + i * ld; }
};

/// Block rows: row n is blocks [n·K/32, (n+1)·K/32) of a QuantView (both planes for mxfp4).
template <BlockFormat F>
struct quant_rows {
  using format = F;
  QuantView<F, 2> q;
  index_t n, k;
  [[nodiscard]] index_t blocks_per_row() const noexcept { return k / 32; }
};

template <class D>
[[nodiscard]] float_rows<D> rows_of(TensorView<const D, 2> w, const char* op) {
  PRECIS_CHECK(w.extent(1) <= 1 || w.stride(1) == 1, shape_error, "[", op, "] weight ",
               format_extents(w.extents()), " has element stride ", w.stride(1),
               "; the kernels stream rows, which must be contiguous (stride(1) == 1)");
  return {w.data(), w.stride(0), w.extent(0), w.extent(1)};
}

}  // namespace detail

/// Anything the CPU matmul takes as a weight (the activation rule is checked in matmul.hpp).
template <class W>
concept cpu_weight = (HostTensorOfRank<W, 2> && weight_storage_dtype<dtype_of<W>>) ||
                     detail::is_weight_view<std::remove_cvref_t<W>> ||
                     requires { typename detail::quant_weight_format<std::remove_cvref_t<W>>::type; };

/// A block-quantized weight [N, K] (QuantView or QuantTensor of rank 2, host).
template <class W>
concept quant_weight = requires { typename detail::quant_weight_format<std::remove_cvref_t<W>>::type; };

template <quant_weight W>
using quant_format_of = typename detail::quant_weight_format<std::remove_cvref_t<W>>::type;

}  // namespace precis::backends::cpu
