// bm_roofline — this machine's two ceilings: streaming read bandwidth and peak f32 FMA rate.
//
// Every other benchmark reports its bytes/s or FLOP/s also as a fraction of these two figures
// (the roofline: a kernel is bound by memory if its arithmetic intensity is below
// peak_flops / read_bandwidth, by compute otherwise).
//
//   read bandwidth: sum a buffer far larger than the last-level cache, all cores, xsimd loads.
//   FMA peak:       independent FMA chains held in registers, all cores; 2 FLOP per lane per FMA.
#include <benchmark/benchmark.h>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/task_arena.h>
#include <xsimd/xsimd.hpp>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace {

using batch = xsimd::batch<float>;

// Bytes read per iteration: 1 GiB, 32× the 32 MiB L3 of the reference machine.
constexpr std::size_t kReadBytes = std::size_t{1} << 30;

struct AlignedBuffer {
  float* p;
  std::size_t n;
  explicit AlignedBuffer(std::size_t count)
      : p(static_cast<float*>(::operator new(count * sizeof(float), std::align_val_t{64}))), n(count) {
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1 << 16), [&](const auto& r) {
      for (std::size_t i = r.begin(); i < r.end(); ++i) p[i] = static_cast<float>(i & 1023) * 1e-3f;
    });
  }
  ~AlignedBuffer() { ::operator delete(p, std::align_val_t{64}); }
};

void BM_read_bandwidth(benchmark::State& state) {
  AlignedBuffer buf(kReadBytes / sizeof(float));
  constexpr std::size_t W = batch::size;
  for (auto _ : state) {
    const float total = tbb::parallel_reduce(
        tbb::blocked_range<std::size_t>(0, buf.n / (4 * W), 1 << 12), 0.0f,
        [&](const auto& r, float acc) {
          batch a0(0.f), a1(0.f), a2(0.f), a3(0.f);
          for (std::size_t i = r.begin(); i < r.end(); ++i) {
            const float* q = buf.p + i * 4 * W;
            a0 += batch::load_aligned(q);
            a1 += batch::load_aligned(q + W);
            a2 += batch::load_aligned(q + 2 * W);
            a3 += batch::load_aligned(q + 3 * W);
          }
          return acc + xsimd::hadd((a0 + a1) + (a2 + a3));
        },
        [](float x, float y) { return x + y; }, tbb::static_partitioner{});
    benchmark::DoNotOptimize(total);
  }
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(kReadBytes), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::OneK::kIs1000);
  state.SetLabel("threads=" + std::to_string(tbb::this_task_arena::max_concurrency()));
}

// 12 independent accumulators hide the 4-cycle FMA latency on 2 FMA ports (needs ≥ 8).
constexpr int kChains = 12;
constexpr long kFmaIters = 1 << 22;

void BM_fma_peak(benchmark::State& state) {
  const int threads = tbb::this_task_arena::max_concurrency();
  for (auto _ : state) {
    std::vector<float> sink(static_cast<std::size_t>(threads));
    tbb::parallel_for(0, threads, [&](int t) {
      batch acc[kChains];
      for (int c = 0; c < kChains; ++c) acc[c] = batch(static_cast<float>(c) * 1e-3f);
      const batch a(0.999999f), b(1e-7f);
      for (long i = 0; i < kFmaIters; ++i) {
        for (int c = 0; c < kChains; ++c) acc[c] = xsimd::fma(acc[c], a, b);
      }
      batch s(0.f);
      for (int c = 0; c < kChains; ++c) s += acc[c];
      sink[static_cast<std::size_t>(t)] = xsimd::hadd(s);
    }, tbb::static_partitioner{});
    benchmark::DoNotOptimize(sink.data());
  }
  const double flops = 2.0 * static_cast<double>(batch::size) * kChains * static_cast<double>(kFmaIters) * threads;
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::OneK::kIs1000);
  state.SetLabel(std::string(batch::arch_type::name()) + " threads=" + std::to_string(threads));
}

}  // namespace

BENCHMARK(BM_read_bandwidth)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_fma_peak)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
