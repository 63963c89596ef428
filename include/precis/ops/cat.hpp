// precis/ops/cat.hpp — cat(axis, a, b, ...): concatenation of tensors of ONE dtype.
//
// Why a rule for a copy: HF's gpt-oss eager attention does `torch.cat([attn_weights, sinks])`,
// and when the sinks are f32 (as trtllm needs) and the scores bf16, `cat` silently promotes the
// whole result to f32 — which then meets bf16 V (dtype-bugs E23, class C4). In precis every
// operand of `cat` must have the first operand's dtype (same_dtype_no_implicit_cast) and rank;
// the other extents must match (shape_error at run time). Concatenation is a copy: values are
// bit-identical to the inputs, for any element dtype (including integer and fp8 tensors).
#pragma once

#include <cstddef>  // std::size_t

#include <precis/core/dtype.hpp>       // precis::ElementDtype, same_dtype_no_implicit_cast
#include <precis/core/error.hpp>       // precis::shape_error, range_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/ops/host_tensor.hpp>  // precis::HostTensor, same_rank_no_broadcast, format_extents

namespace precis {

/// Concatenates `first, rest...` along `axis`. All operands have one dtype and one rank; every
/// extent except `axis` must be equal.
template <HostTensor First, HostTensor... Rest>
  requires(same_dtype_no_implicit_cast<dtype_of<First>, dtype_of<Rest>> && ...) &&
          (same_rank_no_broadcast<First, Rest> && ...)
[[nodiscard]] Tensor<dtype_of<First>, rank_of<First>> cat(std::size_t axis, const First& first, const Rest&... rest) {
  using D = dtype_of<First>;
  constexpr std::size_t R = rank_of<First>;
  const TensorView<const D, R> views[] = {as_const_view(first), as_const_view(rest)...};
  PRECIS_CHECK(axis < R, range_error, "[cat] axis ", axis, " out of range for rank ", R);

  extents_t<R> out_ext = views[0].extents();
  out_ext[axis] = 0;
  for (const auto& v : views) {
    for (std::size_t d = 0; d < R; ++d)
      PRECIS_CHECK(d == axis || v.extent(d) == views[0].extent(d), shape_error, "[cat] along axis ", axis,
                   ": shapes ", format_extents(views[0].extents()), " and ", format_extents(v.extents()),
                   " differ on axis ", d);
    out_ext[axis] += v.extent(axis);
  }

  Tensor<D, R> out(out_ext);
  const TensorView<D, R> o = out.view();
  index_t start = 0;
  for (const auto& v : views) {
    const TensorView<D, R> dst = o.slice(axis, start, start + v.extent(axis));
    extents_t<R> idx{};
    for_each_offset(v, [&](index_t, index_t off) {
      index_t dst_off = 0;
      for (std::size_t d = 0; d < R; ++d) dst_off += idx[d] * dst.stride(d);
      dst.data()[dst_off] = v.data()[off];
      for (std::size_t d = R; d-- > 0;) {
        if (++idx[d] < v.extent(d)) break;
        idx[d] = 0;
      }
    });
    start += v.extent(axis);
  }
  return out;
}

}  // namespace precis
