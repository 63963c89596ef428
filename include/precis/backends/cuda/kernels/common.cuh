// precis/backends/cuda/kernels/common.cuh — device helpers every kernel header shares: element
// loads and stores with the host's exact conversions (bf16 round-to-nearest-even with the
// quiet-NaN rule of numeric/bfloat16.hpp), weight-row reads in every stored format (the block
// dequantizers are quant/block_reference.hpp's, compiled for the device: one definition of each
// format's math), and the launch-error helper. Include through kernels.cuh.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include <precis/backends/cuda/launch.hpp>      // elt, DeviceMatrix, index_t
#include <precis/quant/block_formats.hpp>       // visit_ggml_block_format
#include <precis/quant/block_reference.hpp>     // dequantize_block, dequantize_block_mxfp4
#include <precis/quant/kquants.hpp>             // dequantize_block / dequantize_chunk of the download formats

namespace precis::cuda_kernels::dev {

/// f32 → bf16 bits, as detail::f32_to_bf16_bits (NaN keeps sign and payload, quiet bit forced).
__device__ __forceinline__ std::uint16_t to_bf16(float f) {
  const std::uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
__device__ __forceinline__ float from_bf16(std::uint16_t b) { return __uint_as_float(static_cast<std::uint32_t>(b) << 16); }
__device__ __forceinline__ float from_f16(std::uint16_t h) { return __half2float(__ushort_as_half(h)); }

/// Element i of an array of type t, as f32.
__device__ __forceinline__ float load(const void* p, elt t, index_t i) {
  switch (t) {
    case elt::f32: return static_cast<const float*>(p)[i];
    case elt::bf16: return from_bf16(static_cast<const std::uint16_t*>(p)[i]);
    default: return from_f16(static_cast<const std::uint16_t*>(p)[i]);
  }
}
/// Stores v rounded once to t.
__device__ __forceinline__ void store(void* p, elt t, index_t i, float v) {
  if (t == elt::f32) static_cast<float*>(p)[i] = v;
  else static_cast<std::uint16_t*>(p)[i] = to_bf16(v);
}

/// Typed element access for the kernels templated on the activation type (T = float or
/// std::uint16_t holding bf16 bits).
template <class T>
__device__ __forceinline__ float ld_val(const T* p, index_t i);
template <>
__device__ __forceinline__ float ld_val<float>(const float* p, index_t i) { return p[i]; }
template <>
__device__ __forceinline__ float ld_val<std::uint16_t>(const std::uint16_t* p, index_t i) { return from_bf16(p[i]); }
template <class T>
__device__ __forceinline__ void st_val(T* p, index_t i, float v);
template <>
__device__ __forceinline__ void st_val<float>(float* p, index_t i, float v) { p[i] = v; }
template <>
__device__ __forceinline__ void st_val<std::uint16_t>(std::uint16_t* p, index_t i, float v) { p[i] = to_bf16(v); }

/// v after one rounding to T (identity for f32).
template <class T>
__device__ __forceinline__ float round_to(float v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else return from_bf16(to_bf16(v));
}

/// The 32 values of block `b` of row `r` of a block-format weight, dequantized exactly.
template <class F>
__device__ __forceinline__ void block_values(const DeviceMatrix& w, index_t r, index_t b, float out[32]);

#define PRECIS_CUDA_BLOCK_VALUES(TAG, BLOCK)                                                              \
  template <>                                                                                             \
  __device__ __forceinline__ void block_values<TAG>(const DeviceMatrix& w, index_t r, index_t b, float out[32]) { \
    const BLOCK* row = static_cast<const BLOCK*>(w.data) + r * (w.cols / 32);                             \
    BLOCK blk;                                                                                            \
    memcpy(&blk, row + b, sizeof(BLOCK));                                                                 \
    ::precis::dequantize_block(blk, out);                                                                 \
  }
PRECIS_CUDA_BLOCK_VALUES(q8_0, block_q8_0)
PRECIS_CUDA_BLOCK_VALUES(q4_0, block_q4_0)
PRECIS_CUDA_BLOCK_VALUES(q4_1, block_q4_1)
PRECIS_CUDA_BLOCK_VALUES(mxfp4_ggml, block_mxfp4_ggml)
PRECIS_CUDA_BLOCK_VALUES(q5_0, block_q5_0)
PRECIS_CUDA_BLOCK_VALUES(q5_1, block_q5_1)
PRECIS_CUDA_BLOCK_VALUES(iq4_nl, block_iq4_nl)
#undef PRECIS_CUDA_BLOCK_VALUES

// The 256-value K-quants: chunk b of row r is chunk b % 8 of super-block b / 8, dequantized by the
// scalar spec (kquants.hpp) straight from global memory (blocks are 2-byte aligned: f16 fields).
#define PRECIS_CUDA_CHUNK_VALUES(TAG, BLOCK)                                                              \
  template <>                                                                                             \
  __device__ __forceinline__ void block_values<TAG>(const DeviceMatrix& w, index_t r, index_t b, float out[32]) { \
    const BLOCK* row = static_cast<const BLOCK*>(w.data) + r * (w.cols / 256);                            \
    ::precis::dequantize_chunk(row[b / 8], static_cast<int>(b % 8), out);                                 \
  }
PRECIS_CUDA_CHUNK_VALUES(q2_K, block_q2_K)
PRECIS_CUDA_CHUNK_VALUES(q3_K, block_q3_K)
PRECIS_CUDA_CHUNK_VALUES(q4_K, block_q4_K)
PRECIS_CUDA_CHUNK_VALUES(q5_K, block_q5_K)
PRECIS_CUDA_CHUNK_VALUES(q6_K, block_q6_K)
PRECIS_CUDA_CHUNK_VALUES(iq4_xs, block_iq4_xs)
#undef PRECIS_CUDA_CHUNK_VALUES

template <>
__device__ __forceinline__ void block_values<mxfp4>(const DeviceMatrix& w, index_t r, index_t b, float out[32]) {
  const index_t nb = w.cols / 32;
  const auto* nib = static_cast<const std::uint8_t*>(w.data) + (r * nb + b) * 16;
  std::uint8_t n[16];
  const uint4 v = *reinterpret_cast<const uint4*>(nib);  // 16-byte aligned: the plane is [rows, nb, 16]
  memcpy(n, &v, 16);
  ::precis::dequantize_block_mxfp4(n, w.scales[r * nb + b], out);
}

/// Value (r, c) of a float-format weight.
template <class F>
__device__ __forceinline__ float float_value(const DeviceMatrix& w, index_t r, index_t c);
template <>
__device__ __forceinline__ float float_value<f32>(const DeviceMatrix& w, index_t r, index_t c) {
  return static_cast<const float*>(w.data)[r * w.cols + c];
}
template <>
__device__ __forceinline__ float float_value<bf16>(const DeviceMatrix& w, index_t r, index_t c) {
  return from_bf16(static_cast<const std::uint16_t*>(w.data)[r * w.cols + c]);
}
template <>
__device__ __forceinline__ float float_value<f16>(const DeviceMatrix& w, index_t r, index_t c) {
  return from_f16(static_cast<const std::uint16_t*>(w.data)[r * w.cols + c]);
}

template <class F>
inline constexpr bool is_block = !(std::is_same_v<F, f32> || std::is_same_v<F, bf16> || std::is_same_v<F, f16>);

/// Calls f.template operator()<F>() for the weight's stored format (the one run-time switch).
template <class Fn>
cudaError_t with_format(dtype_code code, Fn&& fn) {
  switch (code) {
    case dtype_code::f32: return fn.template operator()<f32>();
    case dtype_code::bf16: return fn.template operator()<bf16>();
    case dtype_code::f16: return fn.template operator()<f16>();
    case dtype_code::mxfp4: return fn.template operator()<mxfp4>();
    default: {
      cudaError_t e = cudaErrorInvalidValue;
      (void)visit_ggml_block_format(code, [&]<class F>() { e = fn.template operator()<F>(); });
      return e;
    }
  }
}

[[nodiscard]] inline unsigned blocks_for(index_t n, unsigned per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

}  // namespace precis::cuda_kernels::dev
