// precis/backends/cpu/moe.hpp — the CPU MoE expert compute, grouped by expert: each selected
// expert's weights are streamed once per batch (not once per token), through the CPU matmul.
//
//   namespace cpu = precis::backends::cpu;
//   const Routing r = TopKThenSoftmax{}(router.logits(x), 4);        // nn/router.hpp
//   Tensor<bf16, 2> y = cpu::moe_experts(experts, x, r);              // [T, H], == nn/moe.hpp's spec
//
// Why grouped: at decode an MoE layer is weight-bandwidth bound, and a per-token loop reads an
// expert once per token that picked it; at T = 64 with Qwen3's top-8 of 128 each active expert is
// picked by ~4 tokens, so the per-token loop would read ~4× the bytes. Here (per chunk of
// ≤ moe_token_chunk tokens):
//   1. bucket   the T·k (token, slot) assignments by expert, in token order (a counting sort):
//               expert e owns rows [off_e, off_e + n_e) of every grouped buffer below;
//   2. experts  one oneTBB task per active expert (largest groups first): gather its tokens'
//               rows of x [n_e, H], gate/up GEMM(s) → f32 [n_e, 2I], + bias, gated activation
//               (cpu::glu_into, xsimd) rounded to Act → h [n_e, I], down GEMM → f32 [n_e, H]. The GEMMs are
//               cpu::matmul_into (its GEMV on 4-row slices for n_e ≤ moe_sliced_gemv_max_rows,
//               its panel GEMM above), which parallelise over weight rows themselves — nested
//               TBB parallelism, so a decode step with 4 experts still uses every core;
//   3. combine  per token (TBB over tokens): out_t = Σ_j w_j·(y_{t,j} + b_down) in f32 in slot
//               order j = 0..k−1, rounded once to Act (xsimd).
// Rounding points are nn/moe.hpp's; the only differences from the reference are the f32
// summation orders inside the GEMMs and exp's last bits (xsimd::exp vs std::exp), which the
// tests bound. Every output element is computed by one fixed sequence of operations, and the
// CPU matmul is thread-count independent, so results do not depend on the number of threads.
//
// Weights: float stacks enter as cpu::WeightView (storage, any activation dtype), block stacks as
// QuantView<F, 2> (dequantized in registers by the GEMV/GEMM kernels). Each projection (gate, up
// or gate_up, down) reaches the grouped pass as a detail::expert_projection, its format erased,
// so the down stack may have its own format (llama.cpp's Q4_K_M: Q6_K down experts under Q4_K
// gate/up) and the kernels instantiated grow with the number of formats, not their product.
// Scratch: grouped buffers of chunk·k rows (x gather, gate/up, h, down output), allocated per
// call, uninitialised.
#pragma once

#include <algorithm>  // std::stable_sort, std::min, std::max, std::fill
#include <concepts>   // std::same_as
#include <cstddef>    // std::size_t
#include <cstdint>    // std::int32_t
#include <memory>     // std::unique_ptr, std::make_unique_for_overwrite
#include <numeric>    // std::iota
#include <variant>    // std::visit
#include <vector>     // std::vector

#include <oneapi/tbb/blocked_range.h>  // tbb::blocked_range
#include <oneapi/tbb/parallel_for.h>   // tbb::parallel_for
#include <xsimd/xsimd.hpp>             // xsimd::fma

#include <precis/backends/cpu/activation.hpp>  // glu_into (nn/activation.hpp's policies, xsimd)
#include <precis/backends/cpu/arch.hpp>      // fbatch
#include <precis/backends/cpu/matmul.hpp>    // matmul_into, detail::widen
#include <precis/backends/cpu/parallel.hpp>  // parallel_ranges, detail::float_buffer
#include <precis/backends/cpu/weights.hpp>   // WeightView
#include <precis/core/dtype.hpp>             // precis::ActivationDtype, BlockFormat
#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/nn/activation.hpp>          // GateUpLayout, gate_up::interleaved
#include <precis/nn/moe.hpp>                 // MoeExperts, ExpertStack, detail::check_moe_args
#include <precis/nn/router.hpp>              // precis::Routing
#include <precis/weights/any_experts.hpp>    // AnyMoeExperts, AnyExpertStack

