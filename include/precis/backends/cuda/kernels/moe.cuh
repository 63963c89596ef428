// precis/backends/cuda/kernels/moe.cuh — the data movement of the MoE op: gathering an expert's
// tokens, scattering its outputs to their (token, slot) rows, and the routing-weighted sum
// out_t = Σ_j w_j·y_{t,j} in f32 in routing order j = 0..k−1, rounded once (nn/moe.hpp's
// rounding points; the expert GEMMs themselves are the linear kernels).
#pragma once

#include <precis/backends/cuda/kernels/common.cuh>

namespace precis::cuda_kernels {

namespace dev {

__global__ void gather_rows_kernel(const void* x, elt t, index_t ld, const std::int32_t* rows, index_t n, index_t cols,
                                   void* out) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * cols) return;
  const index_t r = i / cols, c = i % cols;
  if (t == elt::f32) static_cast<float*>(out)[i] = static_cast<const float*>(x)[rows[r] * ld + c];
  else static_cast<std::uint16_t*>(out)[i] = static_cast<const std::uint16_t*>(x)[rows[r] * ld + c];
}

__global__ void scatter_rows_kernel(const float* src, const std::int32_t* rows, index_t n, index_t cols, float* dst) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * cols) return;
  dst[rows[i / cols] * cols + i % cols] = src[i];
}

__global__ void moe_combine_kernel(const float* y, const float* w, index_t T, index_t k, index_t cols, void* out, elt t) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * cols) return;
  const index_t tok = i / cols, c = i % cols;
  float acc = 0.0f;
  for (index_t j = 0; j < k; ++j) acc = __fadd_rn(acc, __fmul_rn(w[tok * k + j], y[(tok * k + j) * cols + c]));
  store(out, t, i, acc);
}

}  // namespace dev

cudaError_t gather_rows(const void* x, elt t, index_t ld, const std::int32_t* rows, index_t n, index_t cols, void* out,
                        cudaStream_t s) {
  if (n * cols == 0) return cudaSuccess;
  dev::gather_rows_kernel<<<dev::blocks_for(n * cols, 256), 256, 0, s>>>(x, t, ld, rows, n, cols, out);
  return cudaGetLastError();
}

cudaError_t scatter_rows_f32(const float* src, const std::int32_t* rows, index_t n, index_t cols, float* dst,
                             cudaStream_t s) {
  if (n * cols == 0) return cudaSuccess;
  dev::scatter_rows_kernel<<<dev::blocks_for(n * cols, 256), 256, 0, s>>>(src, rows, n, cols, dst);
  return cudaGetLastError();
}

cudaError_t moe_combine(const float* y, const float* w, index_t T, index_t k, index_t cols, void* out, elt t,
                        cudaStream_t s) {
  if (T * cols == 0) return cudaSuccess;
  dev::moe_combine_kernel<<<dev::blocks_for(T * cols, 256), 256, 0, s>>>(y, w, T, k, cols, out, t);
  return cudaGetLastError();
}

}  // namespace precis::cuda_kernels
