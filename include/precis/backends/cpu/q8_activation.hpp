// precis/backends/cpu/q8_activation.hpp — activations quantized to 8 bits per value, the typed and
// named opt-in to integer dot products with block-quantized weights.
//
// Why a type: quantizing activations changes the numbers a matmul computes (ggml does it silently
// for q4/q8 weights: `vec_dot_type = GGML_TYPE_Q8_0`). In precis it is a visible step,
//
//   const Q8Activations<bf16> xq = quantize_activation_q8(x);   // x: Tensor<bf16, 2> [M, K]
//   Tensor<bf16, 2> y = matmul(xq, w_q4_1);                      // integer dots, bf16 output
//
// and `matmul(x, w_q4_1)` with float x keeps the exact f32 path. The block remembers the dtype
// the activations had (`source_dtype`), which stays the default output dtype (dtype-bugs C7: the
// output type is the activation type, never the weight's or the kernel's).
//
// Format: per row, K/32 blocks of 32 values; d = amax/127 (f32, not rounded to f16 like ggml's
// q8_0/q8_1, so the only error is the rounding of each value), q = round-half-even(x·(1/d))
// clamped to ±127. Each value is represented as q·d with
//     |x − q·d| ≤ d·(1/2 + 2^-16)        (1/2 from rounding; 127·2^-23 < 2^-16 from x·fl(1/d)),
// so a dot product with weights w changes by at most Σ_blocks (d_b/2)(1 + 2^-15)·Σ_{k∈b} |w_k|.
// `sum` = Σq and `s` = d·Σq let the kernels fold the unsigned offset of 4-bit codes and q4_1's
// min term into the block without touching the 32 values again; `half_sum` = Σq over values
// 0–15 and 16–31 does the same for the K-quants whose sub-blocks are 16 values (Q2_K, Q3_K,
// Q6_K: backends/cpu/download_q8.hpp), as llama.cpp's q8_K `bsums` do.
#pragma once

#include <algorithm>  // std::clamp
#include <cmath>      // std::isfinite, std::nearbyint, std::fabs
#include <cstdint>    // std::int8_t, std::int32_t
#include <vector>     // std::vector

#include <precis/core/config.hpp>      // precis::index_t
#include <precis/core/dtype.hpp>       // precis::ActivationDtype, dtype_name
#include <precis/core/error.hpp>       // precis::shape_error, range_error, PRECIS_CHECK
#include <precis/core/scalar.hpp>      // precis::to_compute
#include <precis/ops/host_tensor.hpp>  // precis::HostTensorOfRank, const_view_t, format_extents

namespace precis::backends::cpu {

/// 32 activation values as int8 codes with one f32 scale (48 bytes).
struct block_q8_act {
  float d;                   // x ≈ qs[j]·d, d = amax/127
  float s;                   // d·Σqs (ggml q8_1's `s`): the q4_1 min term m·Σx̂
  std::int32_t sum;          // Σqs: the offset correction of unsigned weight codes
  std::int16_t half_sum[2];  // Σqs over values 0–15 and 16–31 (|Σ| ≤ 2032)
  std::int8_t qs[32];        // codes in [−127, 127]
};
static_assert(sizeof(block_q8_act) == 48);

/// Activations [M, K] quantized per 32-value block; `Act` is the dtype they were quantized from.
template <ActivationDtype Act>
class Q8Activations {
 public:
  using source_dtype = Act;

  Q8Activations() = default;
  Q8Activations(index_t rows, index_t cols)
      : rows_(rows), cols_(cols), blocks_(static_cast<std::size_t>(rows * (cols / 32))) {
    PRECIS_CHECK(rows >= 0 && cols >= 0 && cols % 32 == 0, shape_error, "[Q8Activations<", dtype_name<Act>,
                 ">] shape [", rows, ", ", cols, "]: K must be a non-negative multiple of 32");
  }

  [[nodiscard]] index_t rows() const noexcept { return rows_; }
  [[nodiscard]] index_t cols() const noexcept { return cols_; }
  [[nodiscard]] extents_t<2> extents() const noexcept { return {rows_, cols_}; }
  [[nodiscard]] index_t blocks_per_row() const noexcept { return cols_ / 32; }
  /// Row r's K/32 blocks, contiguous.
  [[nodiscard]] const block_q8_act* row(index_t r) const noexcept { return blocks_.data() + r * blocks_per_row(); }
  [[nodiscard]] block_q8_act* row(index_t r) noexcept { return blocks_.data() + r * blocks_per_row(); }

 private:
  index_t rows_ = 0, cols_ = 0;
  std::vector<block_q8_act> blocks_;  // [M, K/32]
};

namespace detail {
template <class T>
inline constexpr bool is_q8_activations = false;
template <class A>
inline constexpr bool is_q8_activations<Q8Activations<A>> = true;

/// 32 floats → one block (see the header comment for the rounding and its bound).
inline void quantize_block_q8_act(const float in[32], block_q8_act& out) noexcept {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(in[j]));
  const float d = amax / 127.0f;
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  std::int32_t half[2] = {0, 0};
  for (int j = 0; j < 32; ++j) {
    const float q = std::clamp(std::nearbyint(in[j] * id), -127.0f, 127.0f);  // round half to even
    out.qs[j] = static_cast<std::int8_t>(q);
    half[j / 16] += out.qs[j];
  }
  const std::int32_t sum = half[0] + half[1];
  out.d = d;
  out.sum = sum;
  out.half_sum[0] = static_cast<std::int16_t>(half[0]);
  out.half_sum[1] = static_cast<std::int16_t>(half[1]);
  out.s = d * static_cast<float>(sum);
}
}  // namespace detail

/// Activations x [M, K] (any strides, K a multiple of 32, finite values) → Q8Activations.
template <HostTensorOfRank<2> X>
  requires ActivationDtype<dtype_of<X>>
[[nodiscard]] Q8Activations<dtype_of<X>> quantize_activation_q8(const X& x) {
  using A = dtype_of<X>;
  const const_view_t<X> xv = x;  // [M, K]
  PRECIS_CHECK(xv.extent(1) % 32 == 0, shape_error, "[quantize_activation_q8] x ", format_extents(xv.extents()),
               ": K = ", xv.extent(1), " is not a multiple of the block size 32");
  Q8Activations<A> out(xv.extent(0), xv.extent(1));
  float buf[32];
  for (index_t r = 0; r < out.rows(); ++r) {
    for (index_t b = 0; b < out.blocks_per_row(); ++b) {
      for (index_t j = 0; j < 32; ++j) {
        buf[j] = static_cast<float>(to_compute<A>(xv(r, b * 32 + j)));
        PRECIS_CHECK(std::isfinite(buf[j]), range_error, "[quantize_activation_q8] non-finite value ", buf[j],
                     " at x(", r, ", ", b * 32 + j, ")");
      }
      detail::quantize_block_q8_act(buf, out.row(r)[b]);
    }
  }
  return out;
}

/// The values the kernels multiply with: q·d per element, as a float tensor [M, K] (tests, and the
/// prefill path, which runs the f32 GEMM on these).
template <ActivationDtype A>
void dequantize_q8_activations(const Q8Activations<A>& xq, float* out, index_t ld) noexcept {
  for (index_t r = 0; r < xq.rows(); ++r)
    for (index_t b = 0; b < xq.blocks_per_row(); ++b) {
      const block_q8_act& blk = xq.row(r)[b];
      for (index_t j = 0; j < 32; ++j) out[r * ld + b * 32 + j] = static_cast<float>(blk.qs[j]) * blk.d;
    }
}

}  // namespace precis::backends::cpu
