// precis/backends/cuda/backend.hpp — backends::Cuda: the Backend concept (backends/backend.hpp)
// on one NVIDIA GPU. Host C++ (any compiler: the CUDA runtime and cuBLASLt C APIs only); the
// kernels it launches are declared in backends/cuda/launch.hpp and compiled by nvcc from
// backends/cuda/kernels.cuh (precis::cuda links them).
//
// Memory: every tensor an op takes or returns is Tensor/TensorView<D, R, cuda> — the `in_memory`
// rule of the concept, so a host tensor given to a Cuda op, or a Cuda tensor to a host op, does not
// compile, and neither does bf16 with f32 in one op (compile-fail cases cf_18*). Weights are
// uploaded once, in their stored format (CudaWeight: the file's bytes on the device); small
// tensors (norm gains, biases, sinks) are Tensor<D, 1, cuda>; the KV cache is CudaKvCache: the
// host-side KvIndex of nn/kv_index.hpp (the same index, checks and messages as the host caches)
// over a device pool [blocks, Hkv, slots, D] per layer.
//
// The backend object holds the stream every op runs on and the cuBLASLt handle with its
// workspace (shared by copies of the object); execute(f) runs f with that stream current, so the
// temporaries of a forward pass are allocated and freed in stream order. Every CUDA call and
// launch is checked, and its error names the call, the op and the shapes.
//
// Ops and how each computes (the reference op it is diffed against in tests/cuda):
//   embed      gather of table rows in any stored format (weights/any_weight.hpp embed_rows)
//   rms_norm   one block per row, f32 Σx², the cast order of nn/norm.hpp
//   linear     M ≤ 8 rows: GEMV dequantizing each weight row in registers. More rows: the weight
//              rows dequantized exactly to f32 in chunks, then cuBLASLt f32 GEMM (CUBLAS_COMPUTE_32F:
//              true f32, no TF32); bf16 weights with bf16 activations go straight to a bf16 cuBLASLt
//              GEMM with f32 accumulation (bf16 products are exact in f32). Bias and the one rounding
//              to the output dtype in an epilogue kernel. q8_blocks: activations rounded through
//              8-bit blocks first (the reference's rule), then the same paths.
//   rope       nn/rope.hpp apply_rope, in place, from the device cos/sin table
//   attend     KV append along the index's runs, then attention over the pool (GQA, window, sinks;
//              decode steps split over the key range) — kernels/attention.cuh
//   glu, add   elementwise, rounding as nn/activation.hpp and ops/elementwise.hpp
//   route      on the device, both policies (kernels/route.cuh), a data selector (bias / mask
//              tables) applied there; a selector that is code runs the policy on the host copy
//   moe        ≤ 8 tokens: one GEMV launch per projection over all (token, slot) pairs, each
//              reading its expert id on the device (no host round trip in decode). More tokens:
//              the routing comes to the host; per active expert: gather its tokens, gate/up GEMM to f32 (+ bias),
//              activation rounded once to Act, down to f32 (+ bias), scattered to its (token, slot)
//              row; then Σ_j w_j·y_j in routing order, rounded once (nn/moe.hpp's rounding points)
//   to_host    device → host copy of the f32 logits (precis-eval, precis-conform)
//   sample     the sampler chain on the device (kernels/sampling.cuh): generation copies B token
//              ids to the host per step, not B × vocab logits
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>    // std::min, std::max
#include <cmath>        // std::isfinite
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int32_t, std::int64_t
#include <cstdlib>      // std::getenv
#include <cstring>      // std::memcpy
#include <string_view>  // std::string_view
#include <functional>   // std::function
#include <limits>       // std::numeric_limits
#include <memory>       // std::shared_ptr
#include <optional>     // std::optional
#include <span>         // std::span
#include <string>       // std::string
#include <type_traits>  // std::remove_const_t
#include <utility>      // std::move, std::forward
#include <variant>      // std::visit
#include <vector>       // std::vector

#include <precis/backends/backend.hpp>         // Backend, in_memory, attention_sinks_are_f32
#include <precis/backends/cuda/launch.hpp>     // cuda_kernels::*
#include <precis/backends/cuda/runtime.hpp>    // PRECIS_CUDA_CHECK, device_allocator<cuda>, StreamScope
#include <precis/core/device.hpp>              // cuda, host
#include <precis/core/dtype.hpp>               // f32, bf16, ActivationDtype
#include <precis/core/error.hpp>               // shape_error, range_error, config_error
#include <precis/core/tensor.hpp>              // Tensor
#include <precis/core/transfer.hpp>            // to_device, to_host
#include <precis/nn/attention.hpp>             // AttentionConfig, detail::check_attention_*
#include <precis/nn/kv_index.hpp>              // KvIndex, KvLayerPlan, PagedKvSize, KvSeqId, KvRun
#include <precis/nn/moe.hpp>                   // precis::detail::check_moe_args
#include <precis/nn/norm.hpp>                  // NormThenCast, MultiplyThenCast, rms_norm_weight_dtype_allowed
#include <precis/nn/rope.hpp>                  // RopeTable, rope_layout
#include <precis/nn/router.hpp>                // Routing
#include <precis/nn/sampling.hpp>              // SampleRequest, SampleOutcome, window_counts
#include <precis/ops/host_tensor.hpp>          // format_extents
#include <precis/ops/matmul.hpp>               // operand_dtype, resolve_out_t, matmul_out_is_operand_or_f32
#include <precis/weights/any_experts.hpp>      // AnyMoeExperts
#include <precis/weights/any_weight.hpp>       // AnyWeight, activation_quantization

namespace precis::backends {

namespace cuda_detail {

namespace ck = precis::cuda_kernels;

template <class D>
inline constexpr ck::elt elt_of = std::same_as<std::remove_const_t<D>, f32> ? ck::elt::f32 : ck::elt::bf16;

/// Device bytes kept alive by shared handles (weights and expert stacks are shared by copies).
using DeviceBytes = std::shared_ptr<Tensor<u8, 1, cuda>>;

[[nodiscard]] inline DeviceBytes upload_bytes(const void* p, std::size_t n, const std::string& what) {
  auto t = std::make_shared<Tensor<u8, 1, cuda>>(extents_t<1>{static_cast<index_t>(n)});
  if (n > 0)
    PRECIS_CUDA_CHECK(cudaMemcpy(t->data(), p, n, cudaMemcpyHostToDevice), "uploading ", what, " (", n, " bytes)");
  return t;
}

/// A device tensor of rank R: Tensor<D, R, cuda> or TensorView<D, R, cuda>.
template <class X, std::size_t R>
concept DeviceTensorOfRank = in_memory<X, cuda> && rank_of<X> == R;

template <class X>
concept device_linear_input = DeviceTensorOfRank<X, 2> && ActivationDtype<std::remove_const_t<dtype_of<X>>>;

}  // namespace cuda_detail

namespace cuda_detail {
/// A diagnostic switch: `NAME=0` in the environment turns a fast path off (read once per name):
/// PRECIS_CUDA_TC_ATTENTION (the tensor-core prefill attention), PRECIS_CUDA_DEVICE_ROUTING
/// (routing and decode MoE on the device). For bisecting a numerical difference on a GPU.
[[nodiscard]] inline bool env_off(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string_view(v) == "0";
}
}  // namespace cuda_detail

// ---------------------------------------------------------------------------------------------
// Device weights, experts, RoPE table, KV cache
// ---------------------------------------------------------------------------------------------

/// A weight [N, K] in its stored format on the device (the file's bytes, uploaded once).
class CudaWeight {
 public:
  CudaWeight() = default;
  explicit CudaWeight(const AnyWeight& w) : name_(w.name()), source_(w.source()), extents_(w.extents()) {
    m_.format = w.format();
    m_.rows = w.rows();
    m_.cols = w.cols();
    PRECIS_CHECK(cuda_kernels::kernel_format(w.format()), dtype_error, "[cuda] weight '", w.name(), "' is stored as ",
                 w.format_name(), ", which the CUDA kernels do not read (", AnyWeight::supported_formats, ")");
    const std::size_t bytes = cuda_kernels::row_bytes(w.format(), w.cols()) * static_cast<std::size_t>(w.rows());
    const std::string what = "weight '" + w.name() + "' " + format_extents(w.extents()) + " " + std::string(w.format_name());
    data_ = cuda_detail::upload_bytes(w.data(), bytes, what);
    m_.data = data_->data();
    if (w.format() == dtype_code::mxfp4) {
      const auto& q = std::get<QuantView<mxfp4, 2>>(w.storage());
      scales_ = cuda_detail::upload_bytes(q.scales(), static_cast<std::size_t>(w.rows() * (w.cols() / 32)), what + " scales");
      m_.scales = scales_->data();
    }
  }

  [[nodiscard]] index_t rows() const noexcept { return extents_[0]; }
  [[nodiscard]] index_t cols() const noexcept { return extents_[1]; }
  [[nodiscard]] const extents_t<2>& extents() const noexcept { return extents_; }
  [[nodiscard]] dtype_code format() const noexcept { return m_.format; }
  [[nodiscard]] std::string_view format_name() const noexcept { return precis::to_string(m_.format); }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  [[nodiscard]] const cuda_kernels::DeviceMatrix& matrix() const noexcept { return m_; }
  [[nodiscard]] std::size_t bytes() const noexcept {
    return (data_ ? data_->bytes() : 0) + (scales_ ? scales_->bytes() : 0);
  }

