// precis/backends/cpu/activation.hpp — the CPU gated-MLP activations: nn/activation.hpp's
// SiluGate and ClampedSwiglu on separate gate/up or a fused gate_up (interleaved or halves), with
// xsimd batches along a row and oneTBB across rows.
//
//   namespace cpu = precis::backends::cpu;
//   Tensor<bf16, 2> a = cpu::glu<gate_up::interleaved>(ClampedSwiglu{}, gu);   // gpt-oss [T, 2880]
//   Tensor<bf16, 2> m = cpu::glu(SiluGate{}, gate, up);                        // Llama/Qwen [T, I]
//
// Type rules are the reference's (glu_input_is_activation; separate gate and up of one dtype,
// same_dtype_no_implicit_cast); the result has the input's dtype.
//
// Math per lane, in f32 like the reference, in the same operation order:
//   SiluGate        (g · 1/(1 + exp(−g))) · u
//   ClampedSwiglu   g' = min(limit, g), u' = min(limit, max(−limit, u))  (operand order keeps a
//                   NaN input NaN, as std::min/std::clamp do in the reference),
//                   (g' · 1/(1 + exp(−(α·g')))) · (u' + 1)
// with xsimd::exp in place of std::exp: the two differ by a few f32 ulps, which the tests bound
// (tests/unit/blocks/test_activation.cpp). A row's tail shorter than a batch goes through a
// padded batch, so every element sees the same vector arithmetic wherever it falls.
// Column layouts: separate and `halves` read two contiguous runs; `interleaved` de-interleaves
// 2·lanes values per batch (bf16: one (gate, up) pair is one 32-bit word — a shift and a mask;
// f32/f16: vpermt2ps / vpmovdw under AVX-512, a scalar split otherwise; vector_io.hpp).
//
// Rows are independent: oneTBB splits them (parallel_ranges) once a call has ≥ 2^18 outputs;
// results do not depend on threads. Inputs need a contiguous last axis (shape_error otherwise).
#pragma once

#include <algorithm>  // std::copy_n, std::fill_n
#include <cstddef>    // std::size_t

#include <precis/backends/cpu/arch.hpp>       // fbatch
#include <precis/backends/cpu/parallel.hpp>   // parallel_ranges
#include <precis/backends/cpu/vector_io.hpp>  // detail::load_f32, store_f32, load_f32_pairs, writable_host_view_of_rank
#include <precis/core/error.hpp>              // precis::shape_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>             // precis::Tensor
#include <precis/nn/activation.hpp>           // SiluGate, ClampedSwiglu, gate_up, rules
#include <precis/ops/host_tensor.hpp>         // precis::HostTensorOfRank, format_extents

