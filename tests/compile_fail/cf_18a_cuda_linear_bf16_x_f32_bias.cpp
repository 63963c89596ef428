// compile_fail 18a — the dtype rules hold on the device as on the host: backends::Cuda's linear
// takes a bias of the output dtype only, so bf16 activations with an f32 bias (the gpt-oss
// "expected scalar type Float but found BFloat16" shape of bug, on the GPU) do not compile; the
// twin declares the f32 output (linear<f32>), which is what an f32 bias belongs to.
// expect-error: (satisfaction of|because|does not satisfy|no matching).*(same_dtype_no_implicit_cast|linear)
#include <precis/backends/cuda/backend.hpp>  // backends::Cuda

using namespace precis;

index_t cf_18a(backends::Cuda& gpu, const Tensor<bf16, 2, cuda>& x, const backends::CudaWeight& w,
               const Tensor<f32, 1, cuda>& bias);
index_t cf_18a(backends::Cuda& gpu, const Tensor<bf16, 2, cuda>& x, const backends::CudaWeight& w,
               const Tensor<f32, 1, cuda>& bias) {
#ifdef PRECIS_SHOULD_FAIL
  const auto y = gpu.linear(x, w, bias, activation_quantization::none);  // bf16 out, f32 bias
#else
  const auto y = gpu.linear<f32>(x, w, bias, activation_quantization::none);
#endif
  return y.numel();
}
