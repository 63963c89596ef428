// bm_attention — the CPU attention kernels (backends/cpu/attention.hpp) against this machine's
// roofline.
//
//   decode   one query token against a 4096-token KV cache, gpt-oss shape (64 q / 8 kv heads,
//            head_dim 64, model-semantics §1a) and Qwen3-30B-A3B shape (32 q / 4 kv heads,
//            head_dim 128, §1b), f32 and bf16 caches. Each iteration reads one layer's K and V
//            once; iterations rotate over enough layers that K/V (≥ 128 MiB) cannot stay in the
//            32 MiB L3, so every call streams from DRAM. Counters: bytes/s = K + V bytes per call,
//            bw_fraction = bytes/s ÷ read bandwidth (target ≥ 0.7, recorded, not asserted),
//            FLOP/s = 4·H·Dh per key (q·k and p·v), flop_fraction = FLOP/s ÷ FMA peak.
//            GQA decode does 4·G·Dh FLOP per 2·Dh·sizeof(K) bytes = 2·G/sizeof(K) FLOP/byte
//            (G = H/Hkv = 8: 4 FLOP/B for f32, 8 for bf16): 70 % of ~28 GB/s needs ~80 (f32) or
//            ~160 (bf16) GFLOP/s of attention math, 35 % / 70 % of the 2-core FMA peak.
//   decode, paged  the same, 4 sequences of 4096 tokens decoded together in one call from a
//            PagedKvCache with 16-token pages (one segment per page), bf16.
//   prefill  512 query tokens attending causally to themselves (FLOP/s, flop_fraction).
//
// The two ceilings are measured in this process by roofline.hpp (as bm_roofline measures them),
// unless PRECIS_READ_BW_GBS / PRECIS_FMA_PEAK_GFLOPS give them (e.g. to compare runs).
#include <benchmark/benchmark.h>                // benchmark::State, Counter
#include <oneapi/tbb/blocked_range.h>           // tbb::blocked_range
#include <oneapi/tbb/parallel_for.h>            // tbb::parallel_for
#include <oneapi/tbb/parallel_reduce.h>         // tbb::parallel_reduce
#include <oneapi/tbb/task_arena.h>              // tbb::this_task_arena::max_concurrency
#include <xsimd/xsimd.hpp>                      // xsimd::batch

#include <algorithm>  // std::max
#include <chrono>     // std::chrono::steady_clock
#include <cstdint>    // std::uint32_t
#include <cstdlib>    // std::getenv, std::atof
#include <new>        // std::align_val_t
#include <string>     // std::string
#include <vector>     // std::vector

#include "roofline.hpp"  // precis::bench::read_bandwidth, fma_peak, set_roofline_counters

#include <precis/backends/cpu/attention.hpp>  // precis::backends::cpu::attention_decode, attention_prefill
#include <precis/nn/kv_cache.hpp>             // precis::KvCache, PagedKvCache

namespace {

using namespace precis;
namespace cpu = precis::backends::cpu;
using batch = xsimd::batch<float>;

// ---------------------------------------------------------------------------------------------
// The roofline ceilings
// ---------------------------------------------------------------------------------------------

using bench::fma_peak;
using bench::read_bandwidth;
using bench::set_roofline_counters;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------------
// Shapes and data
// ---------------------------------------------------------------------------------------------

struct Shape {
  const char* name;
  index_t heads, kv_heads, head_dim;
};
constexpr Shape shapes[] = {{"gpt-oss", 64, 8, 64}, {"qwen3-moe", 32, 4, 128}};

constexpr index_t context = 4096;

/// Deterministic values in (−1, 1), rounded once to D (a cheap LCG: filling 128 MiB with
/// std::mt19937 would dominate the setup).
template <class D>
void fill(storage_t<D>* p, index_t n, std::uint32_t seed) {
  std::uint32_t s = seed * 2654435761u + 1u;
  for (index_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    const float x = static_cast<float>(s >> 8) * (1.0f / 8388608.0f) - 1.0f;
    if constexpr (std::same_as<D, f32>) p[i] = x;
    else p[i] = storage_t<D>(x);
  }
}

std::string label(const Shape& sh) {
  return std::string(sh.name) + " " + std::to_string(sh.heads) + "q/" + std::to_string(sh.kv_heads) + "kv Dh" +
         std::to_string(sh.head_dim) + ", " + std::string(cpu::isa_name()) +
         ", threads=" + std::to_string(tbb::this_task_arena::max_concurrency());
}

// ---------------------------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------------------------

/// Decode at a 4096-token context, rotating over layers so K/V stream from DRAM.
template <class Act>
void BM_decode(benchmark::State& state) {
  const Shape& sh = shapes[state.range(0)];
  const double layer_bytes = 2.0 * context * sh.kv_heads * sh.head_dim * sizeof(storage_t<Act>);
  const auto n_layers = static_cast<index_t>(std::max(2.0, (128.0 * (1 << 20)) / layer_bytes));
  KvCache<Act> cache(n_layers, context, sh.kv_heads, sh.head_dim);
  Tensor<Act, 3> k({context, sh.kv_heads, sh.head_dim}), v({context, sh.kv_heads, sh.head_dim});  // [S, Hkv, Dh]
  for (index_t l = 0; l < n_layers; ++l) {
    fill<Act>(k.data(), k.numel(), static_cast<std::uint32_t>(2 * l));
    fill<Act>(v.data(), v.numel(), static_cast<std::uint32_t>(2 * l + 1));
    cache.append(l, k, v);
  }
  Tensor<Act, 3> q({1, sh.heads, sh.head_dim});  // [1, H, Dh]
  fill<Act>(q.data(), q.numel(), 99);
  const AttentionConfig cfg{.n_heads = sh.heads, .n_kv_heads = sh.kv_heads, .head_dim = sh.head_dim};
  index_t layer = 0;
  (void)read_bandwidth();  // both ceilings are measured before the timed loop
  (void)fma_peak();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const KvSequenceView<Act> seq = cache.sequence(layer);
    Tensor<Act, 3> o = cpu::attention_decode(q, std::span<const KvSequenceView<Act>>(&seq, 1), cfg);
    benchmark::DoNotOptimize(o.data());
    layer = (layer + 1) % n_layers;
  }
  const double seconds = seconds_since(t0);
  set_roofline_counters(state, layer_bytes, 4.0 * sh.heads * sh.head_dim * context, seconds);
  state.SetLabel(label(sh) + ", " + std::to_string(n_layers) + " layers rotated");
}

