// precis/backends/reference/backend.hpp — backends::Reference: the Backend concept over the scalar
// reference ops (ops/, nn/), one loop nest per op, single-threaded. It is the math spec made
// runnable: every fixture model runs on it in the conformance tests, and every other backend
// (backends::Cpu, CUDA) is diffed against it op by op and model by model. It is slow on purpose
// (no blocking, no SIMD, no threads); use it for checking, never for speed.
//
// Ops and the reference each one calls:
//   embed      weights/any_weight.hpp embed_rows (a gather; float rows converted once,
//              block rows dequantized exactly)
//   rms_norm   nn/norm.hpp rms_norm (sequential f32 Σx², the cast order as a policy)
//   linear     below: each weight row dequantized to f32 (exact for every stored format), dot
//              products with the widened activations summed in f32 in index order, the bias
//              added, one rounding to the output dtype. With activation_quantization::q8_blocks
//              the activations are first rounded through 8-bit blocks of 32 (d = amax/127, q =
//              round-half-even(x/d) clamped to ±127: backends/cpu/q8_activation.hpp's rule), and
//              the dot is taken in f32 over q·d — the same values the integer kernels multiply.
//   rope       nn/rope.hpp apply_rope (written back into x)
//   attend     nn/attention.hpp reference_attention over the cached sequence (per sequence for a
//              batched decode); KV appends are the cache's own (HostBackend)
//   glu        nn/activation.hpp glu
//   add        ops/elementwise.hpp add (written back into x)
//   moe        nn/moe.hpp moe_experts (token by token, expert by expert)
#pragma once

#include <algorithm>  // std::clamp, std::max
#include <cmath>      // std::fabs, std::nearbyint, std::isfinite
#include <concepts>   // std::same_as
#include <optional>   // std::optional
#include <span>       // std::span
#include <type_traits>  // std::decay_t
#include <utility>    // std::forward
#include <variant>    // std::visit
#include <vector>     // std::vector

#include <precis/backends/backend.hpp>       // Backend (checked below)
#include <precis/backends/host_backend.hpp>  // HostBackend
#include <precis/core/error.hpp>             // shape_error, range_error
#include <precis/core/scalar.hpp>            // to_compute, from_compute
#include <precis/nn/activation.hpp>          // glu
#include <precis/nn/attention.hpp>           // reference_attention
#include <precis/nn/moe.hpp>                 // moe_experts
#include <precis/nn/norm.hpp>                // rms_norm
#include <precis/nn/rope.hpp>                // apply_rope
#include <precis/ops/elementwise.hpp>        // add
#include <precis/ops/matmul.hpp>             // operand_dtype, resolve_out_t
#include <precis/quant/dequantize.hpp>       // dequantize_row

namespace precis::backends {

namespace detail {

/// Row j of a stored weight as f32 values (exact: widening or block dequantization).
template <class W>
void weight_row_f32(const W& w, index_t j, std::span<float> out) {
  if constexpr (requires { w.view(); }) {
    using D = typename W::storage_dtype;
    const TensorView<const D, 2> v = w.view();
    for (index_t p = 0; p < v.extent(1); ++p) out[static_cast<std::size_t>(p)] = static_cast<float>(to_compute<D>(v(j, p)));
  } else {
    Tensor<f32, 1> row({w.extent(1)});
    dequantize_row<f32>(w[j], row.view());
    for (index_t p = 0; p < row.extent(0); ++p) out[static_cast<std::size_t>(p)] = row(p);
  }
}

/// One row of activations rounded through 8-bit blocks of 32 (the q8_blocks rule, header comment).
inline void q8_round_row(std::span<float> x) {
  for (std::size_t b = 0; b + 32 <= x.size(); b += 32) {
    float amax = 0.0f;
    for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
    const float d = amax / 127.0f;
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    for (std::size_t j = 0; j < 32; ++j) x[b + j] = std::clamp(std::nearbyint(x[b + j] * id), -127.0f, 127.0f) * d;
  }
}

}  // namespace detail

class Reference : public HostBackend<Reference> {
  friend class HostBackend<Reference>;

 public:
  Reference() = default;
  /// Accepts a thread count for symmetry with Cpu; the reference is single-threaded.
  explicit Reference(int /*n_threads*/) {}

  [[nodiscard]] static constexpr const char* name() noexcept { return "reference"; }

  template <class F>
  decltype(auto) execute(F&& f) {
    return std::forward<F>(f)();
  }

  template <RmsNormCastOrder Order, HostTensor X, HostTensorOfRank<1> G>
  [[nodiscard]] Tensor<dtype_of<X>, rank_of<X>> rms_norm(const X& x, const G& gain, const Scalar<f32>& eps) const {
    return precis::rms_norm<Order>(x, gain, eps);
  }

  template <rope_layout Layout, class X>
    requires writable_host_tensor<X, 3>
  void rope(X&& x, const RopeTable<f32>& table) const {
    const TensorView<dtype_of<X>, 3> v = x;
    const Tensor<dtype_of<X>, 3> y = apply_rope<Layout>(v, table);  // [T, heads, D]
    copy_into(v, y.cview());
  }

  template <GatedActivation A, HostTensorOfRank<2> G, HostTensorOfRank<2> U>
    requires same_dtype_no_implicit_cast<dtype_of<G>, dtype_of<U>>
  [[nodiscard]] Tensor<dtype_of<G>, 2> glu(const A& act, const G& gate, const U& up) const {
    return precis::glu(act, gate, up);
  }

