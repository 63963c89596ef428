// precis/weights/any_experts.hpp — MoE expert weights as the files store them: expert stacks in
// the format of the file (a run-time fact), read in place from the memory mapping, and one MoE
// layer's experts over them (AnyMoeExperts), which a backend's `moe` op runs (backends/backend.hpp).
//
// What the checkpoints hold, per layer (model-semantics §1a, §1b, §1d):
//
//   Qwen3-MoE, HF released   mlp.experts.{e}.gate_proj.weight [I, H], up_proj [I, H],      E separate tensors:
//                            down_proj [H, I]                                                one view per expert
//   Qwen3-MoE, HF fused      mlp.experts.gate_up_proj [E, 2I, H] (rows: gate | up, HF v5      row halves of one
//                            `chunk(2)`), mlp.experts.down_proj [E, H, I]                     tensor, two views
//   gpt-oss, HF MXFP4        mlp.experts.gate_up_proj_blocks U8 [E, 2I, H/32, 16] + _scales   InterleavedGateUp
//                            [E, 2I, H/32] (rows: even gate, odd up), gate_up_proj_bias       over the blocks as
//                            [E, 2I]; down_proj_blocks [E, H, I/32, 16] + _scales, bias [E, H] they are (mxfp4)
//   gpt-oss, HF dequantized  mlp.experts.gate_up_proj [E, H, 2I] (x @ W: transposed), bias,  one transposing copy
//                            down_proj [E, I, H]                                               (reported)
//   GGUF (qwen3moe, gpt-oss) blk.N.ffn_{gate,up}_exps.weight [E, I, H], ffn_down_exps [E, H, I] stacks as they are
//                            in any ggml format; gpt-oss adds .bias [E, I] / [E, H] (llama.cpp
//                            splits the HF interleave into gate and up, mxfp4 in ggml layout)
//
// Zero copy is the default: an AnyExpertStack points into the file mapping and keeps it alive.
// Two things copy, and say so (is_zero_copy() is false): a float tensor whose safetensors offset
// is not aligned to its element size, and the transposed HF layout above. The MXFP4 nibble
// layout is a named load option, never a silent fallback: `mxfp4_experts::as_stored` (default)
// runs the HF/OpenAI two-plane layout in place; `mxfp4_experts::repack_ggml` copies it once at
// load into ggml's block layout (a lossless nibble permutation, quant/mxfp4_layout.hpp), which
// the CPU GEMV streams closer to memory bandwidth (measured in docs/performance.md by the
// matmul work: ~70 % vs ~90 %), at the cost of a second copy of the experts in memory.
//
// Formats: the variant below is every storage format the CPU matmul reads (f32/bf16/f16, every
// single-array ggml block format of quant/block_formats.hpp — q8_0, q4_0, q4_1, mxfp4, the
// K-quants, q5_0/q5_1, iq4_nl/iq4_xs — and HF/OpenAI mxfp4). Each stack of a layer has its own
// format: llama.cpp's Q4_K_M and Q5_K_M files store a Qwen3-MoE's down experts in Q6_K (in the
// layers `use_more_bits` picks) under Q4_K / Q5_K gate and up experts, and a user's requantized
// file can mix anything. A backend runs each projection in its own format (the reference and CPU
// kernels through format-erased projections, the CUDA backend per device matrix), so one layer
// never needs a kernel per *pair* of formats. Biases are activation-dtype tensors (MoeExperts'
// rule): the stored bf16/f32 values are converted once at load, exactly when widening.
#pragma once

#include <cmath>      // std::isfinite
#include <concepts>   // std::same_as
#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::uint8_t, std::uintptr_t
#include <cstring>      // std::memcpy
#include <memory>       // std::shared_ptr, std::make_shared
#include <optional>     // std::optional
#include <span>         // std::span
#include <string>       // std::string, std::to_string
#include <string_view>  // std::string_view
#include <type_traits>  // std::decay_t
#include <utility>      // std::move, std::pair
#include <variant>      // std::variant, std::visit
#include <vector>       // std::vector

