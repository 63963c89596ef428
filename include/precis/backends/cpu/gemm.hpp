// precis/backends/cpu/gemm.hpp — the prefill path: y[M, N] = x[M, K]·W[N, K]ᵀ for many activation
// rows, as cache-blocked f32 GEMMs over panels of weight rows.
//
// For large M a matmul does 2·M FLOP per weight, so it is compute-bound and a register-blocked
// GEMM (Eigen's gebp kernel, with its own packing and cache blocking) does the arithmetic. The
// work is split into panels of `nb` weight rows, one oneTBB task per panel (static partitioner):
//   f32 weights             the panel is read in place through an Eigen::Map (row stride kept);
//   bf16/f16/block formats  the panel is dequantized into a thread-local f32 buffer, once per
//                           call — each weight row is converted exactly once, then reused by all
//                           M activation rows inside the GEMM.
// Eigen's own threading stays off (it would need OpenMP); parallelism is over panels only.
// `nb` depends only on N and K (never on the thread count) and every output element is computed
// by one GEMM call, so results are identical for any number of threads.
//
// Dequantized panels are bit-identical to quant/block_reference.hpp: every format's value is
// code·scale (+ min), where code·scale is exact in f32 and the one addition rounds once.
// The f32 GEMM accumulates in f32 with FMAs; error ≤ γ_K·Σ|x·w| (Higham §3.1).
#pragma once

#include <algorithm>  // std::min, std::max
#include <concepts>   // std::same_as

#include <Eigen/Core>  // Eigen::Map, Eigen::Matrix, Eigen::OuterStride

#include <precis/backends/cpu/arch.hpp>      // PRECIS_CPU_AVX512
#include <precis/backends/cpu/gemv.hpp>      // detail::block_decoder, load_w16, widen_weights
#include <precis/backends/cpu/parallel.hpp>  // parallel_ranges, detail::thread_scratch, round_up
#include <precis/backends/cpu/weights.hpp>   // detail::float_rows, detail::quant_rows
#include <precis/quant/dequantize.hpp>       // precis::detail::dequantize_block_at