namespace precis::backends::cpu {

/// Tokens per grouped pass: bounds the scratch at chunk·k·(2I + I/2 + H/2 + H) floats and keeps
/// each expert's weights read once per chunk (once per batch for T ≤ 256).
inline constexpr index_t moe_token_chunk = 256;

/// Groups of up to this many rows run the CPU matmul's GEMV (≤ decode_max_rows rows per call,
/// weights dequantized in registers) on successive 4-row slices instead of its panel GEMM, whose
/// f32 panel dequantize + pack costs more than re-streaming the expert at these sizes. Measured on
/// the reference Zen 4 (2 threads, bf16 x): mxfp4 [5760, 2880] at 8 / 16 / 32 rows 9.6 / 19 / 35 ms
/// sliced vs 21 / 30 / 53 ms panel GEMM; q8_0 [768, 2048] 1.9 / 3.1 / 4.1 vs 2.3 / 3.7 / 5.1 ms;
/// at 64 rows the GEMM wins. One expert's matrices (≤ 9 MB at gpt-oss size) stay in the L3
/// between slices, so DRAM still delivers each expert once per batch. Revisit when gemm.hpp
/// gains a small-M path.
inline constexpr index_t moe_sliced_gemv_max_rows = 32;

namespace detail {

/// Expert e of a stack as a CPU matmul weight [N, K].
template <class F>
[[nodiscard]] auto expert_weight(const ExpertStack<F>& s, index_t e) {
  if constexpr (BlockFormat<F>) return s.expert(e);  // QuantView<F, 2>
  else return WeightView<F>(s.expert(e));            // float storage, any activation dtype
}

/// y [n, N] = x [n, K]·Wᵀ in f32, through the GEMV in 4-row slices for n ≤ moe_sliced_gemv_max_rows.
template <ActivationDtype A, class W>
void expert_matmul(const TensorView<const A, 2>& x, const W& w, const TensorView<f32, 2>& y) {
  const index_t n = x.extent(0);
  if (n <= decode_max_rows || n > moe_sliced_gemv_max_rows) {
    matmul_into<f32>(x, w, y);
    return;
  }
  for (index_t r = 0; r < n; r += decode_max_rows) {
    const index_t m = std::min(decode_max_rows, n - r);
    matmul_into<f32>(x.slice(0, r, r + m), w, y.slice(0, r, r + m));
  }
}

/// Uninitialised storage for `n` values of dtype A, viewed as a [rows, cols] matrix.
template <ActivationDtype A>
struct act_buffer {
  std::unique_ptr<storage_t<A>[]> p;
  void resize(index_t n) { p = std::make_unique_for_overwrite<storage_t<A>[]>(static_cast<std::size_t>(n)); }
  [[nodiscard]] TensorView<A, 2> rows(index_t r0, index_t nr, index_t cols) const noexcept {
    return {p.get() + r0 * cols, {nr, cols}};
  }
};

/// One projection of an MoE layer's experts (gate, up, gate_up or down) with its storage format
/// erased: y [n, N] (f32) = x [n, K]·W_eᵀ for expert e, through expert_matmul. Points at the
/// stack, which must outlive it.
template <ActivationDtype A>
struct expert_projection {
  const void* stack = nullptr;
  void (*run)(const void*, index_t e, const TensorView<const A, 2>& x, const TensorView<f32, 2>& y) = nullptr;

