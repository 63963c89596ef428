// A program built against an installed precis: a typed tensor, an explicit cast, and the headers
// that precis::io and precis::cpu bring (their include paths and link lines must work).
#include <cstdio>
#include <type_traits>

#include <precis/precis.hpp>
#if __has_include(<precis/io/safetensors.hpp>)
#include <precis/io/safetensors.hpp>  // precis::io
#endif

#include <Eigen/Core>                  // through precis::cpu
#include <nlohmann/json.hpp>           // through precis::io
#include <oneapi/tbb/parallel_for.h>   // through precis::cpu (links libtbb)
#include <xsimd/xsimd.hpp>             // through precis::cpu

using precis::bf16;
using precis::f32;

// The dtype is part of the type: no implicit bridge between f32 and bf16 tensors.
static_assert(!std::is_convertible_v<precis::Tensor<bf16, 1>&, precis::TensorView<f32, 1>>);
static_assert(!std::is_constructible_v<precis::Tensor<f32, 1>, precis::Tensor<bf16, 1>>);

int main() {
  const auto x = precis::make_tensor<f32, 2>({2, 2}, {1.0f, 2.5f, -3.0f, 1.0f / 3.0f});
  const precis::Tensor<bf16, 2> y = precis::cast<bf16>(x);
  const precis::Tensor<f32, 2> z = precis::cast<f32>(y);

  int failures = 0;
  // 1, 2.5 and -3 are exact in bf16; 1/3 rounds to nearest even: 0x3EAB = 0.333984375.
  const float expected[] = {1.0f, 2.5f, -3.0f, 0.333984375f};
  for (int i = 0; i < 4; ++i)
    if (z.data()[i] != expected[i]) ++failures;
  if (y.data()[3].bits != 0x3EAB) ++failures;

  // The dependencies are usable: a TBB loop, an xsimd batch, an Eigen vector and a JSON value.
  float sum[4] = {};
  tbb::parallel_for(0, 4, [&](int i) { sum[i] = z.data()[i] * 2.0f; });
  const auto batch = xsimd::batch<float>::broadcast(sum[1]);
  const Eigen::Vector2f v(sum[0], batch.get(0));
  const nlohmann::json j = {{"dtype", std::string(precis::dtype_name<bf16>)}, {"v1", v(1)}};
  if (j["dtype"] != "bf16" || j["v1"].get<float>() != 5.0f) ++failures;

  std::printf("find_package consumer: %s (%d failures)\n", failures == 0 ? "ok" : "FAILED", failures);
  return failures == 0 ? 0 : 1;
}
