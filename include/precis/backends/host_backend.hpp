// precis/backends/host_backend.hpp — HostBackend<Derived>: what the two host backends (Reference
// and Cpu) share — host memory, the stored weights read in place from the file mapping, the paged
// KV cache's host storage, embed, routing, the host logits, and the typed front of `linear` and
// `attend` (their overloads, dtype rules and the append-then-attend plumbing). The front calls
// the derived backend's kernels (CRTP), which each backend defines once:
//   linear_kernel<Out, O>(x [M, K], w, optional bias [N], aq) -> Tensor<O, 2>
//   attention_prefill(q [T, H, D], KvSequenceView, cfg, sinks)           one sequence
//   attention_decode(q [B, H, D], span<KvSequenceView>, cfg, sinks)      one token per sequence
// and the other compute ops (backends/backend.hpp lists them).
//
// Uploads are moves: host weights stay the zero-copy views into the mapped files that the loaders
// made (weights/any_weight.hpp), so a model on a host backend holds each weight once.
#pragma once

#include <cstddef>   // std::size_t
#include <cstdint>   // std::int64_t
#include <optional>  // std::optional
#include <span>      // std::span
#include <utility>  // std::move
#include <vector>   // std::vector

#include <precis/backends/backend.hpp>          // linear_input, attention_sinks_are_f32
#include <precis/core/device.hpp>               // precis::host
#include <precis/core/dtype.hpp>                // ActivationDtype, f32
#include <precis/core/error.hpp>                // shape_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>               // Tensor
#include <precis/io/load.hpp>                   // io::Loaded
#include <precis/nn/kv_cache.hpp>               // PagedKvCache, KvLayerPlan, PagedKvSize, KvSeqId, KvSequenceView
#include <precis/nn/layer_expert_selector.hpp>  // BoundLayerSelector
#include <precis/nn/rope.hpp>                   // RopeTable
#include <precis/nn/router.hpp>                 // Routing
#include <precis/nn/sampling.hpp>               // sample_rows
#include <precis/ops/host_tensor.hpp>           // HostTensorOfRank, as_const_view, format_extents
#include <precis/weights/any_experts.hpp>       // AnyMoeExperts
#include <precis/weights/any_weight.hpp>        // AnyWeight

namespace precis::backends {

template <class Derived>
class HostBackend {
 public:
  using memory = host;
  using weight = AnyWeight;
  template <class D, std::size_t R>
  using param = io::Loaded<D, R>;
  template <class G, class Act>
  using experts = AnyMoeExperts<G, Act>;
  using rope_table = RopeTable<f32>;
  template <class Act>
  using kv_cache = PagedKvCache<Act>;
  using routing = Routing;

  [[nodiscard]] weight upload(AnyWeight w) const { return w; }
  template <class D, std::size_t R>
  [[nodiscard]] param<D, R> upload(io::Loaded<D, R> p) const {
    return p;
  }
  template <class G, class Act>
  [[nodiscard]] experts<G, Act> upload(AnyMoeExperts<G, Act> e) const {
    return e;
  }
  [[nodiscard]] rope_table upload(RopeTable<f32> t) const { return t; }

  template <ActivationDtype Act>
  [[nodiscard]] kv_cache<Act> make_kv_cache(const KvLayerPlan& plan, const PagedKvSize& size) const {
    return kv_cache<Act>(plan, size);
  }
  /// K and V stored in `format` (nn/kv_format.hpp): encoded on append, decoded by the attention
  /// kernels (any of f32, f16, bf16, q8_0, q4_0 for either half).
  template <ActivationDtype Act>
  [[nodiscard]] kv_cache<Act> make_kv_cache(const KvLayerPlan& plan, const PagedKvSize& size,
                                            const KvCacheFormat& format) const {
    return kv_cache<Act>(plan, size, format);
  }

  /// Routing runs the policy's scalar code (nn/router.hpp) on the host logits.
  template <class Policy, HostTensorOfRank<2> L>
  [[nodiscard]] routing route(const Policy& policy, const L& logits, index_t k, const BoundLayerSelector& s) const {
    return policy(logits, k, s);
  }

  [[nodiscard]] Tensor<f32, 2, host> to_host(Tensor<f32, 2, host>&& x) const { return std::move(x); }

  /// Sampling is the spec itself (nn/sampling.hpp) on the host logits.
  template <HostTensorOfRank<2> L>
  [[nodiscard]] std::vector<sampling::SampleOutcome> sample(const L& logits,
                                                            std::span<const sampling::SampleRequest> reqs) const {
    return sampling::sample_rows(logits, reqs);
  }

 template <ActivationDtype Act>
  [[nodiscard]] Tensor<Act, 2> embed(const AnyWeight& table, std::span<const std::int64_t> ids) const {
    return embed_rows<Act>(table, ids);
  }