  template <ExpertWeightFormat F>
  [[nodiscard]] static expert_projection of(const ExpertStack<F>& s) noexcept {
    return {&s, [](const void* p, index_t e, const TensorView<const A, 2>& x, const TensorView<f32, 2>& y) {
              expert_matmul(x, expert_weight(*static_cast<const ExpertStack<F>*>(p), e), y);
            }};
  }
  void operator()(index_t e, const TensorView<const A, 2>& x, const TensorView<f32, 2>& y) const { run(stack, e, x, y); }
};

/// What the grouped pass computes with, formats erased (the CPU twin of nn/moe.hpp's
/// moe_reference_args): gating, gate and up (for the interleaved layout `gate` is the one
/// gate_up projection, `up` unused), down, optional biases [E, 2I] / [E, H], geometry.
template <class G, ActivationDtype Act>
struct moe_args {
  G gating;
  expert_projection<Act> gate, up, down;
  const Tensor<Act, 2>* gate_up_bias = nullptr;
  const Tensor<Act, 2>* down_bias = nullptr;
  index_t n_experts = 0, hid = 0, inter = 0;
};

/// One chunk of tokens [t0, t0 + nt): bucket, experts, combine (see the header comment).
template <GateUpLayout C, class G, ActivationDtype Act, class XV>
void moe_chunk(const moe_args<G, Act>& ex, const XV& xv, const Routing& routing, index_t t0, index_t nt,
               TensorView<Act, 2> out, act_buffer<Act>& xg, float_buffer& gu, act_buffer<Act>& hb, float_buffer& yd) {
  const index_t k = routing.experts.extent(1), n_exp = ex.n_experts;
  const index_t hid = ex.hid, inter = ex.inter;
  const index_t rows = nt * k;  // assignments in this chunk

  // 1. bucket: counting sort of the (token, slot) pairs by expert, token order within an expert.
  std::vector<index_t> count(static_cast<std::size_t>(n_exp) + 1, 0);
  for (index_t t = 0; t < nt; ++t)
    for (index_t j = 0; j < k; ++j) ++count[static_cast<std::size_t>(routing.experts(t0 + t, j)) + 1];
  std::vector<index_t> off(count.size(), 0);  // off[e] = first grouped row of expert e
  for (std::size_t e = 1; e < count.size(); ++e) off[e] = off[e - 1] + count[e];
  std::vector<index_t> fill(off.begin(), off.end() - 1);
  std::vector<index_t> pos(static_cast<std::size_t>(rows));    // [nt, k] → grouped row
  std::vector<index_t> token(static_cast<std::size_t>(rows));  // grouped row → token (chunk-relative)
  for (index_t t = 0; t < nt; ++t)
    for (index_t j = 0; j < k; ++j) {
      const index_t r = fill[static_cast<std::size_t>(routing.experts(t0 + t, j))]++;
      pos[static_cast<std::size_t>(t * k + j)] = r;
      token[static_cast<std::size_t>(r)] = t;
    }
  std::vector<index_t> active;
  for (index_t e = 0; e < n_exp; ++e)
    if (count[static_cast<std::size_t>(e) + 1] > 0) active.push_back(e);
  std::stable_sort(active.begin(), active.end(), [&](index_t a, index_t b) {
    return count[static_cast<std::size_t>(a) + 1] > count[static_cast<std::size_t>(b) + 1];
  });

  // 2. experts: one task per active expert; its GEMMs parallelise further inside.
  const index_t gu_cols = 2 * inter;  // gate/up f32 rows: interleaved, or [gate | up]
  const auto run_expert = [&](index_t e) {
    const index_t r0 = off[static_cast<std::size_t>(e)], n = count[static_cast<std::size_t>(e) + 1];
    const TensorView<Act, 2> xe = xg.rows(r0, n, hid);  // [n, H] gathered activations
    for (index_t r = 0; r < n; ++r)
      for (index_t p = 0; p < hid; ++p) xe(r, p) = xv(t0 + token[static_cast<std::size_t>(r0 + r)], p);
    const TensorView<const Act, 2> xc = xe;
    float* gup = gu.data() + r0 * gu_cols;  // [n, 2I] f32
    if constexpr (std::same_as<C, gate_up::interleaved>) {  // one gate_up stack [E, 2I, H]
      ex.gate(e, xc, TensorView<f32, 2>(gup, {n, gu_cols}));
    } else {  // gate | up halves of each f32 row
      ex.gate(e, xc, TensorView<f32, 2>(gup, {n, inter}, {gu_cols, 1}));
      ex.up(e, xc, TensorView<f32, 2>(gup + inter, {n, inter}, {gu_cols, 1}));
    }
    // + bias (f32, in place: the bias row has the columns' layout), gated activation (cpu::glu_into,
    // xsimd, f32), one rounding to Act.
    if (ex.gate_up_bias != nullptr) {
      std::vector<float> b(static_cast<std::size_t>(gu_cols));
      for (index_t c = 0; c < gu_cols; ++c) b[static_cast<std::size_t>(c)] = widen<Act>((*ex.gate_up_bias)(e, c));
      for (index_t r = 0; r < n; ++r)
        for (index_t c = 0; c < gu_cols; ++c) gup[r * gu_cols + c] += b[static_cast<std::size_t>(c)];
    }
    const TensorView<const f32, 2> guv(gup, {n, gu_cols});  // [n, 2I]
    const TensorView<Act, 2> he = hb.rows(r0, n, inter);    // [n, I]
    if constexpr (std::same_as<Act, f32>) {
      glu_into<C>(ex.gating, guv, he);
    } else {
      Tensor<f32, 2> a({n, inter});  // [n, I] f32 activation values
      glu_into<C>(ex.gating, guv, a.view());
      for (index_t r = 0; r < n; ++r)
        for (index_t i = 0; i < inter; ++i) he(r, i) = precis::detail::from_f32<Act>(a(r, i));
    }
    const TensorView<const Act, 2> hc = he;
    ex.down(e, hc, TensorView<f32, 2>(yd.data() + r0 * hid, {n, hid}));
  };
  if (active.size() == 1) {
    run_expert(active[0]);
  } else {
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, active.size(), 1), [&](const tbb::blocked_range<std::size_t>& rr) {
      for (std::size_t i = rr.begin(); i != rr.end(); ++i) run_expert(active[i]);
    });
  }