#include <precis/core/cast.hpp>           // precis::cast
#include <precis/core/dtype.hpp>          // dtype tags, dtype_code, BlockFormat
#include <precis/core/error.hpp>          // dtype_error, shape_error, format_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>         // precis::Tensor
#include <precis/io/any_tensor.hpp>       // io::AnyTensor, io::shape_string
#include <precis/io/load.hpp>             // io::load
#include <precis/io/load_mxfp4.hpp>       // io::load_mxfp4
#include <precis/io/quant_load.hpp>       // io::quant_view
#include <precis/nn/activation.hpp>       // GatedActivation
#include <precis/nn/moe.hpp>              // ExpertStack, SeparateGateUp, InterleavedGateUp, MoeExperts
#include <precis/nn/router.hpp>           // Routing
#include <precis/quant/block_formats.hpp>  // ggml_block_formats, visit_ggml_block_format
#include <precis/quant/mxfp4_layout.hpp>  // to_ggml_layout
#include <precis/weights/any_weight.hpp>  // AnyWeight::supported_formats
#include <precis/quant/quant_tensor.hpp>  // QuantTensor

namespace precis {

/// How HF/OpenAI MXFP4 experts are held (a load option with a name, not a flag).
enum class mxfp4_experts {
  as_stored,    ///< the checkpoint's two-plane layout, read in place (zero copy; the default)
  repack_ggml,  ///< one copy at load into ggml block_mxfp4 layout (faster GEMV, 2× memory at load)
};

/// E, N, K of an expert stack, and the config values they follow from (for messages).
struct ExpertShape {
  index_t experts = 0;  // E
  index_t rows = 0;     // N: outputs
  index_t cols = 0;     // K: inputs
  std::string why;      // "num_experts=8, moe_intermediate_size=32, hidden_size=64"
};

namespace detail {

/// Keeps everything an expert stack views alive: file mappings, aligned or transposed copies.
using keep_alive_list = std::vector<std::shared_ptr<const void>>;

[[nodiscard]] inline std::string expert_shape_string(const ExpertShape& s) {
  return io::shape_string(std::vector<index_t>{s.experts, s.rows, s.cols});
}

/// A float tensor of rank R as a view, in place when aligned (else one aligned copy, kept alive).
template <class D, std::size_t R>
[[nodiscard]] TensorView<const D, R> float_view(const io::AnyTensor& t, keep_alive_list& keep, bool& copied) {
  io::Loaded<D, R> l = io::load<D, R>(t);
  copied = copied || !l.is_zero_copy();
  auto held = std::make_shared<io::Loaded<D, R>>(std::move(l));
  const TensorView<const D, R> v = held->view();
  keep.push_back(t.owner());
  keep.push_back(std::move(held));
  return v;
}

template <class List>
struct expert_storage_variant;
template <class... F>
struct expert_storage_variant<format_list<F...>> {
  using type = std::variant<ExpertStack<f32>, ExpertStack<bf16>, ExpertStack<f16>, ExpertStack<F>..., ExpertStack<mxfp4>>;
};

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// AnyExpertStack
// ---------------------------------------------------------------------------------------------

/// An expert stack [E, N, K] in the format its file stores it, read in place from the mapping
/// (see the header comment for the two copying cases, both reported by is_zero_copy()).
class AnyExpertStack {
 public:
  /// Float storage, every single-array ggml block format, HF/OpenAI MXFP4.
  using Storage = typename detail::expert_storage_variant<ggml_block_formats>::type;

  static constexpr std::string_view supported_formats = AnyWeight::supported_formats;

  AnyExpertStack() = default;

  /// One stored tensor [E, N, K] (GGUF `ffn_*_exps`, HF fused `gate_up_proj`).
  [[nodiscard]] static AnyExpertStack stacked(const io::AnyTensor& t) {
    if (t.rank() != 3)
      fail<shape_error>("[moe] tensor '", t.name(), "' ('", t.source(), "'): shape ", io::shape_string(t.shape()),
                        " is not an expert stack [E, N, K]");
    AnyExpertStack s;
    s.name_ = t.name();
    s.source_ = t.source();
    s.format_ = t.dtype();
    dispatch_format(t, [&]<class F>() {
      if constexpr (BlockFormat<F>) {
        s.storage_ = ExpertStack<F>(io::quant_view<F, 3>(t));
        s.keep_.push_back(t.owner());
      } else {
        s.storage_ = ExpertStack<F>(detail::float_view<F, 3>(t, s.keep_, s.copied_));
      }
    });
    return s;
  }

