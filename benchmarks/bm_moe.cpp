// bm_moe — one MoE layer's expert compute on the CPU backend (backends/cpu/moe.hpp), grouped by
// expert, for the two target MoE shapes at decode (T = 1) and a small batch (T = 64):
//
//   gpt-oss-20b layer   32 experts, hidden 2880, intermediate 2880, top-4 (TopKThenSoftmax),
//                       ClampedSwiglu on interleaved gate_up, bf16 biases, MXFP4 experts
//                       (model-semantics §1a: 423 MB of expert weights, 13.2 MB per expert)
//   Qwen3-30B-A3B layer 128 experts, hidden 2048, intermediate 768, top-8 (SoftmaxThenTopK,
//                       norm_topk_prob), SiluGate on separate gate/up, no bias; q8_0 experts
//                       (5.0 MB per expert) and bf16 experts (9.4 MB per expert)
// Activations are bf16. The timed region is the expert compute only (gather, GEMMs, activation,
// weighted combine); the routing is computed beforehand from random logits with the model's own
// policy — a pool of 64 routings used round-robin, so consecutive iterations select different
// experts and weights come from DRAM as they would layer after layer (a fixed routing would keep
// its 4–8 experts partly in the 32 MiB L3).
//
// Counters:
//   tokens/s        T per iteration;
//   bytes/s         expert weight bytes actually read: Σ over the experts selected by ≥ 1 token
//                   of that iteration's routing (gate + up + down as stored, incl. block scales);
//                   each is read once per iteration — that is the grouping;
//   FLOP/s          2·(3·H·I)·T·k (every token × selected expert: gate, up, down);
//   bw_fraction     bytes/s ÷ this process's streaming read bandwidth, measured once at start-up
//                   the way bm_roofline does (TBB sum over 1 GiB with xsimd loads).
// `per_token` runs the same T = 64 tokens one at a time through the same kernel: what a
// token-by-token expert loop costs (each expert re-read by every token that picks it).
#include <benchmark/benchmark.h>  // benchmark::State, BENCHMARK

#include <oneapi/tbb/blocked_range.h>    // tbb::blocked_range
#include <oneapi/tbb/parallel_for.h>     // tbb::parallel_for
#include <oneapi/tbb/parallel_reduce.h>  // tbb::parallel_reduce
#include <oneapi/tbb/task_arena.h>       // tbb::this_task_arena::max_concurrency
#include <xsimd/xsimd.hpp>               // xsimd::batch

#include <algorithm>  // std::count, std::max
#include <chrono>   // std::chrono::steady_clock
#include <cstdint>  // std::uint8_t, std::uint64_t
#include <memory>   // std::unique_ptr
#include <new>      // std::align_val_t
#include <random>   // std::mt19937_64
#include <string>   // std::string
#include <utility>  // std::declval
#include <vector>   // std::vector

#include "roofline.hpp"  // precis::bench::read_bandwidth

#include <precis/backends/cpu/moe.hpp>    // precis::backends::cpu::moe_experts
#include <precis/nn/activation.hpp>       // precis::SiluGate, ClampedSwiglu
#include <precis/nn/moe.hpp>              // precis::MoeExperts, ExpertStack
#include <precis/nn/router.hpp>           // precis::TopKThenSoftmax, SoftmaxThenTopK
#include <precis/quant/quant_tensor.hpp>  // precis::QuantTensor

