// benchmarks/roofline.hpp — this machine's two ceilings, measured in-process, for every benchmark
// that reports its figures as a fraction of the roofline (bm_roofline, bm_matmul, bm_attention,
// bm_moe).
//
//   read  streaming read bandwidth: all threads sum a 1 GiB buffer with aligned xsimd loads,
//         4 independent accumulators per thread (one load stream per port), TBB static partition
//         so each core streams one contiguous half. 1 GiB is far beyond any cache, so this is
//         DRAM bandwidth as a kernel that streams weights once can see it.
//   fma   peak f32 FMA rate: 12 independent FMA chains per thread, which hides the 4-cycle FMA
//         latency on 2 FMA ports (needs ≥ 8 in flight).
//
// Each benchmark measures them in its own process (best of 3 passes, once, before any timed
// loop) because a shared machine's bandwidth moves between runs; PRECIS_READ_BW_GBS and
// PRECIS_FMA_PEAK_GFLOPS override the measurement (e.g. to compare runs against one figure).
#pragma once

#include <algorithm>  // std::max
#include <chrono>     // std::chrono::steady_clock
#include <cstddef>    // std::size_t
#include <cstdlib>    // std::getenv, std::atof
#include <new>        // std::align_val_t
#include <vector>     // std::vector

#include <benchmark/benchmark.h>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <xsimd/xsimd.hpp>

namespace precis::bench {

using fbatch = xsimd::batch<float>;

/// Bytes the read-bandwidth pass streams.
inline constexpr std::size_t read_buffer_bytes = std::size_t{1} << 30;

/// A 64-byte aligned float buffer of `read_buffer_bytes`, filled in parallel (first touch by the
/// threads that later read it).
class ReadBuffer {
 public:
  ReadBuffer() : n_(read_buffer_bytes / sizeof(float)), p_(static_cast<float*>(::operator new(n_ * sizeof(float), std::align_val_t{64}))) {
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n_, 1 << 16), [&](const auto& r) {
      for (std::size_t i = r.begin(); i < r.end(); ++i) p_[i] = static_cast<float>(i & 1023) * 1e-3f;
    });
  }
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() { ::operator delete(p_, std::align_val_t{64}); }

  [[nodiscard]] const float* data() const noexcept { return p_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return n_ * sizeof(float); }

 private:
  std::size_t n_;
  float* p_;
};

/// One streaming pass over the buffer (the timed body of the read ceiling); returns the sum so
/// the loads cannot be elided.
[[nodiscard]] inline float stream_read(const ReadBuffer& buf) {
  constexpr std::size_t W = fbatch::size;
  const float* p = buf.data();
  return tbb::parallel_reduce(
      tbb::blocked_range<std::size_t>(0, buf.size() / (4 * W), 1 << 12), 0.0f,
      [&](const auto& r, float acc) {
        fbatch a0(0.f), a1(0.f), a2(0.f), a3(0.f);
        for (std::size_t i = r.begin(); i < r.end(); ++i) {
          const float* q = p + i * 4 * W;
          a0 += fbatch::load_aligned(q);
          a1 += fbatch::load_aligned(q + W);
          a2 += fbatch::load_aligned(q + 2 * W);
          a3 += fbatch::load_aligned(q + 3 * W);
        }
        return acc + xsimd::hadd((a0 + a1) + (a2 + a3));
      },
      [](float x, float y) { return x + y; }, tbb::static_partitioner{});
}

/// 12 independent chains per thread: ≥ 8 FMAs in flight hide the 4-cycle latency on 2 ports.
inline constexpr int fma_chains = 12;

/// One FMA-peak pass: every thread runs `iters` rounds of `fma_chains` FMAs; returns FLOPs done.
inline double fma_pass(long iters) {
  const int threads = tbb::this_task_arena::max_concurrency();
  std::vector<float> sink(static_cast<std::size_t>(threads));
  tbb::parallel_for(
      0, threads,
      [&](int t) {
        fbatch acc[fma_chains];
        for (int c = 0; c < fma_chains; ++c) acc[c] = fbatch(static_cast<float>(c) * 1e-3f);
        const fbatch a(0.999999f), b(1e-7f);
        for (long i = 0; i < iters; ++i)
          for (int c = 0; c < fma_chains; ++c) acc[c] = xsimd::fma(acc[c], a, b);
        fbatch s(0.f);
        for (int c = 0; c < fma_chains; ++c) s += acc[c];
        sink[static_cast<std::size_t>(t)] = xsimd::hadd(s);
      },
      tbb::static_partitioner{});
  benchmark::DoNotOptimize(sink.data());
  return 2.0 * static_cast<double>(fbatch::size) * fma_chains * static_cast<double>(iters) * threads;
}

namespace detail {
[[nodiscard]] inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace detail

/// Streaming read bandwidth in bytes/s: best of 3 passes, measured once per process.
[[nodiscard]] inline double read_bandwidth() {
  static const double bw = [] {
    if (const char* env = std::getenv("PRECIS_READ_BW_GBS")) return std::atof(env) * 1e9;
    const ReadBuffer buf;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(stream_read(buf));
      best = std::max(best, static_cast<double>(buf.bytes()) / detail::seconds_since(t0));
    }
    return best;
  }();
  return bw;
}

/// Peak f32 FMA rate in FLOP/s: best of 3 passes, measured once per process.
[[nodiscard]] inline double fma_peak() {
  static const double peak = [] {
    if (const char* env = std::getenv("PRECIS_FMA_PEAK_GFLOPS")) return std::atof(env) * 1e9;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      const double flops = fma_pass(1 << 22);
      best = std::max(best, flops / detail::seconds_since(t0));
    }
    return best;
  }();
  return peak;
}

/// Per-iteration `bytes` and `flops` as rates, and as fractions of the two ceilings over the
/// `seconds` the timed loop took (measure the ceilings before the timed loop starts).
inline void set_roofline_counters(benchmark::State& state, double bytes, double flops, double seconds) {
  using benchmark::Counter;
  const auto iters = static_cast<double>(state.iterations());
  state.counters["bytes/s"] = Counter(bytes, Counter::kIsIterationInvariantRate, Counter::OneK::kIs1000);
  state.counters["FLOP/s"] = Counter(flops, Counter::kIsIterationInvariantRate, Counter::OneK::kIs1000);
  state.counters["bw_fraction"] = Counter(bytes * iters / seconds / read_bandwidth());
  state.counters["flop_fraction"] = Counter(flops * iters / seconds / fma_peak());
}

}  // namespace precis::bench