 private:
  cuda_detail::DeviceBytes data_, scales_;
  cuda_kernels::DeviceMatrix m_;
  std::string name_, source_;
  extents_t<2> extents_{};
};

/// One MoE layer's experts on the device: each stack [E, N, K] packed into one buffer in its
/// stored format; per-expert matrices point into it. Biases [E, 2I] / [E, H] of Act.
template <GatedActivation G, ActivationDtype Act>
class CudaExperts {
 public:
  /// gate_up::interleaved (gpt-oss: rows 2i gate, 2i+1 up) or separate gate and up stacks.
  enum class layout { separate, interleaved };

  explicit CudaExperts(const AnyMoeExperts<G, Act>& ex)
      : gating_(ex.gating_fn()), n_experts_(ex.n_experts()), hidden_(ex.hidden()), inter_(ex.intermediate()) {
    // Each stack in its own format (a Q4_K_M file's Q6_K down experts under Q4_K gate/up).
    const auto pack_stack = [&](const AnyExpertStack& st, const char* what) {
      return std::visit([&](const auto& s) { return pack(s, what); }, st.storage());
    };
    if (ex.gate_up_layout() == AnyMoeExperts<G, Act>::layout::interleaved) {
      layout_ = layout::interleaved;
      gate_ = pack_stack(ex.gate(), "gate_up");
    } else {
      layout_ = layout::separate;
      gate_ = pack_stack(ex.gate(), "gate");
      up_ = pack_stack(ex.up(), "up");
    }
    down_ = pack_stack(ex.down(), "down");
    if (ex.has_bias()) {
      gate_up_bias_ = std::make_shared<Tensor<Act, 2, cuda>>(to_device(ex.gate_up_bias()));
      down_bias_ = std::make_shared<Tensor<Act, 2, cuda>>(to_device(ex.down_bias()));
    }
  }

  [[nodiscard]] index_t n_experts() const noexcept { return n_experts_; }
  [[nodiscard]] index_t hidden() const noexcept { return hidden_; }
  [[nodiscard]] index_t intermediate() const noexcept { return inter_; }
  [[nodiscard]] layout gate_up_layout() const noexcept { return layout_; }
  [[nodiscard]] const G& gating_fn() const noexcept { return gating_; }
  [[nodiscard]] const cuda_kernels::DeviceMatrix& gate(index_t e) const { return gate_[static_cast<std::size_t>(e)]; }
  [[nodiscard]] const cuda_kernels::DeviceMatrix& up(index_t e) const { return up_[static_cast<std::size_t>(e)]; }
  /// interleaved: the [2I, H] gate_up matrix of expert e.
  [[nodiscard]] const cuda_kernels::DeviceMatrix& gate_up(index_t e) const { return gate_[static_cast<std::size_t>(e)]; }
  [[nodiscard]] const cuda_kernels::DeviceMatrix& down(index_t e) const { return down_[static_cast<std::size_t>(e)]; }
  [[nodiscard]] bool has_bias() const noexcept { return gate_up_bias_ != nullptr; }
  [[nodiscard]] const Tensor<Act, 2, cuda>& gate_up_bias() const { return *gate_up_bias_; }  // [E, 2I]
  [[nodiscard]] const Tensor<Act, 2, cuda>& down_bias() const { return *down_bias_; }        // [E, H]
  [[nodiscard]] std::size_t bytes() const noexcept {
    std::size_t b = 0;
    for (const auto& k : keep_) b += k->bytes();
    return b;
  }

 private:
  /// One buffer [E, N, row bytes]; a strided float expert (a row half of a fused tensor) is
  /// copied with its pitch.
  template <class F>
  std::vector<cuda_kernels::DeviceMatrix> pack(const ExpertStack<F>& s, const char* what) {
    const index_t E = s.n_experts(), N = s.rows(), K = s.cols();
    const dtype_code code = dtype_traits<F>::code;
    const std::size_t rb = cuda_kernels::row_bytes(code, K), per = rb * static_cast<std::size_t>(N);
    auto buf = std::make_shared<Tensor<u8, 1, cuda>>(extents_t<1>{static_cast<index_t>(per * static_cast<std::size_t>(E))});
    std::shared_ptr<Tensor<u8, 1, cuda>> scales;
    if constexpr (std::same_as<F, mxfp4>)
      scales = std::make_shared<Tensor<u8, 1, cuda>>(extents_t<1>{E * N * (K / 32)});
    std::vector<cuda_kernels::DeviceMatrix> out;
    for (index_t e = 0; e < E; ++e) {
      const auto& m = s.expert(e);
      std::uint8_t* dst = buf->data() + per * static_cast<std::size_t>(e);
      if constexpr (BlockFormat<F>) {
        if constexpr (std::same_as<F, mxfp4>) {
          PRECIS_CUDA_CHECK(cudaMemcpy(dst, m.nibbles(), per, cudaMemcpyHostToDevice), "uploading ", what, " experts");
          PRECIS_CUDA_CHECK(cudaMemcpy(scales->data() + e * N * (K / 32), m.scales(), static_cast<std::size_t>(N * (K / 32)),
                                       cudaMemcpyHostToDevice),
                            "uploading ", what, " expert scales");
        } else {
          PRECIS_CUDA_CHECK(cudaMemcpy(dst, m.blocks(), per, cudaMemcpyHostToDevice), "uploading ", what, " experts");
        }
      } else {
        PRECIS_CUDA_CHECK(cudaMemcpy2D(dst, rb, m.data(), static_cast<std::size_t>(m.stride(0)) * sizeof(storage_t<F>), rb,
                                       static_cast<std::size_t>(N), cudaMemcpyHostToDevice),
                          "uploading ", what, " experts");
      }
      cuda_kernels::DeviceMatrix d;
      d.format = code;
      d.data = dst;
      d.rows = N;
      d.cols = K;
      if constexpr (std::same_as<F, mxfp4>) d.scales = scales->data() + e * N * (K / 32);
      out.push_back(d);
    }
    keep_.push_back(std::move(buf));
    if (scales) keep_.push_back(std::move(scales));
    return out;
  }

  G gating_{};
  layout layout_ = layout::separate;
  index_t n_experts_ = 0, hidden_ = 0, inter_ = 0;
  std::vector<cuda_kernels::DeviceMatrix> gate_, up_, down_;
  std::shared_ptr<Tensor<Act, 2, cuda>> gate_up_bias_, down_bias_;
  std::vector<cuda_detail::DeviceBytes> keep_;
};

/// cos/sin [n_positions, rotary_dim/2] f32 on the device.
struct CudaRopeTable {
  Tensor<f32, 2, cuda> cos, sin;
  [[nodiscard]] index_t n_positions() const noexcept { return cos.extent(0); }
  [[nodiscard]] index_t rotary_dim() const noexcept { return 2 * cos.extent(1); }
};

/// The paged KV cache on the device: nn/kv_index.hpp's KvIndex (host) over per-layer K/V pools
/// [blocks(l), Hkv, block_slots(l), D] of Act in device memory.
template <ActivationDtype Act>
class CudaKvCache {
 public:
  using element_dtype = Act;

  CudaKvCache(const KvLayerPlan& plan, const PagedKvSize& size) : index_(plan, size, "CudaKvCache") {
    for (index_t l = 0; l < index_.n_layers(); ++l) {
      const extents_t<4> e{index_.blocks(l), size.n_kv_heads, index_.block_slots(l), size.head_dim};
      k_.emplace_back(e);
      v_.emplace_back(e);
    }
  }

  [[nodiscard]] const KvIndex& index() const noexcept { return index_; }
  [[nodiscard]] KvIndex& index() noexcept { return index_; }
  [[nodiscard]] std::size_t bytes() const noexcept {
    std::size_t b = 0;
    for (std::size_t l = 0; l < k_.size(); ++l) b += k_[l].bytes() + v_[l].bytes();
    return b;
  }
  /// The device cache stores the compute dtype only (run-time cache types are host-only so far).
  [[nodiscard]] KvCacheFormat format() const noexcept { return {native_kv_format<Act>(), native_kv_format<Act>()}; }
  [[nodiscard]] std::size_t bytes_per_position() const noexcept {
    return format().bytes_per_position(n_kv_heads(), head_dim());
  }
  [[nodiscard]] index_t n_layers() const noexcept { return index_.n_layers(); }
  [[nodiscard]] index_t n_kv_heads() const noexcept { return index_.n_kv_heads(); }
  [[nodiscard]] index_t head_dim() const noexcept { return index_.head_dim(); }
  [[nodiscard]] index_t page_size() const noexcept { return index_.page_size(); }
  [[nodiscard]] index_t n_pages() const noexcept { return index_.n_pages(); }
  [[nodiscard]] index_t free_pages() const noexcept { return index_.free_pages(); }
  [[nodiscard]] index_t window(index_t layer) const { return index_.window(layer); }
  [[nodiscard]] index_t live_sequences() const noexcept { return index_.live_sequences(); }
  [[nodiscard]] KvSeqId add_sequence() { return index_.add_sequence(); }
  void remove_sequence(KvSeqId seq) { index_.remove_sequence(seq); }
  void clear(KvSeqId seq) { index_.clear(seq); }
  [[nodiscard]] index_t length(KvSeqId seq, index_t layer) const { return index_.length(seq, layer); }
  [[nodiscard]] index_t first(KvSeqId seq, index_t layer) const { return index_.first(seq, layer); }
  void truncate(KvSeqId seq, index_t layer, index_t new_length) { index_.truncate(seq, layer, new_length); }

  /// Layer l's pools [blocks, Hkv, slots, D].
  [[nodiscard]] Tensor<Act, 4, cuda>& keys(index_t l) { return k_[static_cast<std::size_t>(l)]; }
  [[nodiscard]] Tensor<Act, 4, cuda>& values(index_t l) { return v_[static_cast<std::size_t>(l)]; }

