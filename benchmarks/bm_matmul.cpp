// bm_matmul — the CPU backend's matmul (include/precis/backends/cpu) for every weight format.
//
//   decode   y[1, N] = x[1, K]·Wᵀ, N = K = 4096 (gpt-oss-sized projections). A GEMV reads each
//            weight once for 2 FLOP, so it is memory-bound: the figure of merit is weight bytes
//            per second against bm_roofline's read bandwidth. Several independent weight matrices
//            are used round-robin so that ≥ 128 MiB (4× the reference machine's 32 MiB L3) is
//            streamed between two reads of the same byte: every iteration comes from DRAM.
//   prefill  y[M, N] = x[M, K]·Wᵀ, M = N = K ∈ {1024, 2048}: compute-bound (2·M FLOP per weight);
//            FLOP/s against bm_roofline's FMA peak.
//   read     bm_roofline's streaming-read loop (1 GiB, all threads), repeated here so that a run
//            with --benchmark_enable_random_interleaving measures the bandwidth ceiling in the
//            same minutes as the GEMVs: on a shared VM the bandwidth drifts by ±20 % over minutes.
// Counters: bytes/s = weight bytes actually stored (blocks incl. scales) per second; FLOP/s = 2·M·N·K
// per second. Weight values are random codes with sane scales (the kernels' speed does not depend
// on them), generated directly as blocks so that setup takes seconds, not minutes.
// docs/performance.md records the figures and their fractions of the roofline.
#include <benchmark/benchmark.h>  // benchmark::State, BENCHMARK

#include <oneapi/tbb/blocked_range.h>    // tbb::blocked_range
#include <oneapi/tbb/parallel_for.h>     // tbb::parallel_for
#include <oneapi/tbb/parallel_reduce.h>  // tbb::parallel_reduce
#include <oneapi/tbb/partitioner.h>      // tbb::static_partitioner
#include <oneapi/tbb/task_arena.h>       // tbb::this_task_arena::max_concurrency
#include <xsimd/xsimd.hpp>               // xsimd::batch (read reference)

#include <algorithm>  // std::max
#include <cstdint>  // std::uint8_t
#include <random>   // std::mt19937
#include <string>   // std::string
#include <vector>   // std::vector

#include "roofline.hpp"  // precis::bench::ReadBuffer, stream_read

#include <precis/backends/cpu/matmul.hpp>  // precis::backends::cpu
#include <precis/core/tensor.hpp>          // precis::Tensor
#include <precis/quant/quant_tensor.hpp>   // precis::QuantTensor

namespace {

using namespace precis;
namespace cpu_backend = precis::backends::cpu;

constexpr index_t kDecodeN = 4096, kDecodeK = 4096;
constexpr std::size_t kStreamBytes = std::size_t{128} << 20;  // ≥ 4× L3 between reuses

// ---------------------------------------------------------------------------------------------
// Random weights of every format
// ---------------------------------------------------------------------------------------------

template <class Fmt>
struct Weights;  // a set of R matrices [N, K] of format Fmt

template <class D>
  requires ElementDtype<D>
struct Weights<D> {
  std::vector<Tensor<D, 2>> w;
  Weights(index_t n, index_t k, std::size_t count, std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (std::size_t i = 0; i < count; ++i) {
      Tensor<D, 2> t({n, k});  // [N, K]
      for (index_t j = 0; j < t.numel(); ++j) {
        if constexpr (std::same_as<D, f32>) t.data()[j] = u(rng) * 0.05f;
        else t.data()[j] = storage_t<D>(u(rng) * 0.05f);
      }
      w.push_back(std::move(t));
    }
  }
  [[nodiscard]] std::size_t bytes() const { return w.front().bytes(); }
  [[nodiscard]] static std::size_t bytes_for(index_t n, index_t k) { return static_cast<std::size_t>(n * k) * sizeof(storage_t<D>); }
  /// The weight argument for activations of dtype A (as_weight when the dtypes differ).
  template <class A>
  [[nodiscard]] auto arg(std::size_t i) const {
    if constexpr (std::same_as<A, D>) return w[i].cview();
    else return cpu_backend::as_weight(w[i]);
  }
};

template <class F>
  requires BlockFormat<F>
struct Weights<F> {
  std::vector<QuantTensor<F, 2>> w;
  Weights(index_t n, index_t k, std::size_t count, std::mt19937& rng) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> scale(0.001f, 0.01f);
    std::uniform_int_distribution<int> e8m0(118, 124);
    for (std::size_t i = 0; i < count; ++i) {
      QuantTensor<F, 2> q({n, k});  // [N, K] logical
      for (index_t b = 0; b < q.num_blocks(); ++b) {
        if constexpr (std::same_as<F, mxfp4>) {
          for (int j = 0; j < 16; ++j) q.nibbles()[16 * b + j] = static_cast<std::uint8_t>(byte(rng));
          q.scales()[b] = static_cast<std::uint8_t>(e8m0(rng));
        } else if constexpr (dtype_traits<F>::block_size == 256 || std::same_as<F, q5_0> || std::same_as<F, q5_1> ||
                             std::same_as<F, iq4_nl>) {
          // The GGUF download formats: random bytes, then finite f16 scales (d, dmin / m).
          auto& blk = q.blocks()[b];
          auto* p = reinterpret_cast<std::uint8_t*>(&blk);
          for (std::size_t i = 0; i < sizeof(blk); ++i) p[i] = static_cast<std::uint8_t>(byte(rng));
          blk.d = float16(scale(rng) * 0.1f);
          if constexpr (requires { blk.dmin; }) blk.dmin = float16(scale(rng) * 0.1f);
          if constexpr (requires { blk.m; }) blk.m = float16(-8.0f * scale(rng));
        } else {
          auto& blk = q.blocks()[b];
          for (auto& c : blk.qs) c = static_cast<std::remove_reference_t<decltype(c)>>(byte(rng));
          if constexpr (std::same_as<F, mxfp4_ggml>) {
            blk.e = static_cast<std::uint8_t>(e8m0(rng));
          } else {
            blk.d = float16(scale(rng));
            if constexpr (std::same_as<F, q4_1>) blk.m = float16(-8.0f * scale(rng));
          }
        }
      }
      w.push_back(std::move(q));
    }
  }
  [[nodiscard]] std::size_t bytes() const { return w.front().bytes(); }
  [[nodiscard]] static std::size_t bytes_for(index_t n, index_t k) {
    return static_cast<std::size_t>(n * k) / dtype_traits<F>::block_size * dtype_traits<F>::stored_bytes;
  }
  template <class A>
  [[nodiscard]] QuantView<F, 2> arg(std::size_t i) const {
    return w[i].view();
  }
};