namespace {

using namespace precis;
namespace cpu_backend = precis::backends::cpu;

using bench::read_bandwidth;  // roofline.hpp: measured once per process

// ---------------------------------------------------------------------------------------------
// Random expert stacks, generated directly as stored values (setup in seconds)
// ---------------------------------------------------------------------------------------------

template <class F>
QuantTensor<F, 3> random_quant(const extents_t<3>& e, std::mt19937_64& rng) {
  QuantTensor<F, 3> q(e);  // [E, N, K] logical
  std::uniform_int_distribution<int> e8m0(118, 124);
  std::uniform_real_distribution<float> scale(0.001f, 0.01f);
  for (index_t b = 0; b < q.num_blocks(); ++b) {
    std::uint8_t bytes[32];
    for (int j = 0; j < 32; j += 8) {
      const std::uint64_t v = rng();
      for (int i = 0; i < 8; ++i) bytes[j + i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    if constexpr (std::same_as<F, mxfp4>) {
      for (int j = 0; j < 16; ++j) q.nibbles()[16 * b + j] = bytes[j];
      q.scales()[b] = static_cast<std::uint8_t>(e8m0(rng));
    } else {  // q8_0
      auto& blk = q.blocks()[b];
      for (int j = 0; j < 32; ++j) blk.qs[j] = static_cast<std::int8_t>(bytes[j]);
      blk.d = float16(scale(rng));
    }
  }
  return q;
}

template <class D>
Tensor<D, 3> random_float(const extents_t<3>& e, float amp, std::mt19937_64& rng) {
  Tensor<D, 3> t(e);
  std::uniform_real_distribution<float> u(-amp, amp);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = storage_t<D>(u(rng));
  return t;
}

template <class F>
auto random_stack(const extents_t<3>& e, std::mt19937_64& rng) {
  if constexpr (BlockFormat<F>) return random_quant<F>(e, rng);
  else return random_float<F>(e, 0.05f, rng);
}

template <class F>
using stack_t = decltype(random_stack<F>(extents_t<3>{}, std::declval<std::mt19937_64&>()));

Tensor<bf16, 2> random_bias(const extents_t<2>& e, std::mt19937_64& rng) {
  Tensor<bf16, 2> t(e);
  std::uniform_real_distribution<float> u(-0.1f, 0.1f);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = bfloat16(u(rng));
  return t;
}

// ---------------------------------------------------------------------------------------------
// The two layers
// ---------------------------------------------------------------------------------------------

template <class F>
struct GptOssLayer {
  static constexpr index_t E = 32, H = 2880, I = 2880, k = 4;
  static constexpr const char* name = "gpt-oss-20b";
  std::mt19937_64 rng{1};
  stack_t<F> gate_up = random_stack<F>({E, 2 * I, H}, rng);  // [E, 2I, H]
  stack_t<F> down = random_stack<F>({E, H, I}, rng);         // [E, H, I]
  Tensor<bf16, 2> b_gu = random_bias({E, 2 * I}, rng);  // [E, 2I]
  Tensor<bf16, 2> b_down = random_bias({E, H}, rng);    // [E, H]
  MoeExperts<ClampedSwiglu, InterleavedGateUp<F>, bf16> experts{
      ClampedSwiglu{}, InterleavedGateUp<F>{expert_stack(gate_up)}, expert_stack(down), b_gu, b_down};
  static Routing route(const Tensor<f32, 2>& l) { return TopKThenSoftmax{}(l, k); }
};

template <class F>
struct Qwen3Layer {
  static constexpr index_t E = 128, H = 2048, I = 768, k = 8;
  static constexpr const char* name = "qwen3-30b-a3b";
  std::mt19937_64 rng{2};
  stack_t<F> gate = random_stack<F>({E, I, H}, rng);  // [E, I, H]
  stack_t<F> up = random_stack<F>({E, I, H}, rng);    // [E, I, H]
  stack_t<F> down = random_stack<F>({E, H, I}, rng);  // [E, H, I]
  MoeExperts<SiluGate, SeparateGateUp<F>, bf16> experts{
      SiluGate{}, SeparateGateUp<F>{expert_stack(gate), expert_stack(up)}, expert_stack(down)};
  static Routing route(const Tensor<f32, 2>& l) { return SoftmaxThenTopK{.norm_topk_prob = true}(l, k); }
};

/// One layer instance per type, built on first use (hundreds of MB: shared by its benchmarks).
template <class Layer>
Layer& layer() {
  static Layer l;
  return l;
}

constexpr int kRoutings = 64;

template <class Layer>
void BM_moe(benchmark::State& state) {
  const index_t n_tok = state.range(0);
  const bool per_token = state.range(1) != 0;
  Layer& L = layer<Layer>();
  std::mt19937_64 rng(7);
  Tensor<bf16, 2> x({n_tok, Layer::H});  // [T, H]
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (index_t i = 0; i < x.numel(); ++i) x.data()[i] = bfloat16(u(rng));
  std::vector<Routing> routings;  // [T, k] each
  std::vector<double> bytes;      // expert bytes read by each routing (grouped)
  std::vector<double> bytes_tok;  // ... by the per-token loop
  const double per_expert = static_cast<double>(L.experts.expert_bytes());
  for (int r = 0; r < kRoutings; ++r) {
    Tensor<f32, 2> logits({n_tok, Layer::E});
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (index_t i = 0; i < logits.numel(); ++i) logits.data()[i] = nd(rng);
    routings.push_back(Layer::route(logits));
    std::vector<bool> used(Layer::E, false);
    for (index_t t = 0; t < n_tok; ++t)
      for (index_t j = 0; j < Layer::k; ++j) used[static_cast<std::size_t>(routings.back().experts(t, j))] = true;
    bytes.push_back(per_expert * static_cast<double>(std::count(used.begin(), used.end(), true)));
    bytes_tok.push_back(per_expert * static_cast<double>(n_tok * Layer::k));
  }
  // Single-token views of the routing for the per-token loop.
  double total_bytes = 0;
  int r = 0;
  for (auto _ : state) {
    const Routing& rt = routings[static_cast<std::size_t>(r)];
    if (!per_token) {
      Tensor<bf16, 2> y = cpu_backend::moe_experts(L.experts, x, rt);
      benchmark::DoNotOptimize(y.data());
      total_bytes += bytes[static_cast<std::size_t>(r)];
    } else {
      for (index_t t = 0; t < n_tok; ++t) {
        Routing one{Tensor<i32, 2>({1, Layer::k}), Tensor<f32, 2>({1, Layer::k})};
        for (index_t j = 0; j < Layer::k; ++j) {
          one.experts(0, j) = rt.experts(t, j);
          one.weights(0, j) = rt.weights(t, j);
        }
        Tensor<bf16, 2> y = cpu_backend::moe_experts(L.experts, x.view().slice(0, t, t + 1), one);
        benchmark::DoNotOptimize(y.data());
      }
      total_bytes += bytes_tok[static_cast<std::size_t>(r)];
    }
    benchmark::ClobberMemory();
    r = (r + 1) % kRoutings;
  }
  using C = benchmark::Counter;
  const double flops = 2.0 * 3.0 * static_cast<double>(Layer::H * Layer::I) * static_cast<double>(n_tok * Layer::k);
  state.counters["tokens/s"] = C(static_cast<double>(n_tok), C::kIsIterationInvariantRate);
  state.counters["bytes/s"] = C(total_bytes, C::kIsRate, C::OneK::kIs1000);
  state.counters["FLOP/s"] = C(flops, C::kIsIterationInvariantRate, C::OneK::kIs1000);
  state.counters["bw_fraction"] = C(total_bytes / read_bandwidth(), C::kIsRate);
  state.SetLabel(std::string(Layer::name) + " " + std::string(dtype_name<typename decltype(L.experts)::format>) +
                 (per_token ? " per-token loop" : " grouped") + " isa=" + std::string(cpu_backend::isa_name()) +
                 " threads=" + std::to_string(tbb::this_task_arena::max_concurrency()));
}

}  // namespace

// Args: {T, per_token}.
BENCHMARK(BM_moe<GptOssLayer<mxfp4>>)->Name("moe/gpt-oss/mxfp4")->Args({1, 0})->Args({64, 0})->Args({64, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_moe<Qwen3Layer<q8_0>>)->Name("moe/qwen3/q8_0")->Args({1, 0})->Args({64, 0})->Args({64, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_moe<Qwen3Layer<bf16>>)->Name("moe/qwen3/bf16")->Args({1, 0})->Args({64, 0})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

BENCHMARK_MAIN();
