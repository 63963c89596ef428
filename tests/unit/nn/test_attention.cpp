// tests/unit/nn/test_attention.cpp — reference attention against float64 math, and its
// properties: sinks at -inf, windows ≥ the sequence, cached decode = prefill, ring-buffer and
// paged caches = contiguous ones (nn/attention.hpp; model-semantics §1a; dtype-bugs E19, E20).
// Which dtypes a backend's attend takes (E16, E23, E30) is tested on the backends
// (tests/unit/backends, tests/compile_fail/cf_14*).
#include <catch2/catch.hpp>  // TEMPLATE_TEST_CASE, CHECK, STATIC_REQUIRE

#include <cmath>   // std::exp, std::fabs, std::sqrt
#include <limits>  // std::numeric_limits

#include <precis/core/error.hpp>    // precis::config_error, shape_error
#include <precis/nn/attention.hpp>  // precis::reference_attention, AttentionConfig
#include <precis/nn/kv_cache.hpp>   // precis::KvCache, PagedKvCache

#include "nn_test_support.hpp"  // random_tensor, to_f64, compare, unit_roundoff

using namespace precis;
using namespace precis::test;

namespace {
/// The reference kernel over plain K/V [S, Hkv, Dh] (q: the last T positions), optional sinks.
template <class Act>
Tensor<Act, 3> ref(TensorView<const Act, 3> q, TensorView<const Act, 3> k, TensorView<const Act, 3> v,
                   const AttentionConfig& cfg, const Tensor<f32, 1>* sinks = nullptr) {
  return reference_attention<Act>(q, k, v, cfg,
                                  sinks ? std::optional<TensorView<const f32, 1>>(sinks->cview()) : std::nullopt);
}
template <class Act>
Tensor<Act, 3> ref(const Tensor<Act, 3>& q, const Tensor<Act, 3>& k, const Tensor<Act, 3>& v,
                   const AttentionConfig& cfg, const Tensor<f32, 1>* sinks = nullptr) {
  return ref<Act>(q.cview(), k.cview(), v.cview(), cfg, sinks);
}
/// The reference kernel over a cached sequence.
template <class Act>
Tensor<Act, 3> ref(TensorView<const Act, 3> q, const KvSequenceView<Act>& kv, const AttentionConfig& cfg,
                   const Tensor<f32, 1>* sinks = nullptr) {
  return reference_attention<Act>(q, kv, cfg,
                                  sinks ? std::optional<TensorView<const f32, 1>>(sinks->cview()) : std::nullopt);
}
/// Appends k, v to `layer` of a one-sequence cache, then attends to what it holds.
template <class Act>
Tensor<Act, 3> append_attend(KvCache<Act>& cache, index_t layer, TensorView<const Act, 3> q,
                             TensorView<const Act, 3> k, TensorView<const Act, 3> v, const AttentionConfig& cfg,
                             const Tensor<f32, 1>* sinks = nullptr) {
  cache.append(layer, k, v);
  return ref<Act>(q, cache.sequence(layer), cfg, sinks);
}

/// Attention in float64: q [T, H, Dh], k/v [S, Hkv, Dh]; returns the output and, per element, the
/// error bound of the f32 reference (see the test's comment).
struct F64Attention {
  std::vector<double> out, tol;
};
F64Attention attention_f64(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                           index_t n_q, index_t n_kv, const AttentionConfig& cfg, const std::vector<double>* sinks,
                           double out_roundoff) {
  const index_t h_n = cfg.n_heads, hkv = cfg.n_kv_heads, dh = cfg.head_dim, group = h_n / hkv;
  const double scale = cfg.softmax_scale();
  F64Attention r{std::vector<double>(static_cast<std::size_t>(n_q * h_n * dh)), {}};
  r.tol.resize(r.out.size());
  const auto at = [](const std::vector<double>& a, index_t i) { return a[static_cast<std::size_t>(i)]; };
  for (index_t t = 0; t < n_q; ++t) {
    const index_t pos = n_kv - n_q + t;
    for (index_t h = 0; h < h_n; ++h) {
      const index_t g = h / group;
      std::vector<double> s;
      std::vector<index_t> js;
      for (index_t j = 0; j <= pos; ++j) {
        if (cfg.sliding_window > 0 && !(pos - cfg.sliding_window < j)) continue;
        double dot = 0;
        for (index_t d = 0; d < dh; ++d) dot += at(q, (t * h_n + h) * dh + d) * at(k, (j * hkv + g) * dh + d);
        s.push_back(dot * scale);
        js.push_back(j);
      }
      double m = -std::numeric_limits<double>::infinity();
      for (double x : s) m = std::max(m, x);
      const double sink = sinks ? (*sinks)[static_cast<std::size_t>(h)] : -std::numeric_limits<double>::infinity();
      m = std::max(m, sink);
      double denom = std::exp(sink - m);
      for (double& x : s) denom += x = std::exp(x - m);
      for (index_t d = 0; d < dh; ++d) {
        double o = 0, mag = 0;
        for (std::size_t i = 0; i < s.size(); ++i) {
          const double vv = at(v, (js[i] * hkv + g) * dh + d);
          o += s[i] / denom * vv;
          mag += s[i] / denom * std::fabs(vv);
        }
        const auto e = static_cast<std::size_t>((t * h_n + h) * dh + d);
        r.out[e] = o;
        // f32 reference: each score carries ≤ (Dh + 2)·u(f32)·|q||k|·scale ≤ (Dh + 2)·u·√Dh of
        // absolute error (|q_d|, |k_d| ≤ 1), which exp turns into that much relative error of
        // each weight; the softmax sum and the V accumulation add ≤ (2S + 4)·u relative. Output
        // rounding adds u(Act)·|o|.
        const double rel = (static_cast<double>(dh + 2) * std::sqrt(static_cast<double>(dh)) * scale * 2 +
                            static_cast<double>(2 * n_kv + 4)) * unit_roundoff<f32>;
        r.tol[e] = rel * mag + out_roundoff * std::fabs(o);
      }
    }
  }
  return r;
}

template <class Act>
void check_attention(const Tensor<Act, 3>& got, const Tensor<Act, 3>& q, const Tensor<Act, 3>& k,
                     const Tensor<Act, 3>& v, const AttentionConfig& cfg, const std::vector<double>* sinks) {
  const auto ref = attention_f64(to_f64(q), to_f64(k), to_f64(v), q.extent(0), k.extent(0), cfg, sinks,
                                 unit_roundoff<Act>);
  const auto c = compare(to_f64(got), ref.out, ref.tol);
  INFO(c.first);
  CHECK(c.ok());
}

template <class Act>
bool bit_equal(const Tensor<Act, 3>& a, const Tensor<Act, 3>& b) {
  if (a.extents() != b.extents()) return false;
  for (index_t i = 0; i < a.numel(); ++i)
    if (!(a.data()[i] == b.data()[i])) return false;
  return true;
}
}  // namespace

