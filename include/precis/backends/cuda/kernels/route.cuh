// precis/backends/cuda/kernels/route.cuh — MoE routing on the device (nn/router.hpp's two
// policies) and the decode-time expert GEMVs that read the routing where it was written, so a
// decode step's MoE layers need no host round trip.
//
// route: one block per token. Scores in shared memory; the selection rewrite of a data selector
// (nn/layer_expert_selector.hpp ExpertScoreTable: + bias, −inf where disallowed) applied to them;
// k rounds of a block argmax (ties to the lower expert index, the host's order). The softmax sums
// run on one thread in expert order, as the host sums (the host's std::exp and the device's expf
// may differ in the last bit: a selection can differ only between experts whose probabilities
// are that close). A NaN score, or fewer than k experts above −inf, sets the error word
// (code, token), reported at the step's next synchronisation.
//
// indexed GEMV: the GEMV of gemv.cuh for P (token, slot) pairs at once, pair p reading expert
// experts[p]'s matrix (stacks packed [E, N, row bytes]) and activation row p / div.
#pragma once

#include <climits>

#include <precis/backends/cuda/kernels/common.cuh>
#include <precis/backends/cuda/kernels/gemv.cuh>

namespace precis::cuda_kernels {

namespace dev {

inline constexpr int route_threads = 128;

struct ArgTop {
  float v;
  int id;
};
__device__ __forceinline__ ArgTop better(const ArgTop& a, const ArgTop& b) {
  return (b.v > a.v || (b.v == a.v && b.id < a.id)) ? b : a;
}

__global__ void __launch_bounds__(route_threads)
    route_kernel(const float* logits, index_t ld, int E, int k, int softmax_first, int norm_topk, const float* bias,
                 const std::uint8_t* allowed, std::int32_t* experts, float* weights, int* error) {
  extern __shared__ float sh[];
  float* p = sh;           // [E] probabilities (SoftmaxThenTopK) or logits
  float* score = sh + E;   // [E] selection scores, −inf once taken
  __shared__ ArgTop warp_best[route_threads / 32];
  __shared__ int bad;
  const int t = static_cast<int>(blockIdx.x);
  const float* l = logits + t * ld;
  for (int j = threadIdx.x; j < k; j += blockDim.x) {  // a failed token still names valid experts
    experts[t * k + j] = 0;
    weights[t * k + j] = 0.0f;
  }
  if (threadIdx.x == 0) bad = 0;
  __syncthreads();
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    p[e] = l[e];
    if (isnan(l[e])) atomicExch(&bad, 1);
  }
  __syncthreads();
  if (bad) {
    if (threadIdx.x == 0 && atomicCAS(error, 0, 1) == 0) error[1] = t;
    return;
  }
  if (softmax_first) {
    if (threadIdx.x == 0) {  // in expert order, as the host
      float m = -INFINITY;
      for (int e = 0; e < E; ++e) m = p[e] > m ? p[e] : m;
      if (m == -INFINITY) {
        if (atomicCAS(error, 0, 3) == 0) error[1] = t;
        bad = 1;
      } else {
        float sum = 0.0f;
        for (int e = 0; e < E; ++e) sum = __fadd_rn(sum, p[e] = expf(__fsub_rn(p[e], m)));
        for (int e = 0; e < E; ++e) p[e] = __fdiv_rn(p[e], sum);
      }
    }
    __syncthreads();
    if (bad) return;
  }
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    float s = p[e];
    if (bias != nullptr) s = __fadd_rn(s, bias[e]);
    if (allowed != nullptr && allowed[e] == 0) s = -INFINITY;
    score[e] = s;
    if (isnan(s)) atomicExch(&bad, 1);
  }
  __syncthreads();
  if (bad) {
    if (threadIdx.x == 0 && atomicCAS(error, 0, 1) == 0) error[1] = t;
    return;
  }
  for (int j = 0; j < k; ++j) {
    ArgTop best{-INFINITY, INT_MAX};
    for (int e = threadIdx.x; e < E; e += blockDim.x) best = better(best, ArgTop{score[e], e});
    for (int o = 16; o > 0; o >>= 1) {
      const ArgTop other{__shfl_xor_sync(0xffffffffu, best.v, o), __shfl_xor_sync(0xffffffffu, best.id, o)};
      best = better(best, other);
    }
    if ((threadIdx.x & 31) == 0) warp_best[threadIdx.x >> 5] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
      ArgTop b = warp_best[0];
      for (int w = 1; w < route_threads / 32; ++w) b = better(b, warp_best[w]);
      if (b.id == INT_MAX || b.v == -INFINITY) {  // fewer than k experts above −inf
        if (atomicCAS(error, 0, 2) == 0) error[1] = t;
        bad = 1;
      } else {
        score[b.id] = -INFINITY;
        experts[t * k + j] = b.id;
      }
    }
    __syncthreads();
    if (bad) return;
  }
  if (threadIdx.x == 0) {
    float* w = weights + t * k;
    const std::int32_t* sel = experts + t * k;
    if (softmax_first) {
      float top_sum = 0.0f;
      for (int j = 0; j < k; ++j) top_sum = __fadd_rn(top_sum, p[sel[j]]);
      if (norm_topk && !(top_sum > 0.0f)) {
        if (atomicCAS(error, 0, 4) == 0) error[1] = t;
        return;
      }
      for (int j = 0; j < k; ++j) w[j] = norm_topk ? __fdiv_rn(p[sel[j]], top_sum) : p[sel[j]];
    } else {
      float m = -INFINITY;
      for (int j = 0; j < k; ++j) m = l[sel[j]] > m ? l[sel[j]] : m;
      if (m == -INFINITY) {
        if (atomicCAS(error, 0, 5) == 0) error[1] = t;
        return;
      }
      float sum = 0.0f;
      for (int j = 0; j < k; ++j) sum = __fadd_rn(sum, w[j] = expf(__fsub_rn(l[sel[j]], m)));
      for (int j = 0; j < k; ++j) w[j] = __fdiv_rn(w[j], sum);
    }
  }
}

}  // namespace dev

cudaError_t route(const float* logits, index_t ld, index_t T, index_t E, index_t k, bool softmax_first, bool norm_topk,
                  const float* bias, const std::uint8_t* allowed, std::int32_t* experts, float* weights, int* error,
                  cudaStream_t s) {
  if (T == 0) return cudaSuccess;
  if (k < 1 || k > E) return cudaErrorInvalidValue;
  const std::size_t smem = 2 * static_cast<std::size_t>(E) * sizeof(float);
  if (smem > 48 * 1024) return cudaErrorInvalidValue;  // > 6144 experts
  dev::route_kernel<<<static_cast<unsigned>(T), dev::route_threads, smem, s>>>(
      logits, ld, static_cast<int>(E), static_cast<int>(k), softmax_first ? 1 : 0, norm_topk ? 1 : 0, bias, allowed,
      experts, weights, error);
  return cudaGetLastError();
}

}  // namespace precis::cuda_kernels