namespace precis::backends::cpu {

namespace detail {

inline constexpr const char* glu_op = "cpu::glu";

/// The activation on lanes (see header comment for the operation order).
template <GatedActivation A>
struct vector_activation;

template <>
struct vector_activation<SiluGate> {
  explicit vector_activation(const SiluGate&) noexcept {}
  [[nodiscard]] fbatch operator()(const fbatch& g, const fbatch& u) const noexcept {
    const fbatch one(1.0f);
    const fbatch sigmoid = one / (one + xsimd::exp(-g));
    return (g * sigmoid) * u;
  }
};

template <>
struct vector_activation<ClampedSwiglu> {
  fbatch alpha, limit, neg_limit;
  explicit vector_activation(const ClampedSwiglu& a) noexcept
      : alpha(a.alpha.value()), limit(a.limit.value()), neg_limit(-a.limit.value()) {}
  [[nodiscard]] fbatch operator()(const fbatch& gate, const fbatch& up) const noexcept {
    const fbatch one(1.0f);
    const fbatch g = xsimd::min(limit, gate);                     // clamp(max = limit)
    const fbatch u = xsimd::min(limit, xsimd::max(neg_limit, up));  // clamp(−limit, limit)
    const fbatch sigmoid = one / (one + xsimd::exp(-(alpha * g)));
    return (g * sigmoid) * (u + one);
  }
};

/// One row of I outputs from gate/up runs (Paired = false: g [I] and u [I]; Paired = true:
/// gu [2I] interleaved, g = gu[0::2], u = gu[1::2]).
template <bool Paired, GatedActivation A, ActivationDtype D>
void glu_row(const vector_activation<A>& act, const storage_t<D>* g, const storage_t<D>* u, storage_t<D>* y,
             index_t inter) noexcept {
  constexpr index_t V = lanes;
  constexpr index_t step = Paired ? 2 : 1;  // gate-run storage values per output
  // Outputs [j, j + V) from gate values at gp and (separate runs) up values at up.
  const auto compute = [&](const storage_t<D>* gp, const storage_t<D>* up, storage_t<D>* yp) {
    fbatch gv, uv;
    if constexpr (Paired) {
      load_f32_pairs<D>(gp, gv, uv);
    } else {
      gv = load_f32<D>(gp);
      uv = load_f32<D>(up);
    }
    store_f32<D>(yp, act(gv, uv));
  };
  index_t j = 0;
  for (; j + V <= inter; j += V) {
    if constexpr (Paired) compute(g + step * j, nullptr, y + j);
    else compute(g + j, u + j, y + j);
  }
  if (j < inter) {
    // Tail through a padded batch (zeros are harmless inputs: exp(0) = 1).
    const index_t rest = inter - j;
    storage_t<D> gbuf[step * V] = {}, ubuf[V] = {}, ybuf[V] = {};
    std::copy_n(g + step * j, step * rest, gbuf);
    if constexpr (!Paired) std::copy_n(u + j, rest, ubuf);
    compute(gbuf, ubuf, ybuf);
    std::copy_n(ybuf, rest, y + j);
  }
}

template <class View>
void check_contiguous_rows(const char* what, const View& v) {
  PRECIS_CHECK(v.stride(1) == 1 || v.extent(1) <= 1, shape_error, "[", glu_op, "] ", what, " ",
               format_extents(v.extents()), " needs a contiguous last axis (stride ", v.stride(1), ")");
}

}  // namespace detail

/// act(gate, up) for separate gate [T, I] and up [T, I] of one dtype, into y [T, I].
template <GatedActivation A, HostTensorOfRank<2> G, HostTensorOfRank<2> U, class Y>
  requires glu_input_is_activation<dtype_of<G>> && same_dtype_no_implicit_cast<dtype_of<G>, dtype_of<U>> &&
           writable_host_view_of_rank<Y, 2> && same_dtype_no_implicit_cast<dtype_of<Y>, dtype_of<G>>
void glu_into(const A& act, const G& gate, const U& up, Y&& y) {
  using D = dtype_of<G>;
  const TensorView<const D, 2> g = gate, u = up;
  const TensorView<D, 2> out = y;
  PRECIS_CHECK(g.extents() == u.extents() && out.extents() == g.extents(), shape_error, "[", detail::glu_op,
               "] gate ", format_extents(g.extents()), ", up ", format_extents(u.extents()), " and y ",
               format_extents(out.extents()), " must have one shape");
  precis::detail::check_activation(detail::glu_op, act);
  detail::check_contiguous_rows("gate", g);
  detail::check_contiguous_rows("up", u);
  detail::check_contiguous_rows("y", out);
  const detail::vector_activation<A> vact(act);
  const index_t n_tok = g.extent(0), inter = g.extent(1);
  parallel_ranges(n_tok, 1, n_tok * inter, [&](index_t begin, index_t end) {
    for (index_t t = begin; t < end; ++t)
      detail::glu_row<false, A, D>(vact, g.data() + t * g.stride(0), u.data() + t * u.stride(0),
                                   out.data() + t * out.stride(0), inter);
  });
}

/// act(gate, up) for a fused gate_up [T, 2I] in layout L, into y [T, I].
template <GateUpLayout L, GatedActivation A, HostTensorOfRank<2> GU, class Y>
  requires glu_input_is_activation<dtype_of<GU>> && writable_host_view_of_rank<Y, 2> &&
           same_dtype_no_implicit_cast<dtype_of<Y>, dtype_of<GU>>
void glu_into(const A& act, const GU& gate_up, Y&& y) {
  using D = dtype_of<GU>;
  const TensorView<const D, 2> gu = gate_up;
  const TensorView<D, 2> out = y;
  PRECIS_CHECK(gu.extent(1) % 2 == 0, shape_error, "[", detail::glu_op, "<", L::name, ">] fused gate_up ",
               format_extents(gu.extents()), " has an odd number of columns");
  const index_t n_tok = gu.extent(0), inter = gu.extent(1) / 2;
  PRECIS_CHECK(out.extent(0) == n_tok && out.extent(1) == inter, shape_error, "[", detail::glu_op, "<", L::name,
               ">] y ", format_extents(out.extents()), " must be [", n_tok, ", ", inter, "] for gate_up ",
               format_extents(gu.extents()));
  precis::detail::check_activation(detail::glu_op, act);
  detail::check_contiguous_rows("gate_up", gu);
  detail::check_contiguous_rows("y", out);
  const detail::vector_activation<A> vact(act);
  parallel_ranges(n_tok, 1, n_tok * inter, [&](index_t begin, index_t end) {
    for (index_t t = begin; t < end; ++t) {
      const storage_t<D>* row = gu.data() + t * gu.stride(0);
      storage_t<D>* yr = out.data() + t * out.stride(0);
      if constexpr (std::same_as<L, gate_up::interleaved>) detail::glu_row<true, A, D>(vact, row, nullptr, yr, inter);
      else detail::glu_row<false, A, D>(vact, row, row + inter, yr, inter);
    }
  });
}

/// act(gate, up) for separate gate [T, I] and up [T, I] → a new [T, I] tensor.
template <GatedActivation A, HostTensorOfRank<2> G, HostTensorOfRank<2> U>
  requires glu_input_is_activation<dtype_of<G>> && same_dtype_no_implicit_cast<dtype_of<G>, dtype_of<U>>
[[nodiscard]] Tensor<dtype_of<G>, 2> glu(const A& act, const G& gate, const U& up) {
  const TensorView<const dtype_of<G>, 2> g = gate;
  Tensor<dtype_of<G>, 2> out(g.extents());  // [T, I]
  glu_into(act, g, up, out);
  return out;
}

/// act(gate, up) for a fused gate_up [T, 2I] in layout L → a new [T, I] tensor.
template <GateUpLayout L, GatedActivation A, HostTensorOfRank<2> GU>
  requires glu_input_is_activation<dtype_of<GU>>
[[nodiscard]] Tensor<dtype_of<GU>, 2> glu(const A& act, const GU& gate_up) {
  const TensorView<const dtype_of<GU>, 2> gu = gate_up;
  PRECIS_CHECK(gu.extent(1) % 2 == 0, shape_error, "[", detail::glu_op, "<", L::name, ">] fused gate_up ",
               format_extents(gu.extents()), " has an odd number of columns");
  Tensor<dtype_of<GU>, 2> out({gu.extent(0), gu.extent(1) / 2});  // [T, I]
  glu_into<L>(act, gu, out);
  return out;
}

}  // namespace precis::backends::cpu
