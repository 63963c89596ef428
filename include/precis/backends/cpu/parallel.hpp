// precis/backends/cpu/parallel.hpp — how the CPU kernels split work across threads (oneTBB), and
// the aligned scratch buffers they use.
//
// Matmul work is uniform per output row, so rows are split with `static_partitioner`: each thread
// gets one contiguous range of weight rows and streams it front to back (what a hardware
// prefetcher follows best; style-anchors §1.9 and principle 15). Every output element is computed
// by exactly one thread with a fixed summation order, so results do not depend on the number of
// threads or on scheduling. Work below `serial_cutoff` multiply-adds runs on the calling thread:
// waking TBB workers costs microseconds, more than a small GEMV.
#pragma once

#include <algorithm>  // std::max, std::min
#include <concepts>   // std::invocable
#include <cstddef>    // std::size_t
#include <memory>     // std::unique_ptr
#include <new>        // std::align_val_t

#include <oneapi/tbb/blocked_range.h>  // tbb::blocked_range
#include <oneapi/tbb/parallel_for.h>   // tbb::parallel_for
#include <oneapi/tbb/partitioner.h>    // tbb::static_partitioner
#include <oneapi/tbb/task_arena.h>     // tbb::this_task_arena::max_concurrency

#include <precis/core/config.hpp>  // precis::index_t, tensor_alignment

namespace precis::backends::cpu {

/// Multiply-adds below which a matmul runs on the calling thread.
inline constexpr index_t serial_cutoff = index_t{1} << 18;

/// Threads the current TBB arena may use (a user's `task_arena` caps it).
[[nodiscard]] inline index_t max_threads() noexcept {
  return static_cast<index_t>(tbb::this_task_arena::max_concurrency());
}

/// Calls `body(begin, end)` over [0, n) in contiguous ranges of at least `grain` items, one range
/// per thread (static partitioner), or once on the calling thread when `work` (multiply-adds) is
/// below serial_cutoff or there is a single thread. The body must not call TBB itself.
template <class Body>
  requires std::invocable<const Body&, index_t, index_t>
void parallel_ranges(index_t n, index_t grain, index_t work, const Body& body) {
  if (n <= 0) return;
  if (work < serial_cutoff || max_threads() <= 1 || n <= grain) {
    body(index_t{0}, n);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<index_t>(0, n, std::max<index_t>(grain, 1)),
      [&](const tbb::blocked_range<index_t>& r) { body(r.begin(), r.end()); }, tbb::static_partitioner{});
}

namespace detail {

struct aligned_delete {
  void operator()(float* p) const noexcept { ::operator delete(p, std::align_val_t{tensor_alignment}); }
};

/// An uninitialised, 64-byte aligned float array (scratch for converted activations and panels).
class float_buffer {
 public:
  float_buffer() = default;
  explicit float_buffer(index_t n) { resize(n); }
  /// Grows to at least `n` floats; existing contents are not preserved.
  void resize(index_t n) {
    if (n <= capacity_) return;
    const auto bytes = static_cast<std::size_t>(n) * sizeof(float);
    p_.reset(static_cast<float*>(::operator new(bytes, std::align_val_t{tensor_alignment})));
    capacity_ = n;
  }
  [[nodiscard]] float* data() noexcept { return p_.get(); }
  [[nodiscard]] const float* data() const noexcept { return p_.get(); }

 private:
  std::unique_ptr<float, aligned_delete> p_;
  index_t capacity_ = 0;
};

/// Per-thread scratch for one task body (a dequantized weight panel, a GEMM output panel). A
/// task body never waits on TBB, so no other task can run on this thread while it holds the
/// buffer; `Slot` separates buffers that one body uses at the same time.
template <int Slot>
[[nodiscard]] inline float* thread_scratch(index_t n) {
  thread_local float_buffer buf;
  buf.resize(n);
  return buf.data();
}

/// `n` rounded up to a multiple of `m`.
[[nodiscard]] constexpr index_t round_up(index_t n, index_t m) noexcept { return (n + m - 1) / m * m; }

}  // namespace detail
}  // namespace precis::backends::cpu
