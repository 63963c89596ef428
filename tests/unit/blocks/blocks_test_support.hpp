// tests/unit/blocks/blocks_test_support.hpp — what the block tests share: the nn test support
// (random non-zero data, float64 views, compare, unit roundoff), random shapes and positions,
// the summation constant γ_n, correct rounding to D for rounding-aware checks, and bit-for-bit
// tensor comparison.
//
// Every comparison is against float64 math evaluated on the *stored* inputs (the test's tensors
// widened exactly), so the only error measured is the op's own, and each bound is derived from
// u(D) in the test that states it. CPU-kernel-vs-reference bounds follow by the triangle
// inequality: |cpu − ref| ≤ |cpu − exact| + |ref − exact|.
#pragma once

#include <concepts>  // std::same_as
#include <cstddef>   // std::size_t
#include <cstdint>   // std::int64_t
#include <cstring>   // std::memcmp
#include <random>    // std::mt19937, std::uniform_int_distribution

#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/numeric/round_to_odd.hpp>  // precis::f64_to_f32_round_to_odd

#include "unit/nn/nn_test_support.hpp"  // random_tensor, to_f64, compare, relative, unit_roundoff

namespace precis::test {

/// γ_n = n·u / (1 − n·u) for f32 (Higham §3.1): the relative error bound of a sum of n
/// non-negative f32 terms (each product rounded once, or fused), in any order.
[[nodiscard]] inline double gamma_f32(double n) {
  const double nu = n * unit_roundoff<f32>;
  return nu / (1.0 - nu);
}

/// v correctly rounded (nearest even) to D and widened back to double.
template <class D>
[[nodiscard]] double round_d(double v) {
  if constexpr (std::same_as<D, f32>) return static_cast<double>(static_cast<float>(v));
  else return static_cast<double>(to_compute<D>(storage_t<D>(f64_to_f32_round_to_odd(v))));
}

/// Whether `got` is a possible D rounding of a value within [v − e, v + e] (rounding is
/// monotone, so the possible results are the D values between round_D(v − e) and round_D(v + e)).
template <class D>
[[nodiscard]] bool within_rounding(double got, double v, double e) {
  return got >= round_d<D>(v - e) && got <= round_d<D>(v + e);
}

/// A uniform integer in [lo, hi].
[[nodiscard]] inline index_t uniform_index(std::mt19937& rng, index_t lo, index_t hi) {
  return std::uniform_int_distribution<index_t>(lo, hi)(rng);
}

/// Integer positions [n] in [0, max_pos].
[[nodiscard]] inline Tensor<i64, 1> random_positions(index_t n, std::mt19937& rng, std::int64_t max_pos) {
  Tensor<i64, 1> p({n});
  std::uniform_int_distribution<std::int64_t> d(0, max_pos);
  for (index_t i = 0; i < n; ++i) p(i) = d(rng);
  return p;
}

/// True when two tensors of one dtype hold the same bits in row-major order (both contiguous).
template <class A, class B>
[[nodiscard]] bool same_bits(const A& a, const B& b) {
  return a.extents() == b.extents() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

}  // namespace precis::test