  /// y [M, N] = x [M, K]·Wᵀ in x's dtype (or f32 declared), accumulated in f32.
  template <class Out = operand_dtype, linear_input X>
    requires matmul_out_is_operand_or_f32<resolve_out_t<Out, dtype_of<X>>, dtype_of<X>>
  [[nodiscard]] Tensor<resolve_out_t<Out, dtype_of<X>>, 2> linear(const X& x, const AnyWeight& w,
                                                                  activation_quantization aq) const {
    using O = resolve_out_t<Out, dtype_of<X>>;
    return Derived::template linear_kernel<Out, O>(TensorView<const dtype_of<X>, 2>(x), w,
                                                   std::optional<TensorView<const O, 1>>{}, aq);
  }
  /// As above + bias [N] of the output dtype.
  template <class Out = operand_dtype, linear_input X, HostTensorOfRank<1> B>
    requires matmul_out_is_operand_or_f32<resolve_out_t<Out, dtype_of<X>>, dtype_of<X>> &&
             same_dtype_no_implicit_cast<dtype_of<B>, resolve_out_t<Out, dtype_of<X>>>
  [[nodiscard]] Tensor<resolve_out_t<Out, dtype_of<X>>, 2> linear(const X& x, const AnyWeight& w, const B& bias,
                                                                  activation_quantization aq) const {
    using O = resolve_out_t<Out, dtype_of<X>>;
    return Derived::template linear_kernel<Out, O>(TensorView<const dtype_of<X>, 2>(x), w,
                                                   std::optional<TensorView<const O, 1>>(TensorView<const O, 1>(bias)),
                                                   aq);
  }

  /// Appends k, v [N, Hkv, D] to `layer` of each sequence and attends (backends/backend.hpp).
  template <ActivationDtype Act, HostTensorOfRank<3> Q, HostTensorOfRank<3> K, HostTensorOfRank<3> V>
    requires same_dtype_no_implicit_cast<dtype_of<Q>, Act> && same_dtype_no_implicit_cast<dtype_of<K>, Act> &&
             same_dtype_no_implicit_cast<dtype_of<V>, Act>
  [[nodiscard]] Tensor<Act, 3> attend(PagedKvCache<Act>& cache, index_t layer, std::span<const KvSeqId> seqs,
                                      const Q& q, const K& k, const V& v, const AttentionConfig& cfg) const {
    return append_and_attend<Act>(cache, layer, seqs, as_const_view(q), as_const_view(k), as_const_view(v), cfg,
                                  std::nullopt);
  }
  /// The same with sinks [H]: f32 logits (attention_sinks_are_f32, E23).
  template <ActivationDtype Act, HostTensorOfRank<3> Q, HostTensorOfRank<3> K, HostTensorOfRank<3> V,
            HostTensorOfRank<1> S>
    requires same_dtype_no_implicit_cast<dtype_of<Q>, Act> && same_dtype_no_implicit_cast<dtype_of<K>, Act> &&
             same_dtype_no_implicit_cast<dtype_of<V>, Act> && attention_sinks_are_f32<dtype_of<S>>
  [[nodiscard]] Tensor<Act, 3> attend(PagedKvCache<Act>& cache, index_t layer, std::span<const KvSeqId> seqs,
                                      const Q& q, const K& k, const V& v, const AttentionConfig& cfg,
                                      const S& sinks) const {
    return append_and_attend<Act>(cache, layer, seqs, as_const_view(q), as_const_view(k), as_const_view(v), cfg,
                                  TensorView<const f32, 1>(sinks));
  }

 private:
  /// Appends k, v [N, Hkv, D] and attends: one sequence (its N new tokens) through
  /// Derived::attention_prefill, or one token for each of N sequences through attention_decode.
  template <ActivationDtype Act>
  [[nodiscard]] static Tensor<Act, 3> append_and_attend(PagedKvCache<Act>& cache, index_t layer,
                                                        std::span<const KvSeqId> seqs, TensorView<const Act, 3> q,
                                                        TensorView<const Act, 3> k, TensorView<const Act, 3> v,
                                                        const AttentionConfig& cfg,
                                                        std::optional<TensorView<const f32, 1>> sinks) {
    PRECIS_CHECK(!seqs.empty(), shape_error, "[attend] no sequences");
    if (cache.encoded()) return append_and_attend_as<KvStoredView>(cache, layer, seqs, q, k, v, cfg, sinks);
    return append_and_attend_as<KvSequenceView<Act>>(cache, layer, seqs, q, k, v, cfg, sinks);
  }
  /// The above reading the cache as View: KvSequenceView<Act> (typed rows) or KvStoredView.
  template <class View, ActivationDtype Act>
  [[nodiscard]] static Tensor<Act, 3> append_and_attend_as(PagedKvCache<Act>& cache, index_t layer,
                                                           std::span<const KvSeqId> seqs, TensorView<const Act, 3> q,
                                                           TensorView<const Act, 3> k, TensorView<const Act, 3> v,
                                                           const AttentionConfig& cfg,
                                                           std::optional<TensorView<const f32, 1>> sinks) {
    const auto view = [&](KvSeqId seq) {
      if constexpr (std::same_as<View, KvStoredView>) return cache.stored(seq, layer);
      else return cache.sequence(seq, layer);
    };
    if (seqs.size() == 1) {
      cache.append(seqs[0], layer, k, v);
      return Derived::attention_prefill(q, view(seqs[0]), cfg, sinks);
    }
    PRECIS_CHECK(q.extent(0) == static_cast<index_t>(seqs.size()) && k.extent(0) == q.extent(0), shape_error,
                 "[attend] batched decode of ", seqs.size(), " sequences takes one token each; q ",
                 format_extents(q.extents()), ", k ", format_extents(k.extents()));
    std::vector<View> views;
    views.reserve(seqs.size());
    for (std::size_t b = 0; b < seqs.size(); ++b) {
      const auto i = static_cast<index_t>(b);
      cache.append(seqs[b], layer, k.slice(0, i, i + 1), v.slice(0, i, i + 1));
      views.push_back(view(seqs[b]));
    }
    return Derived::attention_decode(q, std::span<const View>(views), cfg, sinks);
  }
};

}  // namespace precis::backends
