// bm_roofline — this machine's two ceilings: streaming read bandwidth and peak f32 FMA rate.
//
// Every other benchmark reports its bytes/s or FLOP/s also as a fraction of these two figures
// (the roofline: a kernel is bound by memory if its arithmetic intensity is below
// peak_flops / read_bandwidth, by compute otherwise).
//
//   read bandwidth: sum a buffer far larger than the last-level cache, all cores, xsimd loads.
//   FMA peak:       independent FMA chains held in registers, all cores; 2 FLOP per lane per FMA.
#include "roofline.hpp"  // precis::bench::ReadBuffer, stream_read, fma_pass

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

using precis::bench::fbatch;

void BM_read_bandwidth(benchmark::State& state) {
  const precis::bench::ReadBuffer buf;  // 1 GiB, 32× the 32 MiB L3 of the reference machine
  for (auto _ : state) benchmark::DoNotOptimize(precis::bench::stream_read(buf));
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(buf.bytes()), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::OneK::kIs1000);
  state.SetLabel("threads=" + std::to_string(tbb::this_task_arena::max_concurrency()));
}

constexpr long kFmaIters = 1 << 22;

void BM_fma_peak(benchmark::State& state) {
  double flops = 0;
  for (auto _ : state) flops = precis::bench::fma_pass(kFmaIters);
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::OneK::kIs1000);
  state.SetLabel(std::string(fbatch::arch_type::name()) + " threads=" + std::to_string(tbb::this_task_arena::max_concurrency()));
}

}  // namespace

BENCHMARK(BM_read_bandwidth)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_fma_peak)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
