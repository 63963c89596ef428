// precis/backends/cpu/arch.hpp — which instruction set the CPU kernels are compiled for, and the
// small lookup tables every kernel shares.
//
// The CPU backend is header-only, so its ISA is the one the including translation unit is
// compiled for (`-march=native`, `-mavx512f ...`). Each kernel has two bodies:
//   PRECIS_CPU_AVX512       AVX-512 F/BW/VL intrinsics (+ F16C for f16 weights); chosen when the
//                           compiler defines __AVX512F__, __AVX512BW__ and __AVX512VL__.
//   PRECIS_CPU_AVX512_VNNI  additionally `vpdpbusd` for the q8-activation integer dot products.
//   PRECIS_CPU_AVX512_BF16  additionally `vdpbf16ps` for bf16 activations × 4-bit weights (the
//                           gpt-oss decode case): nibbles become exact bf16 codes in registers.
//   otherwise               a portable body: block dequantization through quant/block_reference.hpp
//                           (the scalar spec) into a small buffer, dotted with xsimd batches, so the
//                           code compiles for every ISA xsimd 8.1 supports (SSE2 ... AVX-512, NEON).
// Defining PRECIS_CPU_AVX512=0 (or the _VNNI / _BF16 variant) before the first include forces the
// portable body; the tests build both (tests/unit/backends/CMakeLists.txt).
#pragma once

#include <array>        // std::array
#include <cstdint>      // std::uint16_t, std::uint8_t
#include <string_view>  // std::string_view

#include <xsimd/xsimd.hpp>  // xsimd::batch, xsimd::default_arch

#include <precis/numeric/float16.hpp>        // detail::f16_bits_to_f32
#include <precis/quant/block_reference.hpp>  // detail::e8m0_to_f32_half, detail::mxfp4_kvalue

#ifndef PRECIS_CPU_AVX512
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define PRECIS_CPU_AVX512 1
#else
#define PRECIS_CPU_AVX512 0
#endif
#endif

#ifndef PRECIS_CPU_AVX512_VNNI
#if PRECIS_CPU_AVX512 && defined(__AVX512VNNI__)
#define PRECIS_CPU_AVX512_VNNI 1
#else
#define PRECIS_CPU_AVX512_VNNI 0
#endif
#endif

#ifndef PRECIS_CPU_AVX512_BF16
#if PRECIS_CPU_AVX512 && defined(__AVX512BF16__)
#define PRECIS_CPU_AVX512_BF16 1
#else
#define PRECIS_CPU_AVX512_BF16 0
#endif
#endif

#if PRECIS_CPU_AVX512 || PRECIS_CPU_AVX512_VNNI || PRECIS_CPU_AVX512_BF16 || defined(__F16C__)
#include <immintrin.h>  // _mm512_*, _mm256_dpbusd_epi32, _mm512_dpbf16_ps, _cvtsh_ss
#endif

namespace precis::backends::cpu {

/// The kernel bodies this translation unit uses (benchmark labels, docs/performance.md).
[[nodiscard]] constexpr std::string_view isa_name() noexcept {
  if constexpr (PRECIS_CPU_AVX512_VNNI && PRECIS_CPU_AVX512_BF16) return "avx512+vnni+bf16";
  else if constexpr (PRECIS_CPU_AVX512_VNNI) return "avx512+vnni";
  else if constexpr (PRECIS_CPU_AVX512_BF16) return "avx512+bf16";
  else if constexpr (PRECIS_CPU_AVX512) return "avx512";
  else return "portable";
}

/// xsimd batch of floats of the compile-time default architecture (portable bodies).
using fbatch = xsimd::batch<float>;

namespace detail {

/// f16 bit pattern → f32, exact: `vcvtph2ps` where F16C exists, else the bit-exact scalar
/// conversion. (Not ggml's 256 KiB `ggml_table_f32_f16`: block scales are spread over thousands of
/// codes, and per-block lookups at random offsets miss L1/L2 while weights stream past — q4_0
/// decode ran at half speed with such a table, docs/performance.md.)
[[nodiscard]] inline float f16_to_f32(std::uint16_t bits) noexcept {
#if defined(__F16C__)
  return _cvtsh_ss(bits);
#else
  return precis::detail::f16_bits_to_f32(bits);
#endif
}

/// E8M0 scale byte → 2^(e−128), ggml's half scale, paired with the doubled E2M1 values
/// (quant/block_reference.hpp; e = 255 gives 2^127, as the engines do).
inline constexpr std::array<float, 256> e8m0_half_table = [] {
  std::array<float, 256> t{};
  for (int e = 0; e < 256; ++e) t[static_cast<std::size_t>(e)] = precis::detail::e8m0_to_f32_half(static_cast<std::uint8_t>(e));
  return t;
}();

/// Doubled E2M1 values (ggml `kvalues_mxfp4`) as floats, indexed by nibble.
inline constexpr std::array<float, 16> mxfp4_kvalue_table = [] {
  std::array<float, 16> t{};
  for (int i = 0; i < 16; ++i) t[static_cast<std::size_t>(i)] = static_cast<float>(precis::detail::mxfp4_kvalue(static_cast<std::uint8_t>(i)));
  return t;
}();

}  // namespace detail
}  // namespace precis::backends::cpu
