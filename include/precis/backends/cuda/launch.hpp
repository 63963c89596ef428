// precis/backends/cuda/launch.hpp — the kernel launchers backends::Cuda calls, as plain host
// declarations (any C++ compiler). Their definitions are the .cuh headers under kernels/
// (kernels.cuh includes them all), compiled by nvcc: precis' build compiles them once into the
// precis_cuda_kernels library of the precis::cuda component; a project of its own may instead
// include <precis/backends/cuda/kernels.cuh> in one of its .cu files.
//
// The launchers are the untyped bottom of the typed backend: the dtype rules are checked by
// backends::Cuda (Tensor<D, R, cuda> arguments, the Backend concept) before a pointer reaches
// them, and each one returns the launch's cudaError_t for the backend to report with the op and
// the shapes. Element types on the device are `elt` (f32 or bf16 activations, f16 for weights
// only); weights are a `DeviceMatrix` in their stored format.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>  // std::size_t
#include <cstdint>  // std::int32_t, std::int64_t, std::uint8_t

#include <precis/core/dtype.hpp>           // dtype_code
#include <precis/quant/block_formats.hpp>  // visit_ggml_block_format

namespace precis::cuda_kernels {

using index_t = std::int64_t;

/// Element types of device tensors the kernels read and write.
enum class elt : int { f32 = 0, bf16 = 1, f16 = 2 };

/// A weight matrix [rows, cols] in device memory, rows stored one after another in `format`
/// (f32/bf16/f16 values; q8_0/q4_0/q4_1/mxfp4_ggml blocks of 32; HF mxfp4 as a nibble plane
/// [rows, cols/32, 16] at `data` and an E8M0 scale plane [rows, cols/32] at `scales`).
struct DeviceMatrix {
  dtype_code format = dtype_code::f32;
  const void* data = nullptr;
  const std::uint8_t* scales = nullptr;
  index_t rows = 0, cols = 0;
};

/// Bytes of one stored row (the nibble plane's for HF mxfp4).
[[nodiscard]] constexpr std::size_t row_bytes(dtype_code f, index_t cols) noexcept {
  const auto c = static_cast<std::size_t>(cols);
  switch (f) {
    case dtype_code::f32: return 4 * c;
    case dtype_code::bf16:
    case dtype_code::f16: return 2 * c;
    case dtype_code::mxfp4: return c / 32 * 16;
    default: {
      std::size_t bytes = 0;  // the single-array ggml formats: blocks × block struct
      (void)visit_ggml_block_format(f, [&]<class F>() {
        bytes = c / dtype_traits<F>::block_size * sizeof(typename dtype_traits<F>::block_type);
      });
      return bytes;
    }
  }
}

/// Formats the kernels read.
[[nodiscard]] constexpr bool kernel_format(dtype_code f) noexcept { return row_bytes(f, 256) != 0; }

/// The most activation rows the GEMV kernel takes per launch (decode and small batches).
inline constexpr index_t gemv_max_rows = 8;

// --- elementwise, norm, rope ------------------------------------------------------------------
/// out [n, cols] = rows ids[i] of `table` as `out_t` (ids already range-checked on the host).
cudaError_t embed(const DeviceMatrix& table, const std::int64_t* ids, index_t n, void* out, elt out_t, cudaStream_t s);
/// RMSNorm over rows of `n` values (row r at x + r·ld): norm_then_cast rounds x̂ to `t` before
/// the gain (NormThenCast), else the f32 product is rounded once (MultiplyThenCast).
cudaError_t rms_norm(const void* x, index_t ld, elt t, index_t rows, index_t n, const void* gain, elt gain_t, float eps,
                     bool norm_then_cast, void* out, cudaStream_t s);
/// In-place RoPE on x [T, heads, D] (strides st, sh; unit stride inside a head) with cos/sin
/// [T, half] (f32): pairs (i, i + half) for half_split, (2i, 2i + 1) for interleaved.
cudaError_t rope(void* x, elt t, index_t T, index_t heads, index_t st, index_t sh, const float* cos, const float* sin,
                 index_t half, bool interleaved, cudaStream_t s);
/// Gated activation kind: 0 SiluGate, 1 ClampedSwiglu(alpha, limit).
/// out[r, j] = act(gate[r·ld_in + j·step], up[r·ld_in + j·step]) rounded to out_t.
cudaError_t glu(int kind, float alpha, float limit, const void* gate, const void* up, elt in_t, index_t ld_in,
                index_t step, void* out, elt out_t, index_t ld_out, index_t rows, index_t cols, cudaStream_t s);
/// x[r, c] += y[r, c] in t (widened, added in f32, rounded once).
cudaError_t add_inplace(void* x, index_t ldx, const void* y, index_t ldy, elt t, index_t rows, index_t cols,
                        cudaStream_t s);
/// out = in (+ bias[c]) converted: one rounding to out_t (bias of bias_t; null for none).
cudaError_t convert(const void* in, elt in_t, index_t ld_in, const void* bias, elt bias_t, void* out, elt out_t,
                    index_t ld_out, index_t rows, index_t cols, cudaStream_t s);
/// out [rows, cols] f32 = x rounded through 8-bit blocks of 32 (d = amax/127, q = rint(x/d)
/// clamped to ±127): the q8_blocks rule of backends/reference/backend.hpp. cols % 32 == 0.
/// Sets *nonfinite to 1 if an input is not finite.
cudaError_t q8_round(const void* x, elt t, index_t ld, index_t rows, index_t cols, float* out, int* nonfinite,
                     cudaStream_t s);

// --- linear -----------------------------------------------------------------------------------
/// y [M, N] = x [M, K]·Wᵀ (+ bias [N]) for M ≤ gemv_max_rows: each weight row dequantized in
/// registers, f32 accumulation, one rounding to y_t.
cudaError_t gemv(const DeviceMatrix& w, const void* x, elt x_t, index_t ldx, index_t M, void* y, elt y_t, index_t ldy,
                 const void* bias, elt bias_t, cudaStream_t s);
/// out [n, K] f32 = rows [row0, row0 + n) of w, dequantized exactly.
cudaError_t dequantize(const DeviceMatrix& w, index_t row0, index_t n, float* out, cudaStream_t s);

// --- attention --------------------------------------------------------------------------------
/// One run of cached positions: [position, position + n) in slots [slot, slot + n) of `block`.
struct KvRunDev {
  std::int32_t position, block, slot, n;
};
/// Writes k, v [n, Hkv, D] (token stride ld) into the pool [blocks, Hkv, slots, D] along `runs`.
cudaError_t kv_append(void* kpool, void* vpool, elt t, index_t Hkv, index_t D, index_t slots, const void* k,
                      const void* v, index_t ld, const KvRunDev* runs, int n_runs, index_t n_tokens, cudaStream_t s);

struct AttentionArgs {
  const void* q = nullptr;  ///< [n_q, H, D], token stride q_ld, head stride D
  index_t q_ld = 0;
  elt t = elt::f32;
  index_t n_q = 0, H = 0, Hkv = 0, D = 0;
  const void* kpool = nullptr;  ///< [blocks, Hkv, slots, D]
  const void* vpool = nullptr;
  index_t slots = 0;
  const std::int32_t* q_seq = nullptr;      ///< [n_q] sequence of each query row
  const std::int32_t* q_pos = nullptr;      ///< [n_q] absolute position of each query row
  const std::int32_t* run_begin = nullptr;  ///< [n_seq + 1] each sequence's runs in `runs`
  const KvRunDev* runs = nullptr;           ///< the positions each sequence holds, in order
  index_t window = 0;                       ///< 0: causal; w > 0: keys p − w < j ≤ p
  float scale = 1.0f;
  const float* sinks = nullptr;  ///< [H] f32 logits or null
  void* out = nullptr;           ///< [n_q, H, D] contiguous
  int n_splits = 1;              ///< key-range splits per (query, head) (flash-decoding)
  float* partial = nullptr;      ///< [n_q, H, n_splits, D + 2] scratch when n_splits > 1
  int tensor_cores = 0;          ///< 1: the tensor-core prefill kernel (bf16, one sequence, D % 16 == 0, D ≤ 256)
};
cudaError_t attention(const AttentionArgs& a, cudaStream_t s);

// --- MoE --------------------------------------------------------------------------------------
/// out [n, cols] = rows rows[i] of x (ld), same element type t.
cudaError_t gather_rows(const void* x, elt t, index_t ld, const std::int32_t* rows, index_t n, index_t cols, void* out,
                        cudaStream_t s);
/// dst[rows[i]] = src[i] for f32 rows of `cols` (src contiguous, dst ld = cols).
cudaError_t scatter_rows_f32(const float* src, const std::int32_t* rows, index_t n, index_t cols, float* dst,
                             cudaStream_t s);
/// out[t, c] = Σ_j w[t, j]·y[t·k + j, c] in f32, j = 0..k−1 in order, rounded once to t.
cudaError_t moe_combine(const float* y, const float* w, index_t T, index_t k, index_t cols, void* out, elt t,
                        cudaStream_t s);

// --- sampling ---------------------------------------------------------------------------------
/// One row's drawn sampling request (nn/sampling.hpp SampleRequest, checked on the host).
struct SampleRowDev {
  index_t usable = 0;            ///< sample among ids [0, usable)
  int mode = 0;                  ///< 0 greedy, 1 draw in id order, 2 draw after the sort (top-k / top-p)
  int top_k = 0;                 ///< 0: off
  float top_p = 1.0f;            ///< 1: off
  int min_p_on = 0;
  float log_min_p = 0.0f;        ///< ln(min_p), computed on the host (std::log)
  float temperature = 1.0f;      ///< > 0 when mode != 0
  double u = 0.0;                ///< the uniform draw
  int pen_begin = 0, pen_end = 0;  ///< this row's distinct window tokens in pen_tok / pen_count
  float repetition = 1.0f, frequency = 0.0f, presence = 0.0f;
};
/// One row's answer: the token, or bad_id ≥ 0 (the first NaN/+inf logit, value bad_logit), or
/// error = 1 (every surviving logit is −inf).
struct SampleOutDev {
  std::int32_t token = -1, bad_id = -1, error = 0;
  float bad_logit = 0.0f;
};
/// Device scratch bytes sample() needs for B rows of V logits.
std::size_t sample_scratch_bytes(index_t B, index_t V);
/// Samples each row b of logits [B, V] (row stride ld) with rows_dev[b] (rows_host: the same
/// array on the host, which decides the launches), writing out[b] on the device.
cudaError_t sample(const float* logits, index_t ld, index_t B, index_t V, const SampleRowDev* rows_dev,
                   const SampleRowDev* rows_host, const std::int32_t* pen_tok, const std::int32_t* pen_count,
                   void* scratch, std::size_t scratch_bytes, SampleOutDev* out, cudaStream_t s);

/// MoE routing of logits [T, E] (row stride ld) on the device: softmax_first = SoftmaxThenTopK
/// (norm_topk: renormalise the k), else TopKThenSoftmax; bias [E] / allowed [E] the data
/// selector (null: none). experts, weights [T, k]; error[0..1] = (code, token) on failure.
cudaError_t route(const float* logits, index_t ld, index_t T, index_t E, index_t k, bool softmax_first, bool norm_topk,
                  const float* bias, const std::uint8_t* allowed, std::int32_t* experts, float* weights, int* error,
                  cudaStream_t s);
/// For P (token, slot) pairs: y row p = x row (p / div) · W_eᵀ (+ bias row e), e = experts[p], the
/// expert matrices at w0.data + e·expert_bytes (mxfp4 scales at w0.scales + e·scale_bytes).
cudaError_t indexed_gemv(const DeviceMatrix& w0, std::size_t expert_bytes, std::size_t scale_bytes,
                         const std::int32_t* experts, index_t P, const void* x, elt x_t, index_t ldx, index_t div, void* y,
                         elt y_t, index_t ldy, const void* bias, elt bias_t, index_t bias_stride, cudaStream_t s);

/// A kernel of this build runs on the current device (cudaErrorNoKernelImageForDevice when the
/// device is older than the architectures the kernels were compiled for).
cudaError_t probe();
/// The architectures the kernels were compiled for, as nvcc's __CUDA_ARCH_LIST__ ("900").
const char* compiled_architectures();

}  // namespace precis::cuda_kernels
