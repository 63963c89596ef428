// 01_tensor_basics — precis in one page: a tensor's dtype is part of its type.
//
//   Tensor<D, Rank>       an owning, zero-filled, row-major tensor of dtype D (f32, bf16, ...)
//   TensorView<D, Rank>   a strided, non-owning view; TensorView<const D, Rank> is read-only
//   cast<To>(x)           the one bridge between float dtypes (round to nearest even)
//   precision_policy<...> which dtype each role of a model uses; precision-critical roles are
//                         pinned to f32 and a policy cannot change them
//
// Build and run: bash scripts/run_example.sh
// The lines under "DOES NOT COMPILE" are real: uncomment one and the build stops.
#include <cstdio>

#include <precis/precis.hpp>

using precis::bf16;
using precis::f32;
using precis::i64;
using precis::index_t;

namespace {

// Prints a rank-2 tensor or view of any float dtype, converting each element explicitly.
template <class View>
void print(const char* title, const View& v) {
  std::printf("%s  <%s, %td x %td>\n", title, precis::dtype_name<precis::dtype_of<View>>.data(), v.extent(0),
              v.extent(1));
  for (index_t i = 0; i < v.extent(0); ++i) {
    std::printf("   ");
    for (index_t j = 0; j < v.extent(1); ++j) std::printf(" %12.8g", static_cast<double>(static_cast<float>(v(i, j))));
    std::printf("\n");
  }
}

// A custom policy: bf16 activations and weights, f32 accumulation. Adding
// `using sinks = bf16;` here would make PrecisionPolicy<my_policy> false (sinks are pinned to f32).
struct my_policy {
  using activation = bf16;
  using weight = bf16;
  using kv_store = bf16;
  using accumulator = f32;
};

// Two policies that try to move a pinned role off f32. They are valid C++ structs, but not
// PrecisionPolicy models, so no model or block accepts them (the diagnostic names the rule).
struct sinks_in_bf16 : precis::bf16_policy {
  using sinks = bf16;
};
struct rope_in_bf16 : precis::bf16_policy {
  using rope_table = bf16;
};

}  // namespace

