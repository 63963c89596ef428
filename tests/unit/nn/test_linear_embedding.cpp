// tests/unit/nn/test_linear_embedding.cpp — Linear<D>, Embedding<D>, Tied<Embedding<D>> and
// untie<W> (nn/linear.hpp, nn/embedding.hpp; dtype-bugs C11, C12, E26).
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, STATIC_REQUIRE

#include <concepts>     // std::same_as, std::constructible_from

#include <precis/core/cast.hpp>     // precis::cast
#include <precis/core/error.hpp>    // precis::range_error
#include <precis/nn/embedding.hpp>  // precis::Embedding, Tied, untie
#include <precis/nn/linear.hpp>     // precis::Linear

#include "nn_test_support.hpp"  // random_tensor, to_f64, unit_roundoff

using namespace precis;
using namespace precis::test;

namespace {
template <class L, class X>
concept can_forward = requires(const L& l, const X& x) { l.forward(x); };
template <class E, class Ids>
concept can_lookup = requires(const E& e, const Ids& ids) { e.lookup(ids); };

template <class D>
bool bit_equal(TensorView<const D, 2> a, TensorView<const D, 2> b) {
  if (a.extents() != b.extents()) return false;
  for (index_t i = 0; i < a.extent(0); ++i)
    for (index_t j = 0; j < a.extent(1); ++j)
      if (!(a(i, j) == b(i, j))) return false;
  return true;
}
}  // namespace

TEST_CASE("Linear<D>::forward is x·Wᵀ + b in D", "[nn][linear]") {
  auto rng = make_rng(91);
  auto w = random_tensor<bf16, 2>({5, 12}, rng);
  auto b = random_tensor<bf16, 1>({5}, rng);
  const auto x = random_tensor<bf16, 2>({3, 12}, rng);
  const auto want = matmul(x, w, b);
  const Linear<bf16> lin(std::move(w), std::move(b));
  CHECK(lin.in_features() == 12);
  CHECK(lin.out_features() == 5);
  const Tensor<bf16, 2> y = lin.forward(x);
  CHECK(bit_equal<bf16>(y.cview(), want.cview()));
  // Without bias, f32: against float64 within (K + 1)·u(f32)·Σ|terms| + u(f32)|exact|.
  auto w32 = random_tensor<f32, 2>({4, 12}, rng);
  const auto wv = to_f64(w32);
  const auto x32 = random_tensor<f32, 2>({2, 12}, rng);
  const auto xv = to_f64(x32);
  const Linear<f32> lin32(std::move(w32));
  const auto y32 = lin32.forward(x32);
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 4; ++j) {
      double s = 0, mag = 0;
      for (index_t p = 0; p < 12; ++p) {
        s += xv[static_cast<std::size_t>(i * 12 + p)] * wv[static_cast<std::size_t>(j * 12 + p)];
        mag += std::fabs(xv[static_cast<std::size_t>(i * 12 + p)] * wv[static_cast<std::size_t>(j * 12 + p)]);
      }
      CHECK(std::fabs(y32(i, j) - s) <= 13 * unit_roundoff<f32> * mag + unit_roundoff<f32> * std::fabs(s));
    }
}

TEST_CASE("Embedding lookup copies rows for i32 and i64 ids", "[nn][embedding]") {
  auto rng = make_rng(92);
  const auto table = random_tensor<bf16, 2>({10, 6}, rng);
  const Embedding<bf16> emb(materialize(table));
  Tensor<i32, 1> ids({4});
  ids(0) = 9; ids(1) = 0; ids(2) = 3; ids(3) = 9;
  const auto rows = emb.lookup(ids);
  const auto rows64 = emb.lookup(cast<i64>(ids));
  REQUIRE(rows.extents() == extents_t<2>{4, 6});
  for (index_t t = 0; t < 4; ++t)
    for (index_t h = 0; h < 6; ++h) {
      CHECK(rows(t, h) == table(ids(t), h));
      CHECK(rows64(t, h) == rows(t, h));
    }
}

TEST_CASE("Embedding lookup throws range_error for ids outside the vocabulary", "[nn][embedding]") {
  const Embedding<f32> emb(Tensor<f32, 2>({10, 2}));
  Tensor<i64, 1> ids({3});
  ids(0) = 1; ids(1) = 10; ids(2) = 2;
  REQUIRE_THROWS_WITH(emb.lookup(ids), Catch::Matchers::Contains("token id 10") &&
                                           Catch::Matchers::Contains("position 1") &&
                                           Catch::Matchers::Contains("[0, 10)"));
  ids(1) = -1;
  REQUIRE_THROWS_AS(emb.lookup(ids), range_error);
}

TEST_CASE("a tied embedding is the LM head of its own dtype", "[nn][embedding][tied]") {
  auto rng = make_rng(93);
  const auto table = random_tensor<bf16, 2>({11, 8}, rng);  // [vocab, hidden]
  const Tied<Embedding<bf16>> tied(Embedding<bf16>(materialize(table)));
  const auto x = random_tensor<bf16, 2>({2, 8}, rng);
  const Tensor<bf16, 2> logits = tied.forward(x);
  const Tensor<bf16, 2> want = matmul(x, table);
  CHECK(bit_equal<bf16>(logits.cview(), want.cview()));
  // The out-dtype GEMM: f32 logits from the bf16 table without touching it (prime-rl#2441).
  const Tensor<f32, 2> logits32 = tied.forward<f32>(x);
  const Tensor<f32, 2> want32 = matmul<f32>(x, table);
  CHECK(bit_equal<f32>(logits32.cview(), want32.cview()));
  Tensor<i32, 1> ids({1});
  ids(0) = 4;
  CHECK(tied.lookup(ids)(0, 7) == table(4, 7));
}

TEST_CASE("untie<W> copies the tied table into its own Linear and leaves the embedding alone", "[nn][embedding][tied]") {
  auto rng = make_rng(94);
  const auto table = random_tensor<bf16, 2>({7, 5}, rng);
  const Tied<Embedding<bf16>> tied(Embedding<bf16>(materialize(table)));
  const Linear<f32> head = untie<f32>(tied);
  const Tensor<f32, 2> table32 = cast<f32>(table);
  CHECK(bit_equal<f32>(head.weight(), table32.cview()));
  const Linear<bf16> same = untie<bf16>(tied);
  CHECK(bit_equal<bf16>(same.weight(), table.cview()));
  CHECK(same.weight().data() != tied.embedding().weight().data());  // a copy, not shared storage
  CHECK(bit_equal<bf16>(tied.embedding().weight(), table.cview()));
}

TEST_CASE("layers take activations of their own dtype; tied weights need untie", "[nn][linear][static]") {
  STATIC_REQUIRE(can_forward<Linear<bf16>, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_forward<Linear<bf16>, Tensor<f32, 2>>);  // E2
  STATIC_REQUIRE(can_forward<Tied<Embedding<bf16>>, Tensor<bf16, 2>>);
  STATIC_REQUIRE_FALSE(can_forward<Tied<Embedding<bf16>>, Tensor<f32, 2>>);  // C11
  STATIC_REQUIRE_FALSE(std::constructible_from<Linear<f32>, const Tied<Embedding<bf16>>&>);
  STATIC_REQUIRE_FALSE(std::constructible_from<Linear<bf16>, const Tied<Embedding<bf16>>&>);
  STATIC_REQUIRE(can_lookup<Embedding<bf16>, Tensor<i64, 1>>);
  STATIC_REQUIRE_FALSE(can_lookup<Embedding<bf16>, Tensor<f32, 1>>);  // C12
}
