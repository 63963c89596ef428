// src/cuda/kernels.cu — the one translation unit that compiles the CUDA backend's kernels and
// launchers (include/precis/backends/cuda/kernels.cuh) into precis_cuda_kernels.
#include <precis/backends/cuda/kernels.cuh>
