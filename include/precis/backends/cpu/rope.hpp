// precis/backends/cpu/rope.hpp — the CPU RoPE: nn/rope.hpp's rotation by a RopeTable<f32>, both
// pair layouts and partial rotary, with xsimd batches per head and oneTBB across tokens × heads.
//
//   namespace cpu = precis::backends::cpu;
//   const auto table = RopeTable<f32>::from_positions(pos, inv_freq);   // [T, rd/2], f32
//   cpu::apply_rope_inplace(q.view(), table);                            // q [T, H, Dh], NeoX
//   Tensor<bf16, 3> k_rot = cpu::apply_rope<rope_layout::interleaved>(k, table);  // GGUF llama
//
// Type rules are the reference's: the table is RopeTable<f32> (rope_table_is_f32 — the only
// table type there is), x is an activation dtype (rope_input_is_activation), the result has x's
// dtype. The table is built by the reference (nn/rope.hpp) from integer positions; this header
// only applies it — cos/sin are computed once per token, not per head.
//
// Per head (pairs (a, b) with angle slot i, c = cos[t][i], s = sin[t][i], both f32):
//   a' = fms(a, c, b·s),  b' = fma(b, c, a·s)           rounded once to D by the store
//   half_split   a = x[i], b = x[i + rd/2]: contiguous runs of cos/sin and of both halves, so
//                lanes map straight onto slots.
//   interleaved  a = x[2i], b = x[2i+1]: per token the table row is expanded once to
//                cc = [c0 c0 c1 c1 …] and ss = [−s0 s0 −s1 s1 …] (per task), and a head is
//                x' = fma(x, cc, swap_pairs(x)·ss), one xsimd swizzle per batch.
// The scalar tails use the same fused expression (std::fma), so with FMA hardware (x86-64-v3
// and up, every -march=native build here) an element's value does not depend on where it falls
// in a batch; a portable SSE2 build's xsimd::fma rounds the product separately. Either way, and
// for the reference (x1·c − x2·s, contracted or not), the f32 result is within
// 2.01·u(f32)·(|a·c| + |b·s|) of the exact rotation before the final rounding (the bound in
// tests/unit/blocks); features [rd, Dh) pass through bit for bit.
//
// Rows (token, head) are independent: oneTBB splits them (parallel_ranges) once a call rotates
// ≥ 2^18 values; a decode step runs on the calling thread; results do not depend on threads.
// x needs a contiguous last axis (any token/head strides: a q slice of a fused qkv works);
// the in-place form rotates through the view, the out-of-place form writes a new tensor.
#pragma once

#include <cmath>    // std::fma
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uint32_t

#include <precis/backends/cpu/arch.hpp>       // fbatch
#include <precis/backends/cpu/parallel.hpp>   // parallel_ranges, detail::float_buffer
#include <precis/backends/cpu/vector_io.hpp>  // detail::load_f32, store_f32, writable_host_view_of_rank
#include <precis/core/error.hpp>              // precis::shape_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>             // precis::Tensor
#include <precis/nn/rope.hpp>                 // RopeTable, rope_layout, rope_input_is_activation
#include <precis/ops/host_tensor.hpp>         // precis::HostTensorOfRank, format_extents

