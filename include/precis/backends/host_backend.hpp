// precis/backends/host_backend.hpp — HostBackend: what the two host backends (Reference and Cpu)
// share — host memory, the stored weights read in place from the file mapping, the paged KV
// cache's host storage and the append-then-attend plumbing, routing and the host logits. Each
// derived backend adds the compute ops (backends/backend.hpp lists them).
//
// Uploads are moves: host weights stay the zero-copy views into the mapped files that the loaders
// made (weights/any_weight.hpp), so a model on a host backend holds each weight once.
#pragma once

#include <cstddef>  // std::size_t
#include <span>     // std::span
#include <utility>  // std::move
#include <vector>   // std::vector

#include <precis/core/device.hpp>               // precis::host
#include <precis/core/dtype.hpp>                // ActivationDtype, f32
#include <precis/core/error.hpp>                // shape_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>               // Tensor
#include <precis/io/load.hpp>                   // io::Loaded
#include <precis/nn/kv_cache.hpp>               // PagedKvCache, KvLayerPlan, PagedKvSize, KvSeqId, KvSequenceView
#include <precis/nn/layer_expert_selector.hpp>  // BoundLayerSelector
#include <precis/nn/rope.hpp>                   // RopeTable
#include <precis/nn/router.hpp>                 // Routing
#include <precis/ops/host_tensor.hpp>           // HostTensorOfRank, as_const_view, format_extents
#include <precis/weights/any_experts.hpp>       // AnyMoeExperts
#include <precis/weights/any_weight.hpp>        // AnyWeight

namespace precis::backends {

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

  /// Routing runs the policy's scalar code (nn/router.hpp) on the host logits.
  template <class Policy, HostTensorOfRank<2> L>
  [[nodiscard]] routing route(const Policy& policy, const L& logits, index_t k, const BoundLayerSelector& s) const {
    return policy(logits, k, s);
  }

  [[nodiscard]] Tensor<f32, 2, host> to_host(Tensor<f32, 2, host>&& x) const { return std::move(x); }

 protected:
  /// Appends k, v [N, Hkv, D] and attends through `prefill(q, view)` (one sequence: its N new
  /// tokens) or `decode(q, views)` (N sequences, one token each).
  template <ActivationDtype Act, class Prefill, class Decode>
  [[nodiscard]] static Tensor<Act, 3> append_and_attend(PagedKvCache<Act>& cache, index_t layer,
                                                        std::span<const KvSeqId> seqs, TensorView<const Act, 3> q,
                                                        TensorView<const Act, 3> k, TensorView<const Act, 3> v,
                                                        Prefill&& prefill, Decode&& decode) {
    PRECIS_CHECK(!seqs.empty(), shape_error, "[attend] no sequences");
    if (seqs.size() == 1) {
      cache.append(seqs[0], layer, k, v);
      return prefill(q, cache.sequence(seqs[0], layer));
    }
    PRECIS_CHECK(q.extent(0) == static_cast<index_t>(seqs.size()) && k.extent(0) == q.extent(0), shape_error,
                 "[attend] batched decode of ", seqs.size(), " sequences takes one token each; q ",
                 format_extents(q.extents()), ", k ", format_extents(k.extents()));
    std::vector<KvSequenceView<Act>> views;
    views.reserve(seqs.size());
    for (std::size_t b = 0; b < seqs.size(); ++b) {
      const auto i = static_cast<index_t>(b);
      cache.append(seqs[b], layer, k.slice(0, i, i + 1), v.slice(0, i, i + 1));
      views.push_back(cache.sequence(seqs[b], layer));
    }
    return decode(q, std::span<const KvSequenceView<Act>>(views));
  }
};

}  // namespace precis::backends
