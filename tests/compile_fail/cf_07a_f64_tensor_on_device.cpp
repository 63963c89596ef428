// compile_fail 07a — dtype-bugs §3 entry 7, first misuse: a device-side Tensor<f64> in a model
// graph. Class C3/C4 (E15 vllm-omni: float64 cos/sin "promotes query/key to float64 before
// attention ... will either drop the fused attention kernels or fail outright"; diffusers
// float64 RoPE "breaks MPS"). f64 exists on the host only, for setup math and float64
// references (no_f64_on_device, core/tensor.hpp); naming Tensor<f64, R, cuda> is ill-formed.
// expect-error: (satisfaction of|because|does not satisfy) 'no_f64_on_device[<']
#include <precis/core/tensor.hpp>  // precis::Tensor, precis::cuda

using namespace precis;

#ifdef PRECIS_SHOULD_FAIL
using DeviceCos = Tensor<f64, 2, cuda>;  // [T, rotary_dim/2] cos table on the GPU
#else
using DeviceCos = Tensor<f32, 2, cuda>;
#endif
using HostCosReference = Tensor<f64, 2, host>;  // f64 on the host stays legal

static_assert(DeviceCos::rank == 2 && HostCosReference::rank == 2);
