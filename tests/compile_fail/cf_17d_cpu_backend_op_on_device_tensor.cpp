// compile_fail 17d — a backend's ops take tensors of its own memory only: the CPU backend's
// residual add (backends/cpu/backend.hpp) given a device tensor does not compile. A model is
// written against the Backend concept, whose tensors are Tensor<D, R, B::memory>, so a model
// cannot hand one backend's tensors to another's ops either.
// expect-error: (satisfaction of|because|does not satisfy) 'HostTensor[<']
#include <precis/backends/cpu/backend.hpp>  // precis::backends::Cpu

using namespace precis;

void cf_17d(Tensor<bf16, 2>& x, TensorView<const bf16, 2, cuda> on_device);
void cf_17d(Tensor<bf16, 2>& x, TensorView<const bf16, 2, cuda> on_device) {
  const backends::Cpu be(1);
#ifdef PRECIS_SHOULD_FAIL
  be.add_inplace(x.view(), on_device);  // host x += device y
#else
  (void)on_device;
  be.add_inplace(x.view(), x.cview());
#endif
}
