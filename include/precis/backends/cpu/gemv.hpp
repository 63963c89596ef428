// precis/backends/cpu/gemv.hpp — the decode path: y[m, n] = Σ_k x[m, k]·W[n, k] for a few
// activation rows (M ≤ decode_max_rows), streaming each weight row once.
//
// At M = 1 a matmul reads every weight once and does 2 FLOP per weight, far below any CPU's
// FLOP/byte balance, so the only goal is to consume weight bytes at memory speed: weights are
// widened/dequantized in registers and never written back, and all M activation rows (f32, in
// L1/L2) are multiplied with each weight chunk while it is in registers.
//
// Two numeric paths, chosen by the activation *type* (q8_activation.hpp):
//   float path   x in f32 (bf16/f16 widened exactly), weights dequantized exactly to f32 in
//                registers, products accumulated in f32 (block scales applied per 32-value
//                block). Error ≤ γ_K·Σ|x·w| (Higham §3.1). With AVX512_BF16 and bf16
//                activations, bf16 weights and 4-bit blocks take `vdpbf16ps` instead: bf16
//                weights as stored, nibble codes as small integers (exact in bf16), so every
//                product is exact and the sums are f32 as above (the instruction treats
//                subnormal inputs and results as zero: an absolute error below 2^-126 per step,
//                far under the bound).
//   q8 path      x pre-quantized to int8 blocks; weight codes as unsigned bytes (q8_0 + 128,
//                q4 nibbles, mxfp4 doubled E2M1 + 12), exact int32 dots (`vpdpbusd`), the offset
//                removed in the integer accumulator, one f32 scale per block.
// Per-format block math is quant/block_reference.hpp's; the portable bodies call it directly.
//
// Register layouts (AVX-512 bodies): a 16-byte nibble run widens to 16 dword lanes; `vpermps`
// reads only the low 4 bits of each index, so lane j's low nibble indexes the value table as is
// and its high nibble after one 4-bit shift. For the ggml layouts that yields elements j and
// j + 16; for HF/OpenAI mxfp4 (byte j = elements 2j, 2j+1) it yields even and odd elements, so
// the activations are permuted once per call to match (x is K floats, W is N·K weights).
#pragma once

#include <algorithm>    // std::min
#include <array>        // std::array
#include <bit>          // std::bit_cast
#include <concepts>     // std::same_as
#include <cstdint>      // std::uint8_t, std::uint32_t
#include <cstring>      // std::memcpy
#include <type_traits>  // std::conditional_t

#include <precis/backends/cpu/arch.hpp>           // PRECIS_CPU_AVX512*, fbatch, detail tables
#include <precis/backends/cpu/download_decode.hpp>  // download_format, value_decoder (Q5_*, IQ4_*, K-quants)
#include <precis/backends/cpu/download_q8.hpp>      // q8_chunk_decoder, dot_chunks_q8 (their q8 dots)
#include <precis/backends/cpu/parallel.hpp>       // parallel_ranges, detail::float_buffer
#include <precis/backends/cpu/q8_activation.hpp>  // block_q8_act
#include <precis/backends/cpu/weights.hpp>        // detail::float_rows, detail::quant_rows
#include <precis/core/dtype.hpp>                  // precis::f32, bf16, f16, q8_0 ...
#include <precis/core/scalar.hpp>                 // precis::to_compute
#include <precis/quant/dequantize.hpp>            // precis::detail::dequantize_block_at

