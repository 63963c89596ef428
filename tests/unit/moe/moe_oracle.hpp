// tests/unit/moe/moe_oracle.hpp — expert stacks of every format built from one f32 master, and
// the float64 oracle of Σ_j w_j·Expert_{e_j}(x) with a per-element error bound for the f32 paths.
//
// The oracle is evaluated in double on the values the implementations are *given*: x widened
// exactly, weights as the scalar spec dequantizes them (dequantize<f32>, exact) or the f32/bf16
// values widened, biases widened, routing weights (f32) widened. Its h is *not* rounded to Act:
// the bound below contains that rounding. With u = 2^-24 (f32), γ(n) = n·u / (1 − n·u)
// (Higham §3.1: an f32 dot product of n terms, any order, with or without FMAs, errs by at most
// γ(n)·Σ|x·w|; block formats add one scale multiply per block and one sum over blocks, and the
// bias add is one more rounding — γ(K + 4) covers every kernel path):
//
//   g, u      εg = γ(H + 4)·(Σ|x·w_gate| + |b_gate|), εu likewise
//   a = G(g)·U(u), G = silu or min(·, L)·σ(α·min(·, L)), U = u or clamp(u, ±L) + 1:
//             |G'| ≤ 1.1 (max of d/dy y·σ(y) = 1.0998), |U'| ≤ 1, and the f32 evaluation
//             (one exp — std::exp or xsimd::exp, each within 2 ulp — and four roundings)
//             δa = |G|·εu + (|U| + εu)·1.1·εg + 16·u·|a|
//   h         δh = δa + u(Act)·(|a| + δa)            (one rounding to Act; none for f32)
//   y_n       δy = Σ_i |D_ni|·δh_i + γ(I + 4)·(Σ_i |D_ni|·(|a_i| + δh_i) + |b_down|)
//   out_t     δ = Σ_j |w_j|·δy_j + γ(2k)·Σ_j |w_j|·(|y_j| + δy_j), then + u(Act)·(|out| + δ)
// Two implementations each within δ of the exact value differ by at most 2δ.
#pragma once

#include <cmath>        // std::fabs, std::exp
#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <vector>       // std::vector

#include <precis/core/cast.hpp>           // precis::cast
#include <precis/nn/activation.hpp>       // precis::SiluGate, ClampedSwiglu
#include <precis/nn/moe.hpp>              // precis::ExpertStack, expert_stack
#include <precis/nn/router.hpp>           // precis::Routing
#include <precis/quant/block_formats.hpp>  // precis::download_format
#include <precis/quant/dequantize.hpp>    // precis::dequantize
#include <precis/quant/quant_tensor.hpp>  // precis::QuantTensor
#include <precis/quant/quantize.hpp>      // precis::quantize

#include "unit/nn/nn_test_support.hpp"  // random_tensor, to_f64, compare, unit_roundoff
#include "unit/quant/random_download_blocks.hpp"  // fill_random_download_blocks

namespace precis::test {

template <class Fmt, bool Block = BlockFormat<Fmt>>
struct owning_stack {
  using type = Tensor<Fmt, 3>;
};
template <class Fmt>
struct owning_stack<Fmt, true> {
  using type = QuantTensor<Fmt, 3>;
};

/// A stack [E, N, K] stored in format Fmt, made from an f32 master, and its exact values.
template <class Fmt>
struct TestStack {
  typename owning_stack<Fmt>::type w;
  std::vector<double> values;  // [E, N, K] row-major, what the implementations compute with
  extents_t<3> extents{};