 private:
  KvIndex index_;
  std::vector<Tensor<Act, 4, cuda>> k_, v_;
};

/// One MoE layer's routing on the device: expert ids and mixture weights [T, k], by decreasing
/// selection score (nn/router.hpp's order), written by the routing kernel and read there by the
/// expert GEMVs. `host` holds the routing instead when a selector that is code routed it on the
/// host.
struct CudaRouting {
  Tensor<i32, 2, cuda> experts;  // [T, k]
  Tensor<f32, 2, cuda> weights;  // [T, k]
  std::optional<Routing> host;
  [[nodiscard]] index_t n_tokens() const noexcept { return host ? host->experts.extent(0) : experts.extent(0); }
  [[nodiscard]] index_t k() const noexcept { return host ? host->experts.extent(1) : experts.extent(1); }
};

// ---------------------------------------------------------------------------------------------
// The backend
// ---------------------------------------------------------------------------------------------

class Cuda {
 public:
  using memory = cuda;
  using weight = CudaWeight;
  template <class D, std::size_t R>
  using param = Tensor<D, R, cuda>;
  template <class G, class Act>
  using experts = CudaExperts<G, Act>;
  using rope_table = CudaRopeTable;
  template <class Act>
  using kv_cache = CudaKvCache<Act>;
  using routing = CudaRouting;

  /// The current CUDA device; cuda_error when there is none, or when it is older than the
  /// architectures the kernels were built for. (The thread-count argument is ignored: it keeps
  /// the constructor the other backends have.)
  explicit Cuda(int /*n_threads*/ = 0) : st_(std::make_shared<State>()) {}

  [[nodiscard]] static constexpr const char* name() noexcept { return "cuda"; }
  [[nodiscard]] const cuda_rt::DeviceInfo& device() const noexcept { return st_->info; }