namespace precis::backends::cpu {

/// Activation rows up to which matmul takes the GEMV path (decode); above it, the GEMM path.
inline constexpr index_t decode_max_rows = 4;

namespace detail {

// ---------------------------------------------------------------------------------------------
// Activations for the float path
// ---------------------------------------------------------------------------------------------

/// f32 activations as the float-path kernels read them.
struct prepared_x {
  const float* x = nullptr;           // [m, ldx]
  index_t ldx = 0;
  const float* bsum = nullptr;        // [m, K/32] Σ of each 32-value block (q4_1 AVX-512 bodies only)
  const std::uint16_t* xw = nullptr;  // [m, ldw] bf16 bits, per-block word order (bf16 × 4-bit body)
  index_t ldw = 0;
  index_t m = 0;
};

/// 4-bit block formats (the nibble kernels).
template <class F>
concept nibble_format = std::same_as<F, q4_0> || std::same_as<F, q4_1> || std::same_as<F, mxfp4> ||
                        std::same_as<F, mxfp4_ggml>;

/// What the float-path kernel for row source `Src` expects of activations of dtype A.
template <class Src, class A>
struct float_path_layout {
  static constexpr bool bf16_words = false;     // bf16 bits in vdpbf16ps word order (nibble_word_element)
  static constexpr bool pair_permuted = false;  // f32, per 32-block: even elements, then odd elements
  static constexpr bool block_sums = false;     // q4_1: Σ (q·d + m)·x = d·Σq·x + m·Σx
};
template <class A>
struct float_path_layout<float_rows<bf16>, A> {
  static constexpr bool bf16_words = PRECIS_CPU_AVX512_BF16 != 0 && std::same_as<A, bf16>;  // natural order
  static constexpr bool pair_permuted = false;
  static constexpr bool block_sums = false;
};
template <nibble_format F, class A>
struct float_path_layout<quant_rows<F>, A> {
  static constexpr bool bf16_words = PRECIS_CPU_AVX512_BF16 != 0 && std::same_as<A, bf16>;
  static constexpr bool pair_permuted = PRECIS_CPU_AVX512 != 0 && !bf16_words && std::same_as<F, mxfp4>;
  static constexpr bool block_sums = PRECIS_CPU_AVX512 != 0 && std::same_as<F, q4_1>;
};

/// The bf16 × 4-bit body (dot_blocks_bf16) turns a block's 16 nibble bytes into 32 bf16 words:
/// word j of the zmm holds the nibble of byte 2(j mod 8) + (j/16) — low nibble for j/8 even, high
/// for odd (one `vpsrlvw` by 4·(j/8) of the 16 bytes broadcast to four 128-bit lanes). The element
/// that nibble encodes depends on the layout: ggml bytes hold (j, j + 16), HF/OpenAI (2j, 2j + 1).
template <class F>
[[nodiscard]] constexpr int nibble_word_element(int j) noexcept {
  const int byte = 2 * (j % 8) + (j / 16), hi = (j / 8) % 2;
  return std::same_as<F, mxfp4> ? 2 * byte + hi : byte + 16 * hi;
}

/// One activation value widened to f32 (exact for f32/bf16/f16).
template <ActivationDtype A>
[[nodiscard]] inline float widen(const storage_t<A>& v) noexcept {
  if constexpr (std::same_as<A, f32>) return v;
  else if constexpr (std::same_as<A, bf16>) return std::bit_cast<float>(static_cast<std::uint32_t>(v.bits) << 16);
  else return f16_to_f32(v.bits);
}

/// Row r of x (any strides) → `dst` [K] in f32, natural element order.
template <ActivationDtype A>
void widen_row(const TensorView<const A, 2>& x, index_t r, float* dst) noexcept {
  const index_t k = x.extent(1), s = x.stride(1);
  const storage_t<A>* src = x.data() + r * x.stride(0);
  if constexpr (std::same_as<A, f32>) {
    if (s == 1) {
      std::memcpy(dst, src, static_cast<std::size_t>(k) * sizeof(float));
      return;
    }
  }
  for (index_t i = 0; i < k; ++i) dst[i] = widen<A>(src[i * s]);
}

/// x [M, K] → the layout `Src`'s float-path kernel reads (f32, or bf16 words); uses `xbuf`/`sbuf`
/// as storage unless f32 activations can be read in place.
template <class Src, ActivationDtype A>
prepared_x prepare_float_x(const TensorView<const A, 2>& x, float_buffer& xbuf, float_buffer& sbuf) {
  using L = float_path_layout<Src, A>;
  const index_t m = x.extent(0), k = x.extent(1), nb = k / 32;
  prepared_x px;
  px.m = m;
  if constexpr (L::bf16_words) {
    // bf16 bits copied (no rounding); for block weights permuted per block into the kernel's word
    // order, for bf16 weights in natural order with the tail up to ldw zeroed.
    px.ldw = round_up(k, 32);
    xbuf.resize(m * px.ldw / 2);  // untyped storage, read back only as uint16
    auto* words = reinterpret_cast<std::uint16_t*>(xbuf.data());
    const index_t s1 = x.stride(1);
    for (index_t r = 0; r < m; ++r) {
      const storage_t<A>* src = x.data() + r * x.stride(0);
      std::uint16_t* dst = words + r * px.ldw;
      if constexpr (requires { typename Src::format; }) {
        using F = typename Src::format;
        static constexpr auto element = [] {
          std::array<index_t, 32> e{};
          for (int j = 0; j < 32; ++j) e[static_cast<std::size_t>(j)] = nibble_word_element<F>(j);
          return e;
        }();
        for (index_t b = 0; b < nb; ++b)
          for (std::size_t j = 0; j < 32; ++j) dst[b * 32 + static_cast<index_t>(j)] = src[(b * 32 + element[j]) * s1].bits;
      } else {
        for (index_t i = 0; i < k; ++i) dst[i] = src[i * s1].bits;
        for (index_t i = k; i < px.ldw; ++i) dst[i] = 0;
      }
    }
    px.xw = words;
  } else {
    if constexpr (std::same_as<A, f32> && !L::pair_permuted) {
      if (x.stride(1) == 1 || k <= 1) {
        px.x = x.data();
        px.ldx = x.stride(0);
      }
    }
    if (px.x == nullptr) {
      px.ldx = round_up(k, 16);
      xbuf.resize(m * px.ldx);
      for (index_t r = 0; r < m; ++r) {
        float* dst = xbuf.data() + r * px.ldx;
        widen_row<A>(x, r, dst);
        if constexpr (L::pair_permuted) {
          float tmp[32];
          for (index_t b = 0; b < nb; ++b) {
            float* blk = dst + b * 32;
            for (int j = 0; j < 16; ++j) {
              tmp[j] = blk[2 * j];           // lane j of the low-nibble vector: element 2j
              tmp[16 + j] = blk[2 * j + 1];  // lane j of the high-nibble vector: element 2j + 1
            }
            std::memcpy(blk, tmp, sizeof tmp);
          }
        }
      }
      px.x = xbuf.data();
    }
  }
  if constexpr (L::block_sums) {
    sbuf.resize(m * nb);
    for (index_t r = 0; r < m; ++r)
      for (index_t b = 0; b < nb; ++b) {
        double s = 0;  // one rounding: the block sum is exact before it meets m
        for (index_t j = 0; j < 32; ++j) s += static_cast<double>(widen<A>(x(r, b * 32 + j)));
        sbuf.data()[r * nb + b] = static_cast<float>(s);
      }
    px.bsum = sbuf.data();
  }
  return px;
}

// ---------------------------------------------------------------------------------------------
// Portable helpers
// ---------------------------------------------------------------------------------------------

/// Σ a[i]·b[i] over n floats with xsimd batches (two accumulators) and a scalar tail.
[[nodiscard]] inline float dot_portable(const float* a, const float* b, index_t n) noexcept {
  constexpr index_t W = static_cast<index_t>(fbatch::size);
  fbatch acc0(0.0f), acc1(0.0f);
  index_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    acc0 = xsimd::fma(fbatch::load_unaligned(a + i), fbatch::load_unaligned(b + i), acc0);
    acc1 = xsimd::fma(fbatch::load_unaligned(a + i + W), fbatch::load_unaligned(b + i + W), acc1);
  }
  for (; i + W <= n; i += W) acc0 = xsimd::fma(fbatch::load_unaligned(a + i), fbatch::load_unaligned(b + i), acc0);
  float s = xsimd::hadd(acc0 + acc1);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

/// `count` float weights widened to f32.
template <weight_storage_dtype D>
inline void widen_weights(const storage_t<D>* src, index_t count, float* dst) noexcept {
  if constexpr (std::same_as<D, f32>) std::memcpy(dst, src, static_cast<std::size_t>(count) * sizeof(float));
  else if constexpr (std::same_as<D, bf16>)
    for (index_t i = 0; i < count; ++i) dst[i] = std::bit_cast<float>(static_cast<std::uint32_t>(src[i].bits) << 16);
  else
    for (index_t i = 0; i < count; ++i) dst[i] = f16_to_f32(src[i].bits);
}

// ---------------------------------------------------------------------------------------------
// AVX-512 building blocks
// ---------------------------------------------------------------------------------------------
#if PRECIS_CPU_AVX512

/// 16 weights at p → f32 lanes (bf16: the 16 bits become the high half of a binary32;
/// f16: `vcvtph2ps`, exact).
template <weight_storage_dtype D>
[[nodiscard]] inline __m512 load_w16(const storage_t<D>* p) noexcept {
  if constexpr (std::same_as<D, f32>) {
    return _mm512_loadu_ps(p);
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    if constexpr (std::same_as<D, bf16>) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else return _mm512_cvtph_ps(h);
  }
}
template <weight_storage_dtype D>
[[nodiscard]] inline __m512 load_w16_masked(const storage_t<D>* p, __mmask16 mask) noexcept {
  if constexpr (std::same_as<D, f32>) {
    return _mm512_maskz_loadu_ps(mask, p);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, p);
    if constexpr (std::same_as<D, bf16>) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else return _mm512_cvtph_ps(h);
  }
}

[[nodiscard]] inline __mmask16 tail_mask(index_t n) noexcept {
  return static_cast<__mmask16>((1u << static_cast<unsigned>(n)) - 1u);
}

[[nodiscard]] inline float hsum256(__m256 v) noexcept {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
/// Σ of 16 lanes. Not `_mm512_reduce_add_ps` or `_mm512_castps512_ps256`: in g++ 12 both expand
/// to an extract whose `_mm256_undefined_pd()` merge source -Wuninitialized reports (GCC bug
/// 105593); the zero-masked extracts have none.
[[nodiscard]] inline float hsum512(__m512 v) noexcept {
  const __m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, _mm512_castps_pd(v), 0));
  const __m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, _mm512_castps_pd(v), 1));
  return hsum256(_mm256_add_ps(lo, hi));
}

