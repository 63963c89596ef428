// precis/backends/cuda/kernels/elementwise.cuh — embed, RMSNorm, RoPE, gated activations, the
// residual add, conversions with bias, and the q8 activation rounding. Each follows its scalar
// reference op to the rounding point (named at each kernel); the products and sums the references
// write as separate statements use __fmul_rn/__fadd_rn where a fused multiply-add would round
// differently from the host.
#pragma once

#include <precis/backends/cuda/kernels/common.cuh>

namespace precis::cuda_kernels {

namespace dev {

/// One thread per output element; the row's id selects the table row (weights/any_weight.hpp embed_rows).
template <class F>
__global__ void embed_kernel(DeviceMatrix table, const std::int64_t* ids, index_t n, void* out, elt out_t) {
  const index_t k = table.cols;
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * k) return;
  const index_t t = i / k, c = i % k, r = ids[t];
  float v;
  if constexpr (is_block<F>) {
    float blk[32];
    block_values<F>(table, r, c / 32, blk);
    v = blk[c % 32];
  } else {
    v = float_value<F>(table, r, c);
  }
  store(out, out_t, i, v);
}

/// One block per row: f32 Σx² (tree order, not the host's sequential order), rstd = 1/sqrt(mean + eps),
/// then the cast order of nn/norm.hpp.
template <class T, class G>
__global__ void rms_norm_kernel(const T* x, index_t ld, index_t n, const G* gain, float eps, bool norm_then_cast,
                                T* out) {
  const index_t r = blockIdx.x;
  const T* row = x + r * ld;
  float ss = 0.0f;
  for (index_t j = threadIdx.x; j < n; j += blockDim.x) {
    const float v = ld_val(row, j);
    ss = __fmaf_rn(v, v, ss);
  }
  __shared__ float part[32];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) part[0] = v;
  }
  __syncthreads();
  const float rstd = 1.0f / sqrtf(__fadd_rn(__fdiv_rn(part[0], static_cast<float>(n)), eps));
  for (index_t j = threadIdx.x; j < n; j += blockDim.x) {
    const float xh = __fmul_rn(ld_val(row, j), rstd);
    const float w = ld_val(gain, j);
    // NormThenCast: x̂ rounded to the activation dtype, then w·x̂ rounded; MultiplyThenCast: w·x̂ rounded once.
    const float xr = norm_then_cast ? round_to<T>(xh) : xh;
    st_val(out + r * n, j, __fmul_rn(w, xr));
  }
}

template <class T>
__global__ void rope_kernel(T* x, index_t T_, index_t heads, index_t st_, index_t sh, const float* cos, const float* sin,
                            index_t half, bool interleaved) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T_ * heads * half) return;
  const index_t t = i / (heads * half), h = (i / half) % heads, p = i % half;
  T* v = x + t * st_ + h * sh;
  const index_t a = interleaved ? 2 * p : p, b = interleaved ? 2 * p + 1 : p + half;
  const float x1 = ld_val(v, a), x2 = ld_val(v, b);
  const float c = cos[t * half + p], s = sin[t * half + p];
  st_val(v, a, __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s)));  // nn/rope.hpp apply_rope
  st_val(v, b, __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s)));
}

/// nn/activation.hpp SiluGate / ClampedSwiglu, each product rounded as the host writes it.
__device__ __forceinline__ float gated(int kind, float alpha, float limit, float g, float u) {
  if (kind == 0) {
    const float sig = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-g)));
    return __fmul_rn(__fmul_rn(g, sig), u);
  }
  const float gc = fminf(g, limit);
  const float gg = g != g ? g : gc;  // a NaN gate stays NaN (std::min(NaN, l) is NaN)
  const float uc = fminf(fmaxf(u, -limit), limit);
  const float uu = u != u ? u : uc;
  const float sig = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-__fmul_rn(alpha, gg))));
  return __fmul_rn(__fmul_rn(gg, sig), __fadd_rn(uu, 1.0f));
}

__global__ void glu_kernel(int kind, float alpha, float limit, const void* gate, const void* up, elt in_t, index_t ld_in,
                           index_t step, void* out, elt out_t, index_t ld_out, index_t rows, index_t cols) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  const index_t r = i / cols, c = i % cols;
  const float g = load(gate, in_t, r * ld_in + c * step), u = load(up, in_t, r * ld_in + c * step);
  store(out, out_t, r * ld_out + c, gated(kind, alpha, limit, g, u));
}

__global__ void add_kernel(void* x, index_t ldx, const void* y, index_t ldy, elt t, index_t rows, index_t cols) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  const index_t r = i / cols, c = i % cols;
  store(x, t, r * ldx + c, __fadd_rn(load(x, t, r * ldx + c), load(y, t, r * ldy + c)));
}

__global__ void convert_kernel(const void* in, elt in_t, index_t ld_in, const void* bias, elt bias_t, void* out,
                               elt out_t, index_t ld_out, index_t rows, index_t cols) {
  const index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  const index_t r = i / cols, c = i % cols;
  float v = load(in, in_t, r * ld_in + c);
  if (bias != nullptr) v = __fadd_rn(v, load(bias, bias_t, c));
  store(out, out_t, r * ld_out + c, v);
}

