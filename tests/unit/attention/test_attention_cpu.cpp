// tests/unit/attention/test_attention_cpu.cpp — the CPU attention kernels
// (backends/cpu/attention.hpp) against the reference (nn/attention.hpp) and float64 math, and
// their exact properties across cache layouts, batching and threads (model-semantics §1a).
//
// Error model (u = 2^-24, the f32 unit roundoff; inputs have |q|, |k|, |v| < 1). For a query row
// with n visible keys, r_j = scale·Σ_d |q_d·k_d| and R = 2·max_j r_j (a bound on the score range):
//   score   |ŝ_j − s_j| ≤ δ = (Dh + 2)·u·max_j r_j        the dot in any order (γ_Dh, Higham §3.1),
//                                                        then ·scale
//   weight  exp(ŝ_j − m) has relative error ≤ u·R + 2u   argument rounding, exp ≤ 1 ulp (xsimd's
//           measured worst case on normal results); each online rescale adds u (α itself cancels:
//           o and l are scaled by the same computed α)
//   sums    Σ p·v and Σ e over ≤ n + 1 terms: (n + 2)·u each
// so |o_f32 − o| ≤ [2δ + 2u·(R + 2 + n_blocks) + (2n + 6)·u]·Σ_j p_j·|v_j| + n·2^-126, the last
// term for exp results below 2^-126 that flush to 0 (l ≥ 1, |v| < 1); rounding the output to Act
// adds u(Act)·|o|. The reference (two passes, i.e. one block) obeys the same bound, so CPU and
// reference may differ by the sum of both. For f32 these tolerances are ~1e-4 of the output
// magnitude: dropping or adding one key (weight ≈ 1/n ≥ 1/200) fails them.
//
// Exact properties (bit-identical outputs): key blocks and score groups are aligned to absolute
// positions, so contiguous, ring-buffer and paged caches, decode and prefill, batched and single
// sequences, and any thread count give the same bits; a sink at −∞ is no sink; a window covering
// the sequence is full causal attention.
//
// This file is compiled twice (CMakeLists.txt): with the toolchain's default flags (xsimd's
// baseline ISA, scalar bf16 widening) and with -march=native (AVX-512 on the reference machine).
#include <catch2/catch.hpp>  // TEMPLATE_TEST_CASE, CHECK, STATIC_REQUIRE

#include <algorithm>  // std::max
#include <bit>        // std::bit_cast
#include <cmath>      // std::exp, std::fabs, std::ldexp
#include <cstdint>    // std::uint32_t
#include <limits>     // std::numeric_limits
#include <optional>   // std::optional
#include <random>     // std::mt19937, std::uniform_int_distribution
#include <span>       // std::span
#include <string>     // std::string
#include <vector>     // std::vector

#include <oneapi/tbb/task_arena.h>  // tbb::task_arena

#include <precis/backends/cpu/attention.hpp>  // precis::backends::cpu::attention_*
#include <precis/core/error.hpp>              // precis::config_error, shape_error, range_error
#include <precis/nn/attention.hpp>            // precis::reference_attention
#include <precis/nn/kv_cache.hpp>             // precis::KvCache, PagedKvCache, KvSequenceView

#include "unit/nn/nn_test_support.hpp"  // random_tensor, to_f64, unit_roundoff, make_rng

using namespace precis;
using namespace precis::test;
namespace kernels = precis::backends::cpu;  // (the CPU kernels; precis::host is the memory tag)