template <class D>
[[nodiscard]] Tensor<D, 2> random_activations(index_t m, index_t k, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Tensor<D, 2> x({m, k});  // [M, K]
  for (index_t j = 0; j < x.numel(); ++j) {
    if constexpr (std::same_as<D, f32>) x.data()[j] = u(rng);
    else x.data()[j] = storage_t<D>(u(rng));
  }
  return x;
}

std::string label(std::string_view what) {
  return std::string(what) + " isa=" + std::string(cpu_backend::isa_name()) +
         " threads=" + std::to_string(tbb::this_task_arena::max_concurrency());
}

void set_counters(benchmark::State& state, double bytes, double flops) {
  state.counters["bytes/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::OneK::kIs1000);
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::OneK::kIs1000);
}

// ---------------------------------------------------------------------------------------------
// Read-bandwidth reference (the loop of bm_roofline.cpp's BM_read_bandwidth)
// ---------------------------------------------------------------------------------------------

void BM_read_reference(benchmark::State& state) {
  const bench::ReadBuffer buf;  // 1 GiB
  for (auto _ : state) benchmark::DoNotOptimize(bench::stream_read(buf));
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(buf.bytes()), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::OneK::kIs1000);
  state.SetLabel(label("1 GiB streaming read"));
}

// ---------------------------------------------------------------------------------------------
// Decode (GEMV)
// ---------------------------------------------------------------------------------------------

