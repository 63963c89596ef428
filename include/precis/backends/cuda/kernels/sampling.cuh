// precis/backends/cuda/kernels/sampling.cuh — the sampler chain of nn/sampling.hpp on the device,
// so generation copies B token ids to the host per step instead of B × vocab logits.
//
// Per row (one thread block each), for a drawn request (the uniform u comes from the host's
// SamplerChain, so the random sequence is the host's):
//   prepare   scan the whole row for the first NaN/+inf (reported, like the host's check), copy
//             the usable ids' logits to a work row (−0 made +0 so a radix sort orders zeros as the
//             host's comparator does), apply the penalties (one thread per distinct window token:
//             the host counts the window, nn/sampling.hpp `window_counts`, with the same fused
//             multiply-adds as `penalized`), and take the argmax (ties to the lower id) — the
//             greedy answer, and the row maximum for min-p.
//   sort      only for top-k / top-p (their survivors are prefixes of the (logit desc, id asc)
//             order): cub's stable radix sort of (logit, id) pairs, descending; the ids enter in
//             ascending order, so equal logits keep the lower id first, as the host sorts.
//   draw      top-k prefix → top-p prefix (cumulative softmax in double reaching p) → min-p
//             (l ≥ l_max + ln min_p, ln computed on the host) → l / T → the first survivor whose
//             cumulative exp(l − l_max) (double) exceeds u·Σ.
// The host forms normalised probabilities and sums them left to right; here the sums are block
// scans in double: the same token unless u lands within ~1e-15 (relative) of a cumulative
// boundary, the same caveat nn/sampling.hpp states for std::exp's last bit. Greedy is exact.
#pragma once

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include <climits>

#include <precis/backends/cuda/kernels/common.cuh>

