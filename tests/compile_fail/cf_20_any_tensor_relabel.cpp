// compile_fail 20 — robustness sweep, load-time dtype holes: relabelling bytes with another dtype.
// AnyTensor's public constructor let any code declare bf16 bits to be f16 (dtype-bugs E9: bf16
// bits read back as f16 are garbage of the right size). Now only the file readers give bytes a
// dtype code; in-memory tensors become AnyTensors through AnyTensor::of, which takes the code from
// the view's own dtype (the twin).
// expect-error: (private|protected|inaccessible)
#include <cstddef>  // std::byte
#include <span>     // std::span

#include <precis/core/tensor.hpp>    // precis::Tensor
#include <precis/io/any_tensor.hpp>  // precis::io::AnyTensor

using namespace precis;

int main() {
  Tensor<bf16, 1> t({4});
#ifdef PRECIS_SHOULD_FAIL
  const auto* p = reinterpret_cast<const std::byte*>(t.data());
  const io::AnyTensor a("w", dtype_code::f16, {4}, std::span<const std::byte>(p, t.bytes()), "memory");
#else
  const io::AnyTensor a = io::AnyTensor::of<bf16, 1>("w", t.cview(), "memory");
#endif
  return a.dtype() == dtype_code::bf16 ? 0 : 1;
}