[[nodiscard]] inline __m512 table16(const float* t) noexcept { return _mm512_loadu_ps(t); }

// f16 block scales through `vcvtph2ps` (see f16_to_f32 in arch.hpp for why not a table). The
// zero-masked forms avoid g++ 12's undefined merge source (GCC bug 105593).
/// f16 bits → f32.
[[nodiscard]] inline float f16_cvt(std::uint16_t bits) noexcept {
  return _mm_cvtss_f32(_mm_maskz_cvtph_ps(0xf, _mm_cvtsi32_si128(bits)));
}
/// f16 bits → f32 in all 16 lanes.
[[nodiscard]] inline __m512 f16_bcast16(std::uint16_t bits) noexcept {
  return _mm512_maskz_cvtph_ps(0xffff, _mm256_set1_epi16(static_cast<short>(bits)));
}

inline constexpr float q4_0_values[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
inline constexpr float q4_1_values[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/// 16 nibble bytes → (values of the low nibbles, values of the high nibbles) through `tab`.
inline void nibble_values(const std::uint8_t* qs, __m512 tab, __m512& lo, __m512& hi) noexcept {
  const __m512i raw = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  lo = _mm512_permutexvar_ps(raw, tab);                         // index bits 3:0 = low nibble
  hi = _mm512_permutexvar_ps(_mm512_srli_epi32(raw, 4), tab);  // bits 7:4 → 3:0
}

// Block decoders: block b of one weight row → lo, hi (16 lanes each, see the header for the
// element order), the block scale s (broadcast) and, for q4_1, the min m.
struct dec_q8_0 {
  static constexpr bool has_min = false;
  const block_q8_0* blk;
  void operator()(index_t b, __m512& lo, __m512& hi, __m512& s, float&) const noexcept {
    const block_q8_0& B = blk[b];
    lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(B.qs))));
    hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(B.qs + 16))));
    s = f16_bcast16(B.d.bits);
  }
};
struct dec_q4_0 {
  static constexpr bool has_min = false;
  const block_q4_0* blk;
  __m512 tab = table16(q4_0_values);
  void operator()(index_t b, __m512& lo, __m512& hi, __m512& s, float&) const noexcept {
    nibble_values(blk[b].qs, tab, lo, hi);
    s = f16_bcast16(blk[b].d.bits);
  }
};
struct dec_q4_1 {
  static constexpr bool has_min = true;
  const block_q4_1* blk;
  __m512 tab = table16(q4_1_values);
  void operator()(index_t b, __m512& lo, __m512& hi, __m512& s, float& m) const noexcept {
    nibble_values(blk[b].qs, tab, lo, hi);
    s = f16_bcast16(blk[b].d.bits);
    m = f16_cvt(blk[b].m.bits);
  }
};
struct dec_mxfp4_ggml {
  static constexpr bool has_min = false;
  const block_mxfp4_ggml* blk;
  __m512 tab = table16(mxfp4_kvalue_table.data());
  void operator()(index_t b, __m512& lo, __m512& hi, __m512& s, float&) const noexcept {
    nibble_values(blk[b].qs, tab, lo, hi);
    s = _mm512_set1_ps(e8m0_half_table[blk[b].e]);
  }
};
struct dec_mxfp4_openai {  // lo = elements 0, 2, ..., 30; hi = 1, 3, ..., 31
  static constexpr bool has_min = false;
  const std::uint8_t* nibbles;  // this row's [K/32, 16]
  const std::uint8_t* scales;   // this row's [K/32]
  __m512 tab = table16(mxfp4_kvalue_table.data());
  void operator()(index_t b, __m512& lo, __m512& hi, __m512& s, float&) const noexcept {
    nibble_values(nibbles + 16 * b, tab, lo, hi);
    s = _mm512_set1_ps(e8m0_half_table[scales[b]]);
  }
};

