// tests/unit/backends/backend_test_support.hpp — weights of every format built from one f32
// master, the float64 reference of x·Wᵀ, and the error bounds the CPU matmul tests state.
//
// The reference is computed in float64 from the values the kernel is *given*: the activations
// as stored (bf16/f32 widened exactly) and the weights as the scalar spec dequantizes them
// (quant/block_reference.hpp through dequantize<f32>, or the bf16/f16 values widened exactly).
// So the only error measured is the kernel's own. Bounds (u(D) = 2^-p, p = significand bits):
//
//   f32 accumulation of K products, any order, with FMAs (Higham §3.1, γ_K ≤ (K+1)·u for Ku < 1)
//       |ŝ − s| ≤ (K + 1)·u(f32)·Σ_k |x_k|·|w_k|ᵉᶠᶠ
//   where |w|ᵉᶠᶠ = |w|, except q4_1, whose kernels use w = q·d + m as d·Σq·x + m·Σx (the two
//   partial sums have magnitudes ≤ |q·d|·|x| and |m|·|x|, and |q·d| ≤ |w| + |m|): |w| + 2|m|.
//   q8 activations add the quantization of x (q8_activation.hpp): each x_k is replaced by q·d
//   with |Δx_k| ≤ d_b·(1/2 + 2^-16), so  + Σ_b d_b·(1/2 + 2^-16)·Σ_{k∈b} |w_k|.
//   a bias adds |b| to the magnitude; a bf16 output adds its one rounding, u(bf16) = 2^-8 of the
//   result: tol = e + u(Out)·(|s| + e), e the f32 bound above.
#pragma once

#include <algorithm>    // std::max
#include <bit>          // std::bit_cast
#include <cstdint>      // std::uint32_t
#include <cmath>        // std::fabs
#include <cstddef>      // std::size_t
#include <random>       // std::mt19937
#include <sstream>      // std::ostringstream
#include <string>       // std::string
#include <type_traits>  // std::is_same_v
#include <utility>      // std::forward
#include <vector>       // std::vector

#include <precis/backends/cpu/matmul.hpp>  // precis::backends::cpu
#include <precis/core/cast.hpp>            // precis::cast
#include <precis/core/dtype.hpp>           // dtype tags
#include <precis/core/scalar.hpp>          // precis::to_compute
#include <precis/core/tensor.hpp>          // precis::Tensor
#include <precis/quant/dequantize.hpp>     // precis::dequantize
#include <precis/quant/quant_tensor.hpp>   // precis::QuantTensor
#include <precis/quant/quantize.hpp>       // precis::quantize

#include "../quant/random_download_blocks.hpp"  // fill_random_download_blocks, chunk_min_abs

