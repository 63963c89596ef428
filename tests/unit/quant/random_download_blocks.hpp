// tests/unit/quant/random_download_blocks.hpp — weights in the GGUF download formats (Q5_0, Q5_1,
// IQ4_NL, Q2_K … Q6_K, IQ4_XS) for kernel tests: random block bytes whose f16 scale fields are
// replaced by finite values of moderate size, and the magnitude of the per-chunk min each value
// is formed with (what a kernel's rounding of dl·q − ml is relative to).
//
// precis has no quantizer for these formats (llama-quantize makes them; quant/quantize.hpp says
// why), so the tests do not quantize a master: every code, sub-block scale and min is random,
// which covers every bit of the layouts rather than the subset a quantizer would produce.
#pragma once

#include <cmath>    // std::fabs, std::ldexp
#include <cstdint>  // std::uint8_t
#include <cstring>  // std::memcpy
#include <random>   // std::mt19937

#include <precis/core/dtype.hpp>          // format tags
#include <precis/numeric/float16.hpp>     // precis::float16
#include <precis/quant/kquants.hpp>       // block structs, detail::scale_min_k4
#include <precis/quant/quant_tensor.hpp>  // precis::QuantTensor

namespace precis::test {

/// A random f16 of magnitude in [2^lo, 2^hi), random sign.
[[nodiscard]] inline float16 random_scale(std::mt19937& rng, int lo = -7, int hi = -3) {
  std::uniform_real_distribution<float> e(static_cast<float>(lo), static_cast<float>(hi));
  std::bernoulli_distribution neg(0.5);
  const float v = std::exp2(e(rng));
  return float16(neg(rng) ? -v : v);
}

/// Random bytes for every block of `q`, then finite f16 scales (d, dmin, m) in place.
/// Scales d, dmin in [2^lo, 2^hi) (Q5_1's m 8× larger).
template <class F, std::size_t R>
void fill_random_download_blocks(QuantTensor<F, R>& q, std::mt19937& rng, int lo = -7, int hi = -3) {
  using B = typename dtype_traits<F>::block_type;
  std::uniform_int_distribution<int> byte(0, 255);
  for (index_t b = 0; b < q.num_blocks(); ++b) {
    B& blk = q.blocks()[b];
    auto* p = reinterpret_cast<std::uint8_t*>(&blk);
    for (std::size_t i = 0; i < sizeof(B); ++i) p[i] = static_cast<std::uint8_t>(byte(rng));
    blk.d = random_scale(rng, lo, hi);
    if constexpr (requires { blk.dmin; }) blk.dmin = random_scale(rng, lo, hi);
    if constexpr (requires { blk.m; }) blk.m = random_scale(rng, lo + 3, hi + 3);
  }
}

/// |min| subtracted from (or, for Q5_1, added to) the values of chunk c (32 values) of block
/// `blk`: the larger of its two 16-value halves (0 for formats without a min).
template <class F>
[[nodiscard]] double chunk_min_abs(const typename dtype_traits<F>::block_type& blk, int c) {
  if constexpr (std::same_as<F, q5_1>) {
    return std::fabs(static_cast<double>(static_cast<float>(blk.m)));
  } else if constexpr (std::same_as<F, q2_K>) {
    const int n = c / 4, p = c % 4;
    const double dmin = std::fabs(static_cast<double>(static_cast<float>(blk.dmin)));
    return dmin * std::max(blk.scales[8 * n + 2 * p] >> 4, blk.scales[8 * n + 2 * p + 1] >> 4);
  } else if constexpr (std::same_as<F, q4_K> || std::same_as<F, q5_K>) {
    std::uint8_t sc = 0, mn = 0;
    precis::detail::scale_min_k4(c, blk.scales, sc, mn);
    return std::fabs(static_cast<double>(static_cast<float>(blk.dmin))) * mn;
  } else {
    return 0.0;
  }
}

}  // namespace precis::test
