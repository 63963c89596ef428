// A program that vendors precis with add_subdirectory and links only precis::precis (the core).
#include <cstdio>

#include <precis/precis.hpp>

int main() {
  using precis::bf16;
  using precis::f32;

  // A 3×4 f32 tensor; row 1, columns [1, 3) as a strided view; that view cast to bf16.
  auto x = precis::make_tensor<f32, 2>({3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  const precis::TensorView<f32, 2> block = x.view().slice(0, 1, 2).slice(1, 1, 3);
  const precis::Tensor<bf16, 2> b = precis::cast<bf16>(block);

  int failures = 0;
  if (b.extent(0) != 1 || b.extent(1) != 2) ++failures;
  if (static_cast<float>(b(0, 0)) != 5.0f || static_cast<float>(b(0, 1)) != 6.0f) ++failures;

  std::printf("add_subdirectory consumer: %s (%d failures)\n", failures == 0 ? "ok" : "FAILED", failures);
  return failures == 0 ? 0 : 1;
}