namespace precis::cuda_kernels {

namespace dev {

inline constexpr int sample_threads = 512;
inline constexpr int sample_items = 8;  // per thread in the scans: 4096 survivors per pass

__device__ __forceinline__ float penalized_dev(float l, int count, float rep, float freq, float pres) {
  const float d = __fmaf_rn(static_cast<float>(count), freq, pres);
  if (rep == 1.0f) return __fsub_rn(l, d);
  return l > 0.0f ? __fsub_rn(__fdiv_rn(l, rep), d) : __fmaf_rn(l, rep, -d);
}

struct ArgBest {
  float v;
  int id;
};
struct ArgBestOp {
  __device__ __forceinline__ ArgBest operator()(const ArgBest& a, const ArgBest& b) const {
    return (b.v > a.v || (b.v == a.v && b.id < a.id)) ? b : a;
  }
};

__global__ void __launch_bounds__(sample_threads)
    sample_prepare_kernel(const float* logits, index_t ld, index_t V, const SampleRowDev* rows, const std::int32_t* pen_tok,
                          const std::int32_t* pen_count, float* vals, std::int32_t* ids, SampleOutDev* out,
                          float* row_max) {
  const int b = static_cast<int>(blockIdx.x);
  const SampleRowDev r = rows[b];
  const float* x = logits + b * ld;
  float* w = vals + b * V;
  std::int32_t* id = ids + b * V;
  __shared__ int bad;
  if (threadIdx.x == 0) bad = INT_MAX;
  __syncthreads();
  for (index_t i = threadIdx.x; i < V; i += blockDim.x) {
    const float l = x[i];
    if (isnan(l) || l == INFINITY) atomicMin(&bad, static_cast<int>(i));
    if (i < r.usable) {
      w[i] = l + 0.0f;  // −0 → +0
      id[i] = static_cast<std::int32_t>(i);
    }
  }
  __syncthreads();
  if (bad != INT_MAX) {
    if (threadIdx.x == 0) out[b] = SampleOutDev{-1, bad, 0, x[bad]};
    return;
  }
  for (int j = r.pen_begin + static_cast<int>(threadIdx.x); j < r.pen_end; j += static_cast<int>(blockDim.x)) {
    const std::int32_t t = pen_tok[j];
    w[t] = penalized_dev(w[t], pen_count[j], r.repetition, r.frequency, r.presence) + 0.0f;
  }
  __syncthreads();
  ArgBest best{-INFINITY, INT_MAX};
  for (index_t i = threadIdx.x; i < r.usable; i += blockDim.x) best = ArgBestOp{}(best, ArgBest{w[i], static_cast<int>(i)});
  using Reduce = cub::BlockReduce<ArgBest, sample_threads>;
  __shared__ typename Reduce::TempStorage tmp;
  const ArgBest top = Reduce(tmp).Reduce(best, ArgBestOp{});
  if (threadIdx.x == 0) {
    out[b] = SampleOutDev{top.id, -1, 0, 0.0f};
    row_max[b] = top.v;
  }
}

/// Over items 0..n−1 of e(i) ≥ 0 (in order): the first i whose inclusive prefix sum crosses
/// `target` (> target, or ≥ with `inclusive_ge`), skipping items with e(i) = 0 when `skip_zero`;
/// −1 when none. Also returns Σ e over all n in *total when `target` < 0 (a sum-only pass).
template <class E>
__device__ index_t block_first_crossing(index_t n, const E& e, double target, bool inclusive_ge, bool skip_zero,
                                        double* total) {
  using Scan = cub::BlockScan<double, sample_threads>;
  __shared__ typename Scan::TempStorage tmp;
  __shared__ int found;
  __shared__ double carry_s;
  if (threadIdx.x == 0) {
    found = INT_MAX;
    carry_s = 0.0;
  }
  __syncthreads();
  constexpr index_t tile = static_cast<index_t>(sample_threads) * sample_items;
  for (index_t base = 0; base < n; base += tile) {
    const index_t first = base + static_cast<index_t>(threadIdx.x) * sample_items;
    double v[sample_items];
    double mine = 0.0;
#pragma unroll
    for (int k = 0; k < sample_items; ++k) {
      v[k] = first + k < n ? e(first + k) : 0.0;
      mine += v[k];
    }
    double before = 0.0, aggregate = 0.0;
    Scan(tmp).ExclusiveSum(mine, before, aggregate);
    const double carry = carry_s;
    if (target >= 0.0) {
      double cum = carry + before;
#pragma unroll
      for (int k = 0; k < sample_items; ++k) {
        cum += v[k];
        const bool crossed = inclusive_ge ? cum >= target : cum > target;
        if (first + k < n && crossed && !(skip_zero && v[k] == 0.0)) {
          atomicMin(&found, static_cast<int>(first + k));
          break;
        }
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) carry_s = carry + aggregate;
    __syncthreads();
    if (found != INT_MAX) break;
  }
  if (total != nullptr) *total = carry_s;
  return found == INT_MAX ? -1 : found;
}

/// The last i < n with e(i) > 0 (the host's fallback when u is within rounding of 1).
template <class E>
__device__ index_t block_last_positive(index_t n, const E& e) {
  __shared__ int last;
  if (threadIdx.x == 0) last = -1;
  __syncthreads();
  for (index_t i = threadIdx.x; i < n; i += blockDim.x)
    if (e(i) > 0.0) atomicMax(&last, static_cast<int>(i));
  __syncthreads();
  return last;
}

__global__ void __launch_bounds__(sample_threads)
    sample_draw_kernel(const SampleRowDev* rows, index_t V, const float* vals, const float* sorted_vals,
                       const std::int32_t* sorted_ids, const float* row_max, SampleOutDev* out) {
  const int b = static_cast<int>(blockIdx.x);
  const SampleRowDev r = rows[b];
  if (r.mode == 0 || out[b].bad_id >= 0) return;
  const bool sorted = r.mode == 2;
  const float* l = (sorted ? sorted_vals : vals) + b * V;
  index_t n = r.usable;
  float m = sorted ? l[0] : row_max[b];  // the survivors' maximum (sorted: the first)
  if (m == -INFINITY) {  // the host's "every remaining logit is -inf"
    if (threadIdx.x == 0) out[b] = SampleOutDev{-1, -1, 1, 0.0f};
    return;
  }
  if (sorted && r.top_k > 0 && r.top_k < n) n = r.top_k;
  if (sorted && r.top_p < 1.0f) {
    const double md = m;
    const auto e = [&](index_t i) { return exp(static_cast<double>(l[i]) - md); };
    double sum = 0.0;
    (void)block_first_crossing(n, e, -1.0, true, false, &sum);
    __syncthreads();
    const index_t i = block_first_crossing(n, e, static_cast<double>(r.top_p) * sum, true, false, nullptr);
    if (i >= 0) n = i + 1;
    __syncthreads();
  }
  // min-p: survivors l ≥ m + ln(min_p) (sorted: a prefix; else a mask over the id order).
  const float threshold = r.min_p_on ? __fadd_rn(m, r.log_min_p) : -INFINITY;
  const float t = r.temperature;
  const double mt = t == 1.0f ? static_cast<double>(m) : static_cast<double>(__fdiv_rn(m, t));
  const auto e = [&](index_t i) {
    const float li = l[i];
    if (r.min_p_on && !(li >= threshold)) return 0.0;
    const float lt = t == 1.0f ? li : __fdiv_rn(li, t);
    return exp(static_cast<double>(lt) - mt);
  };
  double sum = 0.0;
  (void)block_first_crossing(n, e, -1.0, false, true, &sum);
  __syncthreads();
  index_t pick = block_first_crossing(n, e, r.u * sum, false, true, nullptr);
  __syncthreads();
  if (pick < 0) pick = block_last_positive(n, e);
  if (threadIdx.x == 0) {
    const std::int32_t token = pick < 0 ? -1 : (sorted ? sorted_ids[b * V + pick] : static_cast<std::int32_t>(pick));
    out[b] = SampleOutDev{token, -1, pick < 0 ? 1 : 0, 0.0f};
  }
}

}  // namespace dev

std::size_t sample_scratch_bytes(index_t B, index_t V) {
  std::size_t sort_bytes = 0;
  (void)cub::DeviceRadixSort::SortPairsDescending(nullptr, sort_bytes, static_cast<const float*>(nullptr),
                                                  static_cast<float*>(nullptr), static_cast<const std::int32_t*>(nullptr),
                                                  static_cast<std::int32_t*>(nullptr), static_cast<int>(V));
  const auto n = static_cast<std::size_t>(B * V);
  // vals, ids, sorted vals, sorted ids, row maxima, the sort's temporary storage (256-aligned parts)
  const auto up = [](std::size_t x) { return (x + 255) / 256 * 256; };
  return 4 * up(n * 4) + up(static_cast<std::size_t>(B) * 4) + up(sort_bytes);
}

cudaError_t sample(const float* logits, index_t ld, index_t B, index_t V, const SampleRowDev* rows_dev,
                   const SampleRowDev* rows_host, const std::int32_t* pen_tok, const std::int32_t* pen_count,
                   void* scratch, std::size_t scratch_bytes, SampleOutDev* out, cudaStream_t s) {
  if (B == 0) return cudaSuccess;
  const auto up = [](std::size_t x) { return (x + 255) / 256 * 256; };
  const auto n = static_cast<std::size_t>(B * V);
  auto* base = static_cast<unsigned char*>(scratch);
  auto* vals = reinterpret_cast<float*>(base);
  auto* ids = reinterpret_cast<std::int32_t*>(base + up(n * 4));
  auto* svals = reinterpret_cast<float*>(base + 2 * up(n * 4));
  auto* sids = reinterpret_cast<std::int32_t*>(base + 3 * up(n * 4));
  auto* rmax = reinterpret_cast<float*>(base + 4 * up(n * 4));
  void* sort_tmp = base + 4 * up(n * 4) + up(static_cast<std::size_t>(B) * 4);
  std::size_t sort_bytes = scratch_bytes - (4 * up(n * 4) + up(static_cast<std::size_t>(B) * 4));
  dev::sample_prepare_kernel<<<static_cast<unsigned>(B), dev::sample_threads, 0, s>>>(logits, ld, V, rows_dev, pen_tok,
                                                                                    pen_count, vals, ids, out, rmax);
  if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  bool any_draw = false;
  for (index_t b = 0; b < B; ++b) {
    any_draw = any_draw || rows_host[b].mode != 0;
    if (rows_host[b].mode != 2) continue;
    std::size_t bytes = sort_bytes;
    if (const cudaError_t e = cub::DeviceRadixSort::SortPairsDescending(
            sort_tmp, bytes, vals + b * V, svals + b * V, ids + b * V, sids + b * V, static_cast<int>(rows_host[b].usable),
            0, 32, s);
        e != cudaSuccess)
      return e;
  }
  if (!any_draw) return cudaSuccess;
  dev::sample_draw_kernel<<<static_cast<unsigned>(B), dev::sample_threads, 0, s>>>(rows_dev, V, vals, svals, sids, rmax,
                                                                                 out);
  return cudaGetLastError();
}

}  // namespace precis::cuda_kernels
