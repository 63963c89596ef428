// precis/backends/cuda/kernels/gemv.cuh — y [M, N] = x [M, K]·Wᵀ (+ bias) for small M (decode,
// small batches), weights read once in their stored format and dequantized in registers, and the
// exact dequantization of weight rows to f32 (the prefill path feeds it to an f32 GEMM).
//
// GEMV: one warp per output row n. Float formats: lane j reads columns j, j + 32, … (coalesced).
// Block formats: lane j reads blocks j, j + 32, … of the row (a warp reads 32 consecutive blocks),
// dequantizes each with quant/block_reference.hpp's math and multiplies it with the M activation
// rows. Accumulation is f32 per lane, then a butterfly over the warp; the bias is added in f32 and
// y rounded once — the reference's rounding points, with a different (tree) summation order.
// Bandwidth work (wider loads, several rows per warp, x in shared memory) is the GPU speed issue's.
#pragma once

#include <precis/backends/cuda/kernels/common.cuh>

namespace precis::cuda_kernels {

namespace dev {

inline constexpr int gemv_warps = 4;

/// Output row n of y [M, N] = x [M, K]·Wᵀ (+ bias) by one warp.
template <class F, class XT, class YT, class BT>
__device__ __forceinline__ void gemv_row(const DeviceMatrix& w, const XT* x, index_t ldx, int M, YT* y, index_t ldy,
                                         const BT* bias, index_t n) {
  const int lane = threadIdx.x & 31;
  const index_t K = w.cols;
  float acc[gemv_max_rows];
#pragma unroll
  for (int m = 0; m < gemv_max_rows; ++m) acc[m] = 0.0f;
  if constexpr (is_block<F>) {
    const index_t nb = K / 32;
    for (index_t b = lane; b < nb; b += 32) {
      float v[32];
      block_values<F>(w, n, b, v);
#pragma unroll
      for (int m = 0; m < gemv_max_rows; ++m) {
        if (m < M) {
          const XT* xr = x + m * ldx + b * 32;
          float s = 0.0f;
#pragma unroll
          for (int j = 0; j < 32; ++j) s = __fmaf_rn(v[j], ld_val(xr, j), s);
          acc[m] += s;
        }
      }
    }
  } else {
    for (index_t c = lane; c < K; c += 32) {
      const float wv = float_value<F>(w, n, c);
#pragma unroll
      for (int m = 0; m < gemv_max_rows; ++m)
        if (m < M) acc[m] = __fmaf_rn(wv, ld_val(x + m * ldx, c), acc[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < gemv_max_rows; ++m) {
    float v = acc[m];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    acc[m] = v;
  }
  if (lane == 0) {
    const float b = bias != nullptr ? ld_val(bias, n) : 0.0f;
#pragma unroll
    for (int m = 0; m < gemv_max_rows; ++m)
      if (m < M) st_val(y + m * ldy, n, bias != nullptr ? __fadd_rn(acc[m], b) : acc[m]);
  }
}

template <class F, class XT, class YT, class BT>
__global__ void __launch_bounds__(gemv_warps * 32) gemv_kernel(DeviceMatrix w, const XT* x, index_t ldx, int M, YT* y,
                                                               index_t ldy, const BT* bias) {
  const index_t n = static_cast<index_t>(blockIdx.x) * gemv_warps + (threadIdx.x >> 5);
  if (n >= w.rows) return;
  gemv_row<F>(w, x, ldx, M, y, ldy, bias, n);
}

/// Pair p = blockIdx.y: y row p = x row (p / div) · W_{experts[p]}ᵀ (+ bias row experts[p]), the
/// expert's matrix at w0.data + experts[p]·expert_bytes (scales + experts[p]·scale_bytes).
template <class F, class XT, class YT, class BT>
__global__ void __launch_bounds__(gemv_warps * 32)
    indexed_gemv_kernel(DeviceMatrix w0, std::size_t expert_bytes, std::size_t scale_bytes, const std::int32_t* experts,
                        const XT* x, index_t ldx, int div, YT* y, index_t ldy, const BT* bias, index_t bias_stride) {
  const index_t n = static_cast<index_t>(blockIdx.x) * gemv_warps + (threadIdx.x >> 5);
  if (n >= w0.rows) return;
  const index_t p = blockIdx.y;
  const index_t e = experts[p];
  DeviceMatrix w = w0;
  w.data = static_cast<const unsigned char*>(w0.data) + static_cast<std::size_t>(e) * expert_bytes;
  if (w0.scales != nullptr) w.scales = w0.scales + static_cast<std::size_t>(e) * scale_bytes;
  gemv_row<F>(w, x + (p / div) * ldx, ldx, 1, y + p * ldy, ldy, bias != nullptr ? bias + e * bias_stride : nullptr, n);
}

/// Block formats: one thread per (row, block) writes its 32 values; float formats: one per value.
template <class F>
__global__ void dequantize_kernel(DeviceMatrix w, index_t row0, index_t n, float* out) {
  const index_t K = w.cols;
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if constexpr (is_block<F>) {
    const index_t nb = K / 32;
    if (i >= n * nb) return;
    const index_t r = i / nb, b = i % nb;
    float v[32];
    block_values<F>(w, row0 + r, b, v);
#pragma unroll
    for (int j = 0; j < 32; ++j) out[r * K + b * 32 + j] = v[j];
  } else {
    if (i >= n * K) return;
    out[i] = float_value<F>(w, row0 + i / K, i % K);
  }
}

/// Calls go(XT*, YT*, BT*) with the storage types (float, or u16 bf16 bits) of x, y and bias.
template <class Go>
cudaError_t with_gemv_types(elt x_t, elt y_t, elt bias_t, Go&& go) {
  using u16 = std::uint16_t;
  const auto with_bias = [&]<class XT, class YT>(XT* xp, YT* yp) {
    return bias_t == elt::f32 ? go(xp, yp, static_cast<float*>(nullptr)) : go(xp, yp, static_cast<u16*>(nullptr));
  };
  const auto with_y = [&]<class XT>(XT* xp) {
    return y_t == elt::f32 ? with_bias(xp, static_cast<float*>(nullptr)) : with_bias(xp, static_cast<u16*>(nullptr));
  };
  return x_t == elt::f32 ? with_y(static_cast<float*>(nullptr)) : with_y(static_cast<u16*>(nullptr));
}

}  // namespace dev

cudaError_t gemv(const DeviceMatrix& w, const void* x, elt x_t, index_t ldx, index_t M, void* y, elt y_t, index_t ldy,
                 const void* bias, elt bias_t, cudaStream_t s) {
  if (M == 0 || w.rows == 0) return cudaSuccess;
  if (M > gemv_max_rows || x_t == elt::f16 || y_t == elt::f16 || bias_t == elt::f16) return cudaErrorInvalidValue;
  using u16 = std::uint16_t;
  const unsigned grid = dev::blocks_for(w.rows, dev::gemv_warps);
  return dev::with_format(w.format, [&]<class F>() {
    const auto go = [&]<class XT, class YT, class BT>(XT*, YT*, BT*) {
      dev::gemv_kernel<F, XT, YT, BT><<<grid, dev::gemv_warps * 32, 0, s>>>(
          w, static_cast<const XT*>(x), ldx, static_cast<int>(M), static_cast<YT*>(y), ldy, static_cast<const BT*>(bias));
      return cudaGetLastError();
    };
    return dev::with_gemv_types(x_t, y_t, bias_t, go);
  });
}

cudaError_t indexed_gemv(const DeviceMatrix& w0, std::size_t expert_bytes, std::size_t scale_bytes,
                         const std::int32_t* experts, index_t P, const void* x, elt x_t, index_t ldx, index_t div, void* y,
                         elt y_t, index_t ldy, const void* bias, elt bias_t, index_t bias_stride, cudaStream_t s) {
  if (P == 0 || w0.rows == 0) return cudaSuccess;
  if (P > 65535 || div < 1 || x_t == elt::f16 || y_t == elt::f16 || bias_t == elt::f16) return cudaErrorInvalidValue;
  using u16 = std::uint16_t;
  const dim3 grid(dev::blocks_for(w0.rows, dev::gemv_warps), static_cast<unsigned>(P));
  return dev::with_format(w0.format, [&]<class F>() {
    const auto go = [&]<class XT, class YT, class BT>(XT*, YT*, BT*) {
      dev::indexed_gemv_kernel<F, XT, YT, BT><<<grid, dev::gemv_warps * 32, 0, s>>>(
          w0, expert_bytes, scale_bytes, experts, static_cast<const XT*>(x), ldx, static_cast<int>(div),
          static_cast<YT*>(y), ldy, static_cast<const BT*>(bias), bias_stride);
      return cudaGetLastError();
    };
    return dev::with_gemv_types(x_t, y_t, bias_t, go);
  });
}

cudaError_t dequantize(const DeviceMatrix& w, index_t row0, index_t n, float* out, cudaStream_t s) {
  if (n == 0 || w.cols == 0) return cudaSuccess;
  return dev::with_format(w.format, [&]<class F>() {
    const index_t work = dev::is_block<F> ? n * (w.cols / 32) : n * w.cols;
    dev::dequantize_kernel<F><<<dev::blocks_for(work, 256), 256, 0, s>>>(w, row0, n, out);
    return cudaGetLastError();
  });
}

}  // namespace precis::cuda_kernels