/// The decoder of row n of a block-quantized weight, picked from a set of per-format decoders
/// (`Set::q8_0_dec`, ...): every set reads the same storage (ggml block structs, or the OpenAI
/// layout's nibble and scale planes), so one dispatch serves the f32 and the integer paths.
template <class Set, BlockFormat F>
[[nodiscard]] inline auto row_decoder(const quant_rows<F>& w, index_t n) noexcept {
  const index_t first = n * w.blocks_per_row();
  if constexpr (std::same_as<F, q8_0>) return typename Set::q8_0_dec{w.q.blocks() + first};
  else if constexpr (std::same_as<F, q4_0>) return typename Set::q4_0_dec{w.q.blocks() + first};
  else if constexpr (std::same_as<F, q4_1>) return typename Set::q4_1_dec{w.q.blocks() + first};
  else if constexpr (std::same_as<F, mxfp4_ggml>) return typename Set::mxfp4_ggml_dec{w.q.blocks() + first};
  else {
    static_assert(std::same_as<F, mxfp4>, "row_decoder: the download formats have value decoders (download_decode.hpp)");
    return typename Set::mxfp4_openai_dec{w.q.nibbles() + 16 * first, w.q.scales() + first};
  }
}

/// Decoders to f32 lanes (lo/hi halves of a block, scale, min).
struct float_decoders {
  using q8_0_dec = dec_q8_0;
  using q4_0_dec = dec_q4_0;
  using q4_1_dec = dec_q4_1;
  using mxfp4_ggml_dec = dec_mxfp4_ggml;
  using mxfp4_openai_dec = dec_mxfp4_openai;
};

template <BlockFormat F>
[[nodiscard]] inline auto block_decoder(const quant_rows<F>& w, index_t n) noexcept {
  return row_decoder<float_decoders>(w, n);
}

/// M rows of dots for one block-quantized weight row: per block t = lo·x_lo + hi·x_hi, then
/// acc += t·s (two alternating accumulators per row hide the FMA latency); q4_1 adds m·Σx.
template <int M, class Dec>
inline void dot_blocks(const Dec& dec, index_t nb, const prepared_x& px, float* out) noexcept {
  __m512 acc[M][2];
  float macc[M][2];
  for (int r = 0; r < M; ++r) {
    acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    macc[r][0] = macc[r][1] = 0.0f;
  }
  auto step = [&](index_t b, int u) {
    __m512 lo, hi, s;
    float m = 0.0f;
    dec(b, lo, hi, s, m);
    for (int r = 0; r < M; ++r) {
      const float* xr = px.x + r * px.ldx + b * 32;
      __m512 t = _mm512_mul_ps(lo, _mm512_loadu_ps(xr));
      t = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xr + 16), t);
      acc[r][u] = _mm512_fmadd_ps(t, s, acc[r][u]);
      if constexpr (Dec::has_min) macc[r][u] += m * px.bsum[r * nb + b];
    }
  };
  index_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    step(b, 0);
    step(b + 1, 1);
  }
  if (b < nb) step(b, 0);
  for (int r = 0; r < M; ++r)
    out[r] = hsum512(_mm512_add_ps(acc[r][0], acc[r][1])) + (macc[r][0] + macc[r][1]);
}

/// M rows of dots with one weight row of dequantized values (download_decode.hpp): per chunk
/// acc += w_lo·x_lo and w_hi·x_hi, two accumulators per row.
template <int M, class Dec>
inline void dot_values(const Dec& dec, index_t chunks, const prepared_x& px, float* out) noexcept {
  __m512 acc[M][2];
  for (int r = 0; r < M; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (index_t c = 0; c < chunks; ++c) {
    __m512 lo, hi;
    dec(c, lo, hi);
    for (int r = 0; r < M; ++r) {
      const float* xr = px.x + r * px.ldx + 32 * c;
      acc[r][0] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xr), acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xr + 16), acc[r][1]);
    }
  }
  for (int r = 0; r < M; ++r) out[r] = hsum512(_mm512_add_ps(acc[r][0], acc[r][1]));
}

