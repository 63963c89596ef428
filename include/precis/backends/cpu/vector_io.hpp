// precis/backends/cpu/vector_io.hpp — f32 SIMD batches read from and written to activation
// storage (f32, bf16, f16), with exactly the reference's conversions, for the elementwise and
// row-wise CPU kernels (rmsnorm.hpp, rope.hpp, activation.hpp).
//
// Why a header of its own: the norm, RoPE and activation kernels compute in f32 (like their
// references in nn/) and differ from them only in evaluation order, never in how a value enters
// or leaves f32. So every load widens exactly (bf16: the 16 bits become the top of a binary32;
// f16: IEEE conversion) and every store rounds to nearest even with NaN kept NaN — the same
// function as bfloat16(float) / float16(float) in numeric/, bit for bit (tests/unit/blocks/
// test_vector_io.cpp checks every class of value, both bodies).
//
// Bodies: with PRECIS_CPU_AVX512 (backends/cpu/arch.hpp) and a 16-lane default xsimd batch the
// conversions are single AVX-512 instructions (vpmovzxwd + shift, vpmovdw, vcvtph2ps/vcvtps2ph,
// vpermt2ps for even/odd de-interleaving). With AVX-512 BF16 as well (PRECIS_CPU_AVX512_BF16
// of arch.hpp; Zen 4, Sapphire Rapids) bf16 stores use vcvtneps2bf16, which rounds and quiets
// NaN exactly as the scalar conversion but reads subnormal inputs as zero: a batch holding a
// subnormal takes the integer body (round on bit 16, NaN select), so results never depend on
// the ISA.
// Otherwise a portable body goes through a small aligned buffer, which the compiler vectorises
// for f32/bf16 and which calls the scalar f16 conversion. One latitude: vcvtph2ps quiets a
// signalling f16 NaN on load (a NaN either way; every store quiets NaNs).
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint16_t, std::uint32_t
#include <cstring>      // std::memcpy
#include <type_traits>  // std::is_convertible_v

#include <xsimd/xsimd.hpp>  // xsimd::batch, bitwise_cast, select, isnan

#include <precis/backends/cpu/arch.hpp>  // PRECIS_CPU_AVX512(_BF16), fbatch, <immintrin.h>
#include <precis/core/device.hpp>        // precis::host
#include <precis/core/dtype.hpp>         // precis::f32, bf16, f16, ActivationDtype, storage_t
#include <precis/core/scalar.hpp>        // precis::to_compute, from_compute
#include <precis/ops/host_tensor.hpp>    // precis::writable_host_tensor
#include <precis/core/tensor_view.hpp>   // precis::TensorView, TensorLike, dtype_of, rank_of
#include <precis/numeric/bfloat16.hpp>   // precis::bfloat16
#include <precis/numeric/float16.hpp>    // precis::float16

namespace precis::backends::cpu {

/// A writable host tensor argument of rank R (ops/host_tensor.hpp's writable_host_tensor).
template <class Y, std::size_t R>
concept writable_host_view_of_rank = writable_host_tensor<Y, R>;

namespace detail {

/// Lanes of the f32 batch every elementwise kernel uses.
inline constexpr index_t lanes = static_cast<index_t>(fbatch::size);

/// xsimd batch of 32-bit unsigned integers of the same architecture as fbatch.
using ubatch = xsimd::batch<std::uint32_t, fbatch::arch_type>;

/// True when the AVX-512 conversion bodies apply (AVX-512 compiled in, 16-lane batches).
inline constexpr bool avx512_io = PRECIS_CPU_AVX512 != 0 && fbatch::size == 16;

/// f32 values → bf16 bit patterns in the low half of each 32-bit lane: round to nearest even on
/// bit 16, NaN quieted with its sign and top payload (numeric/bfloat16.hpp, lane by lane).
[[nodiscard]] inline ubatch bf16_bits(const fbatch& v) noexcept {
  const ubatch u = xsimd::bitwise_cast<ubatch>(v);
  const ubatch rounded = (u + (ubatch(0x7fffu) + ((u >> 16) & ubatch(1u)))) >> 16;
  const ubatch quiet_nan = (u >> 16) | ubatch(0x0040u);
  return xsimd::bitwise_cast<ubatch>(
      xsimd::select(xsimd::isnan(v), xsimd::bitwise_cast<fbatch>(quiet_nan), xsimd::bitwise_cast<fbatch>(rounded)));
}

#if PRECIS_CPU_AVX512_BF16
/// Whether any lane is subnormal (0 < |v| < 2^-126): `vcvtneps2bf16` rounds to nearest even and
/// quiets NaN exactly as bf16_bits does, but reads subnormal inputs as zero (SDM
/// "convert_fp32_to_bfloat16"), so a batch holding one takes the integer body.
[[nodiscard]] inline bool has_subnormal(__m512 v) noexcept {
  const __m512 a = _mm512_abs_ps(v);
  return (_mm512_cmp_ps_mask(a, _mm512_set1_ps(0x1p-126f), _CMP_LT_OQ) &
          _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_NEQ_OQ)) != 0;
}
#endif

/// `lanes` values at p widened exactly to f32.
template <ActivationDtype D>
[[nodiscard]] inline fbatch load_f32(const storage_t<D>* p) noexcept {
  if constexpr (std::same_as<D, f32>) {
    return fbatch::load_unaligned(p);
  } else {
#if PRECIS_CPU_AVX512
    if constexpr (avx512_io) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      if constexpr (std::same_as<D, bf16>) return fbatch(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
      else return fbatch(_mm512_cvtph_ps(h));
    }
#endif
    alignas(64) float buf[fbatch::size];
    for (std::size_t k = 0; k < fbatch::size; ++k) buf[k] = to_compute<D>(p[k]);
    return fbatch::load_aligned(buf);
  }
}

/// Rounds `v` to D (nearest even) and stores `lanes` values at p.
template <ActivationDtype D>
inline void store_f32(storage_t<D>* p, const fbatch& v) noexcept {
  if constexpr (std::same_as<D, f32>) {
    v.store_unaligned(p);
  } else if constexpr (std::same_as<D, bf16>) {
#if PRECIS_CPU_AVX512_BF16
    if constexpr (avx512_io) {
      const __m512 r = v;
      if (!has_subnormal(r)) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(r)));
        return;
      }
    }
