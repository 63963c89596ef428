// tests/unit/attention/test_attention_kv_formats.cpp — KV caches stored in run-time formats
// (nn/kv_format.hpp: f32, f16, bf16, q8_0, q4_0 for K and V independently): the row codec, the
// paged cache that encodes on append, and the CPU attention kernels that decode while reading.
//
// What is checked, and the tolerances:
//   - codec: f16 / bf16 rows are the round-to-nearest-even of the f32 value (exact compare);
//     q8_0 / q4_0 blocks are ggml's reference quantisers (quant/block_reference.hpp, bit-exact
//     against gguf-py in tests/unit/quant), and here every decoded value is within the format's
//     bound of the input: q8_0 |x − x̂| ≤ d/2 + 128·2^-11·d (d = amax/127; the f16 rounding of d
//     moves each of ≤ 127 steps by ≤ 2^-11·d), q4_0 ≤ |d| + 8·2^-11·|d| (d = max/−8: values of
//     the other sign clip at code 15). The SIMD decoder of the CPU kernels equals the reference
//     decoder bit for bit (every value is an exact widening or code·scale rounded once).
//   - cache: what stored() hands back decodes to exactly what the encoder made of each appended
//     row, across pages, sequences and a sliding ring; typed reads of an encoded half refuse.
//   - attention (f32 activations): over an encoded cache, bit-identical to the same kernel over a
//     typed f32 cache holding the decoded K/V (the decode is exact, the math unchanged), for decode
//     and prefill, windows and sinks; the reference over the stored view agrees with the CPU kernel
//     within the f32 kernel bound of test_attention_cpu (here 2e-5 of Σp|v|, generous for n ≤ 200
//     keys). bf16 activations: CPU vs reference within one bf16 ulp of the output (2^-8 relative)
//     plus that f32 bound. Against attention over the unquantized f32 K/V, q8_0 stays within 2e-2
//     of the output magnitude and q4_0 within 2e-1: a misplaced row or block (decoding the wrong
//     position or head) breaks these by far.
// Compiled twice (CMakeLists.txt): baseline ISA (scalar decoders) and -march=native (AVX2/F16C).
#include <catch2/catch.hpp>  // TEST_CASE, SECTION, CHECK, REQUIRE

#include <cmath>    // std::fabs, std::ldexp
#include <cstdint>  // std::uint8_t, std::uint16_t
#include <cstring>  // std::memcpy
#include <random>   // std::mt19937
#include <span>     // std::span
#include <string>   // std::string
#include <vector>   // std::vector

#include <precis/backends/cpu/attention.hpp>  // backends::cpu::attention_*, detail::decode_kv_row
#include <precis/core/error.hpp>              // config_error
#include <precis/nn/attention.hpp>            // reference_attention
#include <precis/nn/kv_cache.hpp>             // PagedKvCache, KvStoredView
#include <precis/nn/kv_format.hpp>            // KvFormat, KvCacheFormat, kv_*_row_reference

#include "unit/nn/nn_test_support.hpp"  // random_tensor, make_rng, to_f64

using namespace precis;
using namespace precis::test;
namespace kernels = precis::backends::cpu;