#endif  // PRECIS_CPU_AVX512

#if PRECIS_CPU_AVX512_BF16

/// bf16 bits of the 16 values of format F's nibbles, twice (vpermw reads 5 index bits; the high
/// nibble of a byte lands in bit 4 and must not change the value). All are small integers, exact.
template <class F>
inline constexpr std::array<std::uint16_t, 32> nibble_bf16_words = [] {
  std::array<std::uint16_t, 32> t{};
  for (int i = 0; i < 32; ++i) {
    const int n = i % 16;
    float v;
    if constexpr (std::same_as<F, q4_0>) v = static_cast<float>(n - 8);
    else if constexpr (std::same_as<F, q4_1>) v = static_cast<float>(n);
    else v = static_cast<float>(precis::detail::mxfp4_kvalue(static_cast<std::uint8_t>(n)));
    t[static_cast<std::size_t>(i)] = precis::detail::f32_to_bf16_bits(v);
  }
  return t;
}();

/// bf16 activations × one 4-bit weight row: per block 32 exact bf16 codes (broadcast, vpsrlvw,
/// vpermw), `vdpbf16ps` against the activations in the same word order (exact products, f32
/// sums, round to nearest even; it treats subnormal inputs and results as zero), then acc += t·s.
/// q4_1 adds m·Σx from the block sums.
template <int M, nibble_format F>
inline void dot_blocks_bf16(const quant_rows<F>& w, index_t n, const prepared_x& px, float* out) noexcept {
  const index_t nb = w.blocks_per_row(), first = n * nb;
  const __m512i table = _mm512_loadu_si512(nibble_bf16_words<F>.data());
  const __m512i shifts = _mm512_set_epi64(0x000c000c000c000cLL, 0x000c000c000c000cLL, 0x0008000800080008LL,
                                          0x0008000800080008LL, 0x0004000400040004LL, 0x0004000400040004LL, 0, 0);
  __m512 acc[M][2];
  float macc[M][2];
  for (int r = 0; r < M; ++r) {
    acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    macc[r][0] = macc[r][1] = 0.0f;
  }
  auto step = [&](index_t b, int u) {
    const std::uint8_t* qs;
    float s, m = 0.0f;
    if constexpr (std::same_as<F, mxfp4>) {
      qs = w.q.nibbles() + 16 * (first + b);
      s = e8m0_half_table[w.q.scales()[first + b]];
    } else {
      const auto& B = w.q.blocks()[first + b];
      qs = B.qs;
      if constexpr (std::same_as<F, mxfp4_ggml>) {
        s = e8m0_half_table[B.e];
      } else {
        s = f16_cvt(B.d.bits);
        if constexpr (std::same_as<F, q4_1>) m = f16_cvt(B.m.bits);
      }
    }
    const __m512i bytes = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    const __m512i codes = _mm512_permutexvar_epi16(_mm512_srlv_epi16(bytes, shifts), table);
    const __m512 sv = _mm512_set1_ps(s);
    for (int r = 0; r < M; ++r) {
      const __m512i xv = _mm512_loadu_si512(px.xw + r * px.ldw + 32 * b);
      const __m512 t = _mm512_dpbf16_ps(_mm512_setzero_ps(), (__m512bh)codes, (__m512bh)xv);
      acc[r][u] = _mm512_fmadd_ps(t, sv, acc[r][u]);
      if constexpr (std::same_as<F, q4_1>) macc[r][u] += m * px.bsum[r * nb + b];
    }
  };
  index_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    step(b, 0);
    step(b + 1, 1);
  }
  if (b < nb) step(b, 0);
  for (int r = 0; r < M; ++r)
    out[r] = hsum512(_mm512_add_ps(acc[r][0], acc[r][1])) + (macc[r][0] + macc[r][1]);
}

#endif  // PRECIS_CPU_AVX512_BF16

// ---------------------------------------------------------------------------------------------
// Row kernels (float path): out[r] = Σ_k x[r, k]·W[n, k] for r < M
// ---------------------------------------------------------------------------------------------

template <int M, weight_storage_dtype D>
inline void row_dots(const float_rows<D>& w, index_t n, const prepared_x& px, float* out) noexcept {
  const storage_t<D>* wr = w.row(n);
  const index_t k = w.k;
#if PRECIS_CPU_AVX512_BF16
  if constexpr (std::same_as<D, bf16>) {
    if (px.xw != nullptr) {  // bf16 × bf16: 32 exact products per vdpbf16ps, x read as stored
      __m512 acc[M][2];
      for (int r = 0; r < M; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
      index_t i = 0;
      for (; i + 64 <= k; i += 64)
        for (int u = 0; u < 2; ++u) {
          const __m512i wv = _mm512_loadu_si512(wr + i + 32 * u);
          for (int r = 0; r < M; ++r)
            acc[r][u] = _mm512_dpbf16_ps(acc[r][u], (__m512bh)wv,
                                         (__m512bh)_mm512_loadu_si512(px.xw + r * px.ldw + i + 32 * u));
        }
      if (i < k) {  // ≤ 63 left: one full and/or one masked step (x is zero-padded to ldw)
        for (int u = 0; u < 2 && i < k; ++u, i += 32) {
          const __mmask32 mask = k - i >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << static_cast<unsigned>(k - i)) - 1u);
          const __m512i wv = _mm512_maskz_loadu_epi16(mask, wr + i);
          for (int r = 0; r < M; ++r)
            acc[r][u] = _mm512_dpbf16_ps(acc[r][u], (__m512bh)wv, (__m512bh)_mm512_loadu_si512(px.xw + r * px.ldw + i));
        }
      }
      for (int r = 0; r < M; ++r) out[r] = hsum512(_mm512_add_ps(acc[r][0], acc[r][1]));
      return;
    }
  }