#endif
    const ubatch bits = bf16_bits(v);
#if PRECIS_CPU_AVX512
    if constexpr (avx512_io) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(bits));
      return;
    }
#endif
    alignas(64) std::uint32_t buf[fbatch::size];
    bits.store_aligned(buf);
    for (std::size_t k = 0; k < fbatch::size; ++k) p[k] = bfloat16::from_bits(static_cast<std::uint16_t>(buf[k]));
  } else {
#if PRECIS_CPU_AVX512
    if constexpr (avx512_io) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      return;
    }
#endif
    alignas(64) float buf[fbatch::size];
    v.store_aligned(buf);
    for (std::size_t k = 0; k < fbatch::size; ++k) p[k] = from_compute<D>(buf[k]);
  }
}

/// `v` rounded to D and widened back to f32 (the `.to(dtype)` inside an f32 expression).
template <ActivationDtype D>
[[nodiscard]] inline fbatch round_through(const fbatch& v) noexcept {
  if constexpr (std::same_as<D, f32>) {
    return v;
  } else if constexpr (std::same_as<D, bf16>) {
#if PRECIS_CPU_AVX512_BF16
    if constexpr (avx512_io) {
      const __m512 r = v;
      if (!has_subnormal(r)) {
        const __m256i h = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(r));
        return fbatch(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
      }
    }
#endif
    return xsimd::bitwise_cast<fbatch>(bf16_bits(v) << 16);
  } else {
#if PRECIS_CPU_AVX512
    if constexpr (avx512_io) return fbatch(_mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
#endif
    alignas(64) float buf[fbatch::size];
    v.store_aligned(buf);
    for (std::size_t k = 0; k < fbatch::size; ++k) buf[k] = to_compute<D>(from_compute<D>(buf[k]));
    return fbatch::load_aligned(buf);
  }
}

/// 2·lanes interleaved values at p (e0 o0 e1 o1 …) → the even and the odd ones, widened to f32.
template <ActivationDtype D>
inline void load_f32_pairs(const storage_t<D>* p, fbatch& even, fbatch& odd) noexcept {
  if constexpr (std::same_as<D, bf16>) {
    // One (even, odd) bf16 pair is one little-endian 32-bit word: even in the low half.
    alignas(64) std::uint32_t words[fbatch::size];
    std::memcpy(words, p, sizeof words);
    const ubatch w = ubatch::load_aligned(words);
    even = xsimd::bitwise_cast<fbatch>(w << 16);
    odd = xsimd::bitwise_cast<fbatch>(w & ubatch(0xffff0000u));
    return;
  } else {
#if PRECIS_CPU_AVX512
    if constexpr (avx512_io) {
      if constexpr (std::same_as<D, f32>) {
        const __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
        const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        even = fbatch(_mm512_permutex2var_ps(a, ie, b));
        odd = fbatch(_mm512_permutex2var_ps(a, io, b));
      } else {
        const __m512i w = _mm512_loadu_si512(p);
        even = fbatch(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(w)));
        odd = fbatch(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(w, 16))));
      }
      return;
    }
#endif
    alignas(64) float e[fbatch::size], o[fbatch::size];
    for (std::size_t k = 0; k < fbatch::size; ++k) {
      e[k] = to_compute<D>(p[2 * k]);
      o[k] = to_compute<D>(p[2 * k + 1]);
    }
    even = fbatch::load_aligned(e);
    odd = fbatch::load_aligned(o);
  }
}

}  // namespace detail
}  // namespace precis::backends::cpu
