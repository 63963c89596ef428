// precis/backends/cpu/gemm.hpp — the prefill path: y[M, N] = x[M, K]·W[N, K]ᵀ for many activation
// rows, as cache-blocked f32 GEMMs over panels of weight rows.
//
// For large M a matmul does 2·M FLOP per weight, so it is compute-bound and a register-blocked
// f32 GEMM does the arithmetic. The work is split into panels of `nb` weight rows, one oneTBB task
// per panel (static partitioner):
//   f32 weights             the panel is read in place (row stride kept);
//   bf16/f16/block formats  the panel is dequantized into a thread-local f32 buffer, once per
//                           call — each weight row is converted exactly once, then reused by all
//                           M activation rows.
// The product itself is the AVX-512 micro-kernel below in AVX-512 builds, Eigen's gebp kernel
// (Eigen::Map, noalias product, Eigen's own threading off: it would need OpenMP) otherwise.
// Both were measured in this panel scheme (docs/performance.md, M = N = K = 1024/2048, 2 threads,
// Zen 4): Eigen 3.4 145–153 GFLOP/s (63–66 % of the FMA peak), the micro-kernel 162–193 GFLOP/s
// (70–83 %); on one thread Eigen on the whole matrix gave 78–83, the micro-kernel panels 87–96.
// `nb` depends only on N and K (never on the thread count) and every output element is summed
// by one thread in a fixed k order, so results are identical for any number of threads.
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
    if constexpr (download_format<F>) {
      const auto vdec = value_decoder<F>(w.q.blocks(), n0 + r, nb);
      for (index_t b = 0; b < nb; ++b) {
        __m512 lo, hi;
        vdec(b, lo, hi);
        _mm512_storeu_ps(out + 32 * b, lo);
        _mm512_storeu_ps(out + 32 * b + 16, hi);
      }
    } else {
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

/// Activation rows per panel step: bounds the per-thread output scratch at 512·nb floats.
inline constexpr index_t gemm_row_chunk = 512;

#if PRECIS_CPU_AVX512

// ---------------------------------------------------------------------------------------------
// AVX-512 GEMM: packed activations × broadcast weights
// ---------------------------------------------------------------------------------------------
//
// AVX-512 builds use their own micro-kernel: 15–25 % faster than Eigen 3.4's here (header comment)
// and no per-panel repacking of x. Both operands are K-contiguous (x [M, K], W [N, K]);
// an outer-product kernel needs one of them contiguous along its output axis, so x — the smaller
// side to rearrange, once per call — is packed into tiles of 32 rows, k-major: xp[t][k][0..31].
// A micro-tile holds 32 activation rows × 6 weight rows in 12 zmm accumulators; per k it loads
// two x vectors, broadcasts six weights straight from the row-major panel and issues 12 FMAs.
// Depth is blocked by gemm_kc so a 32 × kc x tile (16 KiB) stays in L1 while the panel's rows
// stream from L2. The result tile is stored transposed, ct[j][r] (one vector per weight row).

inline constexpr index_t gemm_tile_rows = 32;  // activation rows per micro-tile (2 zmm)
inline constexpr index_t gemm_tile_cols = 6;   // weight rows per micro-tile
inline constexpr index_t gemm_kc = 128;        // depth block

/// x [m, K] (ldx) → xp [ceil(m/32)][K][32], rows past m zero.
inline void pack_x_tiles(const float* x, index_t ldx, index_t m, index_t k, float* xp) {
  const index_t tiles = (m + gemm_tile_rows - 1) / gemm_tile_rows;
  parallel_ranges(tiles, 1, m * k * 8, [&](index_t t0, index_t t1) {
    for (index_t t = t0; t < t1; ++t) {
      float* dst = xp + t * k * gemm_tile_rows;
      for (index_t i = 0; i < gemm_tile_rows; ++i) {
        const index_t r = t * gemm_tile_rows + i;
        if (r < m) {
          const float* src = x + r * ldx;
          for (index_t kk = 0; kk < k; ++kk) dst[kk * gemm_tile_rows + i] = src[kk];
        } else {
          for (index_t kk = 0; kk < k; ++kk) dst[kk * gemm_tile_rows + i] = 0.0f;
        }
      }
    }
  });
}

/// ct[j][0..31] (+)= Σ_{kk < kc} xt[kk][0..31]·w[j][kk] for j < NT (w rows ldw apart).
template <int NT>
inline void gemm_micro_tile(const float* xt, const float* w, index_t ldw, index_t kc, float* ct, index_t ldc,
                            bool accumulate) noexcept {
  __m512 acc[NT][2];
  for (int j = 0; j < NT; ++j) {
    acc[j][0] = accumulate ? _mm512_loadu_ps(ct + j * ldc) : _mm512_setzero_ps();
    acc[j][1] = accumulate ? _mm512_loadu_ps(ct + j * ldc + 16) : _mm512_setzero_ps();
  }
  for (index_t kk = 0; kk < kc; ++kk) {
    const __m512 x0 = _mm512_loadu_ps(xt + kk * gemm_tile_rows);
    const __m512 x1 = _mm512_loadu_ps(xt + kk * gemm_tile_rows + 16);
    for (int j = 0; j < NT; ++j) {
      const __m512 b = _mm512_set1_ps(w[j * ldw + kk]);
      acc[j][0] = _mm512_fmadd_ps(x0, b, acc[j][0]);
      acc[j][1] = _mm512_fmadd_ps(x1, b, acc[j][1]);
    }
  }
  for (int j = 0; j < NT; ++j) {
    _mm512_storeu_ps(ct + j * ldc, acc[j][0]);
    _mm512_storeu_ps(ct + j * ldc + 16, acc[j][1]);
  }
}

/// ct[j][r] = Σ_k x[r, k]·W[j, k] for the `tiles` packed x tiles at xp and the `rows` weight rows
/// at wp (ldw ≥ K); ct has leading dimension ldc ≥ 32·tiles.
inline void gemm_tiles(const float* xp, index_t tiles, index_t k, const float* wp, index_t ldw, index_t rows,
                       float* ct, index_t ldc) noexcept {
  if (k == 0) {
    for (index_t j = 0; j < rows; ++j)
      for (index_t r = 0; r < tiles * gemm_tile_rows; ++r) ct[j * ldc + r] = 0.0f;
    return;
  }
  for (index_t t = 0; t < tiles; ++t) {
    const float* xt = xp + t * k * gemm_tile_rows;
    for (index_t k0 = 0; k0 < k; k0 += gemm_kc) {
      const index_t kc = std::min(gemm_kc, k - k0);
      for (index_t j0 = 0; j0 < rows; j0 += gemm_tile_cols) {
        const float* w = wp + j0 * ldw + k0;
        float* c = ct + j0 * ldc + t * gemm_tile_rows;
        const float* x0 = xt + k0 * gemm_tile_rows;
        const bool acc = k0 > 0;
        switch (std::min(gemm_tile_cols, rows - j0)) {
          case 1: gemm_micro_tile<1>(x0, w, ldw, kc, c, ldc, acc); break;
          case 2: gemm_micro_tile<2>(x0, w, ldw, kc, c, ldc, acc); break;
          case 3: gemm_micro_tile<3>(x0, w, ldw, kc, c, ldc, acc); break;
          case 4: gemm_micro_tile<4>(x0, w, ldw, kc, c, ldc, acc); break;
          case 5: gemm_micro_tile<5>(x0, w, ldw, kc, c, ldc, acc); break;
          default: gemm_micro_tile<6>(x0, w, ldw, kc, c, ldc, acc); break;
        }
      }
    }
  }
}

#endif  // PRECIS_CPU_AVX512

/// y = x·Wᵀ for x f32 [m, K] (leading dimension ldx ≥ K). For each panel [n0, n0 + nb) and chunk
/// of ≤ gemm_row_chunk activation rows [r0, r0 + mc), `epi(r0, mc, n0, nb, ct, ldc)` receives the
/// f32 result transposed in thread-local scratch: y[r0 + i, n0 + j] = ct[j·ldc + i].
template <class Src, class Epilogue>
void gemm_f32(const Src& w, const float* x, index_t ldx, index_t m, const Epilogue& epi) {
  const index_t n = w.n, k = w.k;
  const index_t nb = panel_rows(n, k);
  const index_t panels = (n + nb - 1) / nb;
#if PRECIS_CPU_AVX512
  float_buffer xp(round_up(m, gemm_tile_rows) * k);  // [M/32][K][32]
  pack_x_tiles(x, ldx, m, k, xp.data());
#endif
  parallel_ranges(panels, 1, m * n * k, [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      const index_t n0 = p * nb, rows = std::min(nb, n - n0);
      const float* wp = nullptr;
      index_t ldw = k;
      if constexpr (std::same_as<Src, float_rows<f32>>) {
        if (w.ld >= k) {  // f32 rows read in place, row stride kept
          wp = w.row(n0);
          ldw = w.ld;
        }
      }
      if (wp == nullptr) {
        float* buf = thread_scratch<0>(rows * k);
        dequant_panel(w, n0, rows, buf, k);
        wp = buf;
      }
      for (index_t r0 = 0; r0 < m; r0 += gemm_row_chunk) {
        const index_t mc = std::min(gemm_row_chunk, m - r0);
        const index_t ldc = round_up(mc, 32);
        float* ct = thread_scratch<1>(rows * ldc);  // [nb, mc] transposed result
#if PRECIS_CPU_AVX512
        gemm_tiles(xp.data() + r0 * k, ldc / gemm_tile_rows, k, wp, ldw, rows, ct, ldc);
#else
        using col_major_f32 = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
        Eigen::Map<col_major_f32, Eigen::Unaligned, Eigen::OuterStride<>> cmap(ct, mc, rows, Eigen::OuterStride<>(ldc));
        if (k == 0) {
          cmap.setZero();
        } else {
          const const_f32_map xmap(x + r0 * ldx, mc, k, Eigen::OuterStride<>(std::max<index_t>(ldx, 1)));  // [mc, K]
          const const_f32_map wmap(wp, rows, k, Eigen::OuterStride<>(std::max<index_t>(ldw, 1)));         // [nb, K]
          cmap.noalias() = xmap * wmap.transpose();                                                         // [mc, nb]
        }
#endif
        epi(r0, mc, n0, rows, ct, ldc);
      }
    }
  });
}

}  // namespace detail
}  // namespace precis::backends::cpu