#endif
#if PRECIS_CPU_AVX512
  __m512 acc[M][4];
  for (int r = 0; r < M; ++r)
    for (int u = 0; u < 4; ++u) acc[r][u] = _mm512_setzero_ps();
  index_t i = 0;
  for (; i + 64 <= k; i += 64) {
    for (int u = 0; u < 4; ++u) {
      const __m512 wv = load_w16<D>(wr + i + 16 * u);
      for (int r = 0; r < M; ++r)
        acc[r][u] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(px.x + r * px.ldx + i + 16 * u), acc[r][u]);
    }
  }
  for (; i + 16 <= k; i += 16) {
    const __m512 wv = load_w16<D>(wr + i);
    for (int r = 0; r < M; ++r) acc[r][0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(px.x + r * px.ldx + i), acc[r][0]);
  }
  if (i < k) {
    const __mmask16 mask = tail_mask(k - i);
    const __m512 wv = load_w16_masked<D>(wr + i, mask);
    for (int r = 0; r < M; ++r)
      acc[r][1] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mask, px.x + r * px.ldx + i), acc[r][1]);
  }
  for (int r = 0; r < M; ++r)
    out[r] = hsum512(_mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3])));
#else
  if constexpr (std::same_as<D, f32>) {
    for (int r = 0; r < M; ++r) out[r] = dot_portable(wr, px.x + r * px.ldx, k);
  } else {
    constexpr index_t chunk = 256;
    float buf[chunk];
    for (int r = 0; r < M; ++r) out[r] = 0.0f;
    for (index_t i = 0; i < k; i += chunk) {
      const index_t len = std::min(chunk, k - i);
      widen_weights<D>(wr + i, len, buf);
      for (int r = 0; r < M; ++r) out[r] += dot_portable(buf, px.x + r * px.ldx + i, len);
    }
  }
#endif
}

template <int M, BlockFormat F>
inline void row_dots(const quant_rows<F>& w, index_t n, const prepared_x& px, float* out) noexcept {
  const index_t nb = w.blocks_per_row();
#if PRECIS_CPU_AVX512
#if PRECIS_CPU_AVX512_BF16
  if constexpr (nibble_format<F>) {
    if (px.xw != nullptr) {
      dot_blocks_bf16<M>(w, n, px, out);
      return;
    }
  }
#endif
  if constexpr (download_format<F>) dot_values<M>(value_decoder<F>(w.q.blocks(), n, nb), nb, px, out);
  else dot_blocks<M>(block_decoder(w, n), nb, px, out);
#else
  // Portable: 8 blocks at a time through the scalar spec (block_reference), then xsimd dots.
  constexpr index_t group = 8;
  float buf[group * 32];
  for (int r = 0; r < M; ++r) out[r] = 0.0f;
  for (index_t b = 0; b < nb; b += group) {
    const index_t cnt = std::min(group, nb - b);
    for (index_t j = 0; j < cnt; ++j) precis::detail::dequantize_block_at(w.q, n * nb + b + j, buf + 32 * j);
    for (int r = 0; r < M; ++r) out[r] += dot_portable(buf, px.x + r * px.ldx + b * 32, cnt * 32);
  }
#endif
}

// ---------------------------------------------------------------------------------------------
// Row kernels (q8 path): integer dots with Q8Activations
// ---------------------------------------------------------------------------------------------

/// Quantized activations as the q8 kernels read them: [m, ld] blocks.
struct prepared_q8 {
  const block_q8_act* x = nullptr;
  index_t ld = 0;  // blocks between rows
  index_t m = 0;
};

/// Whether the q8 kernel for F wants each block's codes in (even, odd) element order.
template <class F>
inline constexpr bool q8_pair_permuted = std::same_as<F, mxfp4> && PRECIS_CPU_AVX512_VNNI != 0;

/// The integer weight code of element j of block b in natural order, and its scale/min.
template <BlockFormat F>
inline void int_codes(const QuantView<F, 2>& q, index_t b, int codes[32], float& d, float& m) noexcept {
  m = 0.0f;
  if constexpr (std::same_as<F, q8_0>) {
    const block_q8_0& B = q.blocks()[b];
    for (int j = 0; j < 32; ++j) codes[j] = B.qs[j];
    d = f16_to_f32(B.d.bits);
  } else if constexpr (std::same_as<F, q4_0> || std::same_as<F, q4_1>) {
    const auto& B = q.blocks()[b];
    constexpr int off = std::same_as<F, q4_0> ? 8 : 0;
    for (int j = 0; j < 16; ++j) {
      codes[j] = (B.qs[j] & 0x0f) - off;
      codes[j + 16] = (B.qs[j] >> 4) - off;
    }
    d = f16_to_f32(B.d.bits);
    if constexpr (std::same_as<F, q4_1>) m = f16_to_f32(B.m.bits);
  } else if constexpr (std::same_as<F, mxfp4_ggml>) {
    const block_mxfp4_ggml& B = q.blocks()[b];
    for (int j = 0; j < 16; ++j) {
      codes[j] = precis::detail::mxfp4_kvalue(static_cast<std::uint8_t>(B.qs[j] & 0x0f));
      codes[j + 16] = precis::detail::mxfp4_kvalue(static_cast<std::uint8_t>(B.qs[j] >> 4));
    }
    d = e8m0_half_table[B.e];
  } else {
    const std::uint8_t* nib = q.nibbles() + 16 * b;
    for (int j = 0; j < 16; ++j) {
      codes[2 * j] = precis::detail::mxfp4_kvalue(static_cast<std::uint8_t>(nib[j] & 0x0f));
      codes[2 * j + 1] = precis::detail::mxfp4_kvalue(static_cast<std::uint8_t>(nib[j] >> 4));
    }
    d = e8m0_half_table[q.scales()[b]];
  }
}