  /// E stored tensors [N, K], one per expert, in expert order (HF Qwen3-MoE
  /// `experts.{e}.gate_proj.weight`): one view each, nothing is gathered into a stack.
  [[nodiscard]] static AnyExpertStack per_expert(std::span<const io::AnyTensor> ts) {
    PRECIS_CHECK(!ts.empty(), shape_error, "[moe] per-expert weights: no tensors given");
    AnyExpertStack s;
    s.name_ = ts.front().name();
    s.source_ = ts.front().source();
    s.format_ = ts.front().dtype();
    for (const io::AnyTensor& t : ts) {
      if (t.dtype() != s.format_)
        fail<dtype_error>("[moe] tensor '", t.name(), "' ('", t.source(), "'): stored dtype ", t.dtype_name(),
                          ", but '", s.name_, "' is ", precis::to_string(s.format_),
                          "; the experts of one projection share one storage format");
      if (t.rank() != 2 || t.shape() != ts.front().shape())
        fail<shape_error>("[moe] tensor '", t.name(), "' ('", t.source(), "'): shape ", io::shape_string(t.shape()),
                          ", expected ", io::shape_string(ts.front().shape()), " like '", s.name_, "'");
    }
    dispatch_format(ts.front(), [&]<class F>() {
      std::vector<typename ExpertStack<F>::matrix_type> m;
      m.reserve(ts.size());
      for (const io::AnyTensor& t : ts) {
        if constexpr (BlockFormat<F>) {
          m.push_back(io::quant_view<F, 2>(t));
          s.keep_.push_back(t.owner());
        } else {
          m.push_back(detail::float_view<F, 2>(t, s.keep_, s.copied_));
        }
      }
      s.storage_ = ExpertStack<F>(std::move(m));
    });
    return s;
  }

  /// HF/OpenAI MXFP4: `blocks` U8 [E, N, K/32, 16] and `scales` U8 [E, N, K/32], in place.
  [[nodiscard]] static AnyExpertStack mxfp4_blocks(const io::AnyTensor& blocks, const io::AnyTensor& scales) {
    const io::LoadedMxfp4<3> q = io::load_mxfp4<3>(blocks, scales);  // checks dtypes and shapes
    AnyExpertStack s;
    s.name_ = blocks.name();
    s.source_ = blocks.source();
    s.format_ = dtype_code::mxfp4;
    s.storage_ = ExpertStack<mxfp4>(q.view());
    s.keep_.push_back(blocks.owner());
    s.keep_.push_back(scales.owner());
    return s;
  }

  /// A float tensor [E, K, N] stored for `x @ W` (HF v5 in-memory gpt-oss `gate_up_proj`
  /// [E, H, 2I], `down_proj` [E, I, H]): transposed once into an owned [E, N, K] stack (the
  /// kernels stream output rows). A copy, reported by is_zero_copy().
  [[nodiscard]] static AnyExpertStack transposed(const io::AnyTensor& t) {
    if (t.rank() != 3)
      fail<shape_error>("[moe] tensor '", t.name(), "' ('", t.source(), "'): shape ", io::shape_string(t.shape()),
                        " is not an expert stack [E, K, N]");
    AnyExpertStack s;
    s.name_ = t.name();
    s.source_ = t.source();
    s.format_ = t.dtype();
    s.copied_ = true;
    dispatch_format(t, [&]<class F>() {
      if constexpr (BlockFormat<F>) {
        fail<dtype_error>("[moe] tensor '", t.name(), "' ('", t.source(), "'): a transposed [E, K, N] expert stack must "
                          "be stored as a float dtype, got ", t.dtype_name());
      } else {
        const io::Loaded<F, 3> src = io::load<F, 3>(t);  // [E, K, N]
        const index_t ne = src.extent(0), nk = src.extent(1), nn = src.extent(2);
        auto out = std::make_shared<Tensor<F, 3>>(extents_t<3>{ne, nn, nk});  // [E, N, K]
        for (index_t e = 0; e < ne; ++e)
          for (index_t k = 0; k < nk; ++k)
            for (index_t n = 0; n < nn; ++n) (*out)(e, n, k) = src(e, k, n);
        s.storage_ = ExpertStack<F>(out->cview());
        s.keep_.push_back(std::move(out));
      }
    });
    return s;
  }

