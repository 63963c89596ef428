// tests/unit/nn/nn_test_support.hpp — random typed data, float64 views of tensors, and the
// dtype-derived tolerances the op tests state.
//
// Every op test compares precis' result with float64 math evaluated on the *same rounded
// inputs* (the tensor values widened exactly to double), so the only error measured is the op's
// own: its f32 accumulation and its final rounding to the output dtype. Tolerances are built
// from the unit roundoff u(D) = 2^-p (p = significand bits incl. the hidden one):
//   u(f32) = 2^-24, u(bf16) = 2^-8, u(f16) = 2^-11, u(f64) = 2^-53.
#pragma once

#include <cmath>    // std::ldexp, std::fabs
#include <cstddef>  // std::size_t
#include <random>   // std::mt19937, std::uniform_real_distribution
#include <sstream>  // std::ostringstream
#include <string>   // std::string
#include <vector>   // std::vector

#include <precis/core/dtype.hpp>       // dtype tags
#include <precis/core/scalar.hpp>      // precis::to_compute
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/ops/host_tensor.hpp>  // precis::HostTensor, const_view_t

namespace precis::test {

/// Unit roundoff of D: the largest relative error of one round-to-nearest into D.
template <class D>
inline constexpr double unit_roundoff = 0.0;
template <>
inline constexpr double unit_roundoff<f64> = 0x1p-53;
template <>
inline constexpr double unit_roundoff<f32> = 0x1p-24;
template <>
inline constexpr double unit_roundoff<f16> = 0x1p-11;
template <>
inline constexpr double unit_roundoff<bf16> = 0x1p-8;

/// A deterministic generator per test (fixed seed: failures reproduce).
inline std::mt19937 make_rng(unsigned seed) { return std::mt19937(seed); }

/// Random non-zero values: magnitude uniform in [lo, hi), random sign, rounded to D.
template <FloatDtype D, std::size_t R>
[[nodiscard]] Tensor<D, R> random_tensor(const extents_t<R>& extents, std::mt19937& rng, double lo = 0.125,
                                         double hi = 1.0) {
  Tensor<D, R> t(extents);
  std::uniform_real_distribution<double> mag(lo, hi);
  std::bernoulli_distribution neg(0.5);
  for (index_t i = 0; i < t.numel(); ++i) {
    const double v = neg(rng) ? -mag(rng) : mag(rng);
    t.data()[i] = from_compute<D>(static_cast<compute_t<D>>(v));
  }
  return t;
}

/// The values of a host tensor-like argument, widened exactly to double, in row-major order.
template <HostTensor X>
[[nodiscard]] std::vector<double> to_f64(const X& x) {
  using D = dtype_of<X>;
  const const_view_t<X> v = x;
  std::vector<double> out(static_cast<std::size_t>(v.numel()));
  for_each_offset(v, [&](index_t flat, index_t off) {
    if constexpr (FloatDtype<D>) out[static_cast<std::size_t>(flat)] = static_cast<double>(to_compute<D>(v.data()[off]));
    else out[static_cast<std::size_t>(flat)] = static_cast<double>(v.data()[off]);
  });
  return out;
}

/// Result of comparing `got` with `want` elementwise under per-element bounds `tol`.
struct Comparison {
  std::size_t violations = 0;
  std::string first;  // description of the first violation

  [[nodiscard]] bool ok() const noexcept { return violations == 0; }
};

/// |got[i] − want[i]| ≤ tol[i] for every i (NaN never passes).
[[nodiscard]] inline Comparison compare(const std::vector<double>& got, const std::vector<double>& want,
                                        const std::vector<double>& tol) {
  Comparison c;
  if (got.size() != want.size() || want.size() != tol.size()) {
    c.violations = 1;
    c.first = "size mismatch";
    return c;
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - want[i]);
    if (!(err <= tol[i])) {
      if (c.violations++ == 0) {
        std::ostringstream os;
        os << "element " << i << ": got " << got[i] << ", want " << want[i] << ", |err| " << err << " > tol " << tol[i];
        c.first = os.str();
      }
    }
  }
  return c;
}

/// A relative bound `rel · |want[i]|` for every element.
[[nodiscard]] inline std::vector<double> relative(const std::vector<double>& want, double rel) {
  std::vector<double> t(want.size());
  for (std::size_t i = 0; i < want.size(); ++i) t[i] = rel * std::fabs(want[i]);
  return t;
}

}  // namespace precis::test
