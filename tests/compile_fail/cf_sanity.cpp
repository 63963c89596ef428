// compile_fail sanity pair — the harness itself. The ok build of a valid file must pass and the
// ko build of a deliberately broken file must be detected by its message (Eigen's
// failtest_sanity_check; fmt's `check` / `check-error`). If this pair fails, every other
// compile_fail result is meaningless.
// expect-error: precis_compile_fail_sanity_check
#include <precis/core/tensor.hpp>  // precis::Tensor

int precis_compile_fail_sanity(int n);
int precis_compile_fail_sanity(int n) {
  const precis::Tensor<precis::f32, 1> t({n});
#ifdef PRECIS_SHOULD_FAIL
  static_assert(sizeof(int) == 0, "precis_compile_fail_sanity_check: this build must fail");
#endif
  return static_cast<int>(t.numel());
}