namespace precis::test {

namespace cpu_backend = precis::backends::cpu;

template <class D>
inline constexpr double unit_roundoff = 0.0;
template <>
inline constexpr double unit_roundoff<f32> = 0x1p-24;
template <>
inline constexpr double unit_roundoff<bf16> = 0x1p-8;
template <>
inline constexpr double unit_roundoff<f16> = 0x1p-11;

/// Random non-zero values, magnitude in [0.125, 1), random sign, rounded once to D.
template <class D, std::size_t R>
[[nodiscard]] Tensor<D, R> random_tensor(const extents_t<R>& extents, std::mt19937& rng) {
  Tensor<D, R> t(extents);
  std::uniform_real_distribution<float> mag(0.125f, 1.0f);
  std::bernoulli_distribution neg(0.5);
  for (index_t i = 0; i < t.numel(); ++i) {
    const float v = neg(rng) ? -mag(rng) : mag(rng);
    if constexpr (std::is_same_v<D, f32>) t.data()[i] = v;
    else t.data()[i] = storage_t<D>(v);
  }
  return t;
}

/// Values of a host tensor widened exactly to double, row-major.
template <class X>
[[nodiscard]] std::vector<double> to_f64(const X& x) {
  using D = dtype_of<X>;
  const TensorView<const D, rank_of<X>> v = x;
  std::vector<double> out(static_cast<std::size_t>(v.numel()));
  for_each_offset(v, [&](index_t flat, index_t off) {
    out[static_cast<std::size_t>(flat)] = static_cast<double>(to_compute<D>(v.data()[off]));
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Weight formats: one f32 master → the stored weight, its reference values and |w|ᵉᶠᶠ
// ---------------------------------------------------------------------------------------------

/// How a weight of format Fmt is held: Tensor<D, 2> for a float dtype, QuantTensor otherwise.
template <class Fmt>
struct stored_weight {
  using type = QuantTensor<Fmt, 2>;
};
template <class Fmt>
  requires ElementDtype<Fmt>
struct stored_weight<Fmt> {
  using type = Tensor<Fmt, 2>;
};

/// A weight of format `Fmt` (a float dtype or a BlockFormat) made from an f32 master [N, K].
template <class Fmt>
struct TestWeight {
  static constexpr bool is_float = ElementDtype<Fmt>;
  typename stored_weight<Fmt>::type stored;  // [N, K] in format Fmt
  std::vector<double> values;  // [N, K] the values the kernel multiplies with
  std::vector<double> weff;    // [N, K] |w|ᵉᶠᶠ of the bound
  index_t n = 0, k = 0;

  explicit TestWeight(const Tensor<f32, 2>& master) : n(master.extent(0)), k(master.extent(1)) {
    if constexpr (is_float) {
      if constexpr (std::is_same_v<Fmt, f32>) stored = master.clone();
      else stored = cast<Fmt>(master);
      values = to_f64(stored);
    } else if constexpr (reference_quantizable<Fmt>) {
      stored = quantize<Fmt>(master);
      values = to_f64(dequantize<f32>(stored));
    } else {
      // A download format: random blocks (no quantizer), seeded from the master's first value.
      std::mt19937 rng(std::bit_cast<std::uint32_t>(master.numel() > 0 ? master.data()[0] : 0.0f));
      stored = QuantTensor<Fmt, 2>(master.extents());
      fill_random_download_blocks(stored, rng);
      values = to_f64(dequantize<f32>(stored));
    }
    weff.resize(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) weff[i] = std::fabs(values[i]);
    if constexpr (!is_float && !reference_quantizable<Fmt>) {
      // dl·q − ml (+ m for Q5_1) may round as one FMA in the kernels: relative to |dl·q| + |ml|
      // ≤ |w| + 2|ml|.
      constexpr index_t cpb = static_cast<index_t>(dtype_traits<Fmt>::block_size) / 32;
      for (index_t c = 0; c < stored.numel() / 32; ++c) {
        const double m = chunk_min_abs<Fmt>(stored.blocks()[c / cpb], static_cast<int>(c % cpb));
        for (index_t j = 0; j < 32; ++j) weff[static_cast<std::size_t>(c * 32 + j)] += 2 * m;
      }
    }
    if constexpr (std::is_same_v<Fmt, q4_1>) {
      for (index_t b = 0; b < stored.num_blocks(); ++b) {
        const double m = std::fabs(static_cast<double>(static_cast<float>(stored.blocks()[b].m)));
        for (index_t j = 0; j < 32; ++j) weff[static_cast<std::size_t>(b * 32 + j)] += 2 * m;
      }
    }
  }
};

/// Calls `f(weight argument)` the way a caller with activations of dtype A passes it: a float
/// weight of A's own dtype as the tensor, any other float weight through as_weight (the named
/// mixed pair), a block weight as the QuantTensor (`as_view`: its QuantView).
template <class A, class Fmt, class F>
decltype(auto) with_weight(const TestWeight<Fmt>& w, bool as_view, F&& f) {
  if constexpr (TestWeight<Fmt>::is_float) {
    if constexpr (std::is_same_v<A, Fmt>) return f(w.stored);
    else return f(cpu_backend::as_weight(w.stored));
  } else {
    if (as_view) return f(w.stored.view());
    return f(w.stored);
  }
}

// ---------------------------------------------------------------------------------------------
// Reference and comparison
// ---------------------------------------------------------------------------------------------

struct Reference {
  std::vector<double> want;   // [M, N]
  std::vector<double> mag;    // [M, N] Σ|x|·|w|ᵉᶠᶠ (+ |b|)
  std::vector<double> extra;  // [M, N] q8-activation quantization bound (0 otherwise)
};

/// x [M, K] (float64 values), W [N, K], optional bias [N]; `xq_scale` [M, K/32] the q8 block
/// scales d when x is quantized (empty otherwise).
[[nodiscard]] inline Reference reference(const std::vector<double>& x, index_t m, index_t k,
                                         const std::vector<double>& w, const std::vector<double>& weff, index_t n,
                                         const std::vector<double>* bias, const std::vector<double>& xq_scale = {}) {
  Reference r;
  const auto sz = static_cast<std::size_t>(m * n);
  r.want.assign(sz, 0.0);
  r.mag.assign(sz, 0.0);
  r.extra.assign(sz, 0.0);
  for (index_t i = 0; i < m; ++i) {
    for (index_t j = 0; j < n; ++j) {
      double s = 0, mag = 0, extra = 0;
      for (index_t p = 0; p < k; ++p) {
        const double xv = x[static_cast<std::size_t>(i * k + p)];
        const double wv = w[static_cast<std::size_t>(j * k + p)];
        s += xv * wv;
        mag += std::fabs(xv) * weff[static_cast<std::size_t>(j * k + p)];
        if (!xq_scale.empty())
          extra += xq_scale[static_cast<std::size_t>(i * (k / 32) + p / 32)] * (0.5 + 0x1p-16) * std::fabs(wv);
      }
      if (bias != nullptr) {
        s += (*bias)[static_cast<std::size_t>(j)];
        mag += std::fabs((*bias)[static_cast<std::size_t>(j)]);
      }
      const auto e = static_cast<std::size_t>(i * n + j);
      r.want[e] = s;
      r.mag[e] = mag;
      r.extra[e] = extra;
    }
  }
  return r;
}

struct Comparison {
  std::size_t violations = 0;
  double worst_ratio = 0;  // max |err| / tol
  std::string first;
  [[nodiscard]] bool ok() const noexcept { return violations == 0; }
};

/// got (Out values, row-major [M, N]) against the reference under the header's bound.
template <class Out>
[[nodiscard]] Comparison compare(const std::vector<double>& got, const Reference& r, index_t k, index_t n) {
  Comparison c;
  for (std::size_t e = 0; e < r.want.size(); ++e) {
    const double accum = static_cast<double>(k + 1) * unit_roundoff<f32> * r.mag[e] + r.extra[e];
    const double tol = accum + unit_roundoff<Out> * (std::fabs(r.want[e]) + accum);
    const double err = std::fabs(got[e] - r.want[e]);
    if (tol > 0) c.worst_ratio = std::max(c.worst_ratio, err / tol);
    if (!(err <= tol)) {
      if (c.violations++ == 0) {
        std::ostringstream os;
        os << "y(" << static_cast<index_t>(e) / n << ", " << static_cast<index_t>(e) % n << ") = " << got[e]
           << ", reference " << r.want[e] << ", |err| " << err << " > tol " << tol;
        c.first = os.str();
      }
    }
  }
  return c;
}

}  // namespace precis::test