TEMPLATE_TEST_CASE("reference attention (GQA, causal, sinks, window) matches float64 math", "[nn][attention]", f32,
                   bf16) {
  auto rng = make_rng(71);
  const AttentionConfig cfg{.n_heads = 4, .n_kv_heads = 2, .head_dim = 16};
  const auto q = random_tensor<TestType, 3>({6, 4, 16}, rng);
  const auto k = random_tensor<TestType, 3>({6, 2, 16}, rng);
  const auto v = random_tensor<TestType, 3>({6, 2, 16}, rng);
  check_attention(ref(q, k, v, cfg), q, k, v, cfg, nullptr);

  const auto sink_t = random_tensor<f32, 1>({4}, rng, 0.5, 3.0);
  const std::vector<double> sinks = to_f64(sink_t);
  check_attention(ref(q, k, v, cfg, &sink_t), q, k, v, cfg, &sinks);

  AttentionConfig win = cfg;
  win.sliding_window = 3;
  check_attention(ref(q, k, v, win, &sink_t), q, k, v, win, &sinks);

  // Decode shape: 2 queries at the end of 6 keys.
  const auto q2 = random_tensor<TestType, 3>({2, 4, 16}, rng);
  check_attention(ref(q2, k, v, win), q2, k, v, win, nullptr);
}

TEST_CASE("sinks at -inf give exactly plain softmax attention", "[nn][attention]") {
  auto rng = make_rng(72);
  const AttentionConfig cfg{.n_heads = 2, .n_kv_heads = 1, .head_dim = 8};
  const auto q = random_tensor<bf16, 3>({5, 2, 8}, rng);
  const auto k = random_tensor<bf16, 3>({5, 1, 8}, rng);
  const auto v = random_tensor<bf16, 3>({5, 1, 8}, rng);
  Tensor<f32, 1> s({2});
  s(0) = s(1) = -std::numeric_limits<float>::infinity();
  CHECK(bit_equal(ref(q, k, v, cfg, &s), ref(q, k, v, cfg)));
}

TEST_CASE("a sink takes attention mass without contributing a value", "[nn][attention]") {
  // One key, one head: without a sink the output is v; a sink of logit s scales it by
  // e^l / (e^l + e^s) where l = q·k·scale.
  const AttentionConfig cfg{.n_heads = 1, .n_kv_heads = 1, .head_dim = 2, .scale = 1.0};
  Tensor<f32, 3> q({1, 1, 2}), k({1, 1, 2}), v({1, 1, 2});
  q(0, 0, 0) = 1.0f; k(0, 0, 0) = 0.5f; v(0, 0, 0) = 2.0f; v(0, 0, 1) = -4.0f;
  Tensor<f32, 1> s({1});
  s(0) = 0.5f;  // equal to the score: half the mass goes to the sink
  const auto o = ref(q, k, v, cfg, &s);
  CHECK(o(0, 0, 0) == 1.0f);
  CHECK(o(0, 0, 1) == -2.0f);
}

