// bm_norm_rope — throughput of the CPU building blocks of a decoder layer around the matmuls:
// RMSNorm (backends/cpu/rmsnorm.hpp), RoPE (backends/cpu/rope.hpp) and the gated-MLP activation
// (backends/cpu/activation.hpp), at the target models' widths, for one decode token and a
// 512-token prefill.
//
// All three are memory-bound streaming kernels (≤ 6 FLOP per element), so the figure of merit is
// bytes/s against this machine's streaming read bandwidth (bm_roofline's BM_read_bandwidth
// method, re-measured here once at start-up and printed as `read_bandwidth_GBps` in the
// context): the `roofline` counter is bytes/s ÷ that bandwidth. Bytes count what the kernel
// must move once: every input read and every output written (x, w, y for the norm; q read and
// written plus the cos/sin rows for RoPE; gate_up read and the activation written). At T = 512
// the working set (≤ 8 MiB) stays in the 32 MiB L3 across iterations, and at T = 1 in L1/L2, so
// fractions above 1 mean "cache-resident", not "faster than DRAM". FLOP/s are nominal counts:
//   RMSNorm  4 per element (x², +, ·rstd, ·w)       RoPE  3 per rotated element (2 mul, 1 add)
//   glu      SiluGate 4 + exp, ClampedSwiglu 7 + exp per output, exp counted as 1
// The scalar references (nn/) are measured at one size each as the baseline the kernels replace;
// RoPE table construction (double cos/sin from integer positions, once per forward) is measured
// separately because at prefill it costs more than applying the table.
#include <benchmark/benchmark.h>                  // benchmark::State, Counter, RegisterBenchmark
#include <oneapi/tbb/blocked_range.h>             // tbb::blocked_range
#include <oneapi/tbb/global_control.h>            // tbb::global_control
#include <oneapi/tbb/parallel_reduce.h>           // tbb::parallel_reduce
#include <oneapi/tbb/partitioner.h>               // tbb::static_partitioner
#include <oneapi/tbb/task_arena.h>                // tbb::this_task_arena::max_concurrency
#include <xsimd/xsimd.hpp>                        // xsimd::batch, hadd

#include <algorithm>  // std::max
#include <chrono>     // std::chrono::steady_clock
#include <cstddef>    // std::size_t
#include <cstdlib>    // std::getenv, std::atoi
#include <new>        // std::align_val_t
#include <optional>   // std::optional
#include <random>     // std::mt19937
#include <string>     // std::string, std::to_string
#include <utility>    // std::pair

#include <precis/backends/cpu/activation.hpp>  // precis::backends::cpu::glu_into
#include <precis/backends/cpu/arch.hpp>        // precis::backends::cpu::isa_name
#include <precis/backends/cpu/rmsnorm.hpp>     // precis::backends::cpu::rms_norm_into
#include "roofline.hpp"  // precis::bench::read_bandwidth

#include <precis/backends/cpu/rope.hpp>        // precis::backends::cpu::apply_rope_inplace
#include <precis/nn/activation.hpp>            // precis::ClampedSwiglu, SiluGate, gate_up
#include <precis/nn/norm.hpp>                  // precis::rms_norm, NormThenCast, MultiplyThenCast
#include <precis/nn/rope.hpp>                  // precis::InvFreq, RopeTable, rope_scaling

