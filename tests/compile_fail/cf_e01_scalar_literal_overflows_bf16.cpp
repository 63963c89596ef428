// compile_fail E1 (catalog entry, beyond the §3 list) — a scalar literal that overflows its dtype.
// Class C4 (E1 DeBERTa: "RuntimeError: value cannot be converted to type at::BFloat16 without
// overflow" — finfo(float32).min written into a bf16 tensor as a mask value). A Scalar<D>
// literal is checked by a consteval constructor (core/scalar.hpp): -3.4e38 rounds to -inf in
// bf16, which is not a finite bf16 value, so the program is ill-formed and the diagnostic names
// the reason (scalar_literal_overflows_dtype). The twin keeps the mask in f32, the score dtype.
// expect-error: scalar_literal_overflows_dtype
#include <precis/core/scalar.hpp>  // precis::Scalar

using namespace precis;

float cf_e01();
float cf_e01() {
#ifdef PRECIS_SHOULD_FAIL
  const Scalar<bf16> mask_value = -3.4028234663852886e38;  // torch.finfo(torch.float32).min
#else
  const Scalar<f32> mask_value = -3.4028234663852886e38;
#endif
  return static_cast<float>(mask_value.value());
}
