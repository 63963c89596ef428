// precis/backends/cuda/kernels.cuh — every kernel and launcher of the CUDA backend. Include it
// in exactly one .cu file of a program (precis' own build does so in src/cuda/kernels.cu, the
// precis_cuda_kernels library that precis::cuda links); the launchers it defines are the ones
// backends/cuda/launch.hpp declares for host code.
//
// Build flags the kernels assume: C++20, --expt-relaxed-constexpr (the block dequantizers of
// quant/block_reference.hpp are constexpr host/device functions), and -arch=sm_90 or newer for
// the speed the benchmarks report (the code itself needs no Hopper instruction yet).
#pragma once

#include <precis/backends/cuda/kernels/attention.cuh>
#include <precis/backends/cuda/kernels/elementwise.cuh>
#include <precis/backends/cuda/kernels/gemv.cuh>
#include <precis/backends/cuda/kernels/moe.cuh>
#include <precis/backends/cuda/kernels/route.cuh>
#include <precis/backends/cuda/kernels/sampling.cuh>

namespace precis::cuda_kernels {

namespace dev {
template <int N>
__global__ void probe_kernel(int* out) {
  if (out != nullptr) *out = N;
}
}  // namespace dev

cudaError_t probe() {
  cudaFuncAttributes attr{};
  return cudaFuncGetAttributes(&attr, dev::probe_kernel<1>);
}

#define PRECIS_CUDA_STR2(x) #x
#define PRECIS_CUDA_STR(x) PRECIS_CUDA_STR2(x)
const char* compiled_architectures() {
#if defined(__CUDA_ARCH_LIST__)
  return PRECIS_CUDA_STR(__CUDA_ARCH_LIST__);
#else
  return "unknown";
#endif
}
#undef PRECIS_CUDA_STR
#undef PRECIS_CUDA_STR2

}  // namespace precis::cuda_kernels
