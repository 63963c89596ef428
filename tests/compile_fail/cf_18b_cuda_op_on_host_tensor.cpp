// compile_fail 18b — memory is part of the type on the device backend too: a host tensor given to
// backends::Cuda's add_inplace does not compile (it would hand a host address to a kernel); the
// twin copies it over with to_device first.
// expect-error: (satisfaction of|because|does not satisfy|no matching).*(DeviceTensorOfRank|in_memory|add_inplace)
#include <precis/backends/cuda/backend.hpp>  // backends::Cuda

using namespace precis;

void cf_18b(backends::Cuda& gpu, Tensor<f32, 2, cuda>& x, const Tensor<f32, 2>& y_host);
void cf_18b(backends::Cuda& gpu, Tensor<f32, 2, cuda>& x, const Tensor<f32, 2>& y_host) {
#ifdef PRECIS_SHOULD_FAIL
  gpu.add_inplace(x.view(), y_host);
#else
  const Tensor<f32, 2, cuda> y = to_device(y_host);
  gpu.add_inplace(x.view(), y);
#endif
}