  // 3. combine: out_t = Σ_j w_j·(y_{t,j} + b_down[e_j]), f32 in slot order, one rounding.
  parallel_ranges(nt, 1, nt * k * hid * 16, [&](index_t ta, index_t tb) {
    constexpr index_t W = static_cast<index_t>(fbatch::size);
    std::vector<float> acc(static_cast<std::size_t>(hid)), bias(static_cast<std::size_t>(hid), 0.0f);
    for (index_t t = ta; t < tb; ++t) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (index_t j = 0; j < k; ++j) {
        const index_t e = routing.experts(t0 + t, j);
        const float* y = yd.data() + pos[static_cast<std::size_t>(t * k + j)] * hid;
        if (ex.down_bias != nullptr)
          for (index_t n = 0; n < hid; ++n) bias[static_cast<std::size_t>(n)] = widen<Act>((*ex.down_bias)(e, n));
        const float w = routing.weights(t0 + t, j);
        const fbatch wv(w);
        index_t n = 0;
        for (; n + W <= hid; n += W) {
          const fbatch yv = fbatch::load_unaligned(y + n) + fbatch::load_unaligned(bias.data() + n);
          xsimd::fma(wv, yv, fbatch::load_unaligned(acc.data() + n)).store_unaligned(acc.data() + n);
        }
        for (; n < hid; ++n) acc[static_cast<std::size_t>(n)] += w * (y[n] + bias[static_cast<std::size_t>(n)]);
      }
      for (index_t n = 0; n < hid; ++n) out(t0 + t, n) = precis::detail::from_f32<Act>(acc[static_cast<std::size_t>(n)]);
    }
  });
}

}  // namespace detail