/// One warp per block of 32 values (backends/reference/backend.hpp q8_round_row).
__global__ void q8_round_kernel(const void* x, elt t, index_t ld, index_t rows, index_t cols, float* out, int* nonfinite) {
  const index_t warp = (static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  const index_t nb = cols / 32;
  if (warp >= rows * nb) return;
  const index_t r = warp / nb, b = warp % nb;
  const float v = load(x, t, r * ld + b * 32 + lane);
  if (!isfinite(v)) atomicExch(nonfinite, 1);
  float amax = fabsf(v);
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float d = __fdiv_rn(amax, 127.0f);
  const float id = d > 0.0f ? __fdiv_rn(1.0f, d) : 0.0f;
  const float q = fminf(fmaxf(rintf(__fmul_rn(v, id)), -127.0f), 127.0f);
  out[r * cols + b * 32 + lane] = __fmul_rn(q, d);
}

}  // namespace dev

// --- launchers ----------------------------------------------------------------------------------

cudaError_t embed(const DeviceMatrix& table, const std::int64_t* ids, index_t n, void* out, elt out_t, cudaStream_t s) {
  if (n == 0 || table.cols == 0) return cudaSuccess;
  return dev::with_format(table.format, [&]<class F>() {
    dev::embed_kernel<F><<<dev::blocks_for(n * table.cols, 256), 256, 0, s>>>(table, ids, n, out, out_t);
    return cudaGetLastError();
  });
}

cudaError_t rms_norm(const void* x, index_t ld, elt t, index_t rows, index_t n, const void* gain, elt gain_t, float eps,
                     bool norm_then_cast, void* out, cudaStream_t s) {
  if (rows == 0) return cudaSuccess;
  const unsigned threads = n >= 1024 ? 1024 : (n >= 256 ? 256 : 128);
  const auto go = [&]<class T, class G>(const T*, const G*) {
    dev::rms_norm_kernel<T, G><<<static_cast<unsigned>(rows), threads, 0, s>>>(
        static_cast<const T*>(x), ld, n, static_cast<const G*>(gain), eps, norm_then_cast, static_cast<T*>(out));
    return cudaGetLastError();
  };
  using u16 = std::uint16_t;
  if (t == elt::f32) return gain_t == elt::f32 ? go(static_cast<const float*>(nullptr), static_cast<const float*>(nullptr))
                                               : cudaErrorInvalidValue;
  return gain_t == elt::f32 ? go(static_cast<const u16*>(nullptr), static_cast<const float*>(nullptr))
                            : go(static_cast<const u16*>(nullptr), static_cast<const u16*>(nullptr));
}

cudaError_t rope(void* x, elt t, index_t T, index_t heads, index_t st, index_t sh, const float* cos, const float* sin,
                 index_t half, bool interleaved, cudaStream_t s) {
  const index_t n = T * heads * half;
  if (n == 0) return cudaSuccess;
  if (t == elt::f32)
    dev::rope_kernel<float><<<dev::blocks_for(n, 256), 256, 0, s>>>(static_cast<float*>(x), T, heads, st, sh, cos, sin,
                                                                     half, interleaved);
  else
    dev::rope_kernel<std::uint16_t><<<dev::blocks_for(n, 256), 256, 0, s>>>(static_cast<std::uint16_t*>(x), T, heads, st,
                                                                             sh, cos, sin, half, interleaved);
  return cudaGetLastError();
}

cudaError_t glu(int kind, float alpha, float limit, const void* gate, const void* up, elt in_t, index_t ld_in,
                index_t step, void* out, elt out_t, index_t ld_out, index_t rows, index_t cols, cudaStream_t s) {
  if (rows * cols == 0) return cudaSuccess;
  dev::glu_kernel<<<dev::blocks_for(rows * cols, 256), 256, 0, s>>>(kind, alpha, limit, gate, up, in_t, ld_in, step, out,
                                                                    out_t, ld_out, rows, cols);
  return cudaGetLastError();
}

cudaError_t add_inplace(void* x, index_t ldx, const void* y, index_t ldy, elt t, index_t rows, index_t cols,
                        cudaStream_t s) {
  if (rows * cols == 0) return cudaSuccess;
  dev::add_kernel<<<dev::blocks_for(rows * cols, 256), 256, 0, s>>>(x, ldx, y, ldy, t, rows, cols);
  return cudaGetLastError();
}

cudaError_t convert(const void* in, elt in_t, index_t ld_in, const void* bias, elt bias_t, void* out, elt out_t,
                    index_t ld_out, index_t rows, index_t cols, cudaStream_t s) {
  if (rows * cols == 0) return cudaSuccess;
  dev::convert_kernel<<<dev::blocks_for(rows * cols, 256), 256, 0, s>>>(in, in_t, ld_in, bias, bias_t, out, out_t, ld_out,
                                                                        rows, cols);
  return cudaGetLastError();
}

cudaError_t q8_round(const void* x, elt t, index_t ld, index_t rows, index_t cols, float* out, int* nonfinite,
                     cudaStream_t s) {
  const index_t warps = rows * (cols / 32);
  if (warps == 0) return cudaSuccess;
  dev::q8_round_kernel<<<dev::blocks_for(warps * 32, 256), 256, 0, s>>>(x, t, ld, rows, cols, out, nonfinite);
  return cudaGetLastError();
}

}  // namespace precis::cuda_kernels