int main() {
  // ---------------------------------------------------------------------------------------
  // 1. Tensors of two dtypes, and the explicit cast between them.
  // ---------------------------------------------------------------------------------------
  precis::Tensor<f32, 2> x = precis::make_tensor<f32, 2>({2, 4}, {1.0f, 0.1f, 3.14159265f, -2.5f,  //
                                                                  1e-3f, 65504.0f, 1.0f / 3.0f, 256.5f});
  print("x", x.cview());

  precis::Tensor<bf16, 2> xb = precis::cast<bf16>(x);  // 8 mantissa bits: 0.1 → 0.10009766
  print("cast<bf16>(x)", xb.cview());

  precis::Tensor<f32, 2> back = precis::cast<f32>(xb);  // widening is exact
  print("cast<f32>(cast<bf16>(x))", back.cview());
  std::printf("bf16 bits of 0.1: 0x%04X\n\n", static_cast<unsigned>(xb(0, 1).bits));

  // DOES NOT COMPILE — no implicit bridge between dtypes:
  //   precis::Tensor<f32, 2> y = xb;                    // no conversion Tensor<bf16> → Tensor<f32>
  //   precis::TensorView<const f32, 2> v = xb;          // nor to a view of another dtype
  //   float f = xb(0, 0);                               // bf16 → float is explicit even for scalars
  //   precis::cast<bf16>(x);                            // discarded cast: [[nodiscard]] + -Werror
  //   precis::cast<bf16>(precis::Tensor<i64, 1>({4}));  // integer → bf16: no such conversion

  // ---------------------------------------------------------------------------------------
  // 2. Views and slices: no copies, the dtype travels with the view.
  // ---------------------------------------------------------------------------------------
  precis::Tensor<f32, 2> m = precis::make_tensor<f32, 2>({3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  precis::TensorView<f32, 2> mv = m.view();
  precis::TensorView<f32, 2> cols = mv.slice(1, 1, 3);  // columns [1, 3): strided, not contiguous
  print("m", m.cview());
  print("m[:, 1:3]", cols);
  std::printf("   contiguous: %s, strides (%td, %td)\n", cols.is_contiguous() ? "yes" : "no", cols.stride(0),
              cols.stride(1));

  cols(0, 0) = 100.0f;  // a writable view writes through to m
  std::printf("   after cols(0, 0) = 100: m(0, 1) = %g\n", static_cast<double>(m(0, 1)));

  precis::TensorView<f32, 1> row2 = mv[2];  // leading-axis index: rank drops by one
  std::printf("m[2] has %td elements, first %g\n", row2.extent(0), static_cast<double>(row2(0)));

  precis::TensorView<const f32, 2> flat = m.cview().reshape<2>({2, 6});  // contiguous → reshape
  print("m reshaped to 2 x 6 (read-only view)", flat);

  precis::Tensor<bf16, 2> cols_bf16 = precis::cast<bf16>(cols);  // cast works on strided views too
  print("cast<bf16>(m[:, 1:3])", cols_bf16.cview());
  std::printf("\n");

  // DOES NOT COMPILE:
  //   flat(0, 0) = 1.0f;                                // TensorView<const f32> is read-only
  //   precis::TensorView<bf16, 2> w = cols;             // a view never reinterprets another dtype

  // ---------------------------------------------------------------------------------------
  // 3. Integers and floats cross only through named functions.
  // ---------------------------------------------------------------------------------------
  precis::Tensor<i64, 1> positions({4});
  for (index_t i = 0; i < 4; ++i) positions(i) = 15960 + i;
  precis::Tensor<f32, 1> pos_f32 = precis::to_float<f32>(positions);  // exact below 2^24, checked
  // There is no to_float<bf16>: bf16 has 8 significant bits, so all four positions would become 15936.
  std::printf("to_float<f32>(positions): %g %g %g %g\n\n",
              static_cast<double>(pos_f32(0)), static_cast<double>(pos_f32(1)), static_cast<double>(pos_f32(2)),
              static_cast<double>(pos_f32(3)));

  // ---------------------------------------------------------------------------------------
  // 4. Precision policies: roles → dtypes, with pinned f32 roles.
  // ---------------------------------------------------------------------------------------
  using P = precis::bf16_policy;  // precision_policy<bf16>: bf16 activations, weights and KV
  static_assert(precis::PrecisionPolicy<P> && precis::PrecisionPolicy<my_policy>);
  static_assert(std::same_as<precis::role_dtype_t<precis::role::activation, P>, bf16>);
  static_assert(std::same_as<precis::role_dtype_t<precis::role::rope_table, P>, f32>);  // pinned
  static_assert(std::same_as<precis::role_dtype_t<precis::role::sinks, my_policy>, f32>);  // pinned
  std::printf("bf16_policy: activation %s, weight %s, kv_store %s, accumulator %s\n",
              precis::dtype_name<P::activation>.data(), precis::dtype_name<P::weight>.data(),
              precis::dtype_name<P::kv_store>.data(), precis::dtype_name<P::accumulator>.data());
  std::printf("pinned roles (always f32): rope_table %s, sinks %s, router_logits %s, attention_scores %s\n",
              precis::dtype_name<precis::role_dtype_t<precis::role::rope_table, P>>.data(),
              precis::dtype_name<precis::role_dtype_t<precis::role::sinks, P>>.data(),
              precis::dtype_name<precis::role_dtype_t<precis::role::router_logits, P>>.data(),
              precis::dtype_name<precis::role_dtype_t<precis::role::attention_scores, P>>.data());

  // Not policies — a model or block given one of these does not compile:
  static_assert(!precis::PrecisionPolicy<sinks_in_bf16>);  // because sinks_pinned_f32<...> is false
  static_assert(!precis::PrecisionPolicy<rope_in_bf16>);   // because rope_table_pinned_f32<...> is false
  // an fp8 KV store under a bf16 policy without a named quantizer (reinterpreted bits, dtype-bugs E8/E9):
  static_assert(!precis::PrecisionPolicy<precis::precision_policy<bf16, bf16, precis::f8_e4m3>>);
  std::printf("sinks_in_bf16, rope_in_bf16 and an unquantized fp8 KV store are not PrecisionPolicy models\n");
  return 0;
}