  /// A GGUF download format (Q4_K, Q6_K …: no reference quantizer) gets random blocks of the
  /// master's shape (finite scales of magnitude 2^lo..2^hi, random codes), not the master's values.
  TestStack(const extents_t<3>& ext, std::mt19937& rng, int lo, int hi)
    requires download_format<Fmt>
      : w(ext), extents(ext) {
    fill_random_download_blocks(w, rng, lo, hi);
    values = to_f64(dequantize<f32>(w));
  }
  explicit TestStack(const Tensor<f32, 3>& master) : extents(master.extents()) {
    if constexpr (BlockFormat<Fmt>) {
      w = quantize<Fmt>(master);
      values = to_f64(dequantize<f32>(w));
    } else if constexpr (std::same_as<Fmt, f32>) {
      w = master.clone();
      values = to_f64(w);
    } else {
      w = cast<Fmt>(master);
      values = to_f64(w);
    }
  }
  [[nodiscard]] ExpertStack<Fmt> stack() const { return expert_stack(w); }
  [[nodiscard]] double at(index_t e, index_t n, index_t k) const {
    return values[static_cast<std::size_t>((e * extents[1] + n) * extents[2] + k)];
  }
};

/// The gated activation's two factors in double: a = G(g)·U(u).
struct Factors {
  double g, u;
};
[[nodiscard]] inline Factors factors(const SiluGate&, double g, double u) {
  return {g / (1.0 + std::exp(-g)), u};
}
[[nodiscard]] inline Factors factors(const ClampedSwiglu& s, double g, double u) {
  const double lim = static_cast<double>(s.limit.value()), alpha = static_cast<double>(s.alpha.value());
  const double m = g < lim ? g : lim;
  const double lin = u < -lim ? -lim : (u > lim ? lim : u);
  return {m / (1.0 + std::exp(-alpha * m)), lin + 1.0};
}

/// The experts' exact values in the oracle's terms (gate/up de-interleaved).
struct ExpertsF64 {
  index_t n_experts = 0, hidden = 0, inter = 0;
  std::vector<double> gate, up;           // [E, I, H]
  std::vector<double> down;               // [E, H, I]
  std::vector<double> bgate, bup, bdown;  // [E, I], [E, I], [E, H]; empty: no bias
};

struct Oracle {
  std::vector<double> value, tol;  // [T, H]
};

[[nodiscard]] inline double gamma_f32(index_t n) {
  const double nu = static_cast<double>(n) * 0x1p-24;
  return nu / (1.0 - nu);
}

/// Σ_j w_j·Expert_{e_j}(x_t) for every token, with the bound of the header comment.
/// `u_act` is the unit roundoff of Act's roundings (0 for f32: nothing is rounded).
template <class G>
[[nodiscard]] Oracle moe_oracle(const std::vector<double>& x, index_t n_tok, const ExpertsF64& ex,
                                const Routing& routing, const G& gating, double u_act) {
  const index_t hid = ex.hidden, inter = ex.inter, k = routing.experts.extent(1);
  const double u = 0x1p-24;
  const bool bias = !ex.bdown.empty();
  Oracle o{std::vector<double>(static_cast<std::size_t>(n_tok * hid)), std::vector<double>(static_cast<std::size_t>(n_tok * hid))};
  std::vector<double> a(static_cast<std::size_t>(inter)), da(static_cast<std::size_t>(inter));
  for (index_t t = 0; t < n_tok; ++t) {
    std::vector<double> acc(static_cast<std::size_t>(hid), 0.0), dacc(acc), mag(acc);
    for (index_t j = 0; j < k; ++j) {
      const index_t e = routing.experts(t, j);
      const double w = static_cast<double>(routing.weights(t, j));
      for (index_t i = 0; i < inter; ++i) {
        double g = 0, uu = 0, mg = 0, mu = 0;
        for (index_t p = 0; p < hid; ++p) {
          const double xv = x[static_cast<std::size_t>(t * hid + p)];
          const double wg = ex.gate[static_cast<std::size_t>((e * inter + i) * hid + p)];
          const double wu = ex.up[static_cast<std::size_t>((e * inter + i) * hid + p)];
          g += xv * wg;
          uu += xv * wu;
          mg += std::fabs(xv * wg);
          mu += std::fabs(xv * wu);
        }
        if (bias) {
          g += ex.bgate[static_cast<std::size_t>(e * inter + i)];
          uu += ex.bup[static_cast<std::size_t>(e * inter + i)];
          mg += std::fabs(ex.bgate[static_cast<std::size_t>(e * inter + i)]);
          mu += std::fabs(ex.bup[static_cast<std::size_t>(e * inter + i)]);
        }
        const double eg = gamma_f32(hid + 4) * mg, eu = gamma_f32(hid + 4) * mu;
        const Factors f = factors(gating, g, uu);
        const double av = f.g * f.u;
        const double d = std::fabs(f.g) * eu + (std::fabs(f.u) + eu) * 1.1 * eg + 16 * u * std::fabs(av);
        a[static_cast<std::size_t>(i)] = av;
        da[static_cast<std::size_t>(i)] = d + u_act * (std::fabs(av) + d);
      }
      for (index_t n = 0; n < hid; ++n) {
        double y = 0, dy = 0, my = 0;
        for (index_t i = 0; i < inter; ++i) {
          const double wd = ex.down[static_cast<std::size_t>((e * hid + n) * inter + i)];
          y += wd * a[static_cast<std::size_t>(i)];
          dy += std::fabs(wd) * da[static_cast<std::size_t>(i)];
          my += std::fabs(wd) * (std::fabs(a[static_cast<std::size_t>(i)]) + da[static_cast<std::size_t>(i)]);
        }
        if (bias) {
          y += ex.bdown[static_cast<std::size_t>(e * hid + n)];
          my += std::fabs(ex.bdown[static_cast<std::size_t>(e * hid + n)]);
        }
        dy += gamma_f32(inter + 4) * my;
        acc[static_cast<std::size_t>(n)] += w * y;
        dacc[static_cast<std::size_t>(n)] += std::fabs(w) * dy;
        mag[static_cast<std::size_t>(n)] += std::fabs(w) * (std::fabs(y) + dy);
      }
    }
    for (index_t n = 0; n < hid; ++n) {
      const auto s = static_cast<std::size_t>(n);
      const double d = dacc[s] + gamma_f32(2 * k) * mag[s];
      o.value[static_cast<std::size_t>(t * hid + n)] = acc[s];
      o.tol[static_cast<std::size_t>(t * hid + n)] = d + u_act * (std::fabs(acc[s]) + d);
    }
  }
  return o;
}

/// Unit roundoff of the roundings to Act (f32 values are never rounded again: 0).
template <class Act>
inline constexpr double act_roundoff = std::same_as<Act, f32> ? 0.0 : unit_roundoff<Act>;

}  // namespace precis::test
