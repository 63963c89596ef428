// tests/unit/nn/test_elementwise.cpp — add / mul / mul-by-Scalar against float64 math
// (ops/elementwise.hpp). Tolerance: the exact result of one f32 operation on D inputs, rounded
// once more to D: |err| ≤ (u(D) + u(f32)) · |exact| (u = unit roundoff, see nn_test_support.hpp).
#include <catch2/catch.hpp>  // TEMPLATE_TEST_CASE, CHECK, STATIC_REQUIRE_FALSE

#include <cstddef>  // std::size_t

#include <precis/core/error.hpp>        // precis::shape_error
#include <precis/ops/elementwise.hpp>   // precis::add, mul

#include "nn_test_support.hpp"  // random_tensor, to_f64, compare, unit_roundoff

using namespace precis;
using namespace precis::test;

namespace {
template <class A, class B>
concept can_add = requires(const A& a, const B& b) { add(a, b); };
template <class A, class S>
concept can_mul_scalar = requires(const A& a, const S& s) { mul(a, s); };
}  // namespace

TEMPLATE_TEST_CASE("add and mul match float64 math within one rounding", "[ops][elementwise]", f32, bf16, f16) {
  auto rng = make_rng(11);
  const auto a = random_tensor<TestType, 2>({7, 13}, rng);
  const auto b = random_tensor<TestType, 2>({7, 13}, rng);
  const auto av = to_f64(a), bv = to_f64(b);
  std::vector<double> sum(av.size()), prod(av.size());
  for (std::size_t i = 0; i < av.size(); ++i) {
    sum[i] = av[i] + bv[i];
    prod[i] = av[i] * bv[i];
  }
  const double rel = unit_roundoff<TestType> + unit_roundoff<f32>;
  const auto c_add = compare(to_f64(add(a, b)), sum, relative(sum, rel));
  INFO(c_add.first);
  CHECK(c_add.ok());
  const auto c_mul = compare(to_f64(mul(a, b)), prod, relative(prod, rel));
  INFO(c_mul.first);
  CHECK(c_mul.ok());
}

TEMPLATE_TEST_CASE("mul by a Scalar of the tensor's dtype matches float64 math", "[ops][elementwise]", f32, bf16) {
  auto rng = make_rng(12);
  const auto a = random_tensor<TestType, 3>({2, 3, 5}, rng);
  const Scalar<TestType> s = 0.7;  // stored rounded: the reference uses the stored value
  const auto av = to_f64(a);
  std::vector<double> want(av.size());
  for (std::size_t i = 0; i < av.size(); ++i) want[i] = av[i] * static_cast<double>(s.value());
  const auto c = compare(to_f64(mul(a, s)), want, relative(want, unit_roundoff<TestType> + unit_roundoff<f32>));
  INFO(c.first);
  CHECK(c.ok());
}

TEST_CASE("elementwise ops read strided views at the matching elements", "[ops][elementwise]") {
  auto rng = make_rng(13);
  const auto a = random_tensor<f32, 2>({4, 6}, rng);
  const auto b = random_tensor<f32, 2>({4, 6}, rng);
  // Columns [1, 4) of a (strided rows) plus a contiguous copy of columns [2, 5) of b.
  const auto as = a.cview().slice(1, 1, 4);
  const auto bs = materialize(b.cview().slice(1, 2, 5));
  const auto r = add(as, bs);
  for (index_t i = 0; i < 4; ++i)
    for (index_t j = 0; j < 3; ++j) CHECK(r(i, j) == a(i, j + 1) + b(i, j + 2));
}

TEST_CASE("elementwise ops throw shape_error naming both shapes", "[ops][elementwise]") {
  const Tensor<f32, 2> a({2, 3}), b({3, 2});
  REQUIRE_THROWS_AS(add(a, b), shape_error);
  REQUIRE_THROWS_WITH(mul(a, b), Catch::Matchers::Contains("[mul]") && Catch::Matchers::Contains("[2, 3]") &&
                                     Catch::Matchers::Contains("[3, 2]"));
}

TEST_CASE("mixed dtypes and mixed ranks are not addable", "[ops][elementwise][static]") {
  STATIC_REQUIRE(can_add<Tensor<bf16, 2>, TensorView<const bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_add<Tensor<f16, 2>, Tensor<bf16, 2>>);  // E10
  STATIC_REQUIRE_FALSE(can_add<Tensor<f32, 2>, Tensor<f32, 1>>);   // no broadcasting
  STATIC_REQUIRE(can_mul_scalar<Tensor<bf16, 2>, Scalar<bf16>>);
  STATIC_REQUIRE_FALSE(can_mul_scalar<Tensor<bf16, 2>, Scalar<f32>>);  // E27
}
