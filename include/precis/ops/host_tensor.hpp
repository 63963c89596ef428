// precis/ops/host_tensor.hpp — HostTensor: what the reference ops accept as a tensor argument.
//
// The reference ops (ops/, nn/) are the math spec: plain host loops that later CPU SIMD and CUDA
// kernels are differential-tested against. They accept any tensor-like argument on the host —
// an owning `Tensor` or a (possibly strided, possibly const) `TensorView` — and read it through
// a `TensorView<const D, R>`. Rank is a constraint (`HostTensorOfRank<X, 2>`), so passing a
// vector where a matrix is expected is a compile error, like a dtype mismatch.
//
// Also here: `materialize` (a contiguous owning copy of any host tensor-like argument) and
// `format_extents` (the "[2, 3]" spelling every shape_error message uses).
#pragma once

#include <concepts>  // std::same_as
#include <type_traits>  // std::is_convertible_v
#include <cstddef>   // std::size_t
#include <sstream>   // std::ostringstream
#include <string>    // std::string

#include <precis/core/device.hpp>       // precis::host
#include <precis/core/tensor.hpp>       // precis::Tensor, tensor_traits<Tensor>
#include <precis/core/tensor_view.hpp>  // precis::TensorView, TensorLike, dtype_of, rank_of, device_of

namespace precis {

/// A Tensor or TensorView in host memory.
template <class X>
concept HostTensor = TensorLike<X> && std::same_as<device_of<X>, host>;

/// A host tensor-like argument of rank `R`.
template <class X, std::size_t R>
concept HostTensorOfRank = HostTensor<X> && (rank_of<X> == R);

/// Two operands of one rank: precis never broadcasts implicitly.
/// A writable host tensor argument of rank R that an output can be written through: a Tensor
/// lvalue, or a TensorView of a non-const dtype. A temporary Tensor (its memory would die with the
/// call) and read-only views do not qualify.
template <class Y, std::size_t R>
concept writable_host_tensor = TensorLike<Y> && std::same_as<device_of<Y>, host> && rank_of<Y> == R &&
                               std::is_convertible_v<Y, TensorView<dtype_of<Y>, R>>;

template <class A, class B>
concept same_rank_no_broadcast = TensorLike<A> && TensorLike<B> && (rank_of<A> == rank_of<B>);

/// The read-only view through which reference ops read an argument.
template <HostTensor X>
using const_view_t = TensorView<const dtype_of<X>, rank_of<X>>;

/// `x` as a read-only view (no copy).
template <HostTensor X>
[[nodiscard]] const_view_t<X> as_const_view(const X& x) noexcept {
  return x;
}

/// A contiguous owning copy of `x`, same dtype (a plain copy, never a conversion).
template <HostTensor X>
[[nodiscard]] Tensor<dtype_of<X>, rank_of<X>> materialize(const X& x) {
  const const_view_t<X> in = x;
  Tensor<dtype_of<X>, rank_of<X>> out(in.extents());
  for_each_offset(in, [&](index_t flat, index_t off) { out.data()[flat] = in.data()[off]; });
  return out;
}

/// "[2, 3, 4]" — the spelling of extents in error messages.
template <std::size_t R>
[[nodiscard]] std::string format_extents(const extents_t<R>& e) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < R; ++i) os << (i ? ", " : "") << e[i];
  os << ']';
  return os.str();
}

}  // namespace precis