  /// Rows [first, first + count) of every expert, as per-expert views of the same storage (HF
  /// v5 fused `gate_up_proj` [E, 2I, H]: gate = rows [0, I), up = rows [I, 2I)).
  [[nodiscard]] AnyExpertStack row_range(index_t first, index_t count) const {
    PRECIS_CHECK(first >= 0 && count >= 0 && first + count <= rows(), range_error, "[moe] rows [", first, ", ",
                 first + count, ") of expert stack '", name_, "' ", io::shape_string(std::vector<index_t>{
                     n_experts(), rows(), cols()}), " are out of range");
    AnyExpertStack s = *this;
    std::visit(
        [&]<class F>(const ExpertStack<F>& st) {
          std::vector<typename ExpertStack<F>::matrix_type> m;
          for (index_t e = 0; e < st.n_experts(); ++e) {
            const auto& x = st.expert(e);
            if constexpr (std::same_as<F, mxfp4>) {
              const index_t bpr = x.blocks_per_row();
              m.emplace_back(x.nibbles() + first * bpr * 16, x.scales() + first * bpr, extents_t<2>{count, x.extent(1)});
            } else if constexpr (BlockFormat<F>) {
              m.emplace_back(x.blocks() + first * x.blocks_per_row(), extents_t<2>{count, x.extent(1)});
            } else {
              m.push_back(x.slice(0, first, first + count));
            }
          }
          s.storage_ = ExpertStack<F>(std::move(m));
        },
        storage_);
    return s;
  }

  /// The HF/OpenAI MXFP4 stack copied into ggml's block layout (mxfp4_experts::repack_ggml);
  /// dtype_error for any other format.
  [[nodiscard]] AnyExpertStack repacked_ggml() const {
    const auto* st = std::get_if<ExpertStack<mxfp4>>(&storage_);
    if (st == nullptr)
      fail<dtype_error>("[moe] expert stack '", name_, "' ('", source_, "') is ", format_name(),
                        "; only HF/OpenAI MXFP4 experts can be repacked into the ggml layout");
    auto out = std::make_shared<QuantTensor<mxfp4_ggml, 3>>(st->extents());  // [E, N, K]
    for (index_t e = 0; e < st->n_experts(); ++e) {
      const QuantView<mxfp4, 2>& x = st->expert(e);
      const QuantTensor<mxfp4_ggml, 2> r = to_ggml_layout(x);
      std::memcpy(out->blocks() + e * x.num_blocks(), r.blocks(), static_cast<std::size_t>(x.num_blocks()) *
                                                                      sizeof(block_mxfp4_ggml));
    }
    AnyExpertStack s;
    s.name_ = name_;
    s.source_ = source_;
    s.format_ = dtype_code::mxfp4_ggml;
    s.copied_ = true;
    s.storage_ = ExpertStack<mxfp4_ggml>(out->view());
    s.keep_.push_back(std::move(out));
    return s;
  }