#if PRECIS_CPU_AVX512_VNNI

/// 16 nibble bytes → 32 bytes: low nibbles in the lower 128 bits, high nibbles in the upper.
[[nodiscard]] inline __m256i split_nibbles(const std::uint8_t* qs) noexcept {
  const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0f));
}

// Integer decoders: block b → 32 unsigned codes u with w = (u − offset), the scale d, the min m.
struct idec_q8_0 {
  static constexpr int offset = 128;
  static constexpr bool has_min = false;
  const block_q8_0* blk;
  __m256i operator()(index_t b, float& d, float&) const noexcept {
    d = f16_cvt(blk[b].d.bits);
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b].qs)),
                            _mm256_set1_epi8(static_cast<char>(0x80)));  // w + 128 as an unsigned byte
  }
};
struct idec_q4_0 {
  static constexpr int offset = 8;
  static constexpr bool has_min = false;
  const block_q4_0* blk;
  __m256i operator()(index_t b, float& d, float&) const noexcept {
    d = f16_cvt(blk[b].d.bits);
    return split_nibbles(blk[b].qs);
  }
};
struct idec_q4_1 {
  static constexpr int offset = 0;
  static constexpr bool has_min = true;
  const block_q4_1* blk;
  __m256i operator()(index_t b, float& d, float& m) const noexcept {
    d = f16_cvt(blk[b].d.bits);
    m = f16_cvt(blk[b].m.bits);
    return split_nibbles(blk[b].qs);
  }
};
/// Doubled E2M1 values + 12 ∈ [0, 24], by nibble (vpshufb table, both 128-bit lanes).
inline __m256i mxfp4_u8_table() noexcept {
  return _mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0,  //
                          12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
}
struct idec_mxfp4_ggml {
  static constexpr int offset = 12;
  static constexpr bool has_min = false;
  const block_mxfp4_ggml* blk;
  __m256i tab = mxfp4_u8_table();
  __m256i operator()(index_t b, float& d, float&) const noexcept {
    d = e8m0_half_table[blk[b].e];
    return _mm256_shuffle_epi8(tab, split_nibbles(blk[b].qs));
  }
};
struct idec_mxfp4_openai {  // codes in (even, odd) element order; x is permuted to match
  static constexpr int offset = 12;
  static constexpr bool has_min = false;
  const std::uint8_t* nibbles;
  const std::uint8_t* scales;
  __m256i tab = mxfp4_u8_table();
  __m256i operator()(index_t b, float& d, float&) const noexcept {
    d = e8m0_half_table[scales[b]];
    return _mm256_shuffle_epi8(tab, split_nibbles(nibbles + 16 * b));
  }
};

/// Decoders to integer codes (for the q8-activation VNNI path).
struct int_decoders {
  using q8_0_dec = idec_q8_0;
  using q4_0_dec = idec_q4_0;
  using q4_1_dec = idec_q4_1;
  using mxfp4_ggml_dec = idec_mxfp4_ggml;
  using mxfp4_openai_dec = idec_mxfp4_openai;
};

template <BlockFormat F>
[[nodiscard]] inline auto int_decoder(const quant_rows<F>& w, index_t n) noexcept {
  return row_decoder<int_decoders>(w, n);
}

/// Per block: v = vpdpbusd(c, u, q_x) with c = −offset·Σq_x in lane 0, so the lane sum of v is
/// the exact integer Σ w·q_x (|lanes| < 2^24: converts to f32 exactly); acc += v·(d_w·d_x).
template <int M, class Dec>
inline void dot_blocks_q8(const Dec& dec, index_t nb, const prepared_q8& px, float* out) noexcept {
  __m256 acc[M][2];
  float macc[M];
  for (int r = 0; r < M; ++r) {
    acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    macc[r] = 0.0f;
  }
  auto step = [&](index_t b, int u) {
    float d = 0.0f, m = 0.0f;
    const __m256i w = dec(b, d, m);
    for (int r = 0; r < M; ++r) {
      const block_q8_act& xb = px.x[r * px.ld + b];
      const __m256i c = Dec::offset != 0 ? _mm256_zextsi128_si256(_mm_cvtsi32_si128(-Dec::offset * xb.sum)) : _mm256_setzero_si256();
      const __m256i v = _mm256_dpbusd_epi32(c, w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs)));
      acc[r][u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(d * xb.d), acc[r][u]);
      if constexpr (Dec::has_min) macc[r] += m * xb.s;
    }
  };
  index_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    step(b, 0);
    step(b + 1, 1);
  }
  if (b < nb) step(b, 0);
  for (int r = 0; r < M; ++r) out[r] = hsum256(_mm256_add_ps(acc[r][0], acc[r][1])) + macc[r];
}

#endif  // PRECIS_CPU_AVX512_VNNI