  /// Before any weight is uploaded: cuda_error when `weight_bytes` (the model's weights in their
  /// stored formats) plus a 5% margin and the 64 MiB dequantization chunk of quantized prefill
  /// GEMMs exceed the device memory free
  /// now — saying how much the model needs and how much is free, instead of failing midway
  /// through the upload. (The KV pool is allocated after the weights; running out there is the
  /// allocator's own error with both numbers.)
  void check_fits(std::size_t weight_bytes, std::string_view what) const {
    std::size_t free_b = 0, total_b = 0;
    PRECIS_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b), "check_fits");
    const double need = static_cast<double>(weight_bytes) * 1.05 + static_cast<double>(std::size_t{64} << 20);
    if (need > static_cast<double>(free_b)) {
      constexpr double gib = 1024.0 * 1024.0 * 1024.0;
      fail<cuda_error>("[cuda] ", what, " needs about ", need / gib, " GiB of device memory for its weights (",
                       static_cast<double>(weight_bytes) / gib, " GiB stored) but ", static_cast<double>(free_b) / gib,
                       " GiB of ", static_cast<double>(total_b) / gib, " GiB are free on ", st_->info.name,
                       "; use a smaller or more quantized model, or --device cpu");
    }
  }
  [[nodiscard]] cudaStream_t stream() const noexcept { return st_->stream; }

  /// Calls `f(uploaded, total)` as weights and expert stacks reach the device (about every 1% of
  /// `total`, and at the end of each upload that completes it): the progress line of a load.
  void report_uploads(std::size_t total, std::function<void(std::size_t, std::size_t)> f) {
    st_->up_total = total;
    st_->up_done = st_->up_next = 0;
    st_->on_upload = std::move(f);
  }

  template <class F>
  decltype(auto) execute(F&& f) {
    const cuda_rt::StreamScope scope(st_->stream);
    return std::forward<F>(f)();
  }

  // --- uploads --------------------------------------------------------------------------------
  [[nodiscard]] weight upload(const AnyWeight& w) const { return uploaded(CudaWeight(w)); }
  template <class D, std::size_t R>
  [[nodiscard]] param<D, R> upload(const io::Loaded<D, R>& p) const {
    if (p.view().is_contiguous()) return to_device(p.view());
    return to_device(p.to_tensor());
  }
  template <class G, class Act>
  [[nodiscard]] experts<G, Act> upload(const AnyMoeExperts<G, Act>& e) const {
    return uploaded(CudaExperts<G, Act>(e));
  }
  [[nodiscard]] rope_table upload(const RopeTable<f32>& t) const {
    const cuda_rt::StreamScope scope(st_->stream);
    return CudaRopeTable{to_device(t.cos()), to_device(t.sin())};
  }
  template <ActivationDtype Act>
  [[nodiscard]] kv_cache<Act> make_kv_cache(const KvLayerPlan& plan, const PagedKvSize& size) const {
    return kv_cache<Act>(plan, size);
  }
  /// Only the compute dtype's own format: the device attention kernels read Act rows. Another
  /// cache type is refused here, at load, naming what was asked (never a silent f32 cache).
  template <ActivationDtype Act>
  [[nodiscard]] kv_cache<Act> make_kv_cache(const KvLayerPlan& plan, const PagedKvSize& size,
                                            const KvCacheFormat& format) const {
    const KvCacheFormat native{native_kv_format<Act>(), native_kv_format<Act>()};
    PRECIS_CHECK(format == native, config_error, "[cuda] the CUDA backend stores the KV cache as ", dtype_name<Act>,
                 " (the compute dtype) only; cache types ", format.describe(),
                 " are supported by the CPU backends (--device cpu), or drop --cache-type-k/-v");
    return kv_cache<Act>(plan, size);
  }

  [[nodiscard]] Tensor<f32, 2, host> to_host(Tensor<f32, 2, cuda>&& x) const {
    const cuda_rt::StreamScope scope(st_->stream);
    Tensor<f32, 2, host> out = precis::to_host(x);
    check_nonfinite();
    return out;
  }

  /// Samples each row of `logits` [B, V] on the device (kernels/sampling.cuh, the chain of
  /// nn/sampling.hpp for the drawn requests): the requests' parameters and distinct penalty
  /// tokens go up, B outcomes come back — the step's one synchronisation.
  template <cuda_detail::DeviceTensorOfRank<2> L>
    requires std::same_as<std::remove_const_t<dtype_of<L>>, f32>
  [[nodiscard]] std::vector<sampling::SampleOutcome> sample(const L& logits,
                                                            std::span<const sampling::SampleRequest> reqs) const {
    const TensorView<const f32, 2, cuda> lv = logits;
    const index_t B = lv.extent(0), V = lv.extent(1);
    PRECIS_CHECK(static_cast<std::size_t>(B) == reqs.size(), shape_error, "[cuda sample] ", reqs.size(),
                 " requests for ", B, " rows of logits");
    PRECIS_CHECK(V >= 1 && V <= std::numeric_limits<std::int32_t>::max() && lv.stride(1) == 1, shape_error,
                 "[cuda sample] logits ", format_extents(lv.extents()), " must be non-empty contiguous rows of i32-range ids");
    const cuda_rt::StreamScope scope(st_->stream);
    check_nonfinite();
    std::vector<cuda_kernels::SampleRowDev> rows(static_cast<std::size_t>(B));
    std::vector<std::int32_t> pen_tok, pen_count;
    for (std::size_t b = 0; b < reqs.size(); ++b) {
      const sampling::SampleRequest& q = reqs[b];
      const sampling::SamplerParams& p = q.params;
      cuda_kernels::SampleRowDev& r = rows[b];
      r.usable = q.usable > 0 ? std::min(q.usable, V) : V;
      r.mode = p.temperature == 0.0f ? 0 : (p.top_k > 0 || p.top_p < 1.0f) ? 2 : 1;
      r.top_k = static_cast<int>(std::min<index_t>(p.top_k, r.usable));
      r.top_p = p.top_p;
      r.min_p_on = p.min_p > 0.0f ? 1 : 0;
      r.log_min_p = p.min_p > 0.0f ? std::log(p.min_p) : 0.0f;  // float std::log, as nn/sampling.hpp min_p
      r.temperature = p.temperature;
      r.u = q.u;
      r.repetition = p.repetition_penalty;
      r.frequency = p.frequency_penalty;
      r.presence = p.presence_penalty;
      r.pen_begin = static_cast<int>(pen_tok.size());
      if (sampling::penalties_on(p))
        for (const auto& [tok, n] : sampling::window_counts(q.window, r.usable)) {
          pen_tok.push_back(tok);
          pen_count.push_back(static_cast<std::int32_t>(n));
        }
      r.pen_end = static_cast<int>(pen_tok.size());
    }
    // One upload: rows, then the penalty tokens and counts.
    const std::size_t rows_bytes = rows.size() * sizeof(cuda_kernels::SampleRowDev);
    const std::size_t pen_bytes = pen_tok.size() * sizeof(std::int32_t);
    std::vector<unsigned char> up(rows_bytes + 2 * pen_bytes + 16);
    std::memcpy(up.data(), rows.data(), rows_bytes);
    if (pen_bytes > 0) {
      std::memcpy(up.data() + rows_bytes, pen_tok.data(), pen_bytes);
      std::memcpy(up.data() + rows_bytes + pen_bytes, pen_count.data(), pen_bytes);
    }
    Tensor<u8, 1, cuda> args({static_cast<index_t>(up.size())});
    PRECIS_CUDA_CHECK(cudaMemcpyAsync(args.data(), up.data(), up.size(), cudaMemcpyHostToDevice, s()),
                      "[cuda sample] uploading ", B, " requests");
    const std::size_t scratch = cuda_kernels::sample_scratch_bytes(B, V);
    if (static_cast<std::size_t>(st_->sample_scratch.numel()) < scratch)
      st_->sample_scratch = Tensor<u8, 1, cuda>({static_cast<index_t>(scratch)});
    Tensor<u8, 1, cuda> out_dev({static_cast<index_t>(rows.size() * sizeof(cuda_kernels::SampleOutDev))});
    auto* base = reinterpret_cast<unsigned char*>(args.data());
    launch(cuda_kernels::sample(lv.data(), lv.stride(0), B, V,
                                reinterpret_cast<const cuda_kernels::SampleRowDev*>(base), rows.data(),
                                reinterpret_cast<const std::int32_t*>(base + rows_bytes),
                                reinterpret_cast<const std::int32_t*>(base + rows_bytes + pen_bytes),
                                st_->sample_scratch.data(), static_cast<std::size_t>(st_->sample_scratch.numel()),
                                reinterpret_cast<cuda_kernels::SampleOutDev*>(out_dev.data()), s()),
           "sample", "logits ", format_extents(lv.extents()));
    std::vector<cuda_kernels::SampleOutDev> got(rows.size());
    PRECIS_CUDA_CHECK(cudaMemcpyAsync(got.data(), out_dev.data(), got.size() * sizeof(cuda_kernels::SampleOutDev),
                                      cudaMemcpyDeviceToHost, s()),
                      "[cuda sample] reading ", B, " tokens");
    PRECIS_CUDA_CHECK(cudaStreamSynchronize(s()), "[cuda sample] logits ", format_extents(lv.extents()));
    std::vector<sampling::SampleOutcome> out(got.size());
    for (std::size_t b = 0; b < got.size(); ++b) {
      PRECIS_CHECK(got[b].error == 0, range_error, "[sampling] every remaining logit is -inf: no token can be drawn");
      out[b] = {got[b].token, got[b].bad_id, got[b].bad_logit};
    }
    return out;
  }

  // --- ops ------------------------------------------------------------------------------------
  template <ActivationDtype Act>
  [[nodiscard]] Tensor<Act, 2, cuda> embed(const CudaWeight& table, std::span<const std::int64_t> ids) const {
    const auto n = static_cast<index_t>(ids.size());
    for (index_t t = 0; t < n; ++t) {
      const std::int64_t id = ids[static_cast<std::size_t>(t)];
      PRECIS_CHECK(id >= 0 && id < table.rows(), range_error, "[model] token id ", id, " at index ", t,
                   " is outside the vocabulary [0, ", table.rows(), ") of '", table.name(), "'");
    }
    Tensor<Act, 2, cuda> out({n, table.cols()});  // [T, K]
    if (n == 0) return out;
    Tensor<i64, 1, cuda> dev_ids = to_device(TensorView<const i64, 1>(ids.data(), {n}));
    launch(cuda_kernels::embed(table.matrix(), dev_ids.data(), n, out.data(), cuda_detail::elt_of<Act>, s()), "embed",
           "table '", table.name(), "' ", format_extents(table.extents()), ", ", n, " ids");
    return out;
  }

  /// rows [N, H] (any row stride) or per-head rows [N, heads, D] (contiguous).
  template <RmsNormCastOrder Order, class X, class G>
    requires(cuda_detail::DeviceTensorOfRank<X, 2> || cuda_detail::DeviceTensorOfRank<X, 3>) &&
            ActivationDtype<std::remove_const_t<dtype_of<X>>> &&
            rms_norm_weight_dtype_allowed<Order, G, std::remove_const_t<dtype_of<X>>>
  [[nodiscard]] Tensor<std::remove_const_t<dtype_of<X>>, rank_of<X>, cuda> rms_norm(const X& x,
                                                                                  const Tensor<G, 1, cuda>& gain,
                                                                                  const Scalar<f32>& eps) const {
    using D = std::remove_const_t<dtype_of<X>>;
    constexpr std::size_t R = rank_of<X>;
    const TensorView<const D, R, cuda> v = x;
    const index_t n = v.extent(R - 1);
    PRECIS_CHECK(n > 0, shape_error, "[cuda rms_norm] x ", format_extents(v.extents()), " has an empty last axis");
    PRECIS_CHECK(gain.extent(0) == n, shape_error, "[cuda rms_norm] weight ", format_extents(gain.extents()),
                 " does not match the last axis of x ", format_extents(v.extents()));
    PRECIS_CHECK(eps.value() >= 0.0f, config_error, "[cuda rms_norm] eps must be >= 0, got ", eps.value());
    index_t rows = v.extent(0), ld = v.stride(0);
    if constexpr (R == 3) {
      PRECIS_CHECK(v.is_contiguous(), shape_error, "[cuda rms_norm] per-head rows ", format_extents(v.extents()),
                   " must be contiguous");
      rows = v.extent(0) * v.extent(1);
      ld = n;
    } else {
      PRECIS_CHECK(v.stride(1) == 1, shape_error, "[cuda rms_norm] rows of x ", format_extents(v.extents()),
                   " must be contiguous");
    }
    Tensor<D, R, cuda> out(v.extents());
    launch(cuda_kernels::rms_norm(v.data(), ld, cuda_detail::elt_of<D>, rows, n, gain.data(), cuda_detail::elt_of<G>,
                                  eps.value(), std::same_as<Order, NormThenCast>, out.data(), s()),
           "rms_norm", "x ", format_extents(v.extents()));
    return out;
  }

  /// y [M, N] = x [M, K]·Wᵀ in x's dtype (or f32, declared), accumulated in f32.
  template <class Out = operand_dtype, cuda_detail::device_linear_input X>
    requires matmul_out_is_operand_or_f32<resolve_out_t<Out, std::remove_const_t<dtype_of<X>>>,
                                          std::remove_const_t<dtype_of<X>>>
  [[nodiscard]] Tensor<resolve_out_t<Out, std::remove_const_t<dtype_of<X>>>, 2, cuda> linear(
      const X& x, const CudaWeight& w, activation_quantization aq) const {
    using A = std::remove_const_t<dtype_of<X>>;
    using O = resolve_out_t<Out, A>;
    return linear_typed<A, O>(x, w, nullptr, aq);
  }
  /// As above + bias [N] of the output dtype.
  template <class Out = operand_dtype, cuda_detail::device_linear_input X, cuda_detail::DeviceTensorOfRank<1> B>
    requires matmul_out_is_operand_or_f32<resolve_out_t<Out, std::remove_const_t<dtype_of<X>>>,
                                          std::remove_const_t<dtype_of<X>>> &&
             same_dtype_no_implicit_cast<std::remove_const_t<dtype_of<B>>,
                                         resolve_out_t<Out, std::remove_const_t<dtype_of<X>>>>
  [[nodiscard]] Tensor<resolve_out_t<Out, std::remove_const_t<dtype_of<X>>>, 2, cuda> linear(
      const X& x, const CudaWeight& w, const B& bias, activation_quantization aq) const {
    using A = std::remove_const_t<dtype_of<X>>;
    using O = resolve_out_t<Out, A>;
    const TensorView<const O, 1, cuda> b = bias;
    PRECIS_CHECK(b.extent(0) == w.rows(), shape_error, "[cuda linear] bias ", format_extents(b.extents()), " for ",
                 w.rows(), " outputs of '", w.name(), "'");
    PRECIS_CHECK(b.stride(0) == 1, shape_error, "[cuda linear] bias of '", w.name(), "' must be contiguous");
    return linear_typed<A, O>(x, w, b.data(), aq);
  }

  template <rope_layout Layout, ActivationDtype D>
  void rope(const TensorView<D, 3, cuda>& x, const CudaRopeTable& table) const {
    const index_t n_tok = x.extent(0), heads = x.extent(1), head_dim = x.extent(2);
    const index_t rd = table.rotary_dim(), half = rd / 2;
    PRECIS_CHECK(table.n_positions() == n_tok, shape_error, "[cuda rope] x ", format_extents(x.extents()), " has ",
                 n_tok, " tokens but the RoPE table has ", table.n_positions(), " positions");
    PRECIS_CHECK(rd <= head_dim, shape_error, "[cuda rope] rotary_dim ", rd, " exceeds head_dim ", head_dim);
    PRECIS_CHECK(x.stride(2) == 1, shape_error, "[cuda rope] x ", format_extents(x.extents()),
                 " must be contiguous within a head");
    launch(cuda_kernels::rope(x.data(), cuda_detail::elt_of<D>, n_tok, heads, x.stride(0), x.stride(1), table.cos.data(),
                              table.sin.data(), half, Layout == rope_layout::interleaved, s()),
           "rope", "x ", format_extents(x.extents()));
  }

  template <GatedActivation Act_, cuda_detail::DeviceTensorOfRank<2> Gt, cuda_detail::DeviceTensorOfRank<2> Up>
    requires ActivationDtype<std::remove_const_t<dtype_of<Gt>>> &&
             same_dtype_no_implicit_cast<std::remove_const_t<dtype_of<Gt>>, std::remove_const_t<dtype_of<Up>>>
  [[nodiscard]] Tensor<std::remove_const_t<dtype_of<Gt>>, 2, cuda> glu(const Act_& act, const Gt& gate,
                                                                       const Up& up) const {
    using D = std::remove_const_t<dtype_of<Gt>>;
    const TensorView<const D, 2, cuda> g = gate, u = up;
    PRECIS_CHECK(g.extents() == u.extents(), shape_error, "[cuda glu] gate ", format_extents(g.extents()), " and up ",
                 format_extents(u.extents()), " differ");
    PRECIS_CHECK(g.stride(1) == 1 && u.stride(1) == 1 && g.stride(0) == u.stride(0), shape_error,
                 "[cuda glu] gate and up rows must be contiguous with one row stride");
    precis::detail::check_activation("glu", act);
    Tensor<D, 2, cuda> out(g.extents());
    const auto [kind, alpha, limit] = gating_params(act);
    launch(cuda_kernels::glu(kind, alpha, limit, g.data(), u.data(), cuda_detail::elt_of<D>, g.stride(0), 1, out.data(),
                             cuda_detail::elt_of<D>, g.extent(1), g.extent(0), g.extent(1), s()),
           "glu", "gate ", format_extents(g.extents()));
    return out;
  }

  template <ActivationDtype D, cuda_detail::DeviceTensorOfRank<2> Y>
    requires same_dtype_no_implicit_cast<D, std::remove_const_t<dtype_of<Y>>>
  void add_inplace(const TensorView<D, 2, cuda>& x, const Y& y) const {
    const TensorView<const D, 2, cuda> yv = y;
    PRECIS_CHECK(x.extents() == yv.extents(), shape_error, "[cuda add_inplace] x ", format_extents(x.extents()),
                 " and y ", format_extents(yv.extents()), " differ");
    PRECIS_CHECK(x.stride(1) == 1 && yv.stride(1) == 1, shape_error, "[cuda add_inplace] rows must be contiguous");
    launch(cuda_kernels::add_inplace(x.data(), x.stride(0), yv.data(), yv.stride(0), cuda_detail::elt_of<D>, x.extent(0),
                                     x.extent(1), s()),
           "add_inplace", "x ", format_extents(x.extents()));
  }

  /// Appends k, v [N, Hkv, D] to `layer` of each sequence and attends (backends/backend.hpp).
  template <ActivationDtype Act, cuda_detail::DeviceTensorOfRank<3> Q, cuda_detail::DeviceTensorOfRank<3> K,
            cuda_detail::DeviceTensorOfRank<3> V>
    requires same_dtype_no_implicit_cast<std::remove_const_t<dtype_of<Q>>, Act> &&
             same_dtype_no_implicit_cast<std::remove_const_t<dtype_of<K>>, Act> &&
             same_dtype_no_implicit_cast<std::remove_const_t<dtype_of<V>>, Act>
  [[nodiscard]] Tensor<Act, 3, cuda> attend(CudaKvCache<Act>& cache, index_t layer, std::span<const KvSeqId> seqs,
                                            const Q& q, const K& k, const V& v, const AttentionConfig& cfg) const {
    return append_and_attend<Act>(cache, layer, seqs, q, k, v, cfg, nullptr);
  }
  /// The same with sinks [H]: f32 logits (attention_sinks_are_f32, E23).
  template <ActivationDtype Act, cuda_detail::DeviceTensorOfRank<3> Q, cuda_detail::DeviceTensorOfRank<3> K,
            cuda_detail::DeviceTensorOfRank<3> V, cuda_detail::DeviceTensorOfRank<1> S>
    requires same_dtype_no_implicit_cast<std::remove_const_t<dtype_of<Q>>, Act> &&
             same_dtype_no_implicit_cast<std::remove_const_t<dtype_of<K>>, Act> &&
             same_dtype_no_implicit_cast<std::remove_const_t<dtype_of<V>>, Act> &&
             attention_sinks_are_f32<std::remove_const_t<dtype_of<S>>>
  [[nodiscard]] Tensor<Act, 3, cuda> attend(CudaKvCache<Act>& cache, index_t layer, std::span<const KvSeqId> seqs,
                                            const Q& q, const K& k, const V& v, const AttentionConfig& cfg,
                                            const S& sinks) const {
    const TensorView<const f32, 1, cuda> sv = sinks;
    PRECIS_CHECK(sv.extent(0) == cfg.n_heads && sv.stride(0) == 1, shape_error, "[attention] sinks ",
                 format_extents(sv.extents()), " for ", cfg.n_heads, " query heads");
    return append_and_attend<Act>(cache, layer, seqs, q, k, v, cfg, sv.data());
  }

  /// Routing on the device (kernels/route.cuh) for both policies, with a selector that is data
  /// (ExpertScoreTable: bias and mask) applied in the kernel; a selector that is code routes on
  /// the host copy of the logits (the policy's scalar code), its result kept in `host`.
  template <class Policy, cuda_detail::DeviceTensorOfRank<2> L>
    requires std::same_as<std::remove_const_t<dtype_of<L>>, f32>
  [[nodiscard]] routing route(const Policy& policy, const L& logits, index_t k, const BoundLayerSelector& sel) const {
    const TensorView<const f32, 2, cuda> lv = logits;
    const cuda_rt::StreamScope scope(st_->stream);
    constexpr bool device_policy = std::same_as<Policy, SoftmaxThenTopK> || std::same_as<Policy, TopKThenSoftmax>;
    const char* name = std::same_as<Policy, SoftmaxThenTopK> ? "SoftmaxThenTopK" : "TopKThenSoftmax";
    if (!device_policy || !sel.is_data() || lv.extent(1) > 6144 || cuda_detail::env_off("PRECIS_CUDA_DEVICE_ROUTING")) {
      const Tensor<f32, 2, host> host_logits = lv.is_contiguous() ? precis::to_host(lv) : precis::to_host(contiguous(lv));
      CudaRouting r;
      r.host = policy(host_logits, k, sel);
      return r;
    }
    precis::detail::check_routing_args(name, lv, k);
    PRECIS_CHECK(lv.stride(1) == 1, shape_error, "[cuda route] rows of the router logits must be contiguous");
    const index_t T = lv.extent(0), E = lv.extent(1);
    CudaRouting r{Tensor<i32, 2, cuda>({T, k}), Tensor<f32, 2, cuda>({T, k}), std::nullopt};
    Tensor<f32, 1, cuda> bias;
    Tensor<u8, 1, cuda> allowed;
    if (const ExpertScoreTable* t = sel.table()) {
      PRECIS_CHECK((t->bias.empty() || static_cast<index_t>(t->bias.size()) == E) &&
                       (t->allowed.empty() || static_cast<index_t>(t->allowed.size()) == E),
                   shape_error, "[cuda route] selector table of ", t->bias.size(), " biases / ", t->allowed.size(),
                   " mask entries for ", E, " experts");
      if (!t->bias.empty()) bias = to_device(TensorView<const f32, 1>(t->bias.data(), {E}));
      if (!t->allowed.empty()) allowed = to_device(TensorView<const u8, 1>(t->allowed.data(), {E}));
    }
    bool softmax_first = false, norm = false;
    if constexpr (std::same_as<Policy, SoftmaxThenTopK>) {
      softmax_first = true;
      norm = policy.norm_topk_prob;
    }
    st_->route_used = true;
    launch(cuda_kernels::route(lv.data(), lv.stride(0), T, E, k, softmax_first, norm, bias.numel() ? bias.data() : nullptr,
                               allowed.numel() ? allowed.data() : nullptr, r.experts.data(), r.weights.data(),
                               st_->errors.data() + 1, s()),
           "route", name, " logits ", format_extents(lv.extents()), ", k = ", k);
    return r;
  }

  /// Waits for the stream and reports what the kernels flagged (a NaN router logit, a routing
  /// with too few allowed experts, a non-finite q8 input) — what the next synchronisation of a
  /// step (sample, to_host) reports anyway.
  void synchronize() const {
    const cuda_rt::StreamScope scope(st_->stream);
    PRECIS_CUDA_CHECK(cudaStreamSynchronize(s()), "synchronize");
    check_nonfinite();
  }

  template <class G, ActivationDtype Act, cuda_detail::DeviceTensorOfRank<2> X>
    requires moe_input_matches_activation<std::remove_const_t<dtype_of<X>>, Act>
  [[nodiscard]] Tensor<Act, 2, cuda> moe(const CudaExperts<G, Act>& ex, const X& x, const Routing& r) const;

  /// MoE over a device routing: up to gemv_max_rows tokens, the expert GEMVs read the expert ids
  /// on the device (no host round trip: kernels/route.cuh indexed GEMV); more tokens, the routing
  /// comes to the host, which groups the tokens by expert for the per-expert GEMMs.
  template <class G, ActivationDtype Act, cuda_detail::DeviceTensorOfRank<2> X>
    requires moe_input_matches_activation<std::remove_const_t<dtype_of<X>>, Act>
  [[nodiscard]] Tensor<Act, 2, cuda> moe(const CudaExperts<G, Act>& ex, const X& x, const CudaRouting& r) const;

 private:
  struct State {
    cuda_rt::DeviceInfo info;
    cudaStream_t stream = nullptr;
    cublasLtHandle_t lt = nullptr;
    Tensor<u8, 1, cuda> workspace;
    Tensor<i32, 1, cuda> errors;     // [3]: q8 non-finite input flag; routing error code, token
    mutable bool route_used = false;
    Tensor<u8, 1, cuda> sample_scratch;  // grows to the largest [B, V] sampled
    std::function<void(std::size_t, std::size_t)> on_upload;  // report_uploads
    std::size_t up_total = 0, up_done = 0, up_next = 0;
    mutable bool q8_used = false;

    State() : info(cuda_rt::device_info()) {
      if (const cudaError_t e = cuda_kernels::probe(); e != cudaSuccess)
        fail<cuda_error>("[cuda] device ", info.ordinal, " '", info.name, "' (compute capability ", info.major, ".",
                         info.minor, ") cannot run this build's kernels, compiled for architectures ",
                         cuda_kernels::compiled_architectures(), ": ", cudaGetErrorName(e), " (", cudaGetErrorString(e),
                         "); rebuild with CMAKE_CUDA_ARCHITECTURES for this device");
      PRECIS_CUDA_CHECK(cudaStreamCreate(&stream), "creating the backend's stream");
      const cublasStatus_t cs = cublasLtCreate(&lt);
      if (cs != CUBLAS_STATUS_SUCCESS) {
        (void)cudaStreamDestroy(stream);
        fail<cuda_error>("[cuda] cublasLtCreate failed: ", cublasLtGetStatusName(cs));
      }
      workspace = Tensor<u8, 1, cuda>({index_t{32} << 20});
      errors = Tensor<i32, 1, cuda>({3});
      PRECIS_CUDA_CHECK(cudaMemset(errors.data(), 0, 3 * sizeof(std::int32_t)), "backend setup");
      PRECIS_CUDA_CHECK(cudaDeviceSynchronize(), "backend setup");
    }
    ~State() {
      (void)cudaStreamSynchronize(stream);
      if (lt != nullptr) (void)cublasLtDestroy(lt);
      workspace = Tensor<u8, 1, cuda>();
      errors = Tensor<i32, 1, cuda>();
      sample_scratch = Tensor<u8, 1, cuda>();
      (void)cudaDeviceSynchronize();
      if (stream != nullptr) (void)cudaStreamDestroy(stream);
    }
    State(const State&) = delete;
    State& operator=(const State&) = delete;
  };

  [[nodiscard]] cudaStream_t s() const noexcept { return st_->stream; }

  /// Counts an upload's bytes towards report_uploads' progress.
  template <class T>
  [[nodiscard]] T uploaded(T&& x) const {
    State& st = *st_;
    st.up_done += x.bytes();
    if (st.on_upload && (st.up_done >= st.up_next || st.up_done >= st.up_total)) {
      st.on_upload(std::min(st.up_done, st.up_total), st.up_total);
      st.up_next = st.up_done + st.up_total / 100 + 1;
    }
    return std::forward<T>(x);
  }

  /// Throws cuda_error for a failed launch, naming the op and what it ran on.
  template <class... What>
  static void launch(cudaError_t e, const char* op, const What&... what) {
    if (e != cudaSuccess)
      fail<cuda_error>("[cuda ", op, "] ", what..., ": kernel launch failed: ", cudaGetErrorName(e), " (",
                       cudaGetErrorString(e), ")");
  }

  template <class D, std::size_t R>
  [[nodiscard]] static Tensor<D, R, cuda> contiguous(const TensorView<const D, R, cuda>& v) {
    static_assert(R == 2, "contiguous() copies matrices");
    Tensor<D, R, cuda> out(v.extents());
    PRECIS_CUDA_CHECK(cudaMemcpy2DAsync(out.data(), static_cast<std::size_t>(v.extent(1)) * sizeof(storage_t<D>), v.data(),
                                        static_cast<std::size_t>(v.stride(0)) * sizeof(storage_t<D>),
                                        static_cast<std::size_t>(v.extent(1)) * sizeof(storage_t<D>),
                                        static_cast<std::size_t>(v.extent(0)), cudaMemcpyDeviceToDevice,
                                        cuda_rt::current_stream()),
                      "copying ", format_extents(v.extents()), " to contiguous rows");
    return out;
  }

  void check_nonfinite() const {
    if (!st_->q8_used && !st_->route_used) return;
    std::int32_t flag[3] = {0, 0, 0};
    PRECIS_CUDA_CHECK(cudaMemcpy(flag, st_->errors.data(), sizeof flag, cudaMemcpyDeviceToHost), "reading the error words");
    if (flag[0] == 0 && flag[1] == 0) return;
    PRECIS_CUDA_CHECK(cudaMemset(st_->errors.data(), 0, sizeof flag), "resetting the error words");
    if (flag[0] != 0)
      fail<range_error>("[cuda linear] a non-finite activation reached the q8_blocks rounding during this step "
                        "(activation_quantization::q8_blocks needs finite inputs)");
    const char* what = flag[1] == 1   ? "a router logit or selection score is NaN"
                       : flag[1] == 2 ? "fewer experts than k have a selection score above -inf (disallowed or -inf logits)"
                       : flag[1] == 3 ? "every router logit is -inf, the softmax has no distribution"
                       : flag[1] == 4 ? "the selected experts have probability 0, nothing to renormalise"
                                      : "every selected expert has logit -inf, the softmax has no distribution";
    fail<range_error>("[cuda route] token ", flag[2], " of an MoE layer in this step: ", what);
  }

  struct GatingParams {
    int kind;
    float alpha, limit;
  };
  [[nodiscard]] static GatingParams gating_params(const SiluGate&) { return {0, 0.0f, 0.0f}; }
  [[nodiscard]] static GatingParams gating_params(const ClampedSwiglu& c) {
    return {1, c.alpha.value(), c.limit.value()};
  }

  template <class A, class O, class X>
  [[nodiscard]] Tensor<O, 2, cuda> linear_typed(const X& x, const CudaWeight& w, const void* bias,
                                                activation_quantization aq) const {
    const TensorView<const A, 2, cuda> xv = x;
    const index_t m = xv.extent(0), k = xv.extent(1), n = w.rows();
    PRECIS_CHECK(w.cols() == k, shape_error, "[cuda linear] x ", format_extents(xv.extents()), " · Wᵀ with '", w.name(),
                 "' ", format_extents(w.extents()), ": inner dimensions differ");
    PRECIS_CHECK(xv.stride(1) == 1, shape_error, "[cuda linear] rows of x ", format_extents(xv.extents()),
                 " must be contiguous");
    Tensor<O, 2, cuda> out({m, n});  // [M, N]
    run_linear(w.matrix(), xv.data(), cuda_detail::elt_of<A>, xv.stride(0), m, out.data(), cuda_detail::elt_of<O>, n, bias,
               cuda_detail::elt_of<O>, aq, w.name());
    return out;
  }

  /// The linear math of the header comment over raw device pointers (also the expert GEMMs).
  void run_linear(const cuda_kernels::DeviceMatrix& w, const void* x, cuda_kernels::elt xt, index_t ldx, index_t m,
                  void* y, cuda_kernels::elt yt, index_t ldy, const void* bias, cuda_kernels::elt bt,
                  activation_quantization aq, const std::string& wname) const {
    namespace ck = cuda_kernels;
    const index_t k = w.cols, n = w.rows;
    if (m == 0 || n == 0) return;
    const auto shapes = [&] {
      return "x [" + std::to_string(m) + ", " + std::to_string(k) + "] · Wᵀ of '" + wname + "' [" + std::to_string(n) +
             ", " + std::to_string(k) + "] " + std::string(precis::to_string(w.format));
    };
    const bool block = w.format != dtype_code::f32 && w.format != dtype_code::bf16 && w.format != dtype_code::f16;
    Tensor<f32, 2, cuda> xq;
    if (aq == activation_quantization::q8_blocks && block) {
      PRECIS_CHECK(k % 32 == 0, shape_error, "[cuda linear] q8 activations need K % 32 == 0, got ", k);
      xq = Tensor<f32, 2, cuda>({m, k});
      launch(ck::q8_round(x, xt, ldx, m, k, xq.data(), st_->errors.data(), s()), "linear (q8 rounding)", shapes());
      st_->q8_used = true;
      x = xq.data();
      xt = ck::elt::f32;
      ldx = k;
    }
    if (m <= ck::gemv_max_rows) {
      launch(ck::gemv(w, x, xt, ldx, m, y, yt, ldy, bias, bt, s()), "linear (gemv)", shapes());
      return;
    }
    // GEMM: f32 accumulator [M, N] (the output itself when it is f32 with no bias), epilogue after.
    const bool direct = yt == ck::elt::f32 && bias == nullptr;
    Tensor<f32, 2, cuda> acc;
    float* accp = static_cast<float*>(y);
    index_t ldacc = ldy;
    if (!direct) {
      acc = Tensor<f32, 2, cuda>({m, n});
      accp = acc.data();
      ldacc = n;
    }
    if (w.format == dtype_code::bf16 && xt == ck::elt::bf16) {
      gemm(CUDA_R_16BF, w.data, n, x, m, k, ldx, accp, ldacc, shapes);
    } else {
      Tensor<f32, 2, cuda> x32;
      const void* xf = x;
      index_t ldxf = ldx;
      if (xt != ck::elt::f32) {
        x32 = Tensor<f32, 2, cuda>({m, k});
        launch(ck::convert(x, xt, ldx, nullptr, ck::elt::f32, x32.data(), ck::elt::f32, k, m, k, s()),
               "linear (widen x)", shapes());
        xf = x32.data();
        ldxf = k;
      }
      if (w.format == dtype_code::f32) {
        gemm(CUDA_R_32F, w.data, n, xf, m, k, ldxf, accp, ldacc, shapes);
      } else {
        // Dequantize the weight rows exactly to f32, at most ~64 MiB at a time.
        const index_t chunk = std::max<index_t>(1, std::min<index_t>(n, (index_t{16} << 20) / std::max<index_t>(k, 1)));
        Tensor<f32, 2, cuda> wf({chunk, k});
        for (index_t r0 = 0; r0 < n; r0 += chunk) {
          const index_t rows = std::min(chunk, n - r0);
          launch(ck::dequantize(w, r0, rows, wf.data(), s()), "linear (dequantize)", shapes());
          gemm(CUDA_R_32F, wf.data(), rows, xf, m, k, ldxf, accp + r0, ldacc, shapes);
        }
      }
    }
    if (!direct)
      launch(ck::convert(accp, ck::elt::f32, ldacc, bias, bt, y, yt, ldy, m, n, s()), "linear (epilogue)", shapes());
  }

  /// D [M, rows] (ld ldd, f32) = X [M, K]·Aᵀ with A [rows, K] row-major of `type`, X of `type`
  /// (f32 or bf16), f32 accumulation — cuBLASLt in column-major terms: Dᵀ = op_T(A)·X.
  template <class Shapes>
  void gemm(cudaDataType_t type, const void* a, index_t rows, const void* x, index_t m, index_t k, index_t ldx, float* d,
            index_t ldd, const Shapes& shapes) const {
    const auto check = [&](cublasStatus_t st, const char* call) {
      if (st != CUBLAS_STATUS_SUCCESS)
        fail<cuda_error>("[cuda linear (gemm)] ", shapes(), ": ", call, " failed: ", cublasLtGetStatusName(st));
    };
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    struct Cleanup {
      cublasLtMatmulDesc_t& op;
      cublasLtMatrixLayout_t &la, &lb, &ld;
      cublasLtMatmulPreference_t& pref;
      ~Cleanup() {
        if (pref) cublasLtMatmulPreferenceDestroy(pref);
        if (ld) cublasLtMatrixLayoutDestroy(ld);
        if (lb) cublasLtMatrixLayoutDestroy(lb);
        if (la) cublasLtMatrixLayoutDestroy(la);
        if (op) cublasLtMatmulDescDestroy(op);
      }
    } cleanup{op, la, lb, ld, pref};
    check(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "set TRANSA");
    check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "set TRANSB");
    const auto u = [](index_t v) { return static_cast<std::uint64_t>(v); };
    check(cublasLtMatrixLayoutCreate(&la, type, u(k), u(rows), k), "cublasLtMatrixLayoutCreate(A)");
    check(cublasLtMatrixLayoutCreate(&lb, type, u(k), u(m), ldx), "cublasLtMatrixLayoutCreate(B)");
    check(cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, u(rows), u(m), ldd), "cublasLtMatrixLayoutCreate(D)");
    check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
    const std::size_t ws = st_->workspace.bytes();
    check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
          "set MAX_WORKSPACE_BYTES");
    cublasLtMatmulHeuristicResult_t heur{};
    int found = 0;
    check(cublasLtMatmulAlgoGetHeuristic(st_->lt, op, la, lb, ld, ld, pref, 1, &heur, &found),
          "cublasLtMatmulAlgoGetHeuristic");
    if (found == 0) fail<cuda_error>("[cuda linear (gemm)] ", shapes(), ": cuBLASLt has no algorithm for this GEMM");
    const float one = 1.0f, zero = 0.0f;
    check(cublasLtMatmul(st_->lt, op, &one, a, la, x, lb, &zero, d, ld, d, ld, &heur.algo, st_->workspace.data(), ws, s()),
          "cublasLtMatmul");
  }

  template <ActivationDtype Act, class Q, class K, class V>
  [[nodiscard]] Tensor<Act, 3, cuda> append_and_attend(CudaKvCache<Act>& cache, index_t layer,
                                                       std::span<const KvSeqId> seqs, const Q& q_, const K& k_,
                                                       const V& v_, const AttentionConfig& cfg, const float* sinks) const;

  std::shared_ptr<State> st_;
};

