// tests/unit/nn/test_cat.cpp — cat(axis, ...) copies bit-exactly and requires one dtype
// (ops/cat.hpp; dtype-bugs E23: scores ⧺ f32 sinks promoted the row).
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, STATIC_REQUIRE_FALSE

#include <precis/core/error.hpp>  // precis::shape_error, range_error
#include <precis/ops/cat.hpp>     // precis::cat

#include "nn_test_support.hpp"  // random_tensor

using namespace precis;
using namespace precis::test;

namespace {
template <class A, class B>
concept can_cat = requires(const A& a, const B& b) { cat(0, a, b); };
}  // namespace

TEST_CASE("cat along the last axis appends columns bit-exactly", "[ops][cat]") {
  auto rng = make_rng(21);
  const auto scores = random_tensor<bf16, 2>({3, 4}, rng);  // [T, S]
  const auto sinks = random_tensor<bf16, 2>({3, 1}, rng);   // [T, 1]
  const auto r = cat(1, scores, sinks);
  REQUIRE(r.extents() == extents_t<2>{3, 5});
  for (index_t i = 0; i < 3; ++i) {
    for (index_t j = 0; j < 4; ++j) CHECK(r(i, j) == scores(i, j));
    CHECK(r(i, 4) == sinks(i, 0));
  }
}

TEST_CASE("cat along the first axis of three operands, integer dtype", "[ops][cat]") {
  Tensor<i32, 2> a({1, 2}), b({2, 2}), c({1, 2});
  a(0, 0) = 1; a(0, 1) = 2;
  b(0, 0) = 3; b(0, 1) = 4; b(1, 0) = 5; b(1, 1) = 6;
  c(0, 0) = 7; c(0, 1) = 8;
  const auto r = cat(0, a, b, c.cview());
  REQUIRE(r.extents() == extents_t<2>{4, 2});
  for (index_t i = 0; i < 8; ++i) CHECK(r.data()[i] == static_cast<std::int32_t>(i + 1));
}

TEST_CASE("cat rejects mismatched extents and bad axes at run time", "[ops][cat]") {
  const Tensor<f32, 2> a({2, 3}), b({3, 2});
  REQUIRE_THROWS_AS(cat(0, a, b), shape_error);
  REQUIRE_THROWS_AS(cat(2, a, a), range_error);
}

TEST_CASE("cat requires one dtype", "[ops][cat][static]") {
  STATIC_REQUIRE(can_cat<Tensor<f32, 2>, TensorView<f32, 2>>);
  STATIC_REQUIRE_FALSE(can_cat<Tensor<bf16, 2>, Tensor<f32, 2>>);  // E23
}
