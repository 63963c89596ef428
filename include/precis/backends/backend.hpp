// precis/backends/backend.hpp — the Backend concept: the exact set of operations a model needs,
// with typed inputs and outputs, plus the backend's memory tag and execution context.
//
// Models are written once against this concept (models/*.hpp never name a backend or a kernel);
// a backend is a class that provides every op below, and `static_assert(Backend<MyBackend>)`
// after its definition fails, naming the first op that is missing or mistyped (each op is its own
// concept, so the diagnostic says "backend_linear<B, bf16>" rather than a page of overloads).
//
//   backends::Reference  backends/reference/backend.hpp — the scalar reference ops (ops/, nn/):
//                        the math spec, the oracle every other backend is diffed against.
//   backends::Cpu        backends/cpu/backend.hpp — xsimd + oneTBB kernels; owns the task arena.
//   (CUDA)               implements the same concept with device memory, a stream and library
//                        handles in the backend object.
//
// What a backend declares (its memory decides where every tensor below lives):
//   memory                      a Device tag: host or cuda. Tensor<D, R, memory> is what ops return.
//   weight                      a projection / embedding matrix [N, K] in its stored format
//                               (AnyWeight for host backends), made by upload(AnyWeight).
//   param<D, R>                 a small loaded tensor (norm gains, biases, sinks) in backend memory,
//                               made by upload(io::Loaded<D, R>), read as TensorView<const D, R, memory>.
//   experts<G, Act>             one MoE layer's experts, made by upload(AnyMoeExperts<G, Act>).
//   rope_table                  cos/sin rows for one forward pass, made by upload(RopeTable<f32>)
//                               (built on the host from the f32 InvFreq: role::rope_table is pinned).
//   kv_cache<Act>               the paged KV cache: host-side index (add_sequence, length, …) over
//                               storage in backend memory, made by make_kv_cache<Act>(plan, size[,
//                               format]): K and V rows in the compute dtype, or in the run-time
//                               KvCacheFormat (nn/kv_format.hpp; a backend that cannot store one
//                               refuses it with a config_error at load).
//   routing                     the routing of one MoE layer's tokens (expert ids + weights).
//
// The ops (Act ∈ {f32, bf16}; x, y are tensors of backend memory; every op checks its shapes):
//   embed<Act>(table, ids)                        [T, K] rows of `table` for host token ids
//   rms_norm<Order>(x, gain, eps)                 [N, H] or [N, heads, D]; gain [H] of Act or f32;
//                                                 Order = NormThenCast | MultiplyThenCast (nn/norm.hpp)
//   linear<Out>(x, w, aq) / (x, w, bias, aq)      [M, N] = x [M, K]·Wᵀ (+ bias [N]) for every stored
//                                                 format; Out = Act (operand_dtype) or f32 (declared)
//   rope<Layout>(x, table)                        in place on q or k [T, heads, D]
//   attend(cache, layer, seqs, q, k, v, cfg[, sinks])
//                                                 appends k, v [N, Hkv, D] to each sequence's cache
//                                                 and attends: one sequence (prefill / one step) or
//                                                 one token for each of N sequences (batched decode)
//   glu(act, gate, up)                            [N, I] act(gate, up) (SiluGate, ClampedSwiglu)
//   add_inplace(x, y)                             x += y (the residual), in x's dtype
//   route(policy, logits, k, selector)            logits [T, E] f32 → routing (policies: nn/router.hpp)
//   moe(experts, x, routing)                      [T, H] Σ_j w·Expert_j(x)
//   to_host(x)                                    Tensor<f32, 2, host> from x (the logits of
//                                                 precis-eval / -conform cross here; a host backend
//                                                 moves, a device backend copies)
//   sample(logits, requests)                      logits [B, V] f32 → one SampleOutcome per row
//                                                 (nn/sampling.hpp: the token, or the first
//                                                 NaN/+inf logit): generation's only crossing — a
//                                                 device backend samples where the logits are and
//                                                 returns the B token ids
//   execute(f)                                    runs f in the backend's execution context
//                                                 (the CPU backend's task arena) and returns f()
//
// Sampling: the request carries everything random (the uniform, drawn by the generator's
// SamplerChain on the host, so the random sequence is the host's on every backend) and the
// penalty window; sampling::sample_rows is the host backends' implementation and the math spec.
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t
#include <optional>     // std::optional
#include <span>         // std::span
#include <vector>       // std::vector

