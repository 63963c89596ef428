// compile_fail 17b — to_device takes a host tensor: a tensor already in device memory is not
// copied "to the device" again by accident (core/transfer.hpp: host_resident).
// expect-error: (satisfaction of|because|does not satisfy) 'host_resident[<']
#include <concepts>  // std::same_as

#include <precis/core/transfer.hpp>  // precis::to_device

using namespace precis;

#ifdef PRECIS_SHOULD_FAIL
using Arg = TensorView<const bf16, 2, cuda>;  // already on the device
#else
using Arg = Tensor<bf16, 2, host>;
#endif
using Copied = decltype(to_device(std::declval<const Arg&>()));  // declaration only: no copy is made here
static_assert(std::same_as<Copied, Tensor<bf16, 2, cuda>>);
