// tests/unit/nn/test_kv_cache.cpp — KvCache<Store>: typed appends, capacity and range errors,
// the fp8 store behind PerHeadScale (nn/kv_cache.hpp, nn/kv_quantizer.hpp; seed bug 1, E5–E9);
// per-layer plans (gpt-oss alternates sliding and full layers, model-semantics §1a), sliding
// rings bounded by the window, and PagedKvCache's page pool, block tables and errors. Every
// check compares against the appended values by position, so a wrong slot or page shows.
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, REQUIRE_THROWS_AS, STATIC_REQUIRE

#include <cmath>     // std::fabs, std::ldexp
#include <cstdint>   // std::uint16_t
#include <concepts>  // std::same_as
#include <utility>   // std::declval
#include <vector>    // std::vector

#include <precis/core/error.hpp>     // precis::range_error, shape_error, config_error
#include <precis/nn/kv_cache.hpp>    // precis::KvCache, PagedKvCache
#include <precis/nn/kv_index.hpp>    // precis::KvIndex, KvRun
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

TEST_CASE("KvCache is one sequence of a paged cache with one page of max_seq positions", "[nn][kv_cache]") {
  KvCache<bf16> cache(KvLayerPlan(gpt_oss_alternating_layers{.window = 4}, 3),
                      KvCacheSize{.n_kv_heads = 2, .head_dim = 8, .max_seq = 16, .max_append = 3});
  CHECK(cache.n_layers() == 3);
  CHECK(cache.max_seq() == 16);
  CHECK(cache.n_kv_heads() == 2);
  CHECK(cache.head_dim() == 8);
  CHECK(cache.capacity(0) == 4 - 1 + 3);
  CHECK(cache.capacity(1) == 16);
  // K and V of 1 full layer × 16 positions + 2 rings of 6 (layers 0, 2), 2 heads × 8 bf16 each.
  CHECK(cache.bytes() == 2 * (16 + 2 * 6) * 2 * 8 * sizeof(std::uint16_t));
  REQUIRE_THROWS_WITH(KvCache<f32>(1, 0, 2, 3), Catch::Matchers::Contains("[KvCache]"));
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

namespace {
/// Every held position of `seq` equals row `position` of k_all / v_all, segments are consecutive
/// and cover exactly [first, length).
template <class E>
void check_view(const KvSequenceView<E>& seq, const Tensor<E, 3>& k_all, const Tensor<E, 3>& v_all, index_t first,
                index_t length) {
  REQUIRE(seq.first() == first);
  REQUIRE(seq.length() == length);
  index_t next = first;
  for (const KvSegment<E>& s : seq.segments()) {
    REQUIRE(s.position == next);
    for (index_t i = 0; i < s.size(); ++i)
      for (index_t h = 0; h < seq.n_kv_heads(); ++h)
        for (index_t d = 0; d < seq.head_dim(); ++d) {
          CHECK(s.k(i, h, d) == k_all(s.position + i, h, d));
          CHECK(s.v(i, h, d) == v_all(s.position + i, h, d));
        }
    next += s.size();
  }
  CHECK(next == length);
}
}  // namespace

TEST_CASE("KvLayerPlan names the per-layer windows", "[nn][kv_cache]") {
  const KvLayerPlan gpt_oss(gpt_oss_alternating_layers{}, 4);  // §1a: even layers slide with 128
  CHECK(gpt_oss.n_layers() == 4);
  CHECK(gpt_oss.window(0) == 128);
  CHECK(gpt_oss.window(1) == 0);
  CHECK(gpt_oss.window(2) == 128);
  CHECK(gpt_oss.window(3) == 0);
  const KvLayerPlan llama(full_attention_layers{}, 3);
  CHECK(llama.window(2) == 0);
  const KvLayerPlan mistral(sliding_attention_layers{.window = 4096}, 2);
  CHECK(mistral.window(1) == 4096);
  const KvLayerPlan from_config(std::vector<index_t>{0, 7, 0});  // e.g. config.json layer_types
  CHECK(from_config.window(1) == 7);
  REQUIRE_THROWS_AS(KvLayerPlan(std::vector<index_t>{0, -1}), config_error);
  REQUIRE_THROWS_AS(gpt_oss.window(4), range_error);
}

TEST_CASE("a sliding layer keeps a ring of window - 1 + max_append positions", "[nn][kv_cache]") {
  auto rng = make_rng(64);
  const index_t window = 4, max_append = 2, n = 13;
  KvCache<bf16> cache(KvLayerPlan(gpt_oss_alternating_layers{.window = window}, 2),
                      KvCacheSize{.n_kv_heads = 2, .head_dim = 3, .max_seq = 16, .max_append = max_append});
  CHECK(cache.window(0) == window);
  CHECK(cache.window(1) == 0);
  CHECK(cache.capacity(0) == window - 1 + max_append);  // bounded by the window ...
  CHECK(cache.capacity(1) == 16);                       // ... the full layer by max_seq
  const auto k = random_tensor<bf16, 3>({n, 2, 3}, rng), v = random_tensor<bf16, 3>({n, 2, 3}, rng);
  index_t t = 0;
  for (index_t c = 1; t < n; c = 3 - c) {  // chunks 1, 2, 1, 2, ...
    const index_t e = std::min(n, t + c);
    for (index_t layer : {index_t{0}, index_t{1}})
      cache.append(layer, k.cview().slice(0, t, e), v.cview().slice(0, t, e));
    t = e;
    // Before it wraps, a ring is readable as one contiguous run from position 0.
    if (t <= cache.capacity(0)) CHECK(cache.keys(0).extent(0) == t);
    check_view(cache.sequence(0), k, v, std::max<index_t>(0, t - cache.capacity(0)), t);
    check_view(cache.sequence(1), k, v, 0, t);
  }
  CHECK(cache.first(0) == n - 5);
  CHECK(cache.sequence(0).segments().size() <= 2);  // a ring is at most two runs
  REQUIRE_THROWS_WITH(cache.keys(0), Catch::Matchers::Contains("sliding-window ring") &&
                                         Catch::Matchers::Contains("sequence(0)"));
  CHECK(cache.keys(1).extent(0) == n);
  // More than max_append tokens at once would overwrite keys the first of them needs.
  const Tensor<bf16, 3> three({3, 2, 3});
  REQUIRE_THROWS_WITH(cache.append(0, three, three), Catch::Matchers::Contains("exceed max_append 2"));
  CHECK(cache.length(0) == n);
  // Going back: position 12 attends to 9.. (held: 8..), position 10 would need 7 (overwritten).
  cache.truncate(0, 12);
  REQUIRE_THROWS_AS(cache.truncate(0, 10), range_error);
  const auto k_new = random_tensor<bf16, 3>({1, 2, 3}, rng), v_new = random_tensor<bf16, 3>({1, 2, 3}, rng);
  cache.append(0, k_new, v_new);
  const KvSequenceView<bf16> seq = cache.sequence(0);
  CHECK(seq.first() == 8);
  CHECK(seq.length() == 13);
  const KvSegment<bf16>& last = seq.segments().back();
  CHECK(last.k(last.size() - 1, 1, 2) == k_new(0, 1, 2));  // position 12 is the new token
  cache.truncate(0, 0);
  CHECK(cache.sequence(0).length() == 0);
}

TEST_CASE("KvSequenceView checks its segments", "[nn][kv_cache]") {
  const Tensor<f32, 3> a({4, 2, 8}), b({3, 2, 8}), wrong({3, 1, 8});
  const KvSequenceView<f32> ok(2, 8, 0, {KvSegment<f32>{5, a.cview(), a.cview()}, KvSegment<f32>{9, b.cview(), b.cview()}});
  CHECK(ok.first() == 5);
  CHECK(ok.length() == 12);
  REQUIRE_THROWS_AS(KvSequenceView<f32>(2, 8, 0, {KvSegment<f32>{0, a.cview(), a.cview()}, KvSegment<f32>{5, b.cview(), b.cview()}}),
                    shape_error);  // a gap between positions 4 and 5
  REQUIRE_THROWS_AS(KvSequenceView<f32>(2, 8, 0, {KvSegment<f32>{0, wrong.cview(), wrong.cview()}}), shape_error);
  const TensorView<const f32, 3> strided(a.data(), {4, 2, 4}, {16, 8, 2});  // head_dim rows not contiguous
  REQUIRE_THROWS_AS(KvSequenceView<f32>(2, 4, 0, {KvSegment<f32>{0, strided, strided}}), shape_error);
}

TEST_CASE("PagedKvCache shares a page pool between sequences through block tables", "[nn][kv_cache][paged]") {
  auto rng = make_rng(65);
  const index_t page = 4;
  PagedKvCache<f32> cache(KvLayerPlan(gpt_oss_alternating_layers{.window = 3}, 2),
                          PagedKvSize{.n_kv_heads = 2, .head_dim = 5, .page_size = page, .n_pages = 6,
                                      .max_sequences = 2, .max_append = 3});
  const KvSeqId a = cache.add_sequence(), b = cache.add_sequence();
  CHECK(cache.live_sequences() == 2);
  REQUIRE_THROWS_WITH(cache.add_sequence(), Catch::Matchers::Contains("all 2 sequence slots are live"));
  const auto ka = random_tensor<f32, 3>({9, 2, 5}, rng), va = random_tensor<f32, 3>({9, 2, 5}, rng);
  const auto kb = random_tensor<f32, 3>({6, 2, 5}, rng), vb = random_tensor<f32, 3>({6, 2, 5}, rng);
  // Interleaved growth: a 3, b 3, a 3, b 3, a 3.
  const index_t steps[][2] = {{0, 3}, {1, 3}, {0, 3}, {1, 3}, {0, 3}};
  index_t la = 0, lb = 0;
  for (const auto& st : steps) {
    const bool is_a = st[0] == 0;
    const KvSeqId id = is_a ? a : b;
    index_t& len = is_a ? la : lb;
    const auto& k = is_a ? ka : kb;
    const auto& v = is_a ? va : vb;
    for (const index_t layer : {index_t{0}, index_t{1}})
      cache.append(id, layer, k.cview().slice(0, len, len + st[1]), v.cview().slice(0, len, len + st[1]));
    len += st[1];
  }
  REQUIRE(la == 9);
  REQUIRE(lb == 6);
  // Pages were handed out in the order the sequences needed them: a: 0, 2, 4 ; b: 1, 3.
  CHECK(std::vector<index_t>(cache.page_table(a).begin(), cache.page_table(a).end()) == std::vector<index_t>{0, 2, 4});
  CHECK(std::vector<index_t>(cache.page_table(b).begin(), cache.page_table(b).end()) == std::vector<index_t>{1, 3});
  CHECK(cache.free_pages() == 1);
  check_view(cache.sequence(a, 1), ka, va, 0, 9);  // full layer: one segment per page
  CHECK(cache.sequence(a, 1).segments().size() == 3);
  check_view(cache.sequence(b, 1), kb, vb, 0, 6);
  check_view(cache.sequence(a, 0), ka, va, 9 - (3 - 1 + 3), 9);  // sliding layer: a ring of 5
  check_view(cache.sequence(b, 0), kb, vb, 1, 6);

  // Exhaustion: b needs 2 more pages for positions [6, 12), 1 is free: an error, nothing written.
  const Tensor<f32, 3> six({3, 2, 5});
  cache.append(b, 1, six.cview().slice(0, 0, 2), six.cview().slice(0, 0, 2));  // fills page 3 to 8 positions
  CHECK(cache.free_pages() == 1);
  cache.append(b, 1, six.cview().slice(0, 0, 1), six.cview().slice(0, 0, 1));  // position 8: the last free page
  CHECK(cache.free_pages() == 0);
  const Tensor<f32, 3> many({3, 2, 5});
  cache.append(b, 1, many, many);  // positions 9..11 still fit in that page
  REQUIRE_THROWS_WITH(cache.append(b, 1, six.cview().slice(0, 0, 1), six.cview().slice(0, 0, 1)),
                      Catch::Matchers::Contains("page pool exhausted") && Catch::Matchers::Contains("layer 1") &&
                          Catch::Matchers::Contains("0 of 6 free"));
  CHECK(cache.length(b, 1) == 12);
  // Freeing a sequence returns its pages; its id goes stale, and the slot's next owner is new.
  cache.remove_sequence(a);
  CHECK(cache.free_pages() == 3);
  REQUIRE_THROWS_WITH(cache.length(a, 0), Catch::Matchers::Contains("not live"));
  const KvSeqId c = cache.add_sequence();
  CHECK(c.slot == a.slot);
  CHECK_FALSE(c == a);
  CHECK(cache.length(c, 1) == 0);
  cache.append(c, 1, six, six);
  CHECK(cache.free_pages() == 2);
  REQUIRE_THROWS_AS(cache.append(c, 2, six, six), range_error);               // no layer 2
  REQUIRE_THROWS_AS(cache.append(c, 0, Tensor<f32, 3>({4, 2, 5}), Tensor<f32, 3>({4, 2, 5})), range_error);  // > max_append on a ring
  REQUIRE_THROWS_AS(cache.append(c, 1, Tensor<f32, 3>({1, 1, 5}), Tensor<f32, 3>({1, 1, 5})), shape_error);
  REQUIRE_THROWS_AS(PagedKvCache<f32>(KvLayerPlan(full_attention_layers{}, 1), PagedKvSize{.n_kv_heads = 2, .head_dim = 5, .page_size = 0}),
                    config_error);
}

namespace {
template <class Cache, class K>
concept can_paged_append = requires(Cache& c, KvSeqId id, const K& k) { c.append(id, 0, k, k); };
}  // namespace

TEST_CASE("PagedKvCache appends accept exactly the store dtype", "[nn][kv_cache][paged][static]") {
  STATIC_REQUIRE(can_paged_append<PagedKvCache<bf16>, Tensor<bf16, 3>>);
  STATIC_REQUIRE(can_paged_append<PagedKvCache<bf16>, TensorView<const bf16, 3>>);
  STATIC_REQUIRE_FALSE(can_paged_append<PagedKvCache<bf16>, Tensor<f32, 3>>);  // seed bug 1, E5
  STATIC_REQUIRE_FALSE(can_paged_append<PagedKvCache<f32>, Tensor<bf16, 3>>);
  STATIC_REQUIRE_FALSE(can_paged_append<PagedKvCache<f32>, Tensor<f32, 2>>);
  STATIC_REQUIRE(std::same_as<decltype(std::declval<const PagedKvCache<bf16>&>().sequence(KvSeqId{}, 0)), KvSequenceView<bf16>>);
  STATIC_REQUIRE(std::same_as<decltype(std::declval<const KvCache<f32>&>().sequence(0)), KvSequenceView<f32>>);
}

TEST_CASE("KvIndex maps positions to runs of slots: pages for full layers, a ring per sequence for sliding ones",
          "[nn][kv_cache][index]") {
  KvIndex index(KvLayerPlan(gpt_oss_alternating_layers{.window = 3}, 2),
                PagedKvSize{.n_kv_heads = 1, .head_dim = 1, .page_size = 4, .n_pages = 3, .max_sequences = 2,
                            .max_append = 3});
  CHECK(index.blocks(0) == 2);       // one ring per sequence slot ...
  CHECK(index.block_slots(0) == 5);  // ... of window − 1 + max_append
  CHECK(index.blocks(1) == 3);       // pool pages
  CHECK(index.block_slots(1) == 4);
  const KvSeqId a = index.add_sequence(), b = index.add_sequence();
  std::vector<KvRun> runs;
  const auto record = [&](const KvRun& r) { runs.push_back(r); };
  index.append(b, 1, 2, record);  // b takes page 0
  index.append(a, 1, 3, record);  // a takes page 1
  CHECK(runs == std::vector<KvRun>{{0, 0, 0, 2}, {0, 1, 0, 3}});
  runs.clear();
  index.append(a, 1, 3, record);  // positions 3..5: the rest of page 1, then page 2
  CHECK(runs == std::vector<KvRun>{{3, 1, 3, 1}, {4, 2, 0, 2}});
  CHECK(index.free_pages() == 0);
  // The retained runs of a full layer, in position order.
  runs.clear();
  index.for_each_run(a, 1, record);
  CHECK(runs == std::vector<KvRun>{{0, 1, 0, 4}, {4, 2, 0, 2}});
  // b needs a second page for positions [2, 5): none is free, nothing is recorded or taken.
  runs.clear();
  REQUIRE_THROWS_WITH(index.append(b, 1, 3, record), Catch::Matchers::Contains("page pool exhausted") &&
                                                         Catch::Matchers::Contains("sequence 1, layer 1"));
  CHECK(runs.empty());
  CHECK(index.length(b, 1) == 2);
  // The ring of sequence a lives in block a.slot and wraps at 5 slots.
  for (int i = 0; i < 3; ++i) index.append(a, 0, 2, [](const KvRun&) {});
  CHECK(index.length(a, 0) == 6);
  CHECK(index.first(a, 0) == 1);
  runs.clear();
  index.for_each_run(a, 0, record);
  CHECK(runs == std::vector<KvRun>{{1, a.slot, 1, 4}, {5, a.slot, 0, 1}});
  REQUIRE_THROWS_WITH(index.append(a, 0, 4, record), Catch::Matchers::Contains("exceed max_append 3"));
  // clear returns the pages and keeps the id; remove makes it stale.
  index.clear(a);
  CHECK(index.free_pages() == 2);
  CHECK(index.length(a, 1) == 0);
  index.remove_sequence(b);
  CHECK(index.free_pages() == 3);
  REQUIRE_THROWS_WITH(index.length(b, 0), Catch::Matchers::Contains("not live"));
}

TEST_CASE("an fp8 PagedKvCache stores codes and scales by page and ring and dequantizes in position order",
          "[nn][kv_cache][paged][fp8]") {
  auto rng = make_rng(66);
  PagedKvCache<Fp8Store> cache(KvLayerPlan(gpt_oss_alternating_layers{.window = 2}, 2),
                               PagedKvSize{.n_kv_heads = 2, .head_dim = 4, .page_size = 3, .n_pages = 4,
                                           .max_sequences = 1, .max_append = 2});
  const KvSeqId s = cache.add_sequence();
  const auto k = random_tensor<bf16, 3>({7, 2, 4}, rng), v = random_tensor<bf16, 3>({7, 2, 4}, rng);
  for (index_t t = 0; t < 7;) {
    const index_t c = std::min<index_t>(2, 7 - t);
    const auto qk = PerHeadScale::quantize<f8_e4m3>(k.cview().slice(0, t, t + c));
    const auto qv = PerHeadScale::quantize<f8_e4m3>(v.cview().slice(0, t, t + c));
    for (const index_t layer : {index_t{0}, index_t{1}}) cache.append(s, layer, qk, qv);
    t += c;
  }
  // Each token's codes and scale were made from that token alone, so the whole sequence quantized
  // at once dequantizes to the same values.
  const auto all_k = PerHeadScale::quantize<f8_e4m3>(k), all_v = PerHeadScale::quantize<f8_e4m3>(v);
  const Tensor<f32, 3> want_k = PerHeadScale::dequantize<f32>(all_k.codes(), all_k.scales());
  const Tensor<f32, 3> want_v = PerHeadScale::dequantize<f32>(all_v.codes(), all_v.scales());
  const Tensor<f32, 3> full_k = cache.dequantize_keys<f32>(s, 1), full_v = cache.dequantize_values<f32>(s, 1);
  REQUIRE(full_k.extents() == extents_t<3>{7, 2, 4});  // three pages
  const Tensor<f32, 3> ring_k = cache.dequantize_keys<f32>(s, 0);
  REQUIRE(cache.first(s, 0) == 7 - 3);  // a ring of 2 − 1 + 2 = 3 positions, wrapped
  REQUIRE(ring_k.extents() == extents_t<3>{3, 2, 4});
  for (index_t t = 0; t < 7; ++t)
    for (index_t h = 0; h < 2; ++h)
      for (index_t d = 0; d < 4; ++d) {
        CHECK(full_k(t, h, d) == want_k(t, h, d));
        CHECK(full_v(t, h, d) == want_v(t, h, d));
        if (t >= 4) CHECK(ring_k(t - 4, h, d) == want_k(t, h, d));
      }
  // Codes [Hkv·Dh] and f32 scales [Hkv] per slot, for K and V.
  CHECK(cache.bytes() == 2 * ((4 * 3 + 3) * 2 * 4 * 1 + (4 * 3 + 3) * 2 * sizeof(float)));
}
