// tests/unit/nn/test_kv_cache.cpp — KvCache<Store>: typed appends, capacity and range errors,
// the fp8 store behind PerHeadScale (nn/kv_cache.hpp, nn/kv_quantizer.hpp; seed bug 1, E5–E9).
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, REQUIRE_THROWS_AS, STATIC_REQUIRE

#include <cmath>     // std::fabs, std::ldexp
#include <concepts>  // std::same_as

#include <precis/core/error.hpp>     // precis::range_error, shape_error, config_error
#include <precis/nn/attention.hpp>   // precis::Attention (make_cache)
#include <precis/nn/kv_cache.hpp>    // precis::KvCache
#include <precis/nn/kv_quantizer.hpp>  // precis::PerHeadScale

#include "nn_test_support.hpp"  // random_tensor, to_f64, unit_roundoff

using namespace precis;
using namespace precis::test;

namespace {
template <class Cache, class K>
concept can_append = requires(Cache& c, const K& k) { c.append(0, k, k); };
template <class Cache>
concept has_keys_view = requires(const Cache& c) { c.keys(0); };

using Fp8Store = quantized_kv<f8_e4m3, PerHeadScale>;
}  // namespace

TEST_CASE("KvCache appends keep K/V bit-exact and grow per layer", "[nn][kv_cache]") {
  auto rng = make_rng(61);
  KvCache<bf16> cache(2, 8, 2, 4);  // layers, max_seq, n_kv_heads, head_dim
  const auto k1 = random_tensor<bf16, 3>({3, 2, 4}, rng), v1 = random_tensor<bf16, 3>({3, 2, 4}, rng);
  const auto k2 = random_tensor<bf16, 3>({1, 2, 4}, rng), v2 = random_tensor<bf16, 3>({1, 2, 4}, rng);
  cache.append(1, k1, v1);
  cache.append(1, k2.cview(), v2.cview());
  CHECK(cache.length(0) == 0);
  REQUIRE(cache.length(1) == 4);
  const TensorView<const bf16, 3> keys = cache.keys(1), values = cache.values(1);
  REQUIRE(keys.extents() == extents_t<3>{4, 2, 4});
  for (index_t h = 0; h < 2; ++h)
    for (index_t d = 0; d < 4; ++d) {
      for (index_t t = 0; t < 3; ++t) {
        CHECK(keys(t, h, d) == k1(t, h, d));
        CHECK(values(t, h, d) == v1(t, h, d));
      }
      CHECK(keys(3, h, d) == k2(0, h, d));
      CHECK(values(3, h, d) == v2(0, h, d));
    }
  CHECK(cache.keys(0).extent(0) == 0);
}

TEST_CASE("KvCache overflow throws range_error and leaves the cache unchanged", "[nn][kv_cache]") {
  KvCache<f32> cache(1, 4, 1, 2);
  const Tensor<f32, 3> three({3, 1, 2}), two({2, 1, 2});
  cache.append(0, three, three);
  REQUIRE_THROWS_WITH(cache.append(0, two, two), Catch::Matchers::Contains("layer 0") &&
                                                     Catch::Matchers::Contains("3 cached + 2 new") &&
                                                     Catch::Matchers::Contains("max_seq 4"));
  CHECK(cache.length(0) == 3);
  const Tensor<f32, 3> one({1, 1, 2});
  cache.append(0, one, one);  // exactly full
  CHECK(cache.length(0) == 4);
  REQUIRE_THROWS_AS(cache.append(0, one, one), range_error);
}

TEST_CASE("KvCache checks layers and shapes", "[nn][kv_cache]") {
  KvCache<f32> cache(2, 4, 2, 3);
  const Tensor<f32, 3> ok({1, 2, 3}), wrong_heads({1, 1, 3}), two({2, 2, 3});
  REQUIRE_THROWS_AS(cache.append(2, ok, ok), range_error);
  REQUIRE_THROWS_AS(cache.append(-1, ok, ok), range_error);
  REQUIRE_THROWS_AS(cache.keys(5), range_error);
  REQUIRE_THROWS_AS(cache.append(0, wrong_heads, wrong_heads), shape_error);
  REQUIRE_THROWS_AS(cache.append(0, ok, two), shape_error);
  CHECK(cache.length(0) == 0);
  REQUIRE_THROWS_AS(KvCache<f32>(0, 4, 2, 3), config_error);
}

TEST_CASE("KvCache truncate and clear", "[nn][kv_cache]") {
  KvCache<f32> cache(2, 4, 1, 1);
  const Tensor<f32, 3> three({3, 1, 1});
  cache.append(0, three, three);
  cache.append(1, three, three);
  cache.truncate(0, 1);
  CHECK(cache.length(0) == 1);
  CHECK(cache.length(1) == 3);
  REQUIRE_THROWS_AS(cache.truncate(0, 2), range_error);
  cache.clear();
  CHECK(cache.length(1) == 0);
}

TEST_CASE("Attention::make_cache stores the compute dtype", "[nn][kv_cache]") {
  const Attention<attention_backend::reference, bf16> attn(AttentionConfig{.n_heads = 4, .n_kv_heads = 2, .head_dim = 8});
  auto cache = attn.make_cache(3, 16);
  STATIC_REQUIRE(std::same_as<decltype(cache), KvCache<bf16>>);
  CHECK(cache.n_layers() == 3);
  CHECK(cache.max_seq() == 16);
  CHECK(cache.n_kv_heads() == 2);
  CHECK(cache.head_dim() == 8);
}