// ---------------------------------------------------------------------------------------------
// attend
// ---------------------------------------------------------------------------------------------

template <ActivationDtype Act, class Q, class K, class V>
Tensor<Act, 3, cuda> Cuda::append_and_attend(CudaKvCache<Act>& cache, index_t layer, std::span<const KvSeqId> seqs,
                                             const Q& q_, const K& k_, const V& v_, const AttentionConfig& cfg,
                                             const float* sinks) const {
  namespace ck = cuda_kernels;
  const TensorView<const Act, 3, cuda> q = q_, k = k_, v = v_;
  precis::detail::check_attention_config(cfg);
  PRECIS_CHECK(!seqs.empty(), shape_error, "[attend] no sequences");
  const index_t H = cfg.n_heads, Hkv = cache.n_kv_heads(), D = cache.head_dim();
  const index_t n_new = k.extent(0);
  const extents_t<3> kv_want = {n_new, Hkv, D};
  PRECIS_CHECK(k.extents() == kv_want && v.extents() == kv_want, shape_error, "[cuda attend] k ",
               format_extents(k.extents()), " and v ", format_extents(v.extents()), ", expected ",
               format_extents(kv_want), " (the cache's heads and head_dim)");
  PRECIS_CHECK(q.stride(2) == 1 && q.stride(1) == D && k.stride(2) == 1 && k.stride(1) == D && v.stride(2) == 1 &&
                   v.stride(1) == D && k.stride(0) == v.stride(0),
               shape_error, "[cuda attend] q, k, v must be rows of contiguous heads, k and v with one token stride");
  PRECIS_CHECK(D <= 256, config_error, "[cuda attend] head_dim ", D, " > 256 is not supported by the CUDA kernels");
  const bool batched = seqs.size() > 1;
  if (batched)
    PRECIS_CHECK(q.extent(0) == static_cast<index_t>(seqs.size()) && n_new == q.extent(0), shape_error,
                 "[attend] batched decode of ", seqs.size(), " sequences takes one token each; q ",
                 format_extents(q.extents()), ", k ", format_extents(k.extents()));

  // 1. The index records the new positions (every check before a byte is written) and names
  //    the runs of slots they go to: one sequence's n tokens, or token b of sequence b.
  std::vector<std::int32_t> meta;
  const auto put_run = [&](const KvRun& r) {
    meta.insert(meta.end(), {static_cast<std::int32_t>(r.position), static_cast<std::int32_t>(r.block),
                             static_cast<std::int32_t>(r.slot), static_cast<std::int32_t>(r.n)});
  };
  for (std::size_t b = 0; b < seqs.size(); ++b)
    cache.index().append(seqs[b], layer, batched ? 1 : n_new, put_run);
  const auto n_append_runs = static_cast<int>(meta.size() / 4);

  // 2. What each query reads: its sequence's held runs, checked like the host caches.
  const index_t n_q = q.extent(0);
  std::vector<std::int32_t> q_seq, q_pos, run_begin{0}, read_runs;
  index_t max_keys = 0;
  for (std::size_t b = 0; b < seqs.size(); ++b) {
    const index_t len = cache.length(seqs[b], layer), first = cache.first(seqs[b], layer);
    const index_t nq_b = batched ? 1 : n_q;
    precis::detail::check_attention_keys({nq_b, q.extent(1), q.extent(2)}, first, len, cache.window(layer), Hkv, D, cfg);
    for (index_t t = 0; t < nq_b; ++t) {
      q_seq.push_back(static_cast<std::int32_t>(b));
      q_pos.push_back(static_cast<std::int32_t>(len - nq_b + t));
    }
    cache.index().for_each_run(seqs[b], layer, [&](const KvRun& r) {
      read_runs.insert(read_runs.end(), {static_cast<std::int32_t>(r.position), static_cast<std::int32_t>(r.block),
                                         static_cast<std::int32_t>(r.slot), static_cast<std::int32_t>(r.n)});
    });
    run_begin.push_back(static_cast<std::int32_t>(read_runs.size() / 4));
    max_keys = std::max(max_keys, cfg.sliding_window > 0 ? std::min(cfg.sliding_window, len) : len);
  }
  const std::size_t off_qseq = meta.size();
  meta.insert(meta.end(), q_seq.begin(), q_seq.end());
  const std::size_t off_qpos = meta.size();
  meta.insert(meta.end(), q_pos.begin(), q_pos.end());
  const std::size_t off_begin = meta.size();
  meta.insert(meta.end(), run_begin.begin(), run_begin.end());
  const std::size_t off_runs = meta.size();
  meta.insert(meta.end(), read_runs.begin(), read_runs.end());
  const Tensor<i32, 1, cuda> dmeta =
      to_device(TensorView<const i32, 1>(meta.data(), {static_cast<index_t>(meta.size())}));
  const std::int32_t* m0 = dmeta.data();

  const auto shapes = [&] {
    return "layer " + std::to_string(layer) + ", q " + format_extents(q.extents()) + ", k " + format_extents(k.extents()) +
           ", " + std::to_string(seqs.size()) + " sequence(s)";
  };
  launch(ck::kv_append(cache.keys(layer).data(), cache.values(layer).data(), cuda_detail::elt_of<Act>, Hkv, D,
                       cache.index().block_slots(layer), k.data(), v.data(), k.stride(0),
                       reinterpret_cast<const ck::KvRunDev*>(m0), n_append_runs, n_new, s()),
         "attend (kv append)", shapes());

  Tensor<Act, 3, cuda> out({n_q, H, D});  // [N, H, D]
  ck::AttentionArgs a;
  a.q = q.data();
  a.q_ld = q.stride(0);
  a.t = cuda_detail::elt_of<Act>;
  a.n_q = n_q;
  a.H = H;
  a.Hkv = Hkv;
  a.D = D;
  a.kpool = cache.keys(layer).data();
  a.vpool = cache.values(layer).data();
  a.slots = cache.index().block_slots(layer);
  a.q_seq = m0 + off_qseq;
  a.q_pos = m0 + off_qpos;
  a.run_begin = m0 + off_begin;
  a.runs = reinterpret_cast<const ck::KvRunDev*>(m0 + off_runs);
  a.window = cfg.sliding_window;
  a.scale = static_cast<float>(cfg.softmax_scale());
  a.sinks = sinks;
  a.out = out.data();
  // Flash-decoding: when (queries × heads) cannot fill the GPU, split each key range.
  const index_t blocks = n_q * H, target = 2 * std::max(1, st_->info.multiprocessors);
  if (blocks < target && max_keys > 256)
    a.n_splits = static_cast<int>(std::min<index_t>({32, (max_keys + 255) / 256, (target + blocks - 1) / blocks}));
  // A bf16 prefill of one sequence: Q·Kᵀ and P·V on the tensor cores (kernels/attention_tc.cuh).
  if constexpr (std::same_as<Act, bf16>)
    if (seqs.size() == 1 && n_q >= 16 && D % 16 == 0 && D <= 256 && !cuda_detail::env_off("PRECIS_CUDA_TC_ATTENTION")) {
      a.tensor_cores = 1;
      a.n_splits = 1;
    }
  Tensor<f32, 1, cuda> partial;
  if (a.n_splits > 1) {
    partial = Tensor<f32, 1, cuda>({n_q * H * a.n_splits * (D + 2)});
    a.partial = partial.data();
  }
  launch(ck::attention(a, s()), "attend", shapes());
  return out;
}