  [[nodiscard]] extents_t<3> extents() const {
    return std::visit([](const auto& st) { return st.extents(); }, storage_);
  }
  [[nodiscard]] index_t n_experts() const { return extents()[0]; }
  [[nodiscard]] index_t rows() const { return extents()[1]; }  // N: outputs
  [[nodiscard]] index_t cols() const { return extents()[2]; }  // K: inputs
  /// The stored format (a run-time code: the I/O boundary).
  [[nodiscard]] dtype_code format() const noexcept { return format_; }
  [[nodiscard]] std::string_view format_name() const noexcept { return precis::to_string(format_); }
  /// The checkpoint name of the (first) tensor the stack was built from.
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  /// True when every expert matrix is read in place from the file mapping.
  [[nodiscard]] bool is_zero_copy() const noexcept { return !copied_; }
  /// Bytes of all E experts as held (what a pass over every expert streams; a copy's size).
  [[nodiscard]] std::size_t stored_bytes() const {
    return std::visit([](const auto& st) { return static_cast<std::size_t>(st.n_experts()) * st.expert_bytes(); },
                      storage_);
  }
  [[nodiscard]] const Storage& storage() const noexcept { return storage_; }

  /// Address of expert e's first stored byte (the nibble plane for HF MXFP4): for zero-copy tests.
  [[nodiscard]] const void* expert_data(index_t e) const {
    return std::visit(
        [&]<class F>(const ExpertStack<F>& st) -> const void* {
          const auto& x = st.expert(e);
          if constexpr (std::same_as<F, mxfp4>) return x.nibbles();
          else if constexpr (BlockFormat<F>) return x.blocks();
          else return x.data();
        },
        storage_);
  }

  /// Shape check against what the config implies (shape_error naming the tensor and the keys).
  void expect(const ExpertShape& want, std::string_view config_source) const {
    const extents_t<3> e = extents();
    if (e != extents_t<3>{want.experts, want.rows, want.cols})
      fail<shape_error>("[moe] expert stack '", name_, "' ('", source_, "'): shape ",
                        io::shape_string(std::vector<index_t>(e.begin(), e.end())), ", expected ",
                        detail::expert_shape_string(want), " from ", want.why, " (", config_source, ")");
  }

 private:
  /// Calls body.template operator()<F>() for the storage format F of `t` (dtype_error otherwise).
  template <class Body>
  static void dispatch_format(const io::AnyTensor& t, Body&& body) {
    switch (t.dtype()) {
      case dtype_code::f32: body.template operator()<f32>(); break;
      case dtype_code::bf16: body.template operator()<bf16>(); break;
      case dtype_code::f16: body.template operator()<f16>(); break;
      default:
        if (visit_ggml_block_format(t.dtype(), [&]<class F>() { body.template operator()<F>(); })) break;
        fail<dtype_error>("[moe] tensor '", t.name(), "' ('", t.source(), "'): stored dtype ", t.dtype_name(),
                          " is not an expert weight format precis computes with (", supported_formats,
                          "; HF MXFP4 comes as _blocks + _scales)");
    }
  }