TEST_CASE("a sliding window covering the sequence equals full causal attention", "[nn][attention]") {
  auto rng = make_rng(73);
  const AttentionConfig full{.n_heads = 2, .n_kv_heads = 2, .head_dim = 8};
  AttentionConfig win = full;
  win.sliding_window = 7;  // ≥ 7 keys: nothing is cut
  const auto q = random_tensor<f32, 3>({7, 2, 8}, rng);
  const auto k = random_tensor<f32, 3>({7, 2, 8}, rng);
  const auto v = random_tensor<f32, 3>({7, 2, 8}, rng);
  CHECK(bit_equal(ref(q, k, v, full), ref(q, k, v, win)));
  // A window of 1 counts only the current token: the output is that token's value.
  win.sliding_window = 1;
  const auto own = ref(q, k, v, win);
  for (index_t t = 0; t < 7; ++t)
    for (index_t d = 0; d < 8; ++d) CHECK(own(t, 1, d) == v(t, 1, d));
  // A window of 6 (< 7 keys) does change the last query.
  win.sliding_window = 6;
  CHECK_FALSE(bit_equal(ref(q, k, v, full), ref(q, k, v, win)));
}

TEST_CASE("decoding token by token through the KV cache equals prefill", "[nn][attention]") {
  auto rng = make_rng(74);
  const AttentionConfig cfg{.n_heads = 4, .n_kv_heads = 2, .head_dim = 8, .sliding_window = 3};
  const auto q = random_tensor<bf16, 3>({5, 4, 8}, rng);
  const auto k = random_tensor<bf16, 3>({5, 2, 8}, rng);
  const auto v = random_tensor<bf16, 3>({5, 2, 8}, rng);
  const auto sinks = random_tensor<f32, 1>({4}, rng);
  const auto prefill = ref(q, k, v, cfg, &sinks);
  KvCache<bf16> cache(2, 8, 2, 8);
  for (index_t t = 0; t < 5; ++t) {
    const auto step = append_attend<bf16>(cache, 1, q.cview().slice(0, t, t + 1), k.cview().slice(0, t, t + 1),
                                          v.cview().slice(0, t, t + 1), cfg, &sinks);
    for (index_t h = 0; h < 4; ++h)
      for (index_t d = 0; d < 8; ++d) CHECK(step(0, h, d) == prefill(t, h, d));
  }
  CHECK(cache.length(1) == 5);
}

TEST_CASE("attention checks its configuration and shapes", "[nn][attention]") {
  const Tensor<f32, 3> q({2, 2, 4}), k({2, 1, 4}), k_bad({2, 2, 4}), q_long({3, 2, 4});
  REQUIRE_THROWS_AS(ref(q, k, k, AttentionConfig{.n_heads = 3, .n_kv_heads = 2, .head_dim = 4}), config_error);
  REQUIRE_THROWS_AS(ref(q, k, k, AttentionConfig{.n_heads = 0, .n_kv_heads = 1, .head_dim = 4}), config_error);
  const AttentionConfig cfg{.n_heads = 2, .n_kv_heads = 1, .head_dim = 4};
  REQUIRE_THROWS_AS(ref(q, k_bad, k_bad, cfg), shape_error);
  REQUIRE_THROWS_AS(ref(q_long, k, k, cfg), shape_error);  // more queries than keys
  const Tensor<f32, 1> three({3});
  REQUIRE_THROWS_AS(ref(q, k, k, cfg, &three), shape_error);  // sinks [3] for 2 heads
}

