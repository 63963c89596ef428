// precis/core/device.hpp — device tags. A tensor's device is part of its type, like its dtype:
// there is no implicit copy between host and GPU memory (copies are explicit calls).
#pragma once

#include <concepts>  // std::same_as

namespace precis {

/// Host memory, read and written by CPU kernels.
struct host {};
/// GPU global memory. Owning CUDA storage exists only in translation units compiled by nvcc
/// (include <precis/cuda/device_memory.cuh>); elsewhere `Tensor<D, R, cuda>` is incomplete.
struct cuda {};

template <class Dev>
concept Device = std::same_as<Dev, host> || std::same_as<Dev, cuda>;

/// Allocation and release for owning tensors on `Dev`. Specialised per device.
template <Device Dev>
struct device_allocator;

}  // namespace precis
