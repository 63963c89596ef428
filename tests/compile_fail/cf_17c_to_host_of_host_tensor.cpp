// compile_fail 17c — to_host takes a device tensor (core/transfer.hpp: device_resident), and the
// copy keeps the dtype: the logits of a bf16 device tensor come back as bf16, never as f32.
// expect-error: (satisfaction of|because|does not satisfy) 'device_resident[<']
#include <concepts>  // std::same_as

#include <precis/core/transfer.hpp>  // precis::to_host

using namespace precis;

#ifdef PRECIS_SHOULD_FAIL
using Arg = Tensor<f32, 2, host>;  // already on the host
#else
using Arg = TensorView<const f32, 2, cuda>;
#endif
using Copied = decltype(to_host(std::declval<const Arg&>()));
static_assert(std::same_as<Copied, Tensor<f32, 2, host>>);