namespace detail {

/// The grouped pass over erased projections (every entry point below ends here).
template <GateUpLayout C, class G, ActivationDtype Act>
[[nodiscard]] Tensor<Act, 2> moe_grouped(const moe_args<G, Act>& a, const TensorView<const Act, 2>& xv,
                                         const Routing& routing) {
  const index_t n_tok = xv.extent(0), k = routing.experts.extent(1);
  const index_t hid = a.hid, inter = a.inter;
  Tensor<Act, 2> out({n_tok, hid});  // [T, H]
  if (n_tok == 0 || hid == 0) return out;
  const index_t max_rows = std::min(n_tok, moe_token_chunk) * k;
  act_buffer<Act> xg, hb;
  float_buffer gu, yd;
  xg.resize(max_rows * hid);        // [rows, H]  gathered x
  gu.resize(max_rows * 2 * inter);  // [rows, 2I] gate/up, f32
  hb.resize(max_rows * inter);      // [rows, I]  h
  yd.resize(max_rows * hid);        // [rows, H]  down output, f32
  for (index_t t0 = 0; t0 < n_tok; t0 += moe_token_chunk)
    moe_chunk<C>(a, xv, routing, t0, std::min(moe_token_chunk, n_tok - t0), out.view(), xg, gu, hb, yd);
  return out;
}

}  // namespace detail

/// out[t] = Σ_j w[t, j]·Expert_{e[t, j]}(x[t]), grouped by expert: x [T, H] → [T, H] of dtype Act.
/// Same contract and errors as the reference precis::moe_experts (nn/moe.hpp).
template <class G, class L, ActivationDtype Act, class D, HostTensorOfRank<2> X>
  requires moe_input_matches_activation<dtype_of<X>, Act>
[[nodiscard]] Tensor<Act, 2> moe_experts(const MoeExperts<G, L, Act, D>& ex, const X& x, const Routing& routing) {
  const TensorView<const Act, 2> xv = x;  // [T, H]
  precis::detail::check_moe_args("cpu::moe_experts", ex, xv, routing);
  using P = detail::expert_projection<Act>;
  detail::moe_args<G, Act> a{ex.gating_fn(), {}, {}, P::of(ex.down())};
  if constexpr (requires { ex.gate_up().gate_up; }) {
    a.gate = P::of(ex.gate_up().gate_up);
  } else {
    a.gate = P::of(ex.gate_up().gate);
    a.up = P::of(ex.gate_up().up);
  }
  if (ex.has_bias()) {
    a.gate_up_bias = &ex.gate_up_bias();
    a.down_bias = &ex.down_bias();
  }
  a.n_experts = ex.n_experts();
  a.hid = ex.hidden();
  a.inter = ex.intermediate();
  return detail::moe_grouped<typename L::columns>(a, xv, routing);
}

/// The same over run-time formats (weights/any_experts.hpp): each projection in its own format.
template <class G, ActivationDtype Act, HostTensorOfRank<2> X>
  requires moe_input_matches_activation<dtype_of<X>, Act>
[[nodiscard]] Tensor<Act, 2> moe_experts(const AnyMoeExperts<G, Act>& ex, const X& x, const Routing& routing) {
  const TensorView<const Act, 2> xv = x;  // [T, H]
  precis::detail::check_moe_args("cpu::moe_experts", ex, xv, routing);
  using P = detail::expert_projection<Act>;
  const auto proj = [](const AnyExpertStack& s) {
    return std::visit([](const auto& st) { return P::of(st); }, s.storage());
  };
  const bool one_stack = ex.gate_up_layout() == AnyMoeExperts<G, Act>::layout::interleaved;
  detail::moe_args<G, Act> a{ex.gating_fn(), proj(ex.gate()), one_stack ? P{} : proj(ex.up()), proj(ex.down())};
  if (ex.has_bias()) {
    a.gate_up_bias = &ex.gate_up_bias();
    a.down_bias = &ex.down_bias();
  }
  a.n_experts = ex.n_experts();
  a.hid = ex.hidden();
  a.inter = ex.intermediate();
  if (one_stack) return detail::moe_grouped<gate_up::interleaved>(a, xv, routing);
  return detail::moe_grouped<gate_up::halves>(a, xv, routing);
}

}  // namespace precis::backends::cpu