namespace {

std::vector<float> decode(KvFormat f, const std::vector<std::uint8_t>& row, index_t dh) {
  std::vector<float> out(static_cast<std::size_t>(dh));
  kv_decode_row_reference(f, row.data(), dh, out.data());
  return out;
}

template <class A>
std::vector<std::uint8_t> encode(KvFormat f, const storage_t<A>* x, index_t dh) {
  std::vector<std::uint8_t> row(kv_row_bytes(f, dh));
  kv_encode_row_reference<A>(f, x, dh, row.data());
  return row;
}

/// A tensor [S, Hkv, Dh] f32 holding what format f makes of each row of x (encode, decode).
template <class A>
Tensor<f32, 3> decoded_copy(const Tensor<A, 3>& x, KvFormat f) {
  Tensor<f32, 3> out(x.extents());
  for (index_t s = 0; s < x.extent(0); ++s)
    for (index_t h = 0; h < x.extent(1); ++h) {
      const std::vector<float> r = decode(f, encode<A>(f, &x(s, h, 0), x.extent(2)), x.extent(2));
      for (index_t d = 0; d < x.extent(2); ++d) out(s, h, d) = r[static_cast<std::size_t>(d)];
    }
  return out;
}

bool same_bits(const Tensor<f32, 3>& a, const Tensor<f32, 3>& b) {
  return a.extents() == b.extents() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

/// max |a − b| / max(Σ-free magnitude) over the elements: |a − b| ≤ tol · (max |b| + 1e-3).
template <class X, class Y>
double max_rel(const X& a, const Y& b) {
  const std::vector<double> x = to_f64(a), y = to_f64(b);
  double num = 0, mag = 1e-3;
  for (std::size_t i = 0; i < x.size(); ++i) {
    num = std::max(num, std::fabs(x[i] - y[i]));
    mag = std::max(mag, std::fabs(y[i]));
  }
  return num / mag;
}

const std::vector<KvCacheFormat> combos = {
    {KvFormat::q8_0, KvFormat::q8_0}, {KvFormat::q4_0, KvFormat::q4_0}, {KvFormat::q4_0, KvFormat::f16},
    {KvFormat::bf16, KvFormat::q8_0}, {KvFormat::f16, KvFormat::f32},   {KvFormat::f32, KvFormat::q4_0},
};

}  // namespace

TEST_CASE("kv formats: names, flags, row sizes and the head_dim rule", "[kv_format]") {
  for (KvFormat f : all_kv_formats) CHECK(parse_kv_format(to_string(f)) == f);
  CHECK_FALSE(parse_kv_format("q5_0").has_value());
  CHECK_FALSE(parse_kv_format("Q8_0").has_value());
  CHECK(kv_row_bytes(KvFormat::f32, 64) == 256);
  CHECK(kv_row_bytes(KvFormat::bf16, 64) == 128);
  CHECK(kv_row_bytes(KvFormat::q8_0, 64) == 68);  // 2 blocks of 34 bytes
  CHECK(kv_row_bytes(KvFormat::q4_0, 128) == 72);  // 4 blocks of 18 bytes
  CHECK(KvCacheTypes{}.resolve<bf16>() == KvCacheFormat{KvFormat::bf16, KvFormat::bf16});
  CHECK(KvCacheTypes{.k = KvFormat::q8_0, .v = {}}.resolve<f32>() == KvCacheFormat{KvFormat::q8_0, KvFormat::f32});
  // SmolLM2: 3 kv heads × 64, q8_0 K and V: 2 · 3 · 68 bytes per position per layer.
  CHECK(KvCacheFormat{KvFormat::q8_0, KvFormat::q8_0}.bytes_per_position(3, 64) == 408);
  CHECK_THROWS_WITH(check_kv_format({KvFormat::f32, KvFormat::q4_0}, 48, "t"),
                    Catch::Contains("v = q4_0") && Catch::Contains("head_dim is 48"));
  CHECK_NOTHROW(check_kv_format({KvFormat::f16, KvFormat::bf16}, 48, "t"));
}

TEST_CASE("kv formats: the row codec's error bounds, and f16/bf16 are round-to-nearest-even", "[kv_format]") {
  auto rng = make_rng(11);
  for (const index_t dh : {index_t{32}, index_t{64}, index_t{96}, index_t{128}}) {
    Tensor<f32, 1> x = random_tensor<f32, 1>({dh}, rng, 1e-3, 4.0);
    x(3) = 0.0f;   // a zero inside a block
    x(dh - 1) = -x(dh - 1) * 3;  // a large value of either sign
    const std::vector<float> x8 = decode(KvFormat::q8_0, encode<f32>(KvFormat::q8_0, x.data(), dh), dh);
    const std::vector<float> x4 = decode(KvFormat::q4_0, encode<f32>(KvFormat::q4_0, x.data(), dh), dh);
    const std::vector<float> h = decode(KvFormat::f16, encode<f32>(KvFormat::f16, x.data(), dh), dh);
    const std::vector<float> b = decode(KvFormat::bf16, encode<f32>(KvFormat::bf16, x.data(), dh), dh);
    for (index_t blk = 0; blk < dh / 32; ++blk) {
      double amax = 0, mx = 0;
      for (index_t j = 0; j < 32; ++j) {
        const double a = std::fabs(x(32 * blk + j));
        if (a > amax) {
          amax = a;
          mx = x(32 * blk + j);
        }
      }
      const double d8 = amax / 127, d4 = std::fabs(mx / -8);
      for (index_t j = 0; j < 32; ++j) {
        const auto i = static_cast<std::size_t>(32 * blk + j);
        INFO("dh " << dh << " element " << i << " x " << x(32 * blk + j));
        CHECK(std::fabs(x8[i] - x(32 * blk + j)) <= d8 / 2 + 128 * 0x1p-11 * d8);
        CHECK(std::fabs(x4[i] - x(32 * blk + j)) <= d4 + 8 * 0x1p-11 * d4);
        CHECK(h[i] == static_cast<float>(float16(x(32 * blk + j))));
        CHECK(b[i] == static_cast<float>(bfloat16(x(32 * blk + j))));
      }
    }
    CHECK(x8[3] == 0.0f);
    CHECK(x4[3] == 0.0f);
  }
  // An all-zero row decodes to zeros in every format (ggml's d = 0 / −0 blocks).
  const std::vector<float> zeros(64, 0.0f);
  for (KvFormat f : all_kv_formats)
    for (float v : decode(f, encode<f32>(f, zeros.data(), 64), 64)) CHECK(v == 0.0f);
}

TEST_CASE("kv formats: the CPU kernels' row decoder equals the reference decoder bit for bit", "[kv_format][cpu]") {
  auto rng = make_rng(12);
  for (KvFormat f : all_kv_formats)
    for (const index_t dh : {index_t{32}, index_t{64}, index_t{96}, index_t{128}, index_t{40}}) {
      if (is_block_kv_format(f) && dh % 32 != 0) continue;
      INFO(to_string(f) << ", head_dim " << dh);
      const Tensor<bf16, 1> x = random_tensor<bf16, 1>({dh}, rng, 1e-4, 8.0);
      const std::vector<std::uint8_t> row = encode<bf16>(f, x.data(), dh);
      const std::vector<float> want = decode(f, row, dh);
      std::vector<float> tile(static_cast<std::size_t>(dh), -1.0f);
      const float* got = kernels::detail::decode_kv_row(f, row.data(), dh, tile.data());
      CHECK(std::memcmp(got, want.data(), want.size() * sizeof(float)) == 0);
    }
}

TEMPLATE_TEST_CASE("kv cache in run-time formats: stored rows decode to the encoder's output across pages, sequences "
                   "and a ring",
                   "[kv_cache][kv_format]", f32, bf16) {
  using A = TestType;
  auto rng = make_rng(13);
  const index_t hkv = 2, dh = 64, window = 8;
  // Layer 0 full (pages of 4), layer 1 sliding (a ring of window − 1 + max_append positions).
  const KvLayerPlan plan(std::vector<index_t>{0, window});
  const PagedKvSize size{.n_kv_heads = hkv, .head_dim = dh, .page_size = 4, .n_pages = 8, .max_sequences = 2,
                         .max_append = 3};
  for (const KvCacheFormat& fmt : combos) {
    INFO(fmt.describe());
    PagedKvCache<A> cache(plan, size, fmt);
    CHECK(cache.encoded() == (fmt != KvCacheFormat{native_kv_format<A>(), native_kv_format<A>()}));
    CHECK(cache.format() == fmt);
    CHECK(cache.bytes_per_position() == fmt.bytes_per_position(hkv, dh));
    const KvSeqId a = cache.add_sequence(), b = cache.add_sequence();
    std::vector<Tensor<A, 3>> ka, va;  // what sequence a appended, in order
    for (int step = 0; step < 7; ++step) {
      const index_t n = step % 3 + 1;  // 1, 2, 3 tokens
      Tensor<A, 3> k = random_tensor<A, 3>({n, hkv, dh}, rng), v = random_tensor<A, 3>({n, hkv, dh}, rng);
      for (index_t l = 0; l < 2; ++l) {
        cache.append(a, l, k, v);
        cache.append(b, l, v, k);  // another sequence interleaved, in other pages
      }
      ka.push_back(std::move(k));
      va.push_back(std::move(v));
    }
    Tensor<A, 3> all_k({13, hkv, dh}), all_v({13, hkv, dh});  // positions 0..12 of sequence a
    index_t pos = 0;
    for (std::size_t i = 0; i < ka.size(); ++i)
      for (index_t t = 0; t < ka[i].extent(0); ++t, ++pos)
        for (index_t h = 0; h < hkv; ++h)
          for (index_t d = 0; d < dh; ++d) {
            all_k(pos, h, d) = ka[i](t, h, d);
            all_v(pos, h, d) = va[i](t, h, d);
          }
    const Tensor<f32, 3> want_k = decoded_copy(all_k, fmt.k), want_v = decoded_copy(all_v, fmt.v);
    for (index_t l = 0; l < 2; ++l) {
      const KvStoredView view = cache.stored(a, l);
      CHECK(view.length() == 13);
      CHECK(view.first() == cache.first(a, l));
      CHECK((l == 0 ? view.first() == 0 : view.first() > 0));  // the ring has wrapped
      CHECK(view.segments().size() >= 2);
      bool equal = true;
      for (const KvStoredSegment& s : view.segments())
        for (index_t i = 0; i < s.size(); ++i)
          for (index_t h = 0; h < hkv; ++h) {
            std::vector<float> rk(dh), rv(dh);
            kv_decode_row_reference(fmt.k, s.k.row(i, h), dh, rk.data());
            kv_decode_row_reference(fmt.v, s.v.row(i, h), dh, rv.data());
            for (index_t d = 0; d < dh; ++d)
              equal = equal && rk[static_cast<std::size_t>(d)] == want_k(s.position + i, h, d) &&
                      rv[static_cast<std::size_t>(d)] == want_v(s.position + i, h, d);
          }
      CHECK(equal);
    }
    if (cache.encoded()) CHECK_THROWS_WITH(cache.sequence(a, 0), Catch::Contains("read it through stored()"));
  }
  // Smaller formats take fewer bytes; the typed cache is the native format.
  PagedKvCache<A> typed(plan, size), q8(plan, size, {KvFormat::q8_0, KvFormat::q8_0});
  CHECK_FALSE(typed.encoded());
  CHECK(q8.bytes() < typed.bytes());
  CHECK_THROWS_AS(PagedKvCache<A>(plan, PagedKvSize{.n_kv_heads = 1, .head_dim = 48, .page_size = 4, .n_pages = 2,
                                                    .max_sequences = 1, .max_append = 1},
                                  KvCacheFormat{KvFormat::q8_0, KvFormat::f32}),
                  config_error);
}

TEST_CASE("cpu attention over an encoded cache equals attention over the decoded f32 K/V, bit for bit",
          "[attention][cpu][kv_format]") {
  auto rng = make_rng(14);
  for (const auto& [hn, hkv, dh, window] : {std::tuple<index_t, index_t, index_t, index_t>{8, 2, 64, 0},
                                            {4, 1, 128, 0}, {6, 2, 96, 0}, {8, 2, 64, 37}}) {
    const AttentionConfig cfg{.n_heads = hn, .n_kv_heads = hkv, .head_dim = dh, .sliding_window = window};
    const index_t n = 150;
    const Tensor<f32, 3> q = random_tensor<f32, 3>({n, hn, dh}, rng), k = random_tensor<f32, 3>({n, hkv, dh}, rng),
                         v = random_tensor<f32, 3>({n, hkv, dh}, rng);
    const Tensor<f32, 1> sinks = random_tensor<f32, 1>({hn}, rng);
    const KvLayerPlan plan(std::vector<index_t>{window});
    const PagedKvSize size{.n_kv_heads = hkv, .head_dim = dh, .page_size = 16, .n_pages = 12, .max_sequences = 1,
                           .max_append = n};
    for (const KvCacheFormat& fmt : combos) {
      INFO(fmt.describe() << ", H " << hn << "/" << hkv << ", Dh " << dh << ", window " << window);
      PagedKvCache<f32> enc(plan, size, fmt), typed(plan, size);
      const KvSeqId se = enc.add_sequence(), st = typed.add_sequence();
      const Tensor<f32, 3> kd = decoded_copy(k, fmt.k), vd = decoded_copy(v, fmt.v);
      // Prefill the first n − 1 tokens, then one decode step.
      const TensorView<const f32, 3> q_pre = q.cview().slice(0, 0, n - 1), q_last = q.cview().slice(0, n - 1, n);
      enc.append(se, 0, k.cview().slice(0, 0, n - 1), v.cview().slice(0, 0, n - 1));
      typed.append(st, 0, kd.cview().slice(0, 0, n - 1), vd.cview().slice(0, 0, n - 1));
      const std::optional<TensorView<const f32, 1>> s = sinks.cview();
      const Tensor<f32, 3> pe = kernels::attention_prefill(q_pre, enc.stored(se, 0), cfg, s);
      const Tensor<f32, 3> pt = kernels::attention_prefill(q_pre, typed.sequence(st, 0), cfg, s);
      CHECK(same_bits(pe, pt));
      enc.append(se, 0, k.cview().slice(0, n - 1, n), v.cview().slice(0, n - 1, n));
      typed.append(st, 0, kd.cview().slice(0, n - 1, n), vd.cview().slice(0, n - 1, n));
      const KvStoredView ev = enc.stored(se, 0);
      const KvSequenceView<f32> tv = typed.sequence(st, 0);
      const Tensor<f32, 3> de = kernels::attention_decode(q_last, std::span<const KvStoredView>(&ev, 1), cfg, s);
      const Tensor<f32, 3> dt = kernels::attention_decode(q_last, std::span<const KvSequenceView<f32>>(&tv, 1), cfg, s);
      CHECK(same_bits(de, dt));
    }
  }
}

TEMPLATE_TEST_CASE("cpu attention over encoded caches matches the reference, and the quantization error is bounded",
                   "[attention][cpu][kv_format]", f32, bf16) {
  using A = TestType;
  auto rng = make_rng(15);
  const index_t hn = 8, hkv = 2, dh = 64, n = 120;
  const AttentionConfig cfg{.n_heads = hn, .n_kv_heads = hkv, .head_dim = dh, .sliding_window = 0};
  const Tensor<A, 3> q = random_tensor<A, 3>({n, hn, dh}, rng), k = random_tensor<A, 3>({n, hkv, dh}, rng),
                     v = random_tensor<A, 3>({n, hkv, dh}, rng);
  const KvLayerPlan plan(full_attention_layers{}, 1);
  const PagedKvSize size{.n_kv_heads = hkv, .head_dim = dh, .page_size = 32, .n_pages = 8, .max_sequences = 3,
                         .max_append = n};
  PagedKvCache<A> plain(plan, size);
  const KvSeqId sp = plain.add_sequence();
  plain.append(sp, 0, k, v);
  const Tensor<A, 3> exact = kernels::attention_prefill(q, plain.sequence(sp, 0), cfg);  // unquantized K/V
  const double act_ulp = std::same_as<A, f32> ? 0.0 : 0x1p-8;
  for (const KvCacheFormat& fmt : combos) {
    INFO(fmt.describe());
    PagedKvCache<A> cache(plan, size, fmt);
    const KvSeqId s = cache.add_sequence();
    cache.append(s, 0, k, v);
    const Tensor<A, 3> cpu = kernels::attention_prefill(q, cache.stored(s, 0), cfg);
    const Tensor<A, 3> ref = reference_attention<A>(q.cview(), cache.stored(s, 0), cfg, std::nullopt);
    CHECK(max_rel(cpu, ref) <= 2e-5 + act_ulp);
    const bool has_q4 = fmt.k == KvFormat::q4_0 || fmt.v == KvFormat::q4_0;
    const bool has_q8 = fmt.k == KvFormat::q8_0 || fmt.v == KvFormat::q8_0;
    const double bound = has_q4 ? 2e-1 : has_q8 ? 2e-2 : 1e-2;  // f16 / bf16 halves: 2^-8 per value
    CHECK(max_rel(cpu, exact) <= bound);

    // Batched decode of three sequences of different lengths through stored views.
    PagedKvCache<A> batch(plan, size, fmt);
    std::vector<KvStoredView> views;
    std::vector<KvSeqId> ids;
    Tensor<A, 3> qb({3, hn, dh});
    for (index_t b = 0; b < 3; ++b) {
      const index_t len = 40 + 25 * b;
      ids.push_back(batch.add_sequence());
      batch.append(ids.back(), 0, k.cview().slice(0, 0, len), v.cview().slice(0, 0, len));
      for (index_t h = 0; h < hn; ++h)
        for (index_t d = 0; d < dh; ++d) qb(b, h, d) = q(len - 1, h, d);
    }
    for (const KvSeqId id : ids) views.push_back(batch.stored(id, 0));
    const Tensor<A, 3> got = kernels::attention_decode(qb, std::span<const KvStoredView>(views), cfg);
    for (index_t b = 0; b < 3; ++b) {
      const Tensor<A, 3> one = reference_attention<A>(qb.cview().slice(0, b, b + 1), views[static_cast<std::size_t>(b)],
                                                      cfg, std::nullopt);
      CHECK(max_rel(got.cview().slice(0, b, b + 1), one) <= 2e-5 + act_ulp);
    }
  }
}
