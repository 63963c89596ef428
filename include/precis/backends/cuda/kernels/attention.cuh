// precis/backends/cuda/kernels/attention.cuh — attention over the paged KV pool (GQA, causal,
// sliding window, sinks) and the KV append, following nn/attention.hpp's math:
//   s_j = (q·k_j)·scale in f32; visible j: lo ≤ j ≤ p with lo = max(0, p − w + 1) for a window w;
//   p_j = exp(s_j − m) / (Σ exp(s_k − m) + exp(sink − m)); o = Σ p_j·v_j in f32, rounded once.
// The softmax is the online (flash) form: per warp a running max, sum and f32 accumulator, merged
// across the block's warps and, for a decode step split over the key range (flash-decoding:
// n_splits blocks per query and head), by a second kernel. The sink joins at the final merge, as
// one more term of the denominator with no value. Keys are found through the sequence's runs
// (nn/kv_index.hpp KvRun: full layers' pages, a sliding layer's ring), so the kernel reads the pool
// [blocks, Hkv, slots, D] in place. One CUDA block per (query row, head, split), 4 warps; lane j
// holds dimensions j, j + 32, … of q and of the accumulator. bf16 prefills of 16 or more rows of
// one sequence take the tensor-core kernel instead (attention_tc.cuh).
#pragma once

#include <precis/backends/cuda/kernels/attention_tc.cuh>
#include <precis/backends/cuda/kernels/common.cuh>

namespace precis::cuda_kernels {

namespace dev {

inline constexpr int attn_warps = 4;

template <class T>
__global__ void kv_append_kernel(T* kpool, T* vpool, index_t Hkv, index_t D, index_t slots, const T* k, const T* v,
                                 index_t ld, const KvRunDev* runs, int n_runs, index_t n_tokens) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_tokens * Hkv * D) return;
  const index_t t = i / (Hkv * D), h = (i / D) % Hkv, d = i % D;
  index_t off = 0;
  for (int r = 0; r < n_runs; ++r) {
    const KvRunDev run = runs[r];
    if (t < off + run.n) {
      const index_t slot = run.slot + (t - off);
      const index_t dst = ((static_cast<index_t>(run.block) * Hkv + h) * slots + slot) * D + d;
      kpool[dst] = k[t * ld + h * D + d];
      vpool[dst] = v[t * ld + h * D + d];
      return;
    }
    off += run.n;
  }
}

template <class T, int DPL>
__global__ void __launch_bounds__(attn_warps * 32) attention_kernel(AttentionArgs a) {
  const index_t i = blockIdx.x, h = blockIdx.y, split = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const index_t D = a.D, kvh = h / (a.H / a.Hkv);
  const int seq = a.q_seq[i];
  const index_t pos = a.q_pos[i];
  const index_t lo = a.window > 0 ? (pos - a.window + 1 > 0 ? pos - a.window + 1 : 0) : 0;
  const index_t total = pos - lo + 1, chunk = (total + a.n_splits - 1) / a.n_splits;
  const index_t s_lo = lo + split * chunk, s_hi = (s_lo + chunk - 1 < pos) ? s_lo + chunk - 1 : pos;

  const T* q = static_cast<const T*>(a.q) + i * a.q_ld + h * D;
  const T* kp = static_cast<const T*>(a.kpool);
  const T* vp = static_cast<const T*>(a.vpool);
  float qv[DPL], acc[DPL];
#pragma unroll
  for (int d = 0; d < DPL; ++d) {
    const index_t c = lane + 32 * d;
    qv[d] = c < D ? ld_val(q, c) : 0.0f;
    acc[d] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int r = a.run_begin[seq]; r < a.run_begin[seq + 1]; ++r) {
    const KvRunDev run = a.runs[r];
    const index_t a0 = run.position > s_lo ? run.position : s_lo;
    const index_t a1 = run.position + run.n - 1 < s_hi ? run.position + run.n - 1 : s_hi;
    for (index_t j = a0 + warp; j <= a1; j += attn_warps) {
      const index_t base = ((static_cast<index_t>(run.block) * a.Hkv + kvh) * a.slots + run.slot + (j - run.position)) * D;
      float dot = 0.0f;
#pragma unroll
      for (int d = 0; d < DPL; ++d) {
        const index_t c = lane + 32 * d;
        if (c < D) dot = __fmaf_rn(qv[d], ld_val(kp + base, c), dot);
      }
      for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      const float sc = dot * a.scale;
      const float m_new = fmaxf(m, sc);
      const float corr = expf(m - m_new);  // m = −inf: 0 (l and acc are 0 then)
      const float p = expf(sc - m_new);
      l = l * corr + p;
#pragma unroll
      for (int d = 0; d < DPL; ++d) {
        const index_t c = lane + 32 * d;
        acc[d] = acc[d] * corr + (c < D ? p * ld_val(vp + base, c) : 0.0f);
      }
      m = m_new;
    }
  }
  // Merge the warps: shared [warps] m, l and [warps, DPL·32] acc.
  __shared__ float sm[attn_warps], sl[attn_warps];
  __shared__ float sacc[attn_warps][DPL * 32];
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
#pragma unroll
  for (int d = 0; d < DPL; ++d) sacc[warp][lane + 32 * d] = acc[d];
  __syncthreads();
  if (warp != 0) return;
  float M = -INFINITY;
  for (int w = 0; w < attn_warps; ++w) M = fmaxf(M, sm[w]);
  float L = 0.0f;
  float o[DPL];
#pragma unroll
  for (int d = 0; d < DPL; ++d) o[d] = 0.0f;
  for (int w = 0; w < attn_warps; ++w) {
    const float f = sm[w] == -INFINITY ? 0.0f : expf(sm[w] - M);
    L += sl[w] * f;
#pragma unroll
    for (int d = 0; d < DPL; ++d) o[d] += sacc[w][lane + 32 * d] * f;
  }
  if (a.n_splits > 1) {
    float* part = a.partial + ((i * a.H + h) * a.n_splits + split) * (D + 2);
    if (lane == 0) {
      part[0] = M;
      part[1] = L;
    }
#pragma unroll
    for (int d = 0; d < DPL; ++d)
      if (lane + 32 * d < D) part[2 + lane + 32 * d] = o[d];
    return;
  }
  if (a.sinks != nullptr) {
    const float sink = a.sinks[h];
    const float M2 = fmaxf(M, sink);
    const float f = M == -INFINITY ? 0.0f : expf(M - M2);
    L = L * f + expf(sink - M2);
#pragma unroll
    for (int d = 0; d < DPL; ++d) o[d] *= f;
  }
  T* out = static_cast<T*>(a.out) + (i * a.H + h) * D;
#pragma unroll
  for (int d = 0; d < DPL; ++d)
    if (lane + 32 * d < D) st_val(out, lane + 32 * d, o[d] / L);
}