/// Batched decode: 4 sequences at a 4096-token context in one PagedKvCache, one call per layer.
template <class Act>
void BM_decode_paged(benchmark::State& state) {
  const Shape& sh = shapes[state.range(0)];
  constexpr index_t n_seq = 4, page = 16;
  const double seq_bytes = 2.0 * context * sh.kv_heads * sh.head_dim * sizeof(storage_t<Act>);
  const auto n_layers = static_cast<index_t>(std::max(2.0, (128.0 * (1 << 20)) / (n_seq * seq_bytes)));
  PagedKvCache<Act> cache(KvLayerPlan(full_attention_layers{}, n_layers),
                          PagedKvSize{.n_kv_heads = sh.kv_heads, .head_dim = sh.head_dim, .page_size = page,
                                      .n_pages = n_seq * context / page, .max_sequences = n_seq, .max_append = 1});
  Tensor<Act, 3> k({context, sh.kv_heads, sh.head_dim}), v({context, sh.kv_heads, sh.head_dim});  // [S, Hkv, Dh]
  std::vector<KvSeqId> ids;
  for (index_t b = 0; b < n_seq; ++b) ids.push_back(cache.add_sequence());
  for (index_t l = 0; l < n_layers; ++l)
    for (index_t b = 0; b < n_seq; ++b) {
      fill<Act>(k.data(), k.numel(), static_cast<std::uint32_t>(2 * (l * n_seq + b)));
      fill<Act>(v.data(), v.numel(), static_cast<std::uint32_t>(2 * (l * n_seq + b) + 1));
      cache.append(ids[static_cast<std::size_t>(b)], l, k, v);
    }
  Tensor<Act, 3> q({n_seq, sh.heads, sh.head_dim});  // [B, H, Dh]
  fill<Act>(q.data(), q.numel(), 99);
  const AttentionConfig cfg{.n_heads = sh.heads, .n_kv_heads = sh.kv_heads, .head_dim = sh.head_dim};
  index_t layer = 0;
  (void)read_bandwidth();
  (void)fma_peak();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    std::vector<KvSequenceView<Act>> views;
    for (const KvSeqId id : ids) views.push_back(cache.sequence(id, layer));
    Tensor<Act, 3> o = cpu::attention_decode(q, views, cfg);
    benchmark::DoNotOptimize(o.data());
    layer = (layer + 1) % n_layers;
  }
  const double seconds = seconds_since(t0);
  set_roofline_counters(state, n_seq * seq_bytes, 4.0 * n_seq * sh.heads * sh.head_dim * context, seconds);
  state.SetLabel(label(sh) + ", B=4 paged (16-token pages), " + std::to_string(n_layers) + " layers rotated");
}

/// Prefill: 512 query tokens attending causally to themselves.
template <class Act>
void BM_prefill(benchmark::State& state) {
  const Shape& sh = shapes[state.range(0)];
  constexpr index_t n = 512;
  Tensor<Act, 3> q({n, sh.heads, sh.head_dim}), k({n, sh.kv_heads, sh.head_dim}), v({n, sh.kv_heads, sh.head_dim});
  fill<Act>(q.data(), q.numel(), 1);
  fill<Act>(k.data(), k.numel(), 2);
  fill<Act>(v.data(), v.numel(), 3);
  const AttentionConfig cfg{.n_heads = sh.heads, .n_kv_heads = sh.kv_heads, .head_dim = sh.head_dim};
  const KvSequenceView<Act> seq = KvSequenceView<Act>::whole(k.cview(), v.cview());
  (void)read_bandwidth();
  (void)fma_peak();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    Tensor<Act, 3> o = cpu::attention_prefill(q, seq, cfg);
    benchmark::DoNotOptimize(o.data());
  }
  const double keys = static_cast<double>(n) * (n + 1) / 2;  // causal: query t sees t + 1 keys
  set_roofline_counters(state, 2.0 * n * sh.kv_heads * sh.head_dim * sizeof(storage_t<Act>),
                        4.0 * sh.heads * sh.head_dim * keys, seconds_since(t0));
  state.SetLabel(label(sh) + ", T=S=512 causal");
}

}  // namespace

BENCHMARK_TEMPLATE(BM_decode, precis::f32)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_decode, precis::bf16)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_decode_paged, precis::bf16)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_prefill, precis::f32)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_prefill, precis::bf16)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
