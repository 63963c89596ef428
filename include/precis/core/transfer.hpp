// precis/core/transfer.hpp — to_device / to_host: the only bridges between host and device memory.
//
// A tensor's memory is part of its type (core/device.hpp): Tensor<f32, 2, host> and
// Tensor<f32, 2, cuda> are different types, no op takes both, and nothing converts one into the
// other implicitly. A copy is a named call:
//
//   Tensor<bf16, 2, cuda> w_dev = to_device(w_host);   // host → device, same dtype and extents
//   Tensor<f32, 2, host> logits = to_host(y_dev);       // device → host
//
// The dtype never changes across a copy (cast<To> is a separate, named step on either side), and
// f64 never reaches the device (no_f64_on_device, core/tensor.hpp). The byte copies are the
// device's `device_allocator<cuda>`, defined by the CUDA component's headers in translation units
// compiled by nvcc; elsewhere a call compiles to a static_assert that says so, while the
// declarations (and so the type rules) are visible to every translation unit.
#pragma once

#include <concepts>  // std::same_as
#include <cstddef>   // std::size_t

#include <precis/core/device.hpp>       // host, cuda, device_allocator
#include <precis/core/error.hpp>        // shape_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>       // Tensor
#include <precis/core/tensor_view.hpp>  // TensorView, TensorLike, dtype_of, rank_of, device_of

namespace precis {

/// True where a device's allocator (and so its copies) is defined in this translation unit.
template <class Dev>
concept device_memory_available = requires { sizeof(device_allocator<Dev>); };

namespace detail {
/// `Dev`, spelled so that it depends on `T`: the device allocator is looked up when a copy is
/// instantiated, not when this header is read (it is incomplete outside CUDA translation units).
template <class T, class Dev>
using dependent_device = Dev;
}  // namespace detail

/// A tensor argument in host memory / in device memory.
template <class X>
concept host_resident = TensorLike<X> && std::same_as<device_of<X>, host>;
template <class X>
concept device_resident = TensorLike<X> && std::same_as<device_of<X>, cuda>;

/// Copies a contiguous host tensor into new device memory (same dtype, same extents).
template <class X>
  requires host_resident<X> && no_f64_on_device<std::remove_const_t<dtype_of<X>>, cuda>
[[nodiscard]] Tensor<std::remove_const_t<dtype_of<X>>, rank_of<X>, cuda> to_device(const X& x) {
  using D = std::remove_const_t<dtype_of<X>>;
  static_assert(device_memory_available<detail::dependent_device<X, cuda>>,
                "to_device needs the CUDA component's device memory (include <precis/backends/cuda/...> in a "
                "translation unit compiled by nvcc, link precis::cuda)");
  const TensorView<const D, rank_of<X>> v = x;
  PRECIS_CHECK(v.is_contiguous(), shape_error, "[to_device] the host tensor is not contiguous");
  Tensor<D, rank_of<X>, cuda> out(v.extents());
  device_allocator<detail::dependent_device<X, cuda>>::copy_to_device(out.data(), v.data(), static_cast<std::size_t>(v.numel()) * sizeof(storage_t<D>));
  return out;
}

/// Copies a contiguous device tensor into new host memory (same dtype, same extents).
template <class X>
  requires device_resident<X>
[[nodiscard]] Tensor<std::remove_const_t<dtype_of<X>>, rank_of<X>, host> to_host(const X& x) {
  using D = std::remove_const_t<dtype_of<X>>;
  static_assert(device_memory_available<detail::dependent_device<X, cuda>>,
                "to_host needs the CUDA component's device memory (include <precis/backends/cuda/...> in a "
                "translation unit compiled by nvcc, link precis::cuda)");
  const TensorView<const D, rank_of<X>, cuda> v = x;
  PRECIS_CHECK(v.is_contiguous(), shape_error, "[to_host] the device tensor is not contiguous");
  Tensor<D, rank_of<X>, host> out(v.extents());
  device_allocator<detail::dependent_device<X, cuda>>::copy_to_host(out.data(), v.data(), static_cast<std::size_t>(v.numel()) * sizeof(storage_t<D>));
  return out;
}

}  // namespace precis