template <int M, BlockFormat F>
inline void row_dots_q8(const quant_rows<F>& w, index_t n, const prepared_q8& px, float* out) noexcept {
  const index_t nb = w.blocks_per_row();
#if PRECIS_CPU_AVX512_VNNI
  if constexpr (download_format<F>) {  // 32-value chunks, codes and per-half scales (download_q8.hpp)
    const index_t chunks = w.k / 32;
    if constexpr (precis::detail::chunks_per_block<F> == 8)
      dot_superblocks_q8<M>(q8_chunk_decoder<F>(w.q.blocks(), n, chunks), chunks, px.x, px.ld, out);
    else
      dot_chunks_q8<M>(q8_chunk_decoder<F>(w.q.blocks(), n, chunks), chunks, px.x, px.ld, out);
  } else {
    dot_blocks_q8<M>(int_decoder(w, n), nb, px, out);
  }
#else
  static_assert(!download_format<F>, "the download formats' q8 path without VNNI runs the float kernels (matmul.hpp)");
  // Portable: exact int32 dots per block (|Σ| ≤ 32·128·127 < 2^31), one f32 scale per block.
  float acc[M] = {};
  int codes[32];
  for (index_t b = 0; b < nb; ++b) {
    float d = 0.0f, m = 0.0f;
    int_codes(w.q, n * nb + b, codes, d, m);
    for (int r = 0; r < M; ++r) {
      const block_q8_act& xb = px.x[r * px.ld + b];
      std::int32_t dot = 0;
      for (int j = 0; j < 32; ++j) dot += codes[j] * xb.qs[j];
      acc[r] += (d * xb.d) * static_cast<float>(dot);
      if (std::same_as<F, q4_1>) acc[r] += m * xb.s;
    }
  }
  for (int r = 0; r < M; ++r) out[r] = acc[r];
#endif
}

// ---------------------------------------------------------------------------------------------
// Drivers
// ---------------------------------------------------------------------------------------------

/// Calls `row_kernel.template operator()<G>(n, r0, dots)` for rows n in [n0, n1) and groups of
/// G ≤ 4 activation rows starting at r0; weights of row n stay in L1/L2 across groups.
template <class Kernel, class Epilogue>
inline void gemv_range(index_t m, index_t n0, index_t n1, const Kernel& kernel, const Epilogue& epi) {
  float dots[4];
  for (index_t n = n0; n < n1; ++n) {
    for (index_t r0 = 0; r0 < m; r0 += 4) {
      switch (std::min<index_t>(4, m - r0)) {
        case 1: kernel.template operator()<1>(n, r0, dots); epi(n, r0, 1, dots); break;
        case 2: kernel.template operator()<2>(n, r0, dots); epi(n, r0, 2, dots); break;
        case 3: kernel.template operator()<3>(n, r0, dots); epi(n, r0, 3, dots); break;
        default: kernel.template operator()<4>(n, r0, dots); epi(n, r0, 4, dots); break;
      }
    }
  }
}

/// Rows per task: at least 16 so each thread streams a run of whole rows.
inline constexpr index_t gemv_grain = 16;

/// Float-path GEMV over all N rows of `w`; `epi(n, r0, g, dots)` stores g results of row n.
template <class Src, class Epilogue>
void gemv_float(const Src& w, const prepared_x& px, const Epilogue& epi) {
  const auto kernel = [&]<int G>(index_t n, index_t r0, float* dots) {
    prepared_x sub = px;
    if (px.x != nullptr) sub.x = px.x + r0 * px.ldx;
    if (px.xw != nullptr) sub.xw = px.xw + r0 * px.ldw;
    if (px.bsum != nullptr) sub.bsum = px.bsum + r0 * (w.k / 32);
    row_dots<G>(w, n, sub, dots);
  };
  parallel_ranges(w.n, gemv_grain, px.m * w.n * w.k,
                  [&](index_t n0, index_t n1) { gemv_range(px.m, n0, n1, kernel, epi); });
}

/// q8-path GEMV over all N rows of `w`.
template <BlockFormat F, class Epilogue>
void gemv_q8(const quant_rows<F>& w, const prepared_q8& px, const Epilogue& epi) {
  const auto kernel = [&]<int G>(index_t n, index_t r0, float* dots) {
    prepared_q8 sub = px;
    sub.x = px.x + r0 * px.ld;
    row_dots_q8<G>(w, n, sub, dots);
  };
  parallel_ranges(w.n, gemv_grain, px.m * w.n * w.k,
                  [&](index_t n0, index_t n1) { gemv_range(px.m, n0, n1, kernel, epi); });
}

/// Q8Activations rows → the layout row_dots_q8<F> reads (a permuted copy for HF/OpenAI mxfp4
/// under VNNI; otherwise the blocks in place).
template <BlockFormat F, ActivationDtype A>
prepared_q8 prepare_q8_x(const Q8Activations<A>& xq, std::vector<block_q8_act>& copy) {
  prepared_q8 px{xq.row(0), xq.blocks_per_row(), xq.rows()};
  if constexpr (q8_pair_permuted<F>) {
    copy.resize(static_cast<std::size_t>(xq.rows() * xq.blocks_per_row()));
    for (index_t i = 0; i < static_cast<index_t>(copy.size()); ++i) {
      const block_q8_act& src = xq.row(0)[i];
      block_q8_act& dst = copy[static_cast<std::size_t>(i)];
      dst = src;  // d, s, sum, half_sum (unused by the mxfp4 kernel)
      for (int j = 0; j < 16; ++j) {
        dst.qs[j] = src.qs[2 * j];           // low-nibble bytes: element 2j
        dst.qs[16 + j] = src.qs[2 * j + 1];  // high-nibble bytes: element 2j + 1
      }
    }
    px.x = copy.data();
  }
  return px;
}

}  // namespace detail
}  // namespace precis::backends::cpu