/// One block per (query, head): merges the splits' partials and the sink.
template <class T>
__global__ void attention_merge_kernel(AttentionArgs a) {
  const index_t i = blockIdx.x, h = blockIdx.y, D = a.D;
  const float* part = a.partial + (i * a.H + h) * a.n_splits * (D + 2);
  float M = -INFINITY;
  for (int s = 0; s < a.n_splits; ++s) M = fmaxf(M, part[s * (D + 2)]);
  const float sink = a.sinks != nullptr ? a.sinks[h] : -INFINITY;
  const float M2 = fmaxf(M, sink);
  float L = a.sinks != nullptr ? expf(sink - M2) : 0.0f;
  for (int s = 0; s < a.n_splits; ++s) {
    const float ms = part[s * (D + 2)];
    L += ms == -INFINITY ? 0.0f : part[s * (D + 2) + 1] * expf(ms - M2);
  }
  T* out = static_cast<T*>(a.out) + (i * a.H + h) * D;
  for (index_t d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.0f;
    for (int s = 0; s < a.n_splits; ++s) {
      const float ms = part[s * (D + 2)];
      if (ms != -INFINITY) o += part[s * (D + 2) + 2 + d] * expf(ms - M2);
    }
    st_val(out, d, o / L);
  }
}

template <class T>
cudaError_t attention_t(const AttentionArgs& a, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>(a.n_q), static_cast<unsigned>(a.H), static_cast<unsigned>(a.n_splits));
  const index_t dpl = (a.D + 31) / 32;
  if (dpl <= 1) attention_kernel<T, 1><<<grid, attn_warps * 32, 0, s>>>(a);
  else if (dpl <= 2) attention_kernel<T, 2><<<grid, attn_warps * 32, 0, s>>>(a);
  else if (dpl <= 4) attention_kernel<T, 4><<<grid, attn_warps * 32, 0, s>>>(a);
  else if (dpl <= 8) attention_kernel<T, 8><<<grid, attn_warps * 32, 0, s>>>(a);
  else return cudaErrorInvalidValue;  // head_dim > 256
  if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess || a.n_splits == 1) return e;
  attention_merge_kernel<T><<<dim3(static_cast<unsigned>(a.n_q), static_cast<unsigned>(a.H)), 64, 0, s>>>(a);
  return cudaGetLastError();
}

}  // namespace dev

cudaError_t kv_append(void* kpool, void* vpool, elt t, index_t Hkv, index_t D, index_t slots, const void* k,
                      const void* v, index_t ld, const KvRunDev* runs, int n_runs, index_t n_tokens, cudaStream_t s) {
  const index_t n = n_tokens * Hkv * D;
  if (n == 0) return cudaSuccess;
  if (t == elt::f32)
    dev::kv_append_kernel<float><<<dev::blocks_for(n, 256), 256, 0, s>>>(
        static_cast<float*>(kpool), static_cast<float*>(vpool), Hkv, D, slots, static_cast<const float*>(k),
        static_cast<const float*>(v), ld, runs, n_runs, n_tokens);
  else
    dev::kv_append_kernel<std::uint16_t><<<dev::blocks_for(n, 256), 256, 0, s>>>(
        static_cast<std::uint16_t*>(kpool), static_cast<std::uint16_t*>(vpool), Hkv, D, slots,
        static_cast<const std::uint16_t*>(k), static_cast<const std::uint16_t*>(v), ld, runs, n_runs, n_tokens);
  return cudaGetLastError();
}

cudaError_t attention(const AttentionArgs& a, cudaStream_t s) {
  if (a.n_q == 0) return cudaSuccess;
  if (a.tensor_cores) return dev::attention_tc(a, s);
  return a.t == elt::f32 ? dev::attention_t<float>(a, s) : dev::attention_t<std::uint16_t>(a, s);
}

}  // namespace precis::cuda_kernels