/// y[M, N] = x[M, K]·Wᵀ, activations of dtype A, weights of format Fmt, float path.
template <class Fmt, class A>
void BM_decode(benchmark::State& state) {
  const index_t m = state.range(0);
  std::mt19937 rng(42);
  const std::size_t one = Weights<Fmt>::bytes_for(kDecodeN, kDecodeK);
  const std::size_t count = std::max<std::size_t>(2, (kStreamBytes + one - 1) / one);
  const Weights<Fmt> w(kDecodeN, kDecodeK, count, rng);
  const auto x = random_activations<A>(m, kDecodeK, rng);  // [M, K]
  Tensor<A, 2> y({m, kDecodeN});                           // [M, N]
  std::size_t i = 0;
  for (auto _ : state) {
    cpu_backend::matmul_into(x, w.template arg<A>(i), y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    i = (i + 1) % count;
  }
  set_counters(state, static_cast<double>(w.bytes()), 2.0 * static_cast<double>(m * kDecodeN * kDecodeK));
  state.SetLabel(label(std::string(dtype_name<Fmt>) + " x " + std::string(dtype_name<A>) + ", " +
                       std::to_string(count) + " matrices"));
}

/// The q8-activation path: x quantized once per call (included in the time), integer dots.
template <class F, class A>
void BM_decode_q8(benchmark::State& state) {
  const index_t m = state.range(0);
  std::mt19937 rng(43);
  const std::size_t one = Weights<F>::bytes_for(kDecodeN, kDecodeK);
  const std::size_t count = std::max<std::size_t>(2, (kStreamBytes + one - 1) / one);
  const Weights<F> w(kDecodeN, kDecodeK, count, rng);
  const auto x = random_activations<A>(m, kDecodeK, rng);  // [M, K]
  Tensor<A, 2> y({m, kDecodeN});                           // [M, N]
  std::size_t i = 0;
  for (auto _ : state) {
    const cpu_backend::Q8Activations<A> xq = cpu_backend::quantize_activation_q8(x);
    cpu_backend::matmul_into(xq, w.template arg<A>(i), y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    i = (i + 1) % count;
  }
  set_counters(state, static_cast<double>(w.bytes()), 2.0 * static_cast<double>(m * kDecodeN * kDecodeK));
  state.SetLabel(label(std::string(dtype_name<F>) + " x q8(" + std::string(dtype_name<A>) + "), " +
                       std::to_string(count) + " matrices"));
}

// ---------------------------------------------------------------------------------------------
// Prefill (GEMM)
// ---------------------------------------------------------------------------------------------

template <class Fmt, class A>
void BM_prefill(benchmark::State& state) {
  const index_t s = state.range(0);  // M = N = K
  std::mt19937 rng(44);
  const Weights<Fmt> w(s, s, 1, rng);
  const auto x = random_activations<A>(s, s, rng);  // [M, K]
  Tensor<A, 2> y({s, s});                           // [M, N]
  for (auto _ : state) {
    cpu_backend::matmul_into(x, w.template arg<A>(0), y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, static_cast<double>(w.bytes()), 2.0 * static_cast<double>(s) * static_cast<double>(s * s));
  state.SetLabel(label(std::string(dtype_name<Fmt>) + " x " + std::string(dtype_name<A>)));
}

}  // namespace

// clang-format off
#define PRECIS_DECODE(F, A) BENCHMARK(BM_decode<F, A>)->Name("decode/" #F "/x_" #A)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(1.0)
#define PRECIS_DECODE_Q8(F, A) BENCHMARK(BM_decode_q8<F, A>)->Name("decode_q8act/" #F "/x_" #A)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(1.0)
#define PRECIS_PREFILL(F, A) BENCHMARK(BM_prefill<F, A>)->Name("prefill/" #F "/x_" #A)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime()
// clang-format on

BENCHMARK(BM_read_reference)->Name("roofline/read_bandwidth")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
PRECIS_DECODE(f32, f32);
PRECIS_DECODE(bf16, bf16);
PRECIS_DECODE(f16, bf16);
PRECIS_DECODE(q8_0, bf16);
PRECIS_DECODE(q4_0, bf16);
PRECIS_DECODE(q4_1, bf16);
PRECIS_DECODE(mxfp4, bf16);
PRECIS_DECODE(mxfp4_ggml, bf16);
PRECIS_DECODE(q4_1, f32);
PRECIS_DECODE(q5_0, f32);
PRECIS_DECODE(q5_1, f32);
PRECIS_DECODE(iq4_nl, f32);
PRECIS_DECODE(q2_K, f32);
PRECIS_DECODE(q3_K, f32);
PRECIS_DECODE(q4_K, f32);
PRECIS_DECODE(q5_K, f32);
PRECIS_DECODE(q6_K, f32);
PRECIS_DECODE(iq4_xs, f32);
PRECIS_DECODE_Q8(q8_0, bf16);
PRECIS_DECODE_Q8(q4_0, bf16);
PRECIS_DECODE_Q8(q4_1, bf16);
PRECIS_DECODE_Q8(mxfp4, bf16);
PRECIS_DECODE_Q8(mxfp4_ggml, bf16);
PRECIS_DECODE_Q8(q5_0, f32);
PRECIS_DECODE_Q8(q5_1, f32);
PRECIS_DECODE_Q8(iq4_nl, f32);
PRECIS_DECODE_Q8(q2_K, f32);
PRECIS_DECODE_Q8(q3_K, f32);
PRECIS_DECODE_Q8(q4_K, f32);
PRECIS_DECODE_Q8(q5_K, f32);
PRECIS_DECODE_Q8(q6_K, f32);
PRECIS_DECODE_Q8(iq4_xs, f32);
BENCHMARK(BM_decode<bf16, bf16>)->Name("decode_m4/bf16/x_bf16")->Arg(4)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_decode<q4_1, bf16>)->Name("decode_m4/q4_1/x_bf16")->Arg(4)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(1.0);
PRECIS_PREFILL(f32, f32);
PRECIS_PREFILL(bf16, bf16);
PRECIS_PREFILL(q4_1, bf16);
PRECIS_PREFILL(mxfp4, bf16);
PRECIS_PREFILL(q4_K, f32);
PRECIS_PREFILL(q6_K, f32);

BENCHMARK_MAIN();