// ---------------------------------------------------------------------------------------------
// moe
// ---------------------------------------------------------------------------------------------

template <class G, ActivationDtype Act, cuda_detail::DeviceTensorOfRank<2> X>
  requires moe_input_matches_activation<std::remove_const_t<dtype_of<X>>, Act>
Tensor<Act, 2, cuda> Cuda::moe(const CudaExperts<G, Act>& ex, const X& x, const Routing& r) const {
  namespace ck = cuda_kernels;
  const TensorView<const Act, 2, cuda> xv = x;  // [T, H]
  precis::detail::check_moe_args("cuda moe", ex, xv, r);
  PRECIS_CHECK(xv.stride(1) == 1, shape_error, "[cuda moe] rows of x must be contiguous");
  const index_t T = xv.extent(0), k = r.experts.extent(1), Hd = ex.hidden(), I = ex.intermediate(), E = ex.n_experts();
  Tensor<Act, 2, cuda> out({T, Hd});
  if (T == 0 || k == 0) return out;
  // Tokens by expert: for expert e, its (token, slot) pairs in token order.
  std::vector<std::vector<std::int32_t>> tok(static_cast<std::size_t>(E)), dst(static_cast<std::size_t>(E));
  for (index_t t = 0; t < T; ++t)
    for (index_t j = 0; j < k; ++j) {
      const auto e = static_cast<std::size_t>(r.experts(t, j));
      tok[e].push_back(static_cast<std::int32_t>(t));
      dst[e].push_back(static_cast<std::int32_t>(t * k + j));
    }
  std::vector<std::int32_t> idx;
  std::vector<std::size_t> at(static_cast<std::size_t>(E));
  for (std::size_t e = 0; e < tok.size(); ++e) {
    at[e] = idx.size();
    idx.insert(idx.end(), tok[e].begin(), tok[e].end());
    idx.insert(idx.end(), dst[e].begin(), dst[e].end());
  }
  const Tensor<i32, 1, cuda> didx = to_device(TensorView<const i32, 1>(idx.data(), {static_cast<index_t>(idx.size())}));
  const Tensor<f32, 2, cuda> dw = to_device(r.weights);
  Tensor<f32, 2, cuda> y({T * k, Hd});  // [T·k, H] f32: row t·k + j is slot j of token t
  const auto [kind, alpha, limit] = gating_params(ex.gating_fn());
  const bool inter = ex.gate_up_layout() == CudaExperts<G, Act>::layout::interleaved;
  const ck::elt at_ = cuda_detail::elt_of<Act>;
  for (index_t e = 0; e < E; ++e) {
    const auto n = static_cast<index_t>(tok[static_cast<std::size_t>(e)].size());
    if (n == 0) continue;
    const std::string name = "expert " + std::to_string(e);
    const std::int32_t* rows = didx.data() + at[static_cast<std::size_t>(e)];
    Tensor<Act, 2, cuda> xe({n, Hd});
    launch(ck::gather_rows(xv.data(), at_, xv.stride(0), rows, n, Hd, xe.data(), s()), "moe (gather)", name);
    // Expert e's gate_up bias row [2I] (interleaved, or gate | up halves) and down bias row [H].
    const storage_t<Act>* gub = ex.has_bias() ? ex.gate_up_bias().data() + e * 2 * I : nullptr;
    const storage_t<Act>* db = ex.has_bias() ? ex.down_bias().data() + e * Hd : nullptr;
    Tensor<Act, 2, cuda> h({n, I});
    if (inter) {
      Tensor<f32, 2, cuda> gu({n, 2 * I});
      run_linear(ex.gate_up(e), xe.data(), at_, Hd, n, gu.data(), ck::elt::f32, 2 * I, gub, at_,
                 activation_quantization::none, name + " gate_up");
      launch(ck::glu(kind, alpha, limit, gu.data(), gu.data() + 1, ck::elt::f32, 2 * I, 2, h.data(), at_, I, n, I, s()),
             "moe (activation)", name);
    } else {
      Tensor<f32, 2, cuda> g({n, I}), u({n, I});
      run_linear(ex.gate(e), xe.data(), at_, Hd, n, g.data(), ck::elt::f32, I, gub, at_, activation_quantization::none,
                 name + " gate");
      run_linear(ex.up(e), xe.data(), at_, Hd, n, u.data(), ck::elt::f32, I, gub != nullptr ? gub + I : nullptr, at_,
                 activation_quantization::none, name + " up");
      launch(ck::glu(kind, alpha, limit, g.data(), u.data(), ck::elt::f32, I, 1, h.data(), at_, I, n, I, s()),
             "moe (activation)", name);
    }
    Tensor<f32, 2, cuda> ye({n, Hd});
    run_linear(ex.down(e), h.data(), at_, I, n, ye.data(), ck::elt::f32, Hd, db, at_, activation_quantization::none,
               name + " down");
    launch(ck::scatter_rows_f32(ye.data(), rows + n, n, Hd, y.data(), s()), "moe (scatter)", name);
  }
  launch(ck::moe_combine(y.data(), dw.data(), T, k, Hd, out.data(), at_, s()), "moe (combine)",
         "x " + format_extents(xv.extents()));
  return out;
}

