// precis/backends/cuda/kernels/attention_tc.cuh — the tensor-core prefill attention for bf16
// activations: the math of attention.cuh (causal / sliding window, GQA, sinks, the paged pool read
// in place through the sequence's runs), with Q·Kᵀ and P·V on the tensor cores (WMMA bf16 ×
// bf16 → f32, 16 × 16 × 16 tiles).
//
// One block per (64 query rows of one sequence, head): 4 warps of 16 rows each share a tile of 16
// keys and values loaded into shared memory; each warp keeps its rows' online-softmax state (max,
// sum) and its f32 output accumulator [16, D] in shared memory (WMMA accumulators have no row
// mapping, so the per-row rescale runs on the shared copy). Scores are exact products of bf16
// values summed in f32 (as the reference: a different order). The one rounding the reference does
// not make: the probabilities P enter the P·V product as bf16 (relative 2^-9 each), so the output
// moves by at most ~2^-9·max|v| in absolute terms — the stated tolerance of this path
// (tests/cuda). f32 activations keep the SIMT kernel.
#pragma once

#include <cuda_bf16.h>
#include <mma.h>

#include <precis/backends/cuda/kernels/common.cuh>

namespace precis::cuda_kernels {

namespace dev {

inline constexpr int tc_warps = 4, tc_rows = 16 * tc_warps, tc_keys = 16;

/// Shared memory bytes of the tensor-core kernel for head dim D.
[[nodiscard]] constexpr std::size_t tc_smem_bytes(index_t D) {
  const auto d = static_cast<std::size_t>(D);
  return tc_warps * 16 * d * 2          // Q rows (bf16)
         + 2 * tc_keys * d * 2          // K, V tile (bf16)
         + tc_warps * 16 * 16 * 4       // scores (f32)
         + tc_warps * 16 * 16 * 2       // P (bf16)
         + 2 * tc_warps * 16 * d * 4    // O accumulator, P·V tile (f32)
         + tc_keys * 8;                 // key offsets (i64)
}

__global__ void __launch_bounds__(tc_warps * 32) attention_tc_kernel(AttentionArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800  // bf16 WMMA (the host pass sees no body)
  namespace wmma = nvcuda::wmma;
  extern __shared__ __align__(128) unsigned char smem[];
  const index_t D = a.D, h = blockIdx.y, kvh = h / (a.H / a.Hkv);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const index_t i0 = static_cast<index_t>(blockIdx.x) * tc_rows;
  std::uint16_t* Qs = reinterpret_cast<std::uint16_t*>(smem);
  std::uint16_t* Ks = Qs + tc_warps * 16 * D;
  std::uint16_t* Vs = Ks + tc_keys * D;
  float* Ss = reinterpret_cast<float*>(Vs + tc_keys * D);
  std::uint16_t* Ps = reinterpret_cast<std::uint16_t*>(Ss + tc_warps * 256);
  float* Os = reinterpret_cast<float*>(Ps + tc_warps * 256);
  float* Ts = Os + tc_warps * 16 * D;
  index_t* kbase = reinterpret_cast<index_t*>(Ts + tc_warps * 16 * D);

  const std::uint16_t* q = static_cast<const std::uint16_t*>(a.q);
  const std::uint16_t* kp = static_cast<const std::uint16_t*>(a.kpool);
  const std::uint16_t* vp = static_cast<const std::uint16_t*>(a.vpool);
  const int seq = a.q_seq[i0];  // one sequence per launch (the host checks)
  const index_t last = (i0 + tc_rows < a.n_q ? i0 + tc_rows : a.n_q) - 1;
  const auto lo_of = [&](index_t pos) { return a.window > 0 ? (pos - a.window + 1 > 0 ? pos - a.window + 1 : 0) : index_t{0}; };
  const index_t k_lo = lo_of(a.q_pos[i0]), k_hi = a.q_pos[last];

  for (index_t idx = threadIdx.x; idx < tc_rows * D; idx += blockDim.x) {
    const index_t r = idx / D, d = idx % D, qi = i0 + r;
    Qs[idx] = qi < a.n_q ? q[qi * a.q_ld + h * D + d] : std::uint16_t{0};
    Os[idx] = 0.0f;
  }
  // This lane's row (two lanes per row, each half of the columns / dims).
  const int r = lane >> 1, half = lane & 1;
  const index_t qi = i0 + warp * 16 + r;
  const bool row_ok = qi < a.n_q;
  const index_t pos = row_ok ? a.q_pos[qi] : -1, lo = row_ok ? lo_of(pos) : 0;
  float m = -INFINITY, l = 0.0f;
  float* O = Os + (warp * 16 + r) * D;
  const float* Tw = Ts + (warp * 16 + r) * D;
  const index_t d_lo = half * (D / 2), d_hi = d_lo + D / 2;

  for (index_t j0 = k_lo; j0 <= k_hi; j0 += tc_keys) {
    __syncthreads();  // the previous tile is no longer read
    if (threadIdx.x < tc_keys) {
      const index_t j = j0 + threadIdx.x;
      index_t b = -1;
      if (j <= k_hi)
        for (int ri = a.run_begin[seq]; ri < a.run_begin[seq + 1]; ++ri) {
          const KvRunDev run = a.runs[ri];
          if (j >= run.position && j < run.position + run.n) {
            b = ((static_cast<index_t>(run.block) * a.Hkv + kvh) * a.slots + run.slot + (j - run.position)) * D;
            break;
          }
        }
      kbase[threadIdx.x] = b;
    }
    __syncthreads();
    for (index_t idx = threadIdx.x; idx < tc_keys * D; idx += blockDim.x) {
      const index_t b = kbase[idx / D], d = idx % D;
      Ks[idx] = b >= 0 ? kp[b + d] : std::uint16_t{0};
      Vs[idx] = b >= 0 ? vp[b + d] : std::uint16_t{0};
    }
    __syncthreads();
    // S = Q·Kᵀ for this warp's 16 rows and the 16 keys.
    {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
      wmma::fill_fragment(c, 0.0f);
      for (index_t d0 = 0; d0 < D; d0 += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, reinterpret_cast<const __nv_bfloat16*>(Qs + warp * 16 * D + d0), static_cast<unsigned>(D));
        wmma::load_matrix_sync(fb, reinterpret_cast<const __nv_bfloat16*>(Ks + d0), static_cast<unsigned>(D));
        wmma::mma_sync(c, fa, fb, c);
      }
      wmma::store_matrix_sync(Ss + warp * 256, c, 16, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax over this lane's 8 keys of its row.
    float s[8], tm = -INFINITY;
#pragma unroll
    for (int c = 0; c < 8; ++c) {
      const int col = half * 8 + c;
      const index_t j = j0 + col;
      const bool vis = row_ok && kbase[col] >= 0 && j >= lo && j <= pos;
      s[c] = vis ? Ss[warp * 256 + r * 16 + col] * a.scale : -INFINITY;
      tm = fmaxf(tm, s[c]);
    }
    tm = fmaxf(tm, __shfl_xor_sync(0xffffffffu, tm, 1));
    const float m_new = fmaxf(m, tm);
    float corr = 1.0f, ps = 0.0f;
#pragma unroll
    for (int c = 0; c < 8; ++c) {
      const float p = m_new == -INFINITY ? 0.0f : expf(s[c] - m_new);
      ps += p;
      Ps[warp * 256 + r * 16 + half * 8 + c] = to_bf16(p);
    }
    ps += __shfl_xor_sync(0xffffffffu, ps, 1);
    if (m_new != -INFINITY) corr = m == -INFINITY ? 0.0f : expf(m - m_new);
    l = l * corr + ps;
    m = m_new;
    for (index_t d = d_lo; d < d_hi; ++d) O[d] *= corr;
    __syncwarp();
    // T = P·V, then O += T.
    for (index_t n0 = 0; n0 < D; n0 += 16) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
      wmma::fill_fragment(c, 0.0f);
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
      wmma::load_matrix_sync(fa, reinterpret_cast<const __nv_bfloat16*>(Ps + warp * 256), 16);
      wmma::load_matrix_sync(fb, reinterpret_cast<const __nv_bfloat16*>(Vs + n0), static_cast<unsigned>(D));
      wmma::mma_sync(c, fa, fb, c);
      wmma::store_matrix_sync(Ts + warp * 16 * D + n0, c, static_cast<unsigned>(D), wmma::mem_row_major);
    }
    __syncwarp();
    for (index_t d = d_lo; d < d_hi; ++d) O[d] += Tw[d];
  }
  if (!row_ok) return;
  float L = l, f = 1.0f;
  if (a.sinks != nullptr) {
    const float sink = a.sinks[h];
    const float M2 = fmaxf(m, sink);
    f = m == -INFINITY ? 0.0f : expf(m - M2);
    L = l * f + expf(sink - M2);
  }
  std::uint16_t* out = static_cast<std::uint16_t*>(a.out) + (qi * a.H + h) * D;
  for (index_t d = d_lo; d < d_hi; ++d) out[d] = to_bf16(O[d] * f / L);
#else
  (void)a;
  __trap();  // not built for this architecture: attention_tc refuses to launch below sm_80
#endif
}

inline cudaError_t attention_tc(const AttentionArgs& a, cudaStream_t s) {
  if (a.t != elt::bf16 || a.D % 16 != 0 || a.D > 256) return cudaErrorInvalidValue;
  int dev_id = 0, major = 0;
  if (const cudaError_t e = cudaGetDevice(&dev_id); e != cudaSuccess) return e;
  if (const cudaError_t e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev_id); e != cudaSuccess)
    return e;
  if (major < 8) return cudaErrorNotSupported;  // bf16 tensor cores: Ampere and newer
  const std::size_t smem = tc_smem_bytes(a.D);
  static std::size_t opted = 0;  // the kernel's dynamic shared memory limit raised once (per process)
  if (smem > opted) {
    if (const cudaError_t e = cudaFuncSetAttribute(attention_tc_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   static_cast<int>(smem));
        e != cudaSuccess)
      return e;
    opted = smem;
  }
  const dim3 grid(static_cast<unsigned>((a.n_q + tc_rows - 1) / tc_rows), static_cast<unsigned>(a.H));
  attention_tc_kernel<<<grid, tc_warps * 32, smem, s>>>(a);
  return cudaGetLastError();
}

}  // namespace dev

}  // namespace precis::cuda_kernels