#include <precis/core/device.hpp>                // precis::Device, host
#include <precis/core/dtype.hpp>                 // f32, bf16, i64
#include <precis/core/scalar.hpp>                // Scalar<f32>
#include <precis/core/tensor.hpp>                // Tensor
#include <precis/core/tensor_view.hpp>           // TensorView
#include <precis/io/load.hpp>                    // io::Loaded
#include <precis/nn/activation.hpp>              // SiluGate, ClampedSwiglu
#include <precis/nn/attention.hpp>               // AttentionConfig
#include <precis/nn/kv_cache.hpp>                // KvLayerPlan, PagedKvSize, KvSeqId
#include <precis/nn/layer_expert_selector.hpp>   // BoundLayerSelector
#include <precis/nn/norm.hpp>                    // NormThenCast, MultiplyThenCast
#include <precis/nn/rope.hpp>                    // RopeTable, rope_layout
#include <precis/nn/router.hpp>                  // SoftmaxThenTopK, TopKThenSoftmax
#include <precis/nn/sampling.hpp>                // SampleRequest, SampleOutcome
#include <precis/ops/matmul.hpp>                 // operand_dtype
#include <precis/weights/any_experts.hpp>        // AnyMoeExperts
#include <precis/weights/any_weight.hpp>         // AnyWeight, activation_quantization