TEST_CASE("PerHeadScale fp8 round trip is within half an e4m3 ulp", "[nn][kv_cache][fp8]") {
  // e4m3 keeps 4 significant bits: relative error ≤ 2^-4 for normal codes; codes below the
  // smallest normal (2^-6 · scale) have absolute spacing 2^-9 · scale, so error ≤ 2^-10 · scale.
  // Dequantizing to f32 adds u(f32).
  auto rng = make_rng(62);
  const auto x = random_tensor<bf16, 3>({3, 2, 16}, rng, 0.001, 3.0);
  const auto q = PerHeadScale::quantize<f8_e4m3>(x);
  REQUIRE(q.codes().extents() == extents_t<3>{3, 2, 16});
  REQUIRE(q.scales().extents() == extents_t<2>{3, 2});
  const auto back = PerHeadScale::dequantize<f32>(q.codes(), q.scales());
  for (index_t t = 0; t < 3; ++t)
    for (index_t h = 0; h < 2; ++h) {
      double amax = 0;
      for (index_t d = 0; d < 16; ++d) amax = std::max(amax, std::fabs(static_cast<double>(static_cast<float>(x(t, h, d)))));
      CHECK(static_cast<double>(q.scales()(t, h)) == Approx(amax / 448.0).epsilon(2 * unit_roundoff<f32>));
      for (index_t d = 0; d < 16; ++d) {
        const double xv = static_cast<float>(x(t, h, d));
        const double tol = 0x1p-4 * std::fabs(xv) + 0x1p-10 * q.scales()(t, h) + unit_roundoff<f32> * std::fabs(xv);
        CHECK(std::fabs(static_cast<double>(back(t, h, d)) - xv) <= tol);
      }
    }
  // An all-zero head gets scale 1 and zero codes.
  const Tensor<f32, 3> zeros({1, 1, 4});
  const auto qz = PerHeadScale::quantize<f8_e4m3>(zeros);
  CHECK(qz.scales()(0, 0) == 1.0f);
  CHECK(static_cast<float>(qz.codes()(0, 0, 3)) == 0.0f);
}

TEST_CASE("an fp8 KvCache accepts only its quantizer's output and reads back through it", "[nn][kv_cache][fp8]") {
  auto rng = make_rng(63);
  KvCache<Fp8Store> cache(1, 8, 2, 4);
  const auto k = random_tensor<bf16, 3>({2, 2, 4}, rng), v = random_tensor<bf16, 3>({2, 2, 4}, rng);
  const auto qk = PerHeadScale::quantize<f8_e4m3>(k), qv = PerHeadScale::quantize<f8_e4m3>(v);
  cache.append(0, qk, qv);
  cache.append(0, qk, qv);
  REQUIRE(cache.length(0) == 4);
  const Tensor<bf16, 3> keys = cache.dequantize_keys<bf16>(0);
  const Tensor<bf16, 3> once = PerHeadScale::dequantize<bf16>(qk.codes(), qk.scales());
  for (index_t t = 0; t < 4; ++t)
    for (index_t h = 0; h < 2; ++h)
      for (index_t d = 0; d < 4; ++d) CHECK(keys(t, h, d) == once(t % 2, h, d));
  const auto values = cache.dequantize_values<f32>(0);
  CHECK(values.extents() == extents_t<3>{4, 2, 4});
  CHECK(cache.key_codes(0)(3, 1, 2) == qk.codes()(1, 1, 2));
  CHECK(cache.value_scales(0)(2, 1) == qv.scales()(0, 1));
}

TEST_CASE("KvCache append accepts exactly the store dtype (seed bug 1, E5, E8)", "[nn][kv_cache][static]") {
  STATIC_REQUIRE(can_append<KvCache<f32>, Tensor<f32, 3>>);
  STATIC_REQUIRE(can_append<KvCache<bf16>, TensorView<const bf16, 3>>);
  STATIC_REQUIRE_FALSE(can_append<KvCache<f32>, Tensor<bf16, 3>>);  // seed bug 1, E5
  STATIC_REQUIRE_FALSE(can_append<KvCache<bf16>, Tensor<f32, 3>>);  // E6
  STATIC_REQUIRE_FALSE(can_append<KvCache<f32>, Tensor<f32, 2>>);
  STATIC_REQUIRE_FALSE(can_append<KvCache<Fp8Store>, Tensor<bf16, 3>>);  // E8: no quantizer named
  STATIC_REQUIRE_FALSE(can_append<KvCache<Fp8Store>, Tensor<f8_e4m3, 3>>);  // codes without scales
  STATIC_REQUIRE(can_append<KvCache<Fp8Store>, QuantizedKv<f8_e4m3, PerHeadScale>>);
  STATIC_REQUIRE(has_keys_view<KvCache<bf16>>);
  STATIC_REQUIRE_FALSE(has_keys_view<KvCache<Fp8Store>>);  // raw fp8 is not a K tensor (E8)
}
