// precis/core/config.hpp — compiler and host/device annotations shared by every header.
#pragma once

#include <cstdint>  // std::int64_t

#if defined(__CUDACC__)
#define PRECIS_HD __host__ __device__
#define PRECIS_CUDA_COMPILER 1
#else
#define PRECIS_HD
#define PRECIS_CUDA_COMPILER 0
#endif

namespace precis {

/// Extents and indices are signed 64-bit: a vocab × hidden embedding of a 100B model
/// overflows 32 bits, and signed arithmetic keeps `i - window` well defined.
using index_t = std::int64_t;

/// Alignment of every owning CPU allocation: one cache line, enough for AVX-512 loads.
inline constexpr std::size_t tensor_alignment = 64;

}  // namespace precis