template <class G, ActivationDtype Act, cuda_detail::DeviceTensorOfRank<2> X>
  requires moe_input_matches_activation<std::remove_const_t<dtype_of<X>>, Act>
Tensor<Act, 2, cuda> Cuda::moe(const CudaExperts<G, Act>& ex, const X& x, const CudaRouting& r) const {
  namespace ck = cuda_kernels;
  if (r.host) return moe(ex, x, *r.host);
  const TensorView<const Act, 2, cuda> xv = x;  // [T, H]
  const index_t T = xv.extent(0), k = r.k(), Hd = ex.hidden(), I = ex.intermediate();
  PRECIS_CHECK(r.n_tokens() == T, shape_error, "[cuda moe] routing of ", r.n_tokens(), " tokens for x ",
               format_extents(xv.extents()));
  PRECIS_CHECK(xv.extent(1) == Hd && xv.stride(1) == 1, shape_error, "[cuda moe] x ", format_extents(xv.extents()),
               " must be contiguous rows of the experts' hidden size ", Hd);
  if (T > ck::gemv_max_rows) {  // prefill: group on the host
    const cuda_rt::StreamScope scope(st_->stream);
    Routing h{precis::to_host(r.experts), precis::to_host(r.weights)};
    check_nonfinite();
    return moe(ex, x, h);
  }
  Tensor<Act, 2, cuda> out({T, Hd});
  if (T == 0 || k == 0) return out;
  const index_t P = T * k;  // (token, slot) pairs, pair p = t·k + j
  const ck::elt at_ = cuda_detail::elt_of<Act>;
  const auto [kind, alpha, limit] = gating_params(ex.gating_fn());
  const std::int32_t* ids = r.experts.data();
  const auto stride = [](const ck::DeviceMatrix& m) {
    return std::pair{ck::row_bytes(m.format, m.cols) * static_cast<std::size_t>(m.rows),
                     m.format == dtype_code::mxfp4 ? static_cast<std::size_t>(m.rows * (m.cols / 32)) : std::size_t{0}};
  };
  const auto gemv = [&](const ck::DeviceMatrix& w0, const void* in, index_t ld_in, index_t div, float* y,
                        const storage_t<Act>* bias, index_t bias_stride, const char* what) {
    const auto [eb, sb] = stride(w0);
    launch(ck::indexed_gemv(w0, eb, sb, ids, P, in, at_, ld_in, div, y, ck::elt::f32, w0.rows, bias, at_, bias_stride, s()),
           "moe (expert GEMV)", what, " of ", P, " (token, slot) pairs, x ", format_extents(xv.extents()));
  };
  const storage_t<Act>* gub = ex.has_bias() ? ex.gate_up_bias().data() : nullptr;
  Tensor<Act, 2, cuda> h({P, I});  // [P, I]
  if (ex.gate_up_layout() == CudaExperts<G, Act>::layout::interleaved) {
    Tensor<f32, 2, cuda> gu({P, 2 * I});  // [P, 2I]
    gemv(ex.gate_up(0), xv.data(), xv.stride(0), k, gu.data(), gub, 2 * I, "gate_up");
    launch(ck::glu(kind, alpha, limit, gu.data(), gu.data() + 1, ck::elt::f32, 2 * I, 2, h.data(), at_, I, P, I, s()),
           "moe (activation)", P, " pairs");
  } else {
    Tensor<f32, 2, cuda> g({P, I}), u({P, I});  // [P, I] each
    gemv(ex.gate(0), xv.data(), xv.stride(0), k, g.data(), gub, 2 * I, "gate");
    gemv(ex.up(0), xv.data(), xv.stride(0), k, u.data(), gub != nullptr ? gub + I : nullptr, 2 * I, "up");
    launch(ck::glu(kind, alpha, limit, g.data(), u.data(), ck::elt::f32, I, 1, h.data(), at_, I, P, I, s()),
           "moe (activation)", P, " pairs");
  }
  Tensor<f32, 2, cuda> y({P, Hd});  // [P, H]
  gemv(ex.down(0), h.data(), I, 1, y.data(), ex.has_bias() ? ex.down_bias().data() : nullptr, Hd, "down");
  launch(ck::moe_combine(y.data(), r.weights.data(), T, k, Hd, out.data(), at_, s()), "moe (combine)",
         "x " + format_extents(xv.extents()));
  return out;
}

static_assert(Backend<Cuda>, "backends::Cuda must implement every op of the Backend concept");

}  // namespace precis::backends
