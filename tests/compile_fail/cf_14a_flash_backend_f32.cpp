// compile_fail 14a — dtype-bugs §3 entry 14, first misuse: Attention<FlashAttn, f32>.
// Class C10 (E30 / QwenLM/Qwen3#406: "RuntimeError: FlashAttention only support fp16 and bf16
// data type" because the default load was float32; E16 kernels with their own dtype
// contracts). Which activation dtypes a backend's attention accepts is part of the Backend
// concept (backend_attend<B, Act>, backends/backend.hpp), checked at the backend's definition:
// a backend whose attention kernel takes bf16 only is not a Backend, so no f32 model can be
// instantiated on it. The twin states what it is: a backend for bf16 models (BackendFor<B, bf16>).
// expect-error: (satisfaction of|because|does not satisfy|evaluated to false) '?backend_attend[<']
#include <concepts>  // std::same_as
#include <span>      // std::span

#include <precis/backends/backend.hpp>            // Backend, BackendFor
#include <precis/backends/reference/backend.hpp>  // backends::Reference

using namespace precis;

/// The reference backend with a FlashAttention-style kernel that accepts bf16 only.
struct FlashBf16Backend : backends::Reference {
  template <ActivationDtype Act, HostTensorOfRank<3> Q, HostTensorOfRank<3> K, HostTensorOfRank<3> V, class... S>
    requires std::same_as<Act, bf16>
  [[nodiscard]] Tensor<Act, 3> attend(PagedKvCache<Act>& cache, index_t layer, std::span<const KvSeqId> seqs,
                                      const Q& q, const K& k, const V& v, const AttentionConfig& cfg,
                                      const S&... sinks) const {
    return backends::Reference::attend<Act>(cache, layer, seqs, q, k, v, cfg, sinks...);
  }
};

#ifdef PRECIS_SHOULD_FAIL
static_assert(backends::Backend<FlashBf16Backend>);  // an f32 model would run on it
#else
static_assert(backends::BackendFor<FlashBf16Backend, bf16>);  // bf16 models only
#endif
