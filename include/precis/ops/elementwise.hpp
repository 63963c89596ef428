// precis/ops/elementwise.hpp — add, mul (tensor × tensor) and mul (tensor × Scalar): the
// reference elementwise ops and the home of precis' first type rule.
//
// Rule (dtype-bugs §2, class C1/C4): a binary op exists only for operands of one dtype.
//   add(Tensor<f16>, Tensor<bf16>)      does not compile  (E10: fp16 × bf16 silently became f32)
//   mul(Tensor<bf16>, Scalar<f32>)      does not compile  (E27: an f32 scalar promoted bf16)
// The rule is a constraint in the signature (same_dtype_no_implicit_cast), never a
// static_assert in the body: a body assert leaves the overload viable, so
// `requires { add(a, b); }` would be *true* for mixed dtypes (style-anchors §5.1, "the trap").
// The diagnostic names the concept: "because 'same_dtype_no_implicit_cast<f16, bf16>'
// evaluated to false". The fix is an explicit `cast<To>(x)` (core/cast.hpp).
//
// Rank is a constraint too (same_rank_no_broadcast); extents are checked at run time and a
// mismatch throws shape_error naming the op and both shapes — precis never broadcasts.
//
// Math: each element is widened to compute_t<D> (float, or double for f64), combined, and
// rounded once to D — the correctly rounded result for f32/f64 and what every bf16 kernel
// computes (one float op, one rounding).
#pragma once

#include <precis/core/dtype.hpp>    // precis::FloatDtype, same_dtype_no_implicit_cast
#include <precis/core/error.hpp>    // precis::shape_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>   // precis::Scalar, to_compute, from_compute
#include <precis/core/tensor.hpp>   // precis::Tensor
#include <precis/ops/host_tensor.hpp>  // precis::HostTensor, same_rank_no_broadcast, format_extents

namespace precis {

namespace detail {
template <class A, class B, class Op>
[[nodiscard]] Tensor<dtype_of<A>, rank_of<A>> elementwise_binary(const char* op_name, const A& a, const B& b, Op op) {
  using D = dtype_of<A>;
  const const_view_t<A> va = a;
  const const_view_t<B> vb = b;
  PRECIS_CHECK(va.extents() == vb.extents(), shape_error, "[", op_name, "] operand shapes differ: ",
               format_extents(va.extents()), " and ", format_extents(vb.extents()), " (precis never broadcasts)");
  Tensor<D, rank_of<A>> out(va.extents());
  // `va` is walked in row-major order by for_each_offset; `idx` tracks the same multi-index so
  // that `vb` (which may have other strides) is read at the matching element.
  extents_t<rank_of<A>> idx{};
  for_each_offset(va, [&](index_t flat, index_t off_a) {
    index_t off_b = 0;
    for (std::size_t d = 0; d < rank_of<A>; ++d) off_b += idx[d] * vb.stride(d);
    out.data()[flat] = from_compute<D>(op(to_compute<D>(va.data()[off_a]), to_compute<D>(vb.data()[off_b])));
    for (std::size_t d = rank_of<A>; d-- > 0;) {
      if (++idx[d] < va.extent(d)) break;
      idx[d] = 0;
    }
  });
  return out;
}
}  // namespace detail

/// a + b, elementwise; both operands of one dtype and one rank. Shapes must be equal.
template <HostTensor A, HostTensor B>
  requires same_dtype_no_implicit_cast<dtype_of<A>, dtype_of<B>> && same_rank_no_broadcast<A, B> &&
           FloatDtype<dtype_of<A>>
[[nodiscard]] Tensor<dtype_of<A>, rank_of<A>> add(const A& a, const B& b) {
  return detail::elementwise_binary("add", a, b, [](auto x, auto y) { return x + y; });
}

/// a · b, elementwise; both operands of one dtype and one rank. Shapes must be equal.
template <HostTensor A, HostTensor B>
  requires same_dtype_no_implicit_cast<dtype_of<A>, dtype_of<B>> && same_rank_no_broadcast<A, B> &&
           FloatDtype<dtype_of<A>>
[[nodiscard]] Tensor<dtype_of<A>, rank_of<A>> mul(const A& a, const B& b) {
  return detail::elementwise_binary("mul", a, b, [](auto x, auto y) { return x * y; });
}

/// a · s for a scalar of the tensor's own dtype (`Scalar<bf16>{0.5}`; E1, E27).
template <HostTensor A, FloatDtype S>
  requires same_dtype_no_implicit_cast<dtype_of<A>, S>
[[nodiscard]] Tensor<dtype_of<A>, rank_of<A>> mul(const A& a, const Scalar<S>& s) {
  using D = dtype_of<A>;
  const const_view_t<A> va = a;
  Tensor<D, rank_of<A>> out(va.extents());
  const compute_t<D> k = s.value();
  for_each_offset(va, [&](index_t flat, index_t off) {
    out.data()[flat] = from_compute<D>(to_compute<D>(va.data()[off]) * k);
  });
  return out;
}

}  // namespace precis
