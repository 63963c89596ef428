// compile_fail meta-sanity — a ko build that *compiles* must be reported as a failure.
// The PRECIS_SHOULD_FAIL branch below is valid code, so the build succeeds, its output cannot
// contain the expected message, and ctest marks the ko test failed; the test is registered with
// WILL_FAIL, so that failure is what passes. A harness that passed a compiling ko (e.g. one that
// only checked for a non-zero exit, or matched its own command line) would turn this red.
// expect-error: precis_sanity_message_that_no_compiler_prints
#include <precis/core/tensor.hpp>  // precis::Tensor

int precis_compile_fail_sanity_ko_compiles(int n);
int precis_compile_fail_sanity_ko_compiles(int n) {
#ifdef PRECIS_SHOULD_FAIL
  const precis::Tensor<precis::bf16, 1> t({n});  // valid: nothing here fails
#else
  const precis::Tensor<precis::f32, 1> t({n});
#endif
  return static_cast<int>(t.numel());
}