namespace precis::backends {

// ---------------------------------------------------------------------------------------------
// The types a backend names
// ---------------------------------------------------------------------------------------------

template <class B, class D, std::size_t R>
using tensor_of = Tensor<D, R, typename B::memory>;
template <class B, class D, std::size_t R>
using view_of = TensorView<D, R, typename B::memory>;
template <class B, class D, std::size_t R>
using param_of = typename B::template param<D, R>;
template <class B>
using weight_of = typename B::weight;
template <class B, class G, class Act>
using experts_of = typename B::template experts<G, Act>;
template <class B, class Act>
using kv_cache_of = typename B::template kv_cache<Act>;

/// A tensor argument that lives in memory `M` (the rule that keeps host and device apart: a
/// backend's ops constrain every tensor parameter with it, so a host tensor given to a device op,
/// or a device tensor to a host op, does not compile).
template <class X, class M>
concept in_memory = TensorLike<X> && std::same_as<device_of<X>, M>;

template <class B>
concept backend_types = requires {
  typename B::memory;
  typename B::weight;
  typename B::rope_table;
  typename B::routing;
  typename B::template param<f32, 1>;
  typename B::template param<bf16, 1>;
  typename B::template kv_cache<f32>;
  typename B::template kv_cache<bf16>;
  typename B::template experts<SiluGate, f32>;
  typename B::template experts<ClampedSwiglu, bf16>;
} && Device<typename B::memory>;

/// Uploads: what the loaders hand over (host data from the file mapping) becomes backend data.
template <class B>
concept backend_uploads = requires(B& b, AnyWeight w, io::Loaded<f32, 1> pf, io::Loaded<bf16, 1> pb, RopeTable<f32> r,
                                   AnyMoeExperts<SiluGate, f32> ef, AnyMoeExperts<ClampedSwiglu, bf16> eb) {
  { b.upload(std::move(w)) } -> std::same_as<weight_of<B>>;
  { b.upload(std::move(pf)) } -> std::same_as<param_of<B, f32, 1>>;
  { b.upload(std::move(pb)) } -> std::same_as<param_of<B, bf16, 1>>;
  { b.upload(std::move(ef)) } -> std::same_as<experts_of<B, SiluGate, f32>>;
  { b.upload(std::move(eb)) } -> std::same_as<experts_of<B, ClampedSwiglu, bf16>>;
  { b.upload(std::move(r)) } -> std::same_as<typename B::rope_table>;
};

/// The KV cache: a host-side index over backend storage.
template <class B, class Act>
concept backend_kv_cache = requires(B& b, kv_cache_of<B, Act>& c, const kv_cache_of<B, Act>& cc, const KvLayerPlan& plan,
                                    const PagedKvSize& size, const KvCacheFormat& fmt, KvSeqId s, index_t l) {
  { b.template make_kv_cache<Act>(plan, size) } -> std::same_as<kv_cache_of<B, Act>>;
  { b.template make_kv_cache<Act>(plan, size, fmt) } -> std::same_as<kv_cache_of<B, Act>>;  // or config_error
  { cc.format() } -> std::same_as<KvCacheFormat>;
  { cc.bytes_per_position() } -> std::same_as<std::size_t>;  // per full-attention layer
  { c.add_sequence() } -> std::same_as<KvSeqId>;
  c.remove_sequence(s);
  { cc.length(s, l) } -> std::same_as<index_t>;
  { cc.n_layers() } -> std::same_as<index_t>;
  { cc.window(l) } -> std::same_as<index_t>;
  { cc.n_pages() } -> std::same_as<index_t>;
  { cc.page_size() } -> std::same_as<index_t>;
  { cc.bytes() } -> std::same_as<std::size_t>;  // K/V memory, reported by the runners
};

template <class B, class Act>
concept backend_embed = requires(B& b, const weight_of<B>& w, std::span<const std::int64_t> ids) {
  { b.template embed<Act>(w, ids) } -> std::same_as<tensor_of<B, Act, 2>>;
};

template <class B, class Act, class Order, class Gain, std::size_t R>
concept backend_rms_norm_one = requires(B& b, view_of<B, const Act, R> x, const param_of<B, Gain, 1>& g, Scalar<f32> eps) {
  { b.template rms_norm<Order>(x, g, eps) } -> std::same_as<tensor_of<B, Act, R>>;
};
/// Both cast orders, on hidden rows [N, H] and per-head rows [N, heads, D], gains of Act or f32.
template <class B, class Act>
concept backend_rms_norm = backend_rms_norm_one<B, Act, NormThenCast, Act, 2> &&
                           backend_rms_norm_one<B, Act, NormThenCast, Act, 3> &&
                           backend_rms_norm_one<B, Act, MultiplyThenCast, Act, 2> &&
                           backend_rms_norm_one<B, Act, MultiplyThenCast, f32, 2>;

template <class B, class Act>
concept backend_linear = requires(B& b, view_of<B, const Act, 2> x, const weight_of<B>& w,
                                  const param_of<B, Act, 1>& bias, const param_of<B, f32, 1>& bias32,
                                  activation_quantization aq) {
  { b.linear(x, w, aq) } -> std::same_as<tensor_of<B, Act, 2>>;
  { b.linear(x, w, bias, aq) } -> std::same_as<tensor_of<B, Act, 2>>;
  { b.template linear<f32>(x, w, aq) } -> std::same_as<tensor_of<B, f32, 2>>;
  { b.template linear<f32>(x, w, bias32, aq) } -> std::same_as<tensor_of<B, f32, 2>>;
};

template <class B, class Act>
concept backend_rope = requires(B& b, view_of<B, Act, 3> x, const typename B::rope_table& t) {
  b.template rope<rope_layout::half_split>(x, t);
  b.template rope<rope_layout::interleaved>(x, t);
};

/// Attention sinks reach a backend as f32 logits, one per query head: a checkpoint's bf16 sinks are
/// widened once at load (role::sinks is pinned to f32), never concatenated to or promoted with scores
/// (E23: an f32 sink cat'ed to bf16 scores promoted the row; trtllm_mha requires f32 sinks).
template <class S>
concept attention_sinks_are_f32 = std::same_as<S, f32>;

template <class B, class Act>
concept backend_attend = requires(B& b, kv_cache_of<B, Act>& c, index_t l, std::span<const KvSeqId> seqs,
                                  view_of<B, const Act, 3> q, const AttentionConfig& cfg,
                                  const param_of<B, f32, 1>& sinks) {
  { b.attend(c, l, seqs, q, q, q, cfg) } -> std::same_as<tensor_of<B, Act, 3>>;
  { b.attend(c, l, seqs, q, q, q, cfg, sinks) } -> std::same_as<tensor_of<B, Act, 3>>;
};

template <class B, class Act>
concept backend_glu = requires(B& b, view_of<B, const Act, 2> g, ClampedSwiglu clamped) {
  { b.glu(SiluGate{}, g, g) } -> std::same_as<tensor_of<B, Act, 2>>;
  { b.glu(clamped, g, g) } -> std::same_as<tensor_of<B, Act, 2>>;
};

template <class B, class Act>
concept backend_add = requires(B& b, view_of<B, Act, 2> x, view_of<B, const Act, 2> y) { b.add_inplace(x, y); };

template <class B, class Act>
concept backend_moe = requires(B& b, view_of<B, const f32, 2> logits, view_of<B, const Act, 2> x, index_t k,
                               const BoundLayerSelector& sel, const experts_of<B, SiluGate, Act>& es,
                               const experts_of<B, ClampedSwiglu, Act>& ec) {
  { b.route(SoftmaxThenTopK{}, logits, k, sel) } -> std::same_as<typename B::routing>;
  { b.route(TopKThenSoftmax{}, logits, k, sel) } -> std::same_as<typename B::routing>;
  { b.moe(es, x, std::declval<const typename B::routing&>()) } -> std::same_as<tensor_of<B, Act, 2>>;
  { b.moe(ec, x, std::declval<const typename B::routing&>()) } -> std::same_as<tensor_of<B, Act, 2>>;
};

template <class B>
concept backend_context = requires(B& b, tensor_of<B, f32, 2> logits, view_of<B, const f32, 2> lv,
                                   std::span<const sampling::SampleRequest> reqs) {
  { b.to_host(std::move(logits)) } -> std::same_as<Tensor<f32, 2, host>>;
  { b.sample(lv, reqs) } -> std::same_as<std::vector<sampling::SampleOutcome>>;
  { b.execute([] { return 1; }) } -> std::same_as<int>;
};

/// Every op a model needs, for one activation dtype.
template <class B, class Act>
concept BackendFor = backend_kv_cache<B, Act> && backend_embed<B, Act> && backend_rms_norm<B, Act> &&
                     backend_linear<B, Act> && backend_rope<B, Act> && backend_attend<B, Act> &&
                     backend_glu<B, Act> && backend_add<B, Act> && backend_moe<B, Act>;

/// A backend: its types, its uploads, its context, and every op for f32 and bf16 activations.
template <class B>
concept Backend = backend_types<B> && backend_uploads<B> && backend_context<B> && BackendFor<B, f32> &&
                  BackendFor<B, bf16>;

}  // namespace precis::backends