  Storage storage_;
  dtype_code format_ = dtype_code::f32;
  std::string name_, source_;
  bool copied_ = false;
  detail::keep_alive_list keep_;
};

// ---------------------------------------------------------------------------------------------
// Biases in the activation dtype
// ---------------------------------------------------------------------------------------------

/// A stored float tensor of rank R as Tensor<Act, R>, exactly: the same dtype, or widened (bf16 /
/// f16 → f32). A narrowing (an f32 bias under the bf16 policy) is a dtype_error pointing to
/// narrowed_activation_tensor — rounding is a decision the caller writes down (robustness sweep:
/// this helper used to round f32 3.4e38 to bf16 inf without a word). dtype_error naming the
/// tensor for a non-float dtype.
template <ActivationDtype Act, std::size_t R>
[[nodiscard]] Tensor<Act, R> activation_tensor(const io::AnyTensor& t) {
  const auto narrowing = [&] {
    fail<dtype_error>("[moe] tensor '", t.name(), "' ('", t.source(), "'): stored ", t.dtype_name(), " into ",
                      dtype_name<Act>, " narrows; call narrowed_activation_tensor<", dtype_name<Act>,
                      "> to round it explicitly (overflow is then an error)");
  };
  switch (t.dtype()) {
    case dtype_code::f32:
      if constexpr (!std::same_as<Act, f32>) narrowing();
      return cast<Act>(io::load<f32, R>(t));
    case dtype_code::bf16:
      if constexpr (std::same_as<Act, f16>) narrowing();  // bf16's range exceeds f16's
      return cast<Act>(io::load<bf16, R>(t));
    case dtype_code::f16:
      if constexpr (std::same_as<Act, bf16>) narrowing();  // f16's precision exceeds bf16's
      return cast<Act>(io::load<f16, R>(t));
    default:
      fail<dtype_error>("[moe] tensor '", t.name(), "' ('", t.source(), "'): stored dtype ", t.dtype_name(),
                        ", expected a float dtype (F32, BF16, F16) for a bias");
  }
}

/// As activation_tensor, but a narrowing is allowed: rounded once to nearest even. A finite value
/// that the rounding takes to ±inf is a range_error naming the tensor, the element and the value.
template <ActivationDtype Act, std::size_t R>
[[nodiscard]] Tensor<Act, R> narrowed_activation_tensor(const io::AnyTensor& t) {
  const auto checked = [&](const auto& stored) {
    Tensor<Act, R> out = cast<Act>(stored);
    const auto* in = stored.data();
    for (index_t i = 0; i < out.numel(); ++i) {
      const float before = static_cast<float>(in[i]);
      const float after = static_cast<float>(out.data()[i]);
      if (std::isfinite(before) && !std::isfinite(after))
        fail<range_error>("[moe] tensor '", t.name(), "' ('", t.source(), "'): element ", i, " = ", before,
                          " overflows ", dtype_name<Act>, " when narrowed from ", t.dtype_name());
    }
    return out;
  };
  switch (t.dtype()) {
    case dtype_code::f32: return checked(io::load<f32, R>(t));
    case dtype_code::bf16: return checked(io::load<bf16, R>(t));
    case dtype_code::f16: return checked(io::load<f16, R>(t));
    default:
      fail<dtype_error>("[moe] tensor '", t.name(), "' ('", t.source(), "'): stored dtype ", t.dtype_name(),
                        ", expected a float dtype (F32, BF16, F16) for a bias");
  }
}

/// [E, I] gate bias and [E, I] up bias side by side as [E, 2I] (columns gate | up, the
/// SeparateGateUp layout): GGUF gpt-oss stores `ffn_gate_exps.bias` and `ffn_up_exps.bias` apart.
template <ActivationDtype Act>
[[nodiscard]] Tensor<Act, 2> concat_halves(const Tensor<Act, 2>& gate, const Tensor<Act, 2>& up) {
  PRECIS_CHECK(gate.extents() == up.extents(), shape_error, "[moe] gate bias ", format_extents(gate.extents()),
               " and up bias ", format_extents(up.extents()), " differ; both are [E, I]");
  const index_t ne = gate.extent(0), ni = gate.extent(1);
  Tensor<Act, 2> out({ne, 2 * ni});  // [E, 2I]
  for (index_t e = 0; e < ne; ++e)
    for (index_t i = 0; i < ni; ++i) {
      out(e, i) = gate(e, i);
      out(e, ni + i) = up(e, i);
    }
  return out;
}

// ---------------------------------------------------------------------------------------------
// AnyMoeExperts: one layer's experts over run-time formats
// ---------------------------------------------------------------------------------------------

/// The experts of one MoE layer (gating G, activations Act) over stacks whose formats are run-time
/// facts, one per stack (gate and up, or one interleaved gate_up, and down). A backend's `moe` op
/// runs each projection in its stack's format (backends/backend.hpp); the reference and CPU
/// kernels see them through format-erased projections (nn/moe.hpp detail::expert_rows,
/// backends/cpu/moe.hpp detail::expert_projection). Holds the stacks, so the mappings stay alive.
template <GatedActivation G, ActivationDtype Act>
class AnyMoeExperts {
 public:
  /// How the gate and up projections are stored (structural, like SeparateGateUp /
  /// InterleavedGateUp of the typed MoeExperts).
  enum class layout {
    separate,     ///< gate [E, I, H] and up [E, I, H]; pre-activations and bias [gate | up] (Qwen3-MoE, GGUF)
    interleaved,  ///< one gate_up [E, 2I, H], row 2i gate i, 2i+1 up i, bias likewise (gpt-oss HF)
  };