namespace {

constexpr double u32 = unit_roundoff<f32>;

/// Float64 attention of q [T, H, Dh] at the last T positions of k, v [S, Hkv, Dh], and for every
/// output element the error bound of an f32 kernel processing the keys in `n_blocks(row)` blocks.
struct Expected {
  std::vector<double> out, mag;     // [T·H·Dh] exact output and Σ p·|v|
  std::vector<double> row_rel;      // [T·H] 2δ + 2u(R + 2) + (2n + 6)u, without the per-block term
  std::vector<index_t> row_blocks;  // [T·H] key blocks of the CPU kernel's default size
  std::vector<index_t> row_keys;    // [T·H] visible keys n
};

Expected expected_attention(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                            index_t n_q, index_t n_kv, const AttentionConfig& cfg, const std::vector<double>* sinks,
                            index_t key_block) {
  const index_t hn = cfg.n_heads, hkv = cfg.n_kv_heads, dh = cfg.head_dim, group = hn / hkv;
  const double scale = cfg.softmax_scale();
  Expected e;
  e.out.resize(static_cast<std::size_t>(n_q * hn * dh));
  e.mag.resize(e.out.size());
  const auto at = [](const std::vector<double>& a, index_t i) { return a[static_cast<std::size_t>(i)]; };
  for (index_t t = 0; t < n_q; ++t) {
    const index_t pos = n_kv - n_q + t;
    const index_t lo = cfg.sliding_window > 0 ? std::max<index_t>(0, pos - cfg.sliding_window + 1) : 0;
    for (index_t h = 0; h < hn; ++h) {
      const index_t g = h / group;
      std::vector<double> s;
      double r_max = 0;
      for (index_t j = lo; j <= pos; ++j) {
        double dot = 0, r = 0;
        for (index_t d = 0; d < dh; ++d) {
          dot += at(q, (t * hn + h) * dh + d) * at(k, (j * hkv + g) * dh + d);
          r += std::fabs(at(q, (t * hn + h) * dh + d) * at(k, (j * hkv + g) * dh + d));
        }
        s.push_back(dot * scale);
        r_max = std::max(r_max, r * scale);
      }
      double m = -std::numeric_limits<double>::infinity();
      for (double x : s) m = std::max(m, x);
      const double sink = sinks ? (*sinks)[static_cast<std::size_t>(h)] : -std::numeric_limits<double>::infinity();
      m = std::max(m, sink);
      double denom = std::exp(sink - m);
      for (double& x : s) denom += x = std::exp(x - m);
      for (index_t d = 0; d < dh; ++d) {
        double o = 0, mg = 0;
        for (std::size_t i = 0; i < s.size(); ++i) {
          const double vv = at(v, ((lo + static_cast<index_t>(i)) * hkv + g) * dh + d);
          o += s[i] / denom * vv;
          mg += s[i] / denom * std::fabs(vv);
        }
        e.out[static_cast<std::size_t>((t * hn + h) * dh + d)] = o;
        e.mag[static_cast<std::size_t>((t * hn + h) * dh + d)] = mg;
      }
      const auto n = static_cast<index_t>(s.size());
      const double delta = static_cast<double>(dh + 2) * u32 * r_max;
      e.row_rel.push_back(2 * delta + 2 * u32 * (2 * r_max + 2) + static_cast<double>(2 * n + 6) * u32);
      e.row_blocks.push_back(pos / key_block - lo / key_block + 1);
      e.row_keys.push_back(n);
    }
  }
  return e;
}

/// The bound of one f32 kernel run (n_blocks blocks per row), output rounded to Act.
template <class Act>
std::vector<double> kernel_bound(const Expected& e, index_t dh, bool one_block) {
  std::vector<double> tol(e.out.size());
  for (std::size_t i = 0; i < tol.size(); ++i) {
    const std::size_t row = i / static_cast<std::size_t>(dh);
    const double blocks = one_block ? 1.0 : static_cast<double>(e.row_blocks[row]);
    const double rel = e.row_rel[row] + 2 * u32 * blocks;
    tol[i] = rel * e.mag[i] + static_cast<double>(e.row_keys[row]) * std::ldexp(1.0, -126) +
             unit_roundoff<Act> * std::fabs(e.out[i]) * (1 + rel);
  }
  return tol;
}

/// Checks `got` (CPU) against float64 math and against the reference `ref`.
template <class Act>
void check_against(const Tensor<Act, 3>& got, const Tensor<Act, 3>& ref, const Expected& e, index_t dh,
                   const std::string& what) {
  const std::vector<double> tol_cpu = kernel_bound<Act>(e, dh, false), tol_ref = kernel_bound<Act>(e, dh, true);
  std::vector<double> tol_sum(tol_cpu.size());
  for (std::size_t i = 0; i < tol_sum.size(); ++i) tol_sum[i] = tol_cpu[i] + tol_ref[i];
  const Comparison vs_f64 = compare(to_f64(got), e.out, tol_cpu);
  const Comparison ref_vs_f64 = compare(to_f64(ref), e.out, tol_ref);
  const Comparison vs_ref = compare(to_f64(got), to_f64(ref), tol_sum);
  INFO(what << " [" << dtype_name<Act> << ", kernels " << kernels::isa_name() << "]");
  INFO("cpu vs f64: " << vs_f64.violations << " violations " << vs_f64.first);
  INFO("ref vs f64: " << ref_vs_f64.violations << " violations " << ref_vs_f64.first);
  INFO("cpu vs ref: " << vs_ref.violations << " violations " << vs_ref.first);
  CHECK(vs_f64.ok());
  CHECK(ref_vs_f64.ok());
  CHECK(vs_ref.ok());
}

template <class Act>
bool bit_equal(const TensorView<const Act, 3>& a, const TensorView<const Act, 3>& b) {
  if (a.extents() != b.extents()) return false;
  for (index_t i = 0; i < a.extent(0); ++i)
    for (index_t j = 0; j < a.extent(1); ++j)
      for (index_t d = 0; d < a.extent(2); ++d)
        if (!(a(i, j, d).bits == b(i, j, d).bits)) return false;
  return true;
}
template <>
bool bit_equal<f32>(const TensorView<const f32, 3>& a, const TensorView<const f32, 3>& b) {
  if (a.extents() != b.extents()) return false;
  for (index_t i = 0; i < a.extent(0); ++i)
    for (index_t j = 0; j < a.extent(1); ++j)
      for (index_t d = 0; d < a.extent(2); ++d)
        if (std::bit_cast<std::uint32_t>(a(i, j, d)) != std::bit_cast<std::uint32_t>(b(i, j, d))) return false;
  return true;
}
template <class Act>
bool bit_equal(const Tensor<Act, 3>& a, const Tensor<Act, 3>& b) {
  return bit_equal<Act>(a.cview(), b.cview());
}

/// Rows [t0, t1) of x.
template <class Act>
TensorView<const Act, 3> rows(const Tensor<Act, 3>& x, index_t t0, index_t t1) {
  return x.cview().slice(0, t0, t1);
}

struct Shape {
  index_t heads, kv_heads, head_dim;
};
// GQA ratios 1, 4 and 8 at head_dim 64 and 128 (gpt-oss: 64/8 × 64; Qwen3-30B-A3B: 32/4 × 128).
constexpr Shape shapes[] = {{2, 2, 64}, {4, 1, 64}, {8, 1, 64}, {2, 2, 128}, {4, 1, 128}, {8, 1, 128}};

std::optional<TensorView<const f32, 1>> maybe(const Tensor<f32, 1>& s, bool on) {
  return on ? std::optional<TensorView<const f32, 1>>(s.cview()) : std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CPU kernels against the reference and float64 math
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("cpu decode matches the reference and float64 math (GQA 1/4/8, Dh 64/128, windows, sinks)",
                   "[attention][cpu]", f32, bf16) {
  auto rng = make_rng(801);
  std::uniform_int_distribution<index_t> len(1, 200);
  for (const Shape& sh : shapes) {
    for (const index_t window : {index_t{0}, index_t{37}}) {
      const bool with_sinks = window == 0 ? sh.head_dim == 64 : sh.head_dim == 128;
      const AttentionConfig cfg{.n_heads = sh.heads, .n_kv_heads = sh.kv_heads, .head_dim = sh.head_dim,
                                .sliding_window = window};
      const auto sink_t = random_tensor<f32, 1>({sh.heads}, rng, 0.5, 3.0);
      const std::vector<double> sinks = to_f64(sink_t);
      // Three sequences of random lengths decoded together; one of them always spans 3 blocks.
      const index_t lens[] = {len(rng), len(rng), 150};
      std::vector<Tensor<TestType, 3>> ks, vs;
      std::vector<KvSequenceView<TestType>> views;
      for (const index_t n : lens) {
        ks.push_back(random_tensor<TestType, 3>({n, sh.kv_heads, sh.head_dim}, rng));
        vs.push_back(random_tensor<TestType, 3>({n, sh.kv_heads, sh.head_dim}, rng));
      }
      for (std::size_t b = 0; b < 3; ++b) views.push_back(KvSequenceView<TestType>::whole(ks[b].cview(), vs[b].cview()));
      const auto q = random_tensor<TestType, 3>({3, sh.heads, sh.head_dim}, rng);  // [B, H, Dh]
      const Tensor<TestType, 3> got = kernels::attention_decode(q, views, cfg, maybe(sink_t, with_sinks));
      for (index_t b = 0; b < 3; ++b) {
        const auto qb = rows(q, b, b + 1);
        const auto ref = reference_attention<TestType>(qb, ks[static_cast<std::size_t>(b)].cview(),
                                                       vs[static_cast<std::size_t>(b)].cview(), cfg,
                                                       maybe(sink_t, with_sinks));
        const Tensor<TestType, 3> got_b = materialize(rows(got, b, b + 1));
        const Expected e = expected_attention(to_f64(qb), to_f64(ks[static_cast<std::size_t>(b)]),
                                              to_f64(vs[static_cast<std::size_t>(b)]), 1, lens[b], cfg,
                                              with_sinks ? &sinks : nullptr, kernels::detail::attn_key_block_for(sh.head_dim));
        check_against(got_b, ref, e, sh.head_dim,
                      "decode H=" + std::to_string(sh.heads) + " Hkv=" + std::to_string(sh.kv_heads) +
                          " Dh=" + std::to_string(sh.head_dim) + " S=" + std::to_string(lens[b]) +
                          " window=" + std::to_string(window) + (with_sinks ? " +sinks" : ""));
      }
    }
  }
}

TEMPLATE_TEST_CASE("cpu prefill matches the reference and float64 math (GQA 1/4/8, Dh 64/128, windows, sinks)",
                   "[attention][cpu]", f32, bf16) {
  auto rng = make_rng(802);
  std::uniform_int_distribution<index_t> n_q_dist(17, 33), extra(0, 70);
  for (const Shape& sh : shapes) {
    for (const index_t window : {index_t{0}, index_t{29}}) {
      const bool with_sinks = window != 0 ? sh.head_dim == 64 : sh.head_dim == 128;
      const AttentionConfig cfg{.n_heads = sh.heads, .n_kv_heads = sh.kv_heads, .head_dim = sh.head_dim,
                                .sliding_window = window};
      const index_t n_q = n_q_dist(rng), n_kv = n_q + extra(rng);  // queries: the last n_q positions
      const auto q = random_tensor<TestType, 3>({n_q, sh.heads, sh.head_dim}, rng);
      const auto k = random_tensor<TestType, 3>({n_kv, sh.kv_heads, sh.head_dim}, rng);
      const auto v = random_tensor<TestType, 3>({n_kv, sh.kv_heads, sh.head_dim}, rng);
      const auto sink_t = random_tensor<f32, 1>({sh.heads}, rng, 0.5, 3.0);
      const std::vector<double> sinks = to_f64(sink_t);
      const auto s = maybe(sink_t, with_sinks);
      const Tensor<TestType, 3> got = kernels::attention_prefill(q, KvSequenceView<TestType>::whole(k.cview(), v.cview()), cfg, s);
      const auto ref = reference_attention<TestType>(q.cview(), k.cview(), v.cview(), cfg, s);
      const Expected e = expected_attention(to_f64(q), to_f64(k), to_f64(v), n_q, n_kv, cfg,
                                            with_sinks ? &sinks : nullptr, kernels::detail::attn_key_block_for(sh.head_dim));
      check_against(got, ref, e, sh.head_dim,
                    "prefill H=" + std::to_string(sh.heads) + " Hkv=" + std::to_string(sh.kv_heads) +
                        " Dh=" + std::to_string(sh.head_dim) + " T=" + std::to_string(n_q) + " S=" +
                        std::to_string(n_kv) + " window=" + std::to_string(window) + (with_sinks ? " +sinks" : ""));
    }
  }
}

TEST_CASE("cpu attention handles head_dims that are not 64 or 128 (run-time chunks and scalar tails)",
          "[attention][cpu]") {
  auto rng = make_rng(803);
  for (const index_t dh : {index_t{8}, index_t{24}, index_t{32}, index_t{40}, index_t{96}}) {
    const AttentionConfig cfg{.n_heads = 6, .n_kv_heads = 3, .head_dim = dh, .sliding_window = 11};
    const auto q = random_tensor<f32, 3>({9, 6, dh}, rng);
    const auto k = random_tensor<f32, 3>({80, 3, dh}, rng);
    const auto v = random_tensor<f32, 3>({80, 3, dh}, rng);
    const auto ref = reference_attention<f32>(q.cview(), k.cview(), v.cview(), cfg, std::nullopt);
    const Expected e = expected_attention(to_f64(q), to_f64(k), to_f64(v), 9, 80, cfg, nullptr,
                                          kernels::detail::attn_key_block_for(dh));
    check_against(kernels::attention(q, k, v, cfg), ref, e, dh, "head_dim " + std::to_string(dh));
  }
}

TEST_CASE("online softmax equals the two-pass softmax for every key block size, even with huge logits",
          "[attention][cpu]") {
  // Keys grow along the sequence and point the way of the (positive) queries on even dims, so
  // the scores rise and every later block raises the running max and rescales; with scale 16 the
  // logits reach ~250, where exp without max subtraction overflows f32 (exp(x) = inf for x > 88.7).
  auto rng = make_rng(804);
  const index_t n_kv = 200, n_q = 12;
  const AttentionConfig cfg{.n_heads = 8, .n_kv_heads = 2, .head_dim = 64, .scale = 16.0};
  auto q = random_tensor<f32, 3>({n_q, 8, 64}, rng);
  for (index_t i = 0; i < q.numel(); ++i) q.data()[i] = std::fabs(q.data()[i]);
  auto k = random_tensor<f32, 3>({n_kv, 2, 64}, rng);
  for (index_t j = 0; j < n_kv; ++j)
    for (index_t g = 0; g < 2; ++g)
      for (index_t d = 0; d < 64; ++d)
        k(j, g, d) = static_cast<float>(0.1 + 0.9 * static_cast<double>(j) / static_cast<double>(n_kv)) *
                     (d % 2 == 0 ? std::fabs(k(j, g, d)) : k(j, g, d));
  const auto v = random_tensor<f32, 3>({n_kv, 2, 64}, rng);
  const auto ref = reference_attention<f32>(q.cview(), k.cview(), v.cview(), cfg, std::nullopt);
  const KvSequenceView<f32> seq = KvSequenceView<f32>::whole(k.cview(), v.cview());
  for (const index_t bk : {index_t{16}, index_t{32}, index_t{64}, index_t{256}}) {
    Tensor<f32, 3> got({n_q, 8, 64});
    kernels::detail::attention_prefill_impl<f32>(q.cview(), seq, cfg, std::nullopt, got.view(), bk, 7);
    const Expected e = expected_attention(to_f64(q), to_f64(k), to_f64(v), n_q, n_kv, cfg, nullptr, bk);
    check_against(got, ref, e, 64, "key block " + std::to_string(bk));
  }
  // The logits do exceed exp's range: without the running max, exp(s) would be +inf.
  double s_max = 0;
  for (index_t h = 0; h < 8; ++h) {
    double dot = 0;
    for (index_t d = 0; d < 64; ++d) dot += static_cast<double>(q(n_q - 1, h, d)) * static_cast<double>(k(n_kv - 1, h / 4, d));
    s_max = std::max(s_max, 16.0 * dot);
  }
  CHECK(s_max > 89.0);
}

// ---------------------------------------------------------------------------------------------
// Exact properties
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("cpu: sinks at -inf give exactly the sink-free result", "[attention][cpu]", f32, bf16) {
  auto rng = make_rng(805);
  const AttentionConfig cfg{.n_heads = 8, .n_kv_heads = 2, .head_dim = 64, .sliding_window = 50};
  const auto q = random_tensor<TestType, 3>({30, 8, 64}, rng);
  const auto k = random_tensor<TestType, 3>({130, 2, 64}, rng), v = random_tensor<TestType, 3>({130, 2, 64}, rng);
  Tensor<f32, 1> s({8});
  for (index_t h = 0; h < 8; ++h) s(h) = -std::numeric_limits<float>::infinity();
  CHECK(bit_equal(kernels::attention(q, k, v, cfg, s.cview()), kernels::attention(q, k, v, cfg)));
  const auto q1 = random_tensor<TestType, 3>({1, 8, 64}, rng);
  CHECK(bit_equal(kernels::attention(q1, k, v, cfg, s.cview()), kernels::attention(q1, k, v, cfg)));
  // A finite sink does change the result (the check above can fail).
  s(3) = 1.0f;
  CHECK_FALSE(bit_equal(kernels::attention(q1, k, v, cfg, s.cview()), kernels::attention(q1, k, v, cfg)));
}

TEMPLATE_TEST_CASE("cpu: a window covering the sequence equals full causal attention; window 1 returns v",
                   "[attention][cpu]", f32, bf16) {
  auto rng = make_rng(806);
  const index_t n = 70;
  const AttentionConfig full{.n_heads = 4, .n_kv_heads = 1, .head_dim = 128};
  AttentionConfig win = full;
  win.sliding_window = n;
  const auto q = random_tensor<TestType, 3>({n, 4, 128}, rng);
  const auto k = random_tensor<TestType, 3>({n, 1, 128}, rng), v = random_tensor<TestType, 3>({n, 1, 128}, rng);
  const auto reference_full = kernels::attention(q, k, v, full);
  CHECK(bit_equal(reference_full, kernels::attention(q, k, v, win)));
  win.sliding_window = 1000;
  CHECK(bit_equal(reference_full, kernels::attention(q, k, v, win)));
  win.sliding_window = n - 1;  // one key fewer for the last query: the check above can fail
  CHECK_FALSE(bit_equal(reference_full, kernels::attention(q, k, v, win)));
  win.sliding_window = 1;  // only the current token: p = 1, o = v exactly
  const auto own = kernels::attention(q, k, v, win);
  for (index_t t = 0; t < n; ++t)
    for (index_t d = 0; d < 128; ++d) CHECK(to_compute<TestType>(own(t, 2, d)) == to_compute<TestType>(v(t, 0, d)));
}

TEMPLATE_TEST_CASE("cpu: decoding token by token equals prefill, bit for bit", "[attention][cpu]", f32, bf16) {
  auto rng = make_rng(807);
  for (const index_t window : {index_t{0}, index_t{45}}) {
    // Dh 128: key blocks of 64, so the 100 keys span two blocks.
    const AttentionConfig cfg{.n_heads = 4, .n_kv_heads = 1, .head_dim = 128, .sliding_window = window};
    const index_t n = 100;
    const auto q = random_tensor<TestType, 3>({n, 4, 128}, rng);
    const auto k = random_tensor<TestType, 3>({n, 1, 128}, rng), v = random_tensor<TestType, 3>({n, 1, 128}, rng);
    const auto sink_t = random_tensor<f32, 1>({4}, rng);
    const Tensor<TestType, 3> prefill = kernels::attention(q, k, v, cfg, sink_t.cview());
    for (index_t t = 0; t < n; ++t) {
      const KvSequenceView<TestType> seq = KvSequenceView<TestType>::whole(rows(k, 0, t + 1), rows(v, 0, t + 1));
      const Tensor<TestType, 3> step =
          kernels::attention_decode(rows(q, t, t + 1), std::span<const KvSequenceView<TestType>>(&seq, 1), cfg, sink_t.cview());
      INFO("window " << window << ", token " << t);
      REQUIRE(bit_equal<TestType>(step.cview(), rows(prefill, t, t + 1)));
    }
  }
}

TEMPLATE_TEST_CASE("cpu: a ring-buffer cache gives the full cache's output on a windowed layer", "[attention][cpu]",
                   f32, bf16) {
  // Layer 0 is a ring of window − 1 + max_append = 40 positions, layer 1 keeps everything; both are
  // read with the same window config, over 3.5× the window, in prefill chunks and decode steps.
  auto rng = make_rng(808);
  const index_t window = 37, max_append = 4, n = 130;
  const AttentionConfig cfg{.n_heads = 4, .n_kv_heads = 2, .head_dim = 128, .sliding_window = window};
  KvCache<TestType> cache(KvLayerPlan(std::vector<index_t>{window, 0}),
                          KvCacheSize{.n_kv_heads = 2, .head_dim = 128, .max_seq = n, .max_append = max_append});
  REQUIRE(cache.capacity(0) == window - 1 + max_append);
  const auto q = random_tensor<TestType, 3>({n, 4, 128}, rng);
  const auto k = random_tensor<TestType, 3>({n, 2, 128}, rng), v = random_tensor<TestType, 3>({n, 2, 128}, rng);
  const auto sink_t = random_tensor<f32, 1>({4}, rng);
  index_t t = 0, step = 0;
  while (t < n) {
    const index_t c = std::min<index_t>(n - t, 1 + step++ % max_append);  // chunks 1, 2, 3, 4, 1, ...
    for (index_t layer : {index_t{0}, index_t{1}}) cache.append(layer, rows(k, t, t + c), rows(v, t, t + c));
    const auto ring = kernels::attention_prefill(rows(q, t, t + c), cache.sequence(0), cfg, sink_t.cview());
    const auto full = kernels::attention_prefill(rows(q, t, t + c), cache.sequence(1), cfg, sink_t.cview());
    INFO("positions [" << t << ", " << t + c << "), ring holds [" << cache.first(0) << ", " << cache.length(0) << ")");
    REQUIRE(bit_equal(ring, full));
    t += c;
  }
  CHECK(cache.first(0) == n - cache.capacity(0));  // the ring wrapped several times
  // Read with a config whose window differs from the ring's, the cache refuses (§1a gpt-oss bug class).
  AttentionConfig full_cfg = cfg;
  full_cfg.sliding_window = 0;
  REQUIRE_THROWS_AS(kernels::attention_prefill(rows(q, n - 1, n), cache.sequence(0), full_cfg), config_error);
}

TEMPLATE_TEST_CASE("cpu: a paged cache equals contiguous caches for several interleaved sequences",
                   "[attention][cpu]", f32, bf16) {
  // gpt-oss-like plan: layer 0 slides (window 24), layer 1 is full. Three sequences of different
  // lengths grow in interleaved chunks; each is mirrored in its own KvCache. Every step, the
  // paged views decode together in one batched call and must equal the per-sequence results.
  auto rng = make_rng(809);
  const index_t window = 24, max_append = 5, page = 8;
  const KvLayerPlan plan(gpt_oss_alternating_layers{.window = window}, 2);
  const AttentionConfig cfg_full{.n_heads = 4, .n_kv_heads = 2, .head_dim = 128};  // key blocks of 64
  AttentionConfig cfg_win = cfg_full;
  cfg_win.sliding_window = window;
  PagedKvCache<TestType> paged(plan, PagedKvSize{.n_kv_heads = 2, .head_dim = 128, .page_size = page, .n_pages = 40,
                                                  .max_sequences = 3, .max_append = max_append});
  const index_t total[] = {70, 45, 90};
  std::vector<KvCache<TestType>> mirrors;
  std::vector<KvSeqId> ids;
  std::vector<Tensor<TestType, 3>> ks, vs, qs;
  for (const index_t n : total) {
    mirrors.emplace_back(plan, KvCacheSize{.n_kv_heads = 2, .head_dim = 128, .max_seq = n, .max_append = max_append});
    ids.push_back(paged.add_sequence());
    ks.push_back(random_tensor<TestType, 3>({n, 2, 128}, rng));
    vs.push_back(random_tensor<TestType, 3>({n, 2, 128}, rng));
    qs.push_back(random_tensor<TestType, 3>({n, 4, 128}, rng));
  }
  const auto sink_t = random_tensor<f32, 1>({4}, rng);
  index_t len[] = {0, 0, 0};
  std::uniform_int_distribution<index_t> chunk(1, max_append);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> stepped;
    for (std::size_t b = 0; b < 3; ++b) {
      if (len[b] == total[b]) continue;
      const index_t c = std::min(chunk(rng), total[b] - len[b]);
      for (const index_t layer : {index_t{0}, index_t{1}}) {
        paged.append(ids[b], layer, rows(ks[b], len[b], len[b] + c), rows(vs[b], len[b], len[b] + c));
        mirrors[b].append(layer, rows(ks[b], len[b], len[b] + c), rows(vs[b], len[b], len[b] + c));
        const AttentionConfig& cfg = layer == 0 ? cfg_win : cfg_full;
        const auto q = rows(qs[b], len[b], len[b] + c);
        REQUIRE(bit_equal(kernels::attention_prefill(q, paged.sequence(ids[b], layer), cfg, sink_t.cview()),
                          kernels::attention_prefill(q, mirrors[b].sequence(layer), cfg, sink_t.cview())));
      }
      len[b] += c;
      stepped.push_back(b);
    }
    if (stepped.empty()) break;
    // Batched decode of the last token of every sequence that grew, per layer.
    for (const index_t layer : {index_t{0}, index_t{1}}) {
      const AttentionConfig& cfg = layer == 0 ? cfg_win : cfg_full;
      std::vector<KvSequenceView<TestType>> views;
      Tensor<TestType, 3> qb({static_cast<index_t>(stepped.size()), 4, 128});
      for (std::size_t i = 0; i < stepped.size(); ++i) {
        const std::size_t b = stepped[i];
        views.push_back(paged.sequence(ids[b], layer));
        for (index_t h = 0; h < 4; ++h)
          for (index_t d = 0; d < 128; ++d) qb(static_cast<index_t>(i), h, d) = qs[b](len[b] - 1, h, d);
      }
      const auto batched = kernels::attention_decode(qb, views, cfg, sink_t.cview());
      for (std::size_t i = 0; i < stepped.size(); ++i) {
        const std::size_t b = stepped[i];
        const KvSequenceView<TestType> one = mirrors[b].sequence(layer);
        const auto single = kernels::attention_decode(rows(qs[b], len[b] - 1, len[b]),
                                                  std::span<const KvSequenceView<TestType>>(&one, 1), cfg,
                                                  sink_t.cview());
        REQUIRE(bit_equal<TestType>(rows(batched, static_cast<index_t>(i), static_cast<index_t>(i) + 1), single.cview()));
      }
    }
  }
  for (std::size_t b = 0; b < 3; ++b) CHECK(len[b] == total[b]);
  // Full layers hold one page per 8 positions; the sliding layer's rings take no pages.
  CHECK(paged.free_pages() == 40 - (9 + 6 + 12));
}

TEST_CASE("cpu attention copies K/V whose head_dim rows are strided, and gives the same bits", "[attention][cpu]") {
  auto rng = make_rng(812);
  const AttentionConfig cfg{.n_heads = 4, .n_kv_heads = 2, .head_dim = 64};
  const auto q = random_tensor<f32, 3>({5, 4, 64}, rng);
  const auto wide = random_tensor<f32, 3>({30, 2, 128}, rng);                 // every other value is K
  const TensorView<const f32, 3> k_strided(wide.data(), {30, 2, 64}, {256, 128, 2});  // stride 2 along head_dim
  const Tensor<f32, 3> k = materialize(k_strided);
  REQUIRE_THROWS_AS(KvSequenceView<f32>::whole(k_strided, k_strided), shape_error);  // kernels need contiguous rows
  CHECK(bit_equal(kernels::attention(q, k_strided, k_strided, cfg), kernels::attention(q, k, k, cfg)));
}

TEST_CASE("cpu attention gives the same bits on one thread and on all threads", "[attention][cpu]") {
  auto rng = make_rng(810);
  const AttentionConfig cfg{.n_heads = 8, .n_kv_heads = 4, .head_dim = 128, .sliding_window = 100};
  const auto q = random_tensor<bf16, 3>({40, 8, 128}, rng);
  const auto k = random_tensor<bf16, 3>({200, 4, 128}, rng), v = random_tensor<bf16, 3>({200, 4, 128}, rng);
  const auto all = kernels::attention(q, k, v, cfg);
  tbb::task_arena one(1);
  Tensor<bf16, 3> single;
  one.execute([&] { single = kernels::attention(q, k, v, cfg); });
  CHECK(bit_equal(all, single));
}

// ---------------------------------------------------------------------------------------------
// The backend tag and the type rules
// ---------------------------------------------------------------------------------------------

namespace {
template <class E>
concept can_name_cpu_attention = kernels::cpu_attention_dtype<E>;
template <class Q, class E>
concept can_decode = requires(const Q& q, const std::vector<KvSequenceView<E>>& kv, const AttentionConfig& c) {
  kernels::attention_decode(q, kv, c);
};
template <class Q, class E>
concept can_prefill = requires(const Q& q, const KvSequenceView<E>& kv, const AttentionConfig& c) {
  kernels::attention_prefill(q, kv, c);
};
template <class E, class S>
concept can_prefill_with_sinks = requires(const Tensor<E, 3>& q, const KvSequenceView<E>& kv, const AttentionConfig& c,
                                          const Tensor<S, 1>& s) {
  kernels::attention_prefill(q, kv, c, s.cview());
};
}  // namespace

TEST_CASE("cpu attention over a sliding ring cache equals the reference over a contiguous one",
          "[attention][cpu]") {
  auto rng = make_rng(811);
  const AttentionConfig cfg{.n_heads = 8, .n_kv_heads = 2, .head_dim = 64, .sliding_window = 16};
  KvCache<bf16> cache(KvLayerPlan(sliding_attention_layers{.window = 16}, 1),
                      KvCacheSize{.n_kv_heads = 2, .head_dim = 64, .max_seq = 64, .max_append = 8});
  KvCache<bf16> ref_cache(1, 64, 2, 64);
  const auto sink_t = random_tensor<f32, 1>({8}, rng);
  const index_t n = 60;
  const auto q = random_tensor<bf16, 3>({n, 8, 64}, rng);
  const auto k = random_tensor<bf16, 3>({n, 2, 64}, rng), v = random_tensor<bf16, 3>({n, 2, 64}, rng);
  for (index_t t = 0; t < n; t += 6) {
    const index_t c = std::min<index_t>(6, n - t);
    cache.append(0, rows(k, t, t + c), rows(v, t, t + c));
    ref_cache.append(0, rows(k, t, t + c), rows(v, t, t + c));
    const auto got = kernels::attention_prefill(rows(q, t, t + c), cache.sequence(0), cfg, sink_t.cview());
    const auto want = reference_attention<bf16>(rows(q, t, t + c), ref_cache.sequence(0), cfg, sink_t.cview());
    const std::vector<double> sv = to_f64(sink_t);
    const Expected e = expected_attention(to_f64(q.cview().slice(0, t, t + c)), to_f64(rows(k, 0, t + c)),
                                          to_f64(rows(v, 0, t + c)), c, t + c, cfg, &sv, kernels::detail::attn_key_block_for(64));
    check_against(got, want, e, 64, "chunk at " + std::to_string(t));
  }
  CHECK(cache.capacity(0) == 16 - 1 + 8);
  CHECK(cache.first(0) == n - (16 - 1 + 8));
}

TEST_CASE("cpu attention states its dtype rules and checks its shapes", "[attention][cpu][static]") {
  STATIC_REQUIRE(can_name_cpu_attention<f32>);
  STATIC_REQUIRE(can_name_cpu_attention<bf16>);
  STATIC_REQUIRE_FALSE(can_name_cpu_attention<f16>);
  STATIC_REQUIRE_FALSE(can_name_cpu_attention<f64>);
  STATIC_REQUIRE(can_prefill_with_sinks<bf16, f32>);
  STATIC_REQUIRE_FALSE(can_prefill_with_sinks<bf16, bf16>);  // E23: sinks are f32
  STATIC_REQUIRE(can_decode<Tensor<bf16, 3>, bf16>);
  STATIC_REQUIRE_FALSE(can_decode<Tensor<bf16, 3>, f32>);  // q and K/V of one dtype (seed bug 1)
  STATIC_REQUIRE_FALSE(can_decode<Tensor<f32, 3>, bf16>);
  STATIC_REQUIRE(can_prefill<TensorView<const f32, 3>, f32>);
  STATIC_REQUIRE_FALSE(can_prefill<Tensor<bf16, 3>, f32>);
  STATIC_REQUIRE_FALSE(can_prefill<Tensor<f32, 2>, f32>);

  const AttentionConfig cfg{.n_heads = 4, .n_kv_heads = 2, .head_dim = 64};
  const Tensor<f32, 3> k({10, 2, 64}), v({10, 2, 64}), q2({2, 4, 64}), q_bad({1, 3, 64}), q_long({11, 4, 64});
  const KvSequenceView<f32> seq = KvSequenceView<f32>::whole(k.cview(), v.cview());
  const std::vector<KvSequenceView<f32>> one{seq};
  REQUIRE_THROWS_AS(kernels::attention_decode(q2, one, cfg), shape_error);      // 2 tokens, 1 sequence
  REQUIRE_THROWS_AS(kernels::attention_prefill(q_bad, seq, cfg), shape_error);  // 3 heads
  REQUIRE_THROWS_AS(kernels::attention_prefill(q_long, seq, cfg), shape_error); // more queries than keys
  const Tensor<f32, 1> three_sinks({3});
  REQUIRE_THROWS_AS(kernels::attention(q2, k, v, cfg, three_sinks.cview()), shape_error);
  Tensor<f32, 3> out({2, 4, 64});
  for (const index_t bad_block : {index_t{-16}, index_t{kernels::detail::attn_max_key_block + 16}})
    REQUIRE_THROWS_AS(kernels::detail::attention_prefill_impl<f32>(q2.cview(), seq, cfg, std::nullopt, out.view(), bad_block),
                      config_error);
  // A view that no longer holds a key the window needs.
  const KvSequenceView<f32> tail(2, 64, 0, {KvSegment<f32>{4, k.cview().slice(0, 4, 10), v.cview().slice(0, 4, 10)}});
  REQUIRE_THROWS_AS(kernels::attention_prefill(q2, tail, cfg), range_error);
}
