// compile_fail 17a — memory is part of a tensor's type: add(host tensor, device tensor). A model
// that mixes a host cos/sin table with device activations, or a device tensor that reaches a host
// op, would otherwise read the wrong address space; here the reference op takes host tensors only
// (HostTensor, ops/host_tensor.hpp), and the bridge is a named copy (to_host / to_device).
// expect-error: (satisfaction of|because|does not satisfy) 'HostTensor[<']
#include <precis/ops/elementwise.hpp>  // precis::add

using namespace precis;

index_t cf_17a(const Tensor<f32, 2>& x, TensorView<const f32, 2, cuda> on_device);
index_t cf_17a(const Tensor<f32, 2>& x, TensorView<const f32, 2, cuda> on_device) {
#ifdef PRECIS_SHOULD_FAIL
  const auto y = add(x, on_device);  // [2, 2] host + [2, 2] device
#else
  (void)on_device;
  const auto y = add(x, x.cview());
#endif
  return y.numel();
}