namespace precis::backends::cpu {
namespace detail {

using row_major_f32 = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using const_f32_map = Eigen::Map<const row_major_f32, Eigen::Unaligned, Eigen::OuterStride<>>;
using f32_map = Eigen::Map<row_major_f32, Eigen::Unaligned, Eigen::OuterStride<>>;

// ---------------------------------------------------------------------------------------------
// Panel dequantization: W rows [n0, n0 + rows) → f32 [rows, K], leading dimension ld
// ---------------------------------------------------------------------------------------------

template <weight_storage_dtype D>
void dequant_panel(const float_rows<D>& w, index_t n0, index_t rows, float* dst, index_t ld) noexcept {
  for (index_t r = 0; r < rows; ++r) {
    const storage_t<D>* src = w.row(n0 + r);
    float* out = dst + r * ld;
#if PRECIS_CPU_AVX512
    index_t i = 0;
    for (; i + 16 <= w.k; i += 16) _mm512_storeu_ps(out + i, load_w16<D>(src + i));
    if (i < w.k) {
      const __mmask16 mask = tail_mask(w.k - i);
      _mm512_mask_storeu_ps(out + i, mask, load_w16_masked<D>(src + i, mask));
    }
#else
    widen_weights<D>(src, w.k, out);
#endif
  }
}

template <BlockFormat F>
void dequant_panel(const quant_rows<F>& w, index_t n0, index_t rows, float* dst, index_t ld) noexcept {
  const index_t nb = w.blocks_per_row();
  for (index_t r = 0; r < rows; ++r) {
    float* out = dst + r * ld;
#if PRECIS_CPU_AVX512
    const auto dec = block_decoder(w, n0 + r);
    for (index_t b = 0; b < nb; ++b) {
      __m512 lo, hi, s;
      float m = 0.0f;
      dec(b, lo, hi, s, m);
      if constexpr (decltype(dec)::has_min) {
        const __m512 mv = _mm512_set1_ps(m);
        lo = _mm512_fmadd_ps(lo, s, mv);  // code·d is exact: one rounding, as q·d + m
        hi = _mm512_fmadd_ps(hi, s, mv);
      } else {
        lo = _mm512_mul_ps(lo, s);
        hi = _mm512_mul_ps(hi, s);
      }
      if constexpr (std::same_as<F, mxfp4>) {  // (even, odd) lanes → natural order
        const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        const __m512 a = _mm512_permutex2var_ps(lo, first, hi);
        const __m512 c = _mm512_permutex2var_ps(lo, second, hi);
        lo = a;
        hi = c;
      }
      _mm512_storeu_ps(out + 32 * b, lo);
      _mm512_storeu_ps(out + 32 * b + 16, hi);
    }
#else
    for (index_t b = 0; b < nb; ++b) precis::detail::dequantize_block_at(w.q, (n0 + r) * nb + b, out + 32 * b);
#endif
  }
}

// ---------------------------------------------------------------------------------------------
// Panel sizes
// ---------------------------------------------------------------------------------------------

/// Weight rows per panel: about N/8 (so 2–8 threads all get work), a multiple of 16, and at most
/// 4 MiB of f32 per panel (two panels in flight stay inside a 32 MiB L3). Depends on N, K only.
[[nodiscard]] inline index_t panel_rows(index_t n, index_t k) noexcept {
  const index_t cap = std::max<index_t>(16, ((index_t{1} << 20) / std::max<index_t>(k, 1)) / 16 * 16);
  return std::clamp<index_t>(round_up((n + 7) / 8, 16), 16, std::min<index_t>(cap, 512));
}

/// Activation rows per GEMM call: bounds the per-thread output scratch at 512·nb floats.
inline constexpr index_t gemm_row_chunk = 512;

/// y = x·Wᵀ for x f32 [m, K] (leading dimension ldx). For each panel [n0, n0 + nb) and chunk of
/// ≤ gemm_row_chunk activation rows [r0, r0 + mc), the f32 result is in `y_panel` (leading
/// dimension ldy) when `epi(r0, mc, n0, nb, y_panel, ldy)` is called: in `direct` output memory
/// (`direct(r0, n0)` returns a pointer and `direct_ld` its row stride) or in thread-local scratch.
template <class Src, class Epilogue>
void gemm_f32(const Src& w, const float* x, index_t ldx, index_t m, float* direct, index_t direct_ld,
              const Epilogue& epi) {
  const index_t n = w.n, k = w.k;
  const index_t nb = panel_rows(n, k);
  const index_t panels = (n + nb - 1) / nb;
  parallel_ranges(panels, 1, m * n * k, [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      const index_t n0 = p * nb, rows = std::min(nb, n - n0);
      const float* wp;
      index_t ldw;
      if constexpr (std::same_as<Src, float_rows<f32>>) {
        wp = w.row(n0);
        ldw = w.ld;
      } else {
        float* buf = thread_scratch<0>(rows * k);
        dequant_panel(w, n0, rows, buf, k);
        wp = buf;
        ldw = k;
      }
      const const_f32_map wmap(wp, rows, k, Eigen::OuterStride<>(std::max<index_t>(ldw, 1)));  // [nb, K]
      for (index_t r0 = 0; r0 < m; r0 += gemm_row_chunk) {
        const index_t mc = std::min(gemm_row_chunk, m - r0);
        const const_f32_map xmap(x + r0 * ldx, mc, k, Eigen::OuterStride<>(std::max<index_t>(ldx, 1)));  // [mc, K]
        float* yp;
        index_t ldy;
        if (direct != nullptr) {
          yp = direct + r0 * direct_ld + n0;
          ldy = direct_ld;
        } else {
          yp = thread_scratch<1>(mc * rows);
          ldy = rows;
        }
        f32_map ymap(yp, mc, rows, Eigen::OuterStride<>(ldy));  // [mc, nb]
        if (k == 0) ymap.setZero();
        else ymap.noalias() = xmap * wmap.transpose();
        epi(r0, mc, n0, rows, yp, ldy);
      }
    }
  });
}

}  // namespace detail
}  // namespace precis::backends::cpu