  template <class X, HostTensor Y>
    requires writable_host_tensor<X, rank_of<Y>> && same_dtype_no_implicit_cast<dtype_of<X>, dtype_of<Y>>
  void add_inplace(X&& x, const Y& y) const {
    const TensorView<dtype_of<Y>, rank_of<Y>> xv = x;
    const Tensor<dtype_of<Y>, rank_of<Y>> sum = add(xv, y);
    copy_into(xv, sum.cview());
  }

  template <class G, ActivationDtype Act, HostTensorOfRank<2> X>
    requires moe_input_matches_activation<dtype_of<X>, Act>
  [[nodiscard]] Tensor<Act, 2> moe(const AnyMoeExperts<G, Act>& ex, const X& x, const Routing& r) const {
    const TensorView<const Act, 2> xv = x;  // [T, H]
    return precis::moe_experts(ex, xv, r);
  }

 private:
  /// The linear math spec (header comment).
  template <class Out, class O, class A>
  [[nodiscard]] static Tensor<O, 2> linear_kernel(const TensorView<const A, 2>& x, const AnyWeight& w,
                                                const std::optional<TensorView<const O, 1>>& bias,
                                                activation_quantization aq) {
    const index_t m = x.extent(0), k = x.extent(1), n = w.rows();
    PRECIS_CHECK(w.cols() == k, shape_error, "[reference linear] x ", format_extents(x.extents()), " · Wᵀ with '",
                 w.name(), "' ", format_extents(w.extents()), ": inner dimensions differ");
    if (bias)
      PRECIS_CHECK(bias->extent(0) == n, shape_error, "[reference linear] bias ", format_extents(bias->extents()),
                   " for ", n, " outputs of '", w.name(), "'");
    const bool q8 = aq == activation_quantization::q8_blocks && is_block_format(w.format());
    if (q8)
      PRECIS_CHECK(k % 32 == 0, shape_error, "[reference linear] q8 activations need K % 32 == 0, got ", k);
    std::vector<float> xs(static_cast<std::size_t>(m * k)), row(static_cast<std::size_t>(k));
    for (index_t i = 0; i < m; ++i) {
      const std::span<float> xi(xs.data() + i * k, static_cast<std::size_t>(k));
      for (index_t p = 0; p < k; ++p) xi[static_cast<std::size_t>(p)] = static_cast<float>(to_compute<A>(x(i, p)));
      if (q8) {
        for (float v : xi)
          PRECIS_CHECK(std::isfinite(v), range_error, "[reference linear] non-finite activation in row ", i);
        detail::q8_round_row(xi);
      }
    }
    Tensor<O, 2> out({m, n});  // [M, N]
    std::visit(
        [&](const auto& wv) {
          for (index_t j = 0; j < n; ++j) {
            detail::weight_row_f32(wv, j, row);
            for (index_t i = 0; i < m; ++i) {
              float acc = 0.0f;
              for (index_t p = 0; p < k; ++p) acc += xs[static_cast<std::size_t>(i * k + p)] * row[static_cast<std::size_t>(p)];
              if (bias) acc += static_cast<float>(to_compute<O>((*bias)(j)));
              out(i, j) = from_compute<O>(acc);
            }
          }
        },
        w.storage());
    return out;
  }

  [[nodiscard]] static bool is_block_format(dtype_code c) noexcept {
    return c != dtype_code::f32 && c != dtype_code::bf16 && c != dtype_code::f16;
  }

  /// kv: a KvSequenceView<Act> (typed cache) or a KvStoredView (run-time cache types).
  template <ActivationDtype Act, class View>
  [[nodiscard]] static Tensor<Act, 3> attention_prefill(TensorView<const Act, 3> q, const View& kv,
                                                        const AttentionConfig& cfg,
                                                        std::optional<TensorView<const f32, 1>> sinks) {
    return reference_attention<Act>(q, kv, cfg, sinks);
  }
  /// One reference_attention per sequence.
  template <ActivationDtype Act, class View>
  [[nodiscard]] static Tensor<Act, 3> attention_decode(TensorView<const Act, 3> q, std::span<const View> kv,
                                                       const AttentionConfig& cfg,
                                                       std::optional<TensorView<const f32, 1>> sinks) {
    Tensor<Act, 3> out(q.extents());  // [B, H, D]
    for (std::size_t b = 0; b < kv.size(); ++b) {
      const auto i = static_cast<index_t>(b);
      const Tensor<Act, 3> o = reference_attention<Act>(q.slice(0, i, i + 1), kv[b], cfg, sinks);  // [1, H, D]
      copy_into(out.view().slice(0, i, i + 1), o.cview());
    }
    return out;
  }

  template <class D, std::size_t R>
  static void copy_into(const TensorView<D, R>& dst, const TensorView<const D, R>& src) {
    if constexpr (R == 1) {
      for (index_t i = 0; i < dst.extent(0); ++i) dst(i) = src(i);
    } else {
      for (index_t i = 0; i < dst.extent(0); ++i) copy_into<D, R - 1>(dst[i], src[i]);
    }
  }
};

static_assert(Backend<Reference>, "backends::Reference must implement every op of the Backend concept");

}  // namespace precis::backends