TEST_CASE("reference attention over a sliding ring equals attention over the whole sequence", "[nn][attention]") {
  // gpt-oss layout (§1a): layer 0 slides with window 5 (a ring of 5 − 1 + 3 = 7 positions),
  // layer 1 is full. 23 tokens in chunks of up to 3; the ring drops old keys, the outputs agree.
  auto rng = make_rng(76);
  const index_t n = 23, window = 5;
  const AttentionConfig win{.n_heads = 4, .n_kv_heads = 2, .head_dim = 8, .sliding_window = window};
  const AttentionConfig full{.n_heads = 4, .n_kv_heads = 2, .head_dim = 8};
  KvCache<f32> cache(KvLayerPlan(gpt_oss_alternating_layers{.window = window}, 2),
                     KvCacheSize{.n_kv_heads = 2, .head_dim = 8, .max_seq = n, .max_append = 3});
  KvCache<f32> plain(2, n, 2, 8);
  const auto q = random_tensor<f32, 3>({n, 4, 8}, rng);
  const auto k = random_tensor<f32, 3>({n, 2, 8}, rng), v = random_tensor<f32, 3>({n, 2, 8}, rng);
  const auto sinks = random_tensor<f32, 1>({4}, rng);
  for (index_t t = 0; t < n;) {
    const index_t c = std::min<index_t>(n - t, 1 + t % 3);
    const auto qs = q.cview().slice(0, t, t + c), ks = k.cview().slice(0, t, t + c), vs = v.cview().slice(0, t, t + c);
    const auto ring = append_attend<f32>(cache, 0, qs, ks, vs, win, &sinks);
    const auto kept = append_attend<f32>(plain, 0, qs, ks, vs, win, &sinks);
    const auto whole = ref<f32>(qs, k.cview().slice(0, 0, t + c), v.cview().slice(0, 0, t + c), win, &sinks);
    CHECK(bit_equal(ring, whole));
    CHECK(bit_equal(kept, whole));
    const auto full_layer = append_attend<f32>(cache, 1, qs, ks, vs, full);
    CHECK(bit_equal(full_layer, ref<f32>(qs, k.cview().slice(0, 0, t + c), v.cview().slice(0, 0, t + c), full)));
    t += c;
  }
  CHECK(cache.first(0) == n - 7);
  // The ring holds a window of 5: reading it as a full layer is a configuration error.
  REQUIRE_THROWS_AS(ref<f32>(q.cview().slice(0, n - 1, n), cache.sequence(0), full), config_error);
}

TEST_CASE("reference attention refuses a view that lost the keys a query needs", "[nn][attention]") {
  const AttentionConfig cfg{.n_heads = 2, .n_kv_heads = 1, .head_dim = 4, .sliding_window = 3};
  const Tensor<f32, 3> k({6, 1, 4}), q({1, 2, 4});
  // Positions [2, 6): the query at 5 sees 3..5, fine; with a window of 5 it would need 1.
  const KvSequenceView<f32> tail(1, 4, 0, {KvSegment<f32>{2, k.cview().slice(0, 2, 6), k.cview().slice(0, 2, 6)}});
  const std::optional<TensorView<const f32, 1>> none;
  CHECK(reference_attention<f32>(q.cview(), tail, cfg, none).extent(0) == 1);
  AttentionConfig wide = cfg;
  wide.sliding_window = 5;
  REQUIRE_THROWS_WITH(reference_attention<f32>(q.cview(), tail, wide, none),
                      Catch::Matchers::Contains("attends to position 1") && Catch::Matchers::Contains("[2, 6)"));
}

TEST_CASE("reference attention through a paged cache equals a contiguous cache", "[nn][attention]") {
  auto rng = make_rng(77);
  const AttentionConfig cfg{.n_heads = 4, .n_kv_heads = 2, .head_dim = 8};
  PagedKvCache<bf16> paged(KvLayerPlan(full_attention_layers{}, 1),
                           PagedKvSize{.n_kv_heads = 2, .head_dim = 8, .page_size = 4, .n_pages = 8,
                                       .max_sequences = 2, .max_append = 2});
  const KvSeqId s0 = paged.add_sequence(), s1 = paged.add_sequence();
  KvCache<bf16> c0(1, 12, 2, 8), c1(1, 12, 2, 8);
  const auto paged_attend = [&](KvSeqId s, TensorView<const bf16, 3> qs, TensorView<const bf16, 3> ks,
                                TensorView<const bf16, 3> vs) {
    paged.append(s, 0, ks, vs);
    return ref<bf16>(qs, paged.sequence(s, 0), cfg);
  };
  const auto q = random_tensor<bf16, 3>({12, 4, 8}, rng), k = random_tensor<bf16, 3>({12, 2, 8}, rng),
             v = random_tensor<bf16, 3>({12, 2, 8}, rng);
  for (index_t t = 0; t < 12; t += 2) {  // the two sequences interleave; s1 reads the rows backwards
    const auto qa = q.cview().slice(0, t, t + 2), ka = k.cview().slice(0, t, t + 2), va = v.cview().slice(0, t, t + 2);
    const auto qb = q.cview().slice(0, 10 - t, 12 - t), kb = k.cview().slice(0, 10 - t, 12 - t),
               vb = v.cview().slice(0, 10 - t, 12 - t);
    CHECK(bit_equal(paged_attend(s0, qa, ka, va), append_attend<bf16>(c0, 0, qa, ka, va, cfg)));
    CHECK(bit_equal(paged_attend(s1, qb, kb, vb), append_attend<bf16>(c1, 0, qb, kb, vb, cfg)));
  }
  CHECK(paged.free_pages() == 8 - 3 - 3);
}