namespace precis::backends::cpu {

namespace detail {

inline constexpr const char* rope_op = "cpu::apply_rope";

/// Lane k ↔ lane k ^ 1: (a0 b0 a1 b1 …) → (b0 a0 b1 a1 …).
struct swap_pairs_index {
  static constexpr std::uint32_t get(std::size_t index, std::size_t /*size*/) noexcept {
    return static_cast<std::uint32_t>(index ^ 1u);
  }
};

/// Rotates one head of `head_dim` values, x → y (y may equal x), by the slot angles c, s [half].
/// Interleaved heads read the pre-expanded cc, ss [2·half] instead of c, s.
template <rope_layout Layout, ActivationDtype D>
void rope_head(const storage_t<D>* x, storage_t<D>* y, const float* c, const float* s, index_t half,
               index_t head_dim) noexcept {
  constexpr index_t V = lanes;
  const index_t rd = 2 * half;
  if constexpr (Layout == rope_layout::half_split) {
    index_t i = 0;
    for (; i + V <= half; i += V) {
      const fbatch x1 = load_f32<D>(x + i), x2 = load_f32<D>(x + half + i);
      const fbatch cv = fbatch::load_unaligned(c + i), sv = fbatch::load_unaligned(s + i);
      const fbatch o1 = xsimd::fms(x1, cv, x2 * sv);  // x1·c − fl(x2·s), one rounding
      const fbatch o2 = xsimd::fma(x2, cv, x1 * sv);
      store_f32<D>(y + i, o1);
      store_f32<D>(y + half + i, o2);
    }
    for (; i < half; ++i) {
      const float x1 = to_compute<D>(x[i]), x2 = to_compute<D>(x[half + i]);
      y[i] = from_compute<D>(std::fma(x1, c[i], -(x2 * s[i])));
      y[half + i] = from_compute<D>(std::fma(x2, c[i], x1 * s[i]));
    }
  } else {
    // c = cc [rd] = (c0 c0 c1 c1 …), s = ss [rd] = (−s0 s0 −s1 s1 …).
    const auto swap = xsimd::make_batch_constant<ubatch, swap_pairs_index>();
    index_t j = 0;
    for (; j + V <= rd; j += V) {
      const fbatch v = load_f32<D>(x + j);
      const fbatch o = xsimd::fma(v, fbatch::load_unaligned(c + j), xsimd::swizzle(v, swap) * fbatch::load_unaligned(s + j));
      store_f32<D>(y + j, o);
    }
    for (; j < rd; j += 2) {  // rd and V are even: whole pairs remain
      const float a = to_compute<D>(x[j]), b = to_compute<D>(x[j + 1]);
      y[j] = from_compute<D>(std::fma(a, c[j], b * s[j]));      // s[j] = −sin
      y[j + 1] = from_compute<D>(std::fma(b, c[j + 1], a * s[j + 1]));
    }
  }
  if (y != x)
    for (index_t j = rd; j < head_dim; ++j) y[j] = x[j];  // pass-through features
}

/// The table row of token t expanded for adjacent pairs: cc = (c c), ss = (−s s) per slot.
inline void expand_pairs(const float* c, const float* s, index_t half, float* cc, float* ss) noexcept {
  for (index_t i = 0; i < half; ++i) {
    cc[2 * i] = c[i];
    cc[2 * i + 1] = c[i];
    ss[2 * i] = -s[i];
    ss[2 * i + 1] = s[i];
  }
}

/// x [T, H, Dh] → y [T, H, Dh] (y may be x).
template <rope_layout Layout, ActivationDtype D>
void apply_rope_views(const TensorView<const D, 3>& in, const TensorView<D, 3>& out, const RopeTable<f32>& table) {
  const index_t n_tok = in.extent(0), n_heads = in.extent(1), head_dim = in.extent(2);
  const index_t half = table.rotary_dim() / 2;
  PRECIS_CHECK(table.n_positions() == n_tok, shape_error, "[", rope_op, "] x ", format_extents(in.extents()), " has ",
               n_tok, " tokens but the RoPE table has ", table.n_positions(), " positions");
  PRECIS_CHECK(2 * half <= head_dim, shape_error, "[", rope_op, "] rotary_dim ", 2 * half, " exceeds head_dim ",
               head_dim);
  PRECIS_CHECK(out.extents() == in.extents(), shape_error, "[", rope_op, "] y ", format_extents(out.extents()),
               " differs from x ", format_extents(in.extents()));
  PRECIS_CHECK(in.stride(2) == 1 && out.stride(2) == 1, shape_error, "[", rope_op,
               "] the head axis of x and y must be contiguous (strides ", in.stride(2), ", ", out.stride(2), ")");
  const TensorView<const f32, 2> cos = table.cos(), sin = table.sin();  // [T, rd/2], contiguous
  const index_t rows = n_tok * n_heads;
  parallel_ranges(rows, 1, rows * 2 * half, [&](index_t begin, index_t end) {
    float_buffer expanded;
    if constexpr (Layout == rope_layout::interleaved) expanded.resize(4 * half);
    // Rows r = t·H + h of [begin, end), walked as (t, h) without a division per head.
    index_t t = begin / n_heads, h = begin % n_heads;
    for (index_t r = begin; r < end; ++t, h = 0) {
      const float* c = cos.data() + t * cos.stride(0);
      const float* s = sin.data() + t * sin.stride(0);
      if constexpr (Layout == rope_layout::interleaved) {
        expand_pairs(c, s, half, expanded.data(), expanded.data() + 2 * half);  // once per token
        c = expanded.data();
        s = expanded.data() + 2 * half;
      }
      const storage_t<D>* xt = in.data() + t * in.stride(0);
      storage_t<D>* yt = out.data() + t * out.stride(0);
      for (; h < n_heads && r < end; ++h, ++r)
        rope_head<Layout, D>(xt + h * in.stride(1), yt + h * out.stride(1), c, s, half, head_dim);
    }
  });
}

}  // namespace detail

/// Rotates x [T, H, Dh] in place by the table's row t for token t (x's dtype, computed in f32).
template <rope_layout Layout = rope_layout::half_split, class X>
  requires writable_host_view_of_rank<X, 3> && rope_input_is_activation<dtype_of<X>>
void apply_rope_inplace(X&& x, const RopeTable<f32>& table) {
  using D = dtype_of<X>;
  const TensorView<D, 3> v = x;
  detail::apply_rope_views<Layout, D>(v, v, table);
}

/// Rotates x [T, H, Dh] by the table's row t for token t into a new tensor of x's dtype.
template <rope_layout Layout = rope_layout::half_split, HostTensorOfRank<3> X>
  requires rope_input_is_activation<dtype_of<X>>
[[nodiscard]] Tensor<dtype_of<X>, 3> apply_rope(const X& x, const RopeTable<f32>& table) {
  using D = dtype_of<X>;
  const TensorView<const D, 3> in = x;
  Tensor<D, 3> out(in.extents());  // [T, H, Dh]
  detail::apply_rope_views<Layout, D>(in, out.view(), table);
  return out;
}

}  // namespace precis::backends::cpu