namespace {

using namespace precis;
namespace bcpu = precis::backends::cpu;

double g_read_bandwidth = 1.0;  // bytes/s, set in main before any benchmark runs

/// Wall-clock time of one benchmark loop (the same span Google Benchmark's real time measures),
/// so that the roofline fraction can be reported as a plain number, not a rate.
class LoopClock {
 public:
  LoopClock() : start_(std::chrono::steady_clock::now()) {}
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// bytes/s, FLOP/s and the roofline fraction for `bytes` and `flops` per iteration.
void set_counters(benchmark::State& state, const LoopClock& clock, double bytes, double flops) {
  using benchmark::Counter;
  const double seconds = clock.seconds(), iters = static_cast<double>(state.iterations());
  state.counters["bytes/s"] = Counter(bytes, Counter::kIsIterationInvariantRate, Counter::OneK::kIs1000);
  state.counters["FLOP/s"] = Counter(flops, Counter::kIsIterationInvariantRate, Counter::OneK::kIs1000);
  state.counters["roofline"] = Counter(seconds > 0 ? bytes * iters / seconds / g_read_bandwidth : 0.0);
  const auto threads = std::min<std::size_t>(static_cast<std::size_t>(tbb::this_task_arena::max_concurrency()),
                                             tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
  state.SetLabel(std::string(bcpu::isa_name()) + " threads=" + std::to_string(threads));
}

/// Random non-zero values in ±[0.125, 1) (never zeros: no denormal or all-zero fast paths).
template <class D, std::size_t R>
Tensor<D, R> random_tensor(const extents_t<R>& e, unsigned seed) {
  Tensor<D, R> t(e);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(0.125f, 1.0f);
  std::bernoulli_distribution neg(0.5);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = from_compute<D>(neg(rng) ? -mag(rng) : mag(rng));
  return t;
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: x [T, hidden], w [hidden]
// ---------------------------------------------------------------------------------------------

template <class Order, class D, class W>
void BM_rms_norm(benchmark::State& state) {
  const index_t hidden = state.range(0), tokens = state.range(1);
  const auto x = random_tensor<D, 2>({tokens, hidden}, 1);
  const auto w = random_tensor<W, 1>({hidden}, 2);
  Tensor<D, 2> y({tokens, hidden});
  const Scalar<f32> eps = 1e-5;
  const LoopClock clock;
  for (auto _ : state) {
    bcpu::rms_norm_into<Order>(x, w, eps, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double elems = static_cast<double>(tokens * hidden);
  set_counters(state, clock, elems * 2.0 * sizeof(storage_t<D>) + static_cast<double>(hidden) * sizeof(storage_t<W>),
               4.0 * elems);
}

void BM_rms_norm_reference(benchmark::State& state) {
  const index_t hidden = state.range(0), tokens = state.range(1);
  const auto x = random_tensor<bf16, 2>({tokens, hidden}, 1);
  const auto w = random_tensor<bf16, 1>({hidden}, 2);
  const Scalar<f32> eps = 1e-5;
  const LoopClock clock;
  for (auto _ : state) {
    auto y = rms_norm<MultiplyThenCast>(x, w, eps);
    benchmark::DoNotOptimize(y.data());
  }
  const double elems = static_cast<double>(tokens * hidden);
  set_counters(state, clock, elems * 4.0 + static_cast<double>(hidden) * 2.0, 4.0 * elems);
}

// ---------------------------------------------------------------------------------------------
// RoPE: q [T, heads, head_dim] rotated in place by a prebuilt table
// ---------------------------------------------------------------------------------------------

RopeTable<f32> make_table(index_t tokens, index_t head_dim) {
  Tensor<i64, 1> pos({tokens});
  for (index_t t = 0; t < tokens; ++t) pos(t) = 1000 + 7 * t;
  return RopeTable<f32>::from_positions(
      pos, InvFreq::make(150000.0, head_dim, rope_scaling::yarn{.factor = 32, .bounds = yarn_bounds::exact}));
}

template <rope_layout Layout, class D>
void BM_rope(benchmark::State& state) {
  const index_t heads = state.range(0), head_dim = state.range(1), tokens = state.range(2);
  auto q = random_tensor<D, 3>({tokens, heads, head_dim}, 3);
  const auto table = make_table(tokens, head_dim);
  const LoopClock clock;
  for (auto _ : state) {
    bcpu::apply_rope_inplace<Layout>(q, table);  // rotating again each iteration is the same work
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  const double elems = static_cast<double>(tokens * heads * head_dim);
  set_counters(state, clock, elems * 2.0 * sizeof(storage_t<D>) + static_cast<double>(tokens * head_dim) * sizeof(float),
               3.0 * elems);
}

void BM_rope_reference(benchmark::State& state) {
  const index_t heads = state.range(0), head_dim = state.range(1), tokens = state.range(2);
  const auto q = random_tensor<bf16, 3>({tokens, heads, head_dim}, 3);
  const auto table = make_table(tokens, head_dim);
  const LoopClock clock;
  for (auto _ : state) {
    auto y = apply_rope(q, table);
    benchmark::DoNotOptimize(y.data());
  }
  const double elems = static_cast<double>(tokens * heads * head_dim);
  set_counters(state, clock, elems * 4.0 + static_cast<double>(tokens * head_dim) * sizeof(float), 3.0 * elems);
}

/// RopeTable::from_positions: T·rd/2 double cos/sin pairs (what one forward call builds).
void BM_rope_table(benchmark::State& state) {
  const index_t head_dim = state.range(0), tokens = state.range(1);
  Tensor<i64, 1> pos({tokens});
  for (index_t t = 0; t < tokens; ++t) pos(t) = 1000 + 7 * t;
  const auto inv = InvFreq::make(150000.0, head_dim, rope_scaling::yarn{.factor = 32, .bounds = yarn_bounds::exact});
  const LoopClock clock;
  for (auto _ : state) {
    auto table = RopeTable<f32>::from_positions(pos, inv);
    benchmark::DoNotOptimize(table.cos().data());
  }
  const double pairs = static_cast<double>(tokens * head_dim / 2);
  set_counters(state, clock, pairs * 2.0 * sizeof(float), 2.0 * pairs);
}

// ---------------------------------------------------------------------------------------------
// Gated activation: gpt-oss ClampedSwiglu on interleaved gate_up [T, 2I]; Qwen3 SiluGate [T, I]×2
// ---------------------------------------------------------------------------------------------

void BM_glu_clamped_swiglu_interleaved(benchmark::State& state) {
  const index_t inter = state.range(0), tokens = state.range(1);
  const auto gu = random_tensor<bf16, 2>({tokens, 2 * inter}, 4);
  Tensor<bf16, 2> y({tokens, inter});
  const ClampedSwiglu act;
  const LoopClock clock;
  for (auto _ : state) {
    bcpu::glu_into<gate_up::interleaved>(act, gu, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double outs = static_cast<double>(tokens * inter);
  set_counters(state, clock, outs * 3.0 * sizeof(bfloat16), 8.0 * outs);
}

void BM_glu_silu_separate(benchmark::State& state) {
  const index_t inter = state.range(0), tokens = state.range(1);
  const auto g = random_tensor<bf16, 2>({tokens, inter}, 5);
  const auto u = random_tensor<bf16, 2>({tokens, inter}, 6);
  Tensor<bf16, 2> y({tokens, inter});
  const LoopClock clock;
  for (auto _ : state) {
    bcpu::glu_into(SiluGate{}, g, u, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double outs = static_cast<double>(tokens * inter);
  set_counters(state, clock, outs * 3.0 * sizeof(bfloat16), 5.0 * outs);
}

void norm_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"hidden", "tokens"});
  for (const long hidden : {2880, 4096})
    for (const long tokens : {1, 512}) b->Args({hidden, tokens});
}

void rope_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"heads", "head_dim", "tokens"});
  // 45×64 = 2880 and 64×64 = 4096 (gpt-oss q heads), 32×128 = 4096 (Qwen3 q heads).
  for (const auto& [heads, head_dim] : {std::pair{45L, 64L}, std::pair{64L, 64L}, std::pair{32L, 128L}})
    for (const long tokens : {1, 512}) b->Args({heads, head_dim, tokens});
}

}  // namespace

BENCHMARK_TEMPLATE(BM_rms_norm, MultiplyThenCast, bf16, bf16)->Apply(norm_args)->UseRealTime();  // gpt-oss
BENCHMARK_TEMPLATE(BM_rms_norm, NormThenCast, bf16, bf16)->Apply(norm_args)->UseRealTime();      // Llama/Qwen
BENCHMARK_TEMPLATE(BM_rms_norm, NormThenCast, f32, f32)->Apply(norm_args)->UseRealTime();
BENCHMARK(BM_rms_norm_reference)->ArgNames({"hidden", "tokens"})->Args({2880, 1})->Args({2880, 512})->UseRealTime();
BENCHMARK_TEMPLATE(BM_rope, rope_layout::half_split, bf16)->Apply(rope_args)->UseRealTime();
BENCHMARK_TEMPLATE(BM_rope, rope_layout::interleaved, bf16)->Apply(rope_args)->UseRealTime();
BENCHMARK_TEMPLATE(BM_rope, rope_layout::half_split, f32)->Apply(rope_args)->UseRealTime();
BENCHMARK(BM_rope_reference)->ArgNames({"heads", "head_dim", "tokens"})->Args({64, 64, 1})->Args({64, 64, 512})->UseRealTime();
BENCHMARK(BM_rope_table)->ArgNames({"head_dim", "tokens"})->Args({64, 1})->Args({64, 512})->Args({128, 512})->UseRealTime();
BENCHMARK(BM_glu_clamped_swiglu_interleaved)->ArgNames({"inter", "tokens"})->Args({2880, 1})->Args({2880, 512})->UseRealTime();
BENCHMARK(BM_glu_silu_separate)->ArgNames({"inter", "tokens"})->Args({768, 1})->Args({768, 512})->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // PRECIS_BENCH_THREADS=n caps oneTBB's worker count (per-thread figures on a shared machine).
  std::optional<tbb::global_control> cap;
  if (const char* env = std::getenv("PRECIS_BENCH_THREADS"))
    cap.emplace(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(std::max(1, std::atoi(env))));
  g_read_bandwidth = bench::read_bandwidth();  // roofline.hpp, before any benchmark runs
  benchmark::AddCustomContext("read_bandwidth_GBps", std::to_string(g_read_bandwidth * 1e-9));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
