// precis/backends/cpu/backend.hpp — backends::Cpu: the Backend concept (backends/backend.hpp) over
// the xsimd + oneTBB kernels of this directory. The kernels themselves are unchanged; this class
// is the seam models call through, and it owns the execution context: a oneTBB task_arena of
// `n_threads` workers (0: oneTBB's default), so LoadOptions::n_threads limits the threads of one
// model only (no process-wide global_control). execute(f) runs f inside that arena.
//
// Every op here is diffed against backends::Reference, op by op (tests/unit/backends) and model
// by model (the conformance ctests run every fixture on both).
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <memory>       // std::shared_ptr
#include <optional>     // std::optional
#include <span>         // std::span
#include <type_traits>  // std::decay_t
#include <utility>      // std::forward
#include <variant>      // std::visit

#include <oneapi/tbb/task_arena.h>  // tbb::task_arena

#include <precis/backends/backend.hpp>            // Backend (checked below)
#include <precis/backends/cpu/activation.hpp>     // cpu::glu
#include <precis/backends/cpu/attention.hpp>      // cpu::attention_prefill, attention_decode
#include <precis/backends/cpu/matmul.hpp>         // cpu::matmul
#include <precis/backends/cpu/moe.hpp>            // cpu::moe_experts
#include <precis/backends/cpu/q8_activation.hpp>  // cpu::quantize_activation_q8
#include <precis/backends/cpu/rmsnorm.hpp>        // cpu::rms_norm
#include <precis/backends/cpu/rope.hpp>           // cpu::apply_rope_inplace
#include <precis/backends/host_backend.hpp>       // HostBackend
#include <precis/core/error.hpp>                  // shape_error
#include <precis/ops/matmul.hpp>                  // operand_dtype, resolve_out_t

namespace precis::backends {

class Cpu : public HostBackend<Cpu> {
  friend class HostBackend<Cpu>;

 public:
  /// `n_threads` workers for this backend's kernels; 0: oneTBB's default (every core).
  explicit Cpu(int n_threads = 0)
      : arena_(std::make_shared<tbb::task_arena>(n_threads > 0 ? n_threads : int{tbb::task_arena::automatic})) {}

  [[nodiscard]] static constexpr const char* name() noexcept { return "cpu"; }

  /// Runs f() in this backend's task arena (every parallel kernel f calls uses its workers).
  template <class F>
  decltype(auto) execute(F&& f) {
    return arena_->execute(std::forward<F>(f));
  }

  template <RmsNormCastOrder Order, HostTensor X, HostTensorOfRank<1> G>
  [[nodiscard]] Tensor<dtype_of<X>, rank_of<X>> rms_norm(const X& x, const G& gain, const Scalar<f32>& eps) const {
    return cpu::rms_norm<Order>(x, gain, eps);
  }

  template <rope_layout Layout, class X>
    requires writable_host_tensor<X, 3>
  void rope(X&& x, const RopeTable<f32>& table) const {
    cpu::apply_rope_inplace<Layout>(std::forward<X>(x), table);
  }

  template <GatedActivation A, HostTensorOfRank<2> G, HostTensorOfRank<2> U>
    requires same_dtype_no_implicit_cast<dtype_of<G>, dtype_of<U>>
  [[nodiscard]] Tensor<dtype_of<G>, 2> glu(const A& act, const G& gate, const U& up) const {
    return cpu::glu(act, gate, up);
  }

  /// x += y in x's dtype: each sum computed in f32 and rounded once (ops/elementwise.hpp's add,
  /// written into x instead of a new tensor: no allocation on the residual path).
  template <class X, HostTensor Y>
    requires writable_host_tensor<X, rank_of<Y>> && same_dtype_no_implicit_cast<dtype_of<X>, dtype_of<Y>>
  void add_inplace(X&& x, const Y& y) const {
    using D = dtype_of<Y>;
    const TensorView<D, rank_of<Y>> xv = x;
    const const_view_t<Y> yv = y;
    PRECIS_CHECK(xv.extents() == yv.extents(), shape_error, "[add_inplace] x ", format_extents(xv.extents()),
                 " and y ", format_extents(yv.extents()), " differ");
    if (xv.is_contiguous() && yv.is_contiguous()) {
      storage_t<D>* a = xv.data();
      const storage_t<D>* b = yv.data();
      const index_t n = xv.numel();
      for (index_t i = 0; i < n; ++i) a[i] = from_compute<D>(to_compute<D>(a[i]) + to_compute<D>(b[i]));
      return;
    }
    add_strided(xv, yv);
  }

  template <class G, ActivationDtype Act, HostTensorOfRank<2> X>
    requires moe_input_matches_activation<dtype_of<X>, Act>
  [[nodiscard]] Tensor<Act, 2> moe(const AnyMoeExperts<G, Act>& ex, const X& x, const Routing& r) const {
    const TensorView<const Act, 2> xv = x;  // [T, H]
    return cpu::moe_experts(ex, xv, r);
  }

 private:
  /// HostBackend's linear front calls this: x [M, K]·Wᵀ (+ bias) through the stored format's
  /// matmul kernel, or the q8 integer-dot kernels for block formats under q8_blocks.
  template <class Out, class O, class A>
  [[nodiscard]] static Tensor<O, 2> linear_kernel(const TensorView<const A, 2>& x, const AnyWeight& w,
                                               const std::optional<TensorView<const O, 1>>& bias,
                                               activation_quantization aq) {
    return std::visit(
        [&](const auto& wv) -> Tensor<O, 2> {
          if constexpr (cpu::quant_weight<std::decay_t<decltype(wv)>>) {
            if (aq == activation_quantization::q8_blocks) {
              const cpu::Q8Activations<A> xq = cpu::quantize_activation_q8(x);
              if (bias) return cpu::matmul<Out>(xq, wv, *bias);
              return cpu::matmul<Out>(xq, wv);
            }
          }
          if (bias) return cpu::matmul<Out>(x, wv, *bias);
          return cpu::matmul<Out>(x, wv);
        },
        w.storage());
  }

  /// kv: a KvSequenceView<Act> (typed cache) or a KvStoredView (run-time cache types).
  template <ActivationDtype Act, class View>
  [[nodiscard]] static Tensor<Act, 3> attention_prefill(TensorView<const Act, 3> q, const View& kv,
                                                        const AttentionConfig& cfg,
                                                        std::optional<TensorView<const f32, 1>> sinks) {
    return cpu::attention_prefill(q, kv, cfg, sinks);
  }
  template <ActivationDtype Act, class View>
  [[nodiscard]] static Tensor<Act, 3> attention_decode(TensorView<const Act, 3> q, std::span<const View> kv,
                                                       const AttentionConfig& cfg,
                                                       std::optional<TensorView<const f32, 1>> sinks) {
    return cpu::attention_decode(q, kv, cfg, sinks);
  }

  template <class D, std::size_t R>
  static void add_strided(const TensorView<D, R>& x, const TensorView<const D, R>& y) {
    if constexpr (R == 1) {
      for (index_t i = 0; i < x.extent(0); ++i) x(i) = from_compute<D>(to_compute<D>(x(i)) + to_compute<D>(y(i)));
    } else {
      for (index_t i = 0; i < x.extent(0); ++i) add_strided<D, R - 1>(x[i], y[i]);
    }
  }

  std::shared_ptr<tbb::task_arena> arena_;  // shared by copies of this backend object
};

static_assert(Backend<Cpu>, "backends::Cpu must implement every op of the Backend concept");

}  // namespace precis::backends