  /// Separate gate [E, I, H] and up [E, I, H] stacks, down [E, H, I]; optional biases [E, 2I]
  /// (columns gate | up) and [E, H] (both or neither). Each stack may have its own format.
  [[nodiscard]] static AnyMoeExperts separate_gate_up(G gating, AnyExpertStack gate, AnyExpertStack up,
                                                      AnyExpertStack down,
                                                      std::optional<Tensor<Act, 2>> gate_up_bias = std::nullopt,
                                                      std::optional<Tensor<Act, 2>> down_bias = std::nullopt) {
    PRECIS_CHECK(gate.extents() == up.extents(), shape_error, "[moe] gate stack '", gate.name(), "' ",
                 shape(gate), " and up stack '", up.name(), "' ", shape(up), " differ; both are [E, I, H]");
    AnyMoeExperts ex(layout::separate, gating, {std::move(gate), std::move(up), std::move(down)},
                     std::move(gate_up_bias), std::move(down_bias));
    return ex;
  }

  /// One gate_up stack [E, 2I, H] with even rows gate, odd rows up (gpt-oss), down [E, H, I];
  /// optional biases [E, 2I] (interleaved like the rows) and [E, H].
  [[nodiscard]] static AnyMoeExperts interleaved_gate_up(G gating, AnyExpertStack gate_up, AnyExpertStack down,
                                                         std::optional<Tensor<Act, 2>> gate_up_bias = std::nullopt,
                                                         std::optional<Tensor<Act, 2>> down_bias = std::nullopt) {
    PRECIS_CHECK(gate_up.rows() % 2 == 0, shape_error, "[moe] interleaved gate_up stack '", gate_up.name(), "' ",
                 shape(gate_up), " has an odd number of rows; expected [E, 2I, H]");
    return AnyMoeExperts(layout::interleaved, gating, {std::move(gate_up), std::move(down)}, std::move(gate_up_bias),
                         std::move(down_bias));
  }

  [[nodiscard]] index_t n_experts() const noexcept { return gate().n_experts(); }
  [[nodiscard]] index_t hidden() const noexcept { return gate().cols(); }
  [[nodiscard]] index_t intermediate() const noexcept {
    return layout_ == layout::interleaved ? gate().rows() / 2 : gate().rows();
  }
  [[nodiscard]] const G& gating_fn() const noexcept { return gating_; }
  [[nodiscard]] layout gate_up_layout() const noexcept { return layout_; }
  /// The gate stack [E, I, H]; for the interleaved layout the one gate_up stack [E, 2I, H].
  [[nodiscard]] const AnyExpertStack& gate() const noexcept { return stacks_.front(); }
  /// The up stack [E, I, H] (separate layout only: a range_error for the interleaved one).
  [[nodiscard]] const AnyExpertStack& up() const {
    PRECIS_CHECK(layout_ == layout::separate, range_error, "[moe] experts '", gate().name(),
                 "' store gate and up interleaved in one stack; there is no separate up stack");
    return stacks_[1];
  }
  [[nodiscard]] const AnyExpertStack& down() const noexcept { return stacks_.back(); }
  [[nodiscard]] bool has_bias() const noexcept { return gate_up_bias_.has_value(); }
  [[nodiscard]] const Tensor<Act, 2>& gate_up_bias() const { return *gate_up_bias_; }  // [E, 2I]
  [[nodiscard]] const Tensor<Act, 2>& down_bias() const { return *down_bias_; }        // [E, H]
  /// The stored format of the gate (gate_up) experts; formats() names every stack's.
  [[nodiscard]] dtype_code format() const noexcept { return gate().format(); }
  /// "Q4_K" when every stack shares one format, else "gate Q4_K, up Q4_K, down Q6_K".
  [[nodiscard]] std::string formats() const {
    bool one = true;
    for (const AnyExpertStack& s : stacks_) one = one && s.format() == format();
    if (one) return std::string(gate().format_name());
    if (layout_ == layout::interleaved)
      return "gate_up " + std::string(gate().format_name()) + ", down " + std::string(down().format_name());
    return "gate " + std::string(gate().format_name()) + ", up " + std::string(stacks_[1].format_name()) + ", down " +
           std::string(down().format_name());
  }
  /// Weight bytes one expert's MLP streams (gate + up + down, as stored).
  [[nodiscard]] std::size_t expert_bytes() const {
    std::size_t b = 0;
    for (const AnyExpertStack& s : stacks_) b += s.stored_bytes() / static_cast<std::size_t>(s.n_experts());
    return b;
  }
  /// The stacks (gate, up, down or gate_up, down) as loaded.
  [[nodiscard]] const std::vector<AnyExpertStack>& stacks() const noexcept { return stacks_; }

 private:
  AnyMoeExperts(layout l, G gating, std::vector<AnyExpertStack> stacks, std::optional<Tensor<Act, 2>> gate_up_bias,
                std::optional<Tensor<Act, 2>> down_bias)
      : layout_(l), gating_(gating), stacks_(std::move(stacks)), gate_up_bias_(std::move(gate_up_bias)),
        down_bias_(std::move(down_bias)) {
    PRECIS_CHECK(gate_up_bias_.has_value() == down_bias_.has_value(), shape_error,
                 "[moe] an MoE layer has both expert biases (gate_up and down) or neither; got ",
                 gate_up_bias_ ? "a gate_up bias only" : "a down bias only");
    precis::detail::check_activation("AnyMoeExperts", gating_);
    PRECIS_CHECK(down().n_experts() == n_experts(), shape_error, "[moe] down stack '", down().name(), "' ",
                 shape(down()), " has ", down().n_experts(), " experts, '", gate().name(), "' has ", n_experts());
    precis::detail::check_moe_geometry("moe", n_experts(), hidden(), intermediate(), down().extents(),
                                       gate_up_bias_ ? &*gate_up_bias_ : nullptr, down_bias_ ? &*down_bias_ : nullptr);
  }

  [[nodiscard]] static std::string shape(const AnyExpertStack& s) {
    return io::shape_string(std::vector<index_t>{s.n_experts(), s.rows(), s.cols()});
  }

  layout layout_;
  G gating_;
  std::vector<AnyExpertStack> stacks_;  // gate, up, down or gate_up, down; keep the views' storage alive
  std::optional<Tensor<Act, 2>> gate_up_bias_;  // [E, 2I]
  std::optional<Tensor<Act, 2>> down_bias_;     // [E, H]
};

/// The reference (nn/moe.hpp's spec) over run-time formats: each projection read row by row in
/// its own format. x [T, H] → [T, H] of dtype Act.
template <class G, ActivationDtype Act, HostTensorOfRank<2> X>
  requires moe_input_matches_activation<dtype_of<X>, Act>
[[nodiscard]] Tensor<Act, 2> moe_experts(const AnyMoeExperts<G, Act>& ex, const X& x, const Routing& routing) {
  const const_view_t<X> xv = x;  // [T, H]
  detail::check_moe_args("moe_experts", ex, xv, routing);
  const auto rows = [](const AnyExpertStack& s) {
    return std::visit([](const auto& st) { return detail::expert_rows::of(st); }, s.storage());
  };
  detail::moe_reference_args<G, Act> a{ex.gating_fn(), rows(ex.gate()), {}, rows(ex.down())};
  a.up = ex.gate_up_layout() == AnyMoeExperts<G, Act>::layout::interleaved ? a.gate : rows(ex.up());
  if (ex.has_bias()) {
    a.gate_up_bias = &ex.gate_up_bias();
    a.down_bias = &ex.down_bias();
  }
  a.n_experts = ex.n_experts();
  a.hid = ex.hidden();
  a.inter = ex.intermediate();
  if (ex.gate_up_layout() == AnyMoeExperts<G, Act>::layout::interleaved)
    return detail::moe_reference<gate_up::interleaved>(a, xv, routing);
  return detail::moe_reference<gate_up::halves>(a, xv, routing);
}

}  // namespace precis
