// precis/weights/any_weight.hpp — AnyWeight: a projection weight [N, K] in whatever format its
// file stores it, where the typed core meets run-time file contents.
//
// A model's activation dtype is a compile-time choice (its precision policy); the format a
// checkpoint stores a weight in is data, known only once the file is open — bf16 or f32 in a
// safetensors checkpoint, Q8_0 or Q4_1 in a GGUF. AnyWeight holds that format as a closed
// variant of the *storage* types the host backends read (weights/weight_view.hpp, quant/quant_view.hpp):
//
//   WeightView<f32 | bf16 | f16>                           a float weight named as storage
//   QuantView<F, 2>, F in ggml_block_formats               block-quantized, ggml layouts (q8_0, q4_0,
//                                                          q4_1, mxfp4_ggml, q5_0, q5_1, iq4_nl,
//                                                          q2_K … q6_K, iq4_xs: quant/block_formats.hpp)
//   QuantView<mxfp4, 2>                                    HF/OpenAI MXFP4 (two planes)
//
// None of these is an activation type: a backend's `linear<…>(x, w)` (backends/backend.hpp) visits
// the variant and runs its matmul with x's dtype as the compute and output type (or f32, declared), so a
// weight stored in bf16 under the f32 policy is *read* as bf16 and never becomes a bf16
// activation, and the output type never depends on the file (dtype-bugs C7, E24, E26).
//
// Zero copy: an AnyWeight points into the memory mapping of its file and keeps it alive. A float
// tensor whose offset is not aligned to its element size (safetensors gives no alignment
// guarantee) is the one exception: it is copied once into an aligned buffer, and
// `is_zero_copy()` says so. GGUF aligns tensor data (general.alignment, default 32), so GGUF
// weights are never copied (a block-format tensor that is not aligned for its block struct is a
// format_error from io::quant_view rather than a copy).
//
// Embedding tables use the same type: `embed_rows<Act>(table, ids)` gathers rows of any format
// into activations (float rows converted once, quantized rows dequantized), so a tied lm_head
// and the token embedding are one AnyWeight, never two copies of the table.
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::uintptr_t, std::int64_t
#include <cstring>      // std::memcpy
#include <memory>       // std::shared_ptr
#include <optional>     // std::optional
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <type_traits>  // std::decay_t
#include <utility>      // std::move
#include <variant>      // std::variant, std::visit
#include <vector>       // std::vector

#include <precis/core/dtype.hpp>            // dtype tags, dtype_code, ActivationDtype
#include <precis/core/error.hpp>            // dtype_error, shape_error, range_error, format_error
#include <precis/core/scalar.hpp>           // precis::to_compute
#include <precis/core/tensor.hpp>           // precis::Tensor
#include <precis/io/any_tensor.hpp>         // io::AnyTensor, io::shape_string
#include <precis/io/load_mxfp4.hpp>         // io::load_mxfp4
#include <precis/io/quant_load.hpp>         // io::quant_view
#include <precis/ops/host_tensor.hpp>       // HostTensorOfRank, as_const_view
#include <precis/ops/matmul.hpp>            // operand_dtype, resolve_out_t
#include <precis/quant/block_formats.hpp>   // ggml_block_formats, visit_ggml_block_format
#include <precis/quant/dequantize.hpp>      // dequantize_row, detail::from_f32
#include <precis/quant/quant_view.hpp>      // QuantView
#include <precis/weights/weight_view.hpp>   // WeightView

namespace precis {

namespace detail {
template <class List>
struct weight_storage_variant;
template <class... F>
struct weight_storage_variant<format_list<F...>> {
  using type = std::variant<WeightView<f32>, WeightView<bf16>, WeightView<f16>, QuantView<F, 2>..., QuantView<mxfp4, 2>>;
};
}  // namespace detail

class AnyWeight {
 public:
  /// Float storage, every single-array ggml block format, HF/OpenAI MXFP4.
  using Storage = typename detail::weight_storage_variant<ggml_block_formats>::type;

  /// The stored formats a weight may have.
  static constexpr std::string_view supported_formats =
      "F32, BF16, F16, Q8_0, Q4_0, Q4_1, MXFP4 (ggml or HF blocks), Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, "
      "IQ4_XS";

  AnyWeight() = default;

  /// A rank-2 stored tensor [N, K] as a weight, zero-copy when aligned. dtype_error naming the
  /// tensor when its dtype is not a weight format; shape_error when it is not a matrix.
  [[nodiscard]] static AnyWeight from(const io::AnyTensor& t) {
    if (t.rank() != 2)
      fail<shape_error>("[model] tensor '", t.name(), "' ('", t.source(), "'): shape ", io::shape_string(t.shape()),
                        " is not a matrix [N, K]");
    const extents_t<2> e{t.shape()[0], t.shape()[1]};
    AnyWeight w;
    w.name_ = t.name();
    w.source_ = t.source();
    w.format_ = t.dtype();
    w.bytes_ = t.bytes();
    w.owner_ = t.owner();
    switch (t.dtype()) {
      case dtype_code::f32: w.set_float<f32>(t, e); break;
      case dtype_code::bf16: w.set_float<bf16>(t, e); break;
      case dtype_code::f16: w.set_float<f16>(t, e); break;
      default:
        if (visit_ggml_block_format(t.dtype(), [&]<class F>() { w.set_blocks<F>(t, e); })) break;
        fail<dtype_error>("[model] tensor '", t.name(), "' ('", t.source(), "'): stored dtype ", t.dtype_name(),
                          " is not a weight format precis computes with (", supported_formats, ")");
    }
    return w;
  }

  /// HF/OpenAI MXFP4: `<prefix>_blocks` U8 [N, K/32, 16] + `<prefix>_scales` U8 [N, K/32].
  [[nodiscard]] static AnyWeight from_mxfp4(const io::AnyTensor& blocks, const io::AnyTensor& scales) {
    const io::LoadedMxfp4<2> q = io::load_mxfp4<2>(blocks, scales);
    AnyWeight w;
    w.name_ = blocks.name();
    w.source_ = blocks.source();
    w.format_ = dtype_code::mxfp4;
    w.bytes_ = blocks.bytes();
    w.owner_ = std::make_shared<const std::pair<std::shared_ptr<const void>, std::shared_ptr<const void>>>(
        blocks.owner(), scales.owner());
    w.storage_ = q.view();
    w.extents_ = q.extents();
    return w;
  }

  [[nodiscard]] index_t rows() const noexcept { return extents_[0]; }  // N (outputs)
  [[nodiscard]] index_t cols() const noexcept { return extents_[1]; }  // K (inputs)
  [[nodiscard]] const extents_t<2>& extents() const noexcept { return extents_; }
  /// The stored format (a runtime code: this is the I/O boundary).
  [[nodiscard]] dtype_code format() const noexcept { return format_; }
  [[nodiscard]] std::string_view format_name() const noexcept { return precis::to_string(format_); }
  /// The checkpoint name of the tensor (of the `_blocks` tensor for HF MXFP4).
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  /// True when the weight is read in place from the file mapping.
  [[nodiscard]] bool is_zero_copy() const noexcept { return copy_ == nullptr; }
  /// The stored bytes in the file (the `_blocks` plane for HF MXFP4).
  [[nodiscard]] std::span<const std::byte> file_bytes() const noexcept { return bytes_; }
  /// Address of the data the kernels read (inside file_bytes() when zero-copy).
  [[nodiscard]] const void* data() const noexcept {
    return std::visit(
        [](const auto& s) -> const void* {
          using S = std::decay_t<decltype(s)>;
          if constexpr (requires { s.view(); }) return s.view().data();
          else if constexpr (std::same_as<S, QuantView<mxfp4, 2>>) return s.nibbles();
          else return s.blocks();
        },
        storage_);
  }
  [[nodiscard]] const Storage& storage() const noexcept { return storage_; }

 private:
  template <class D>
  void set_float(const io::AnyTensor& t, const extents_t<2>& e) {
    using S = storage_t<D>;
    const auto need = static_cast<std::size_t>(e[0] * e[1]) * sizeof(S);
    if (t.bytes().size() != need)
      fail<format_error>("[model] tensor '", t.name(), "' ('", t.source(), "'): ", t.bytes().size(),
                         " bytes for shape ", io::shape_string(t.shape()), " of ", t.dtype_name(), " (needs ", need, ")");
    const std::byte* p = t.bytes().data();
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(S) != 0) {
      // safetensors does not align offsets: one aligned copy (reported by is_zero_copy()).
      auto buf = std::make_shared<Tensor<D, 2>>(e);
      if (need > 0) std::memcpy(buf->data(), p, need);
      storage_ = WeightView<D>(buf->cview());
      copy_ = std::move(buf);
    } else {
      storage_ = WeightView<D>(TensorView<const D, 2>(reinterpret_cast<const S*>(p), e));
    }
    extents_ = e;
  }

  template <BlockFormat F>
  void set_blocks(const io::AnyTensor& t, const extents_t<2>& e) {
    storage_ = io::quant_view<F, 2>(t);  // checks format, K % block size, byte count and alignment
    extents_ = e;
  }

  Storage storage_{std::in_place_type<QuantView<q8_0, 2>>};  // empty until from()/from_mxfp4()
  extents_t<2> extents_{};
  dtype_code format_ = dtype_code::f32;
  std::string name_, source_;
  std::span<const std::byte> bytes_;
  std::shared_ptr<const void> owner_;  // the file mapping(s)
  std::shared_ptr<const void> copy_;   // the aligned copy, when one was needed
};

// ---------------------------------------------------------------------------------------------
// How activations meet block-quantized weights
// ---------------------------------------------------------------------------------------------

/// How activations meet a block-quantized weight (a named choice, never a silent fallback):
enum class activation_quantization {
  none,       ///< f32 activations × weights dequantized in registers (the exact path; default)
  q8_blocks,  ///< activations quantized to 8-bit blocks first, integer dot products — what ggml
              ///< does for q4/q8 weights (`vec_dot_type`); bounded in backends/cpu/q8_activation.hpp.
              ///< Float weights (F32/BF16/F16) are never affected.
};

[[nodiscard]] constexpr std::string_view to_string(activation_quantization a) noexcept {
  return a == activation_quantization::none ? "none" : "q8_blocks";
}

/// Activations a linear layer takes: a host matrix of an activation dtype.
template <class X>
concept linear_input = HostTensorOfRank<X, 2> && ActivationDtype<dtype_of<X>>;

// ---------------------------------------------------------------------------------------------
// embed_rows: token-embedding lookup from a table of any format
// ---------------------------------------------------------------------------------------------

/// rows [T, K] of `table` [vocab, K] for token ids [T], as activations of `Act`. Float rows are
/// converted once (exactly when widening; round to nearest even into bf16), quantized rows are
/// dequantized (quant/dequantize.hpp). range_error naming the id, its index and the vocabulary
/// size for an id outside [0, vocab).
template <ActivationDtype Act>
[[nodiscard]] Tensor<Act, 2> embed_rows(const AnyWeight& table, std::span<const std::int64_t> ids) {
  const auto n = static_cast<index_t>(ids.size());
  const index_t vocab = table.rows(), k = table.cols();
  Tensor<Act, 2> out({n, k});  // [T, K]
  for (index_t t = 0; t < n; ++t) {
    const std::int64_t id = ids[static_cast<std::size_t>(t)];
    PRECIS_CHECK(id >= 0 && id < vocab, range_error, "[model] token id ", id, " at index ", t,
                 " is outside the vocabulary [0, ", vocab, ") of '", table.name(), "'");
  }
  std::visit(
      [&](const auto& s) {
        using S = std::decay_t<decltype(s)>;
        for (index_t t = 0; t < n; ++t) {
          const auto id = static_cast<index_t>(ids[static_cast<std::size_t>(t)]);
          TensorView<Act, 2> ov = out.view();
          if constexpr (requires { s.view(); }) {
            using D = typename S::storage_dtype;
            const TensorView<const D, 2> w = s.view();
            for (index_t j = 0; j < k; ++j) {
              if constexpr (std::same_as<D, Act>) ov(t, j) = w(id, j);
              else ov(t, j) = precis::detail::from_f32<Act>(static_cast<float>(to_compute<D>(w(id, j))));
            }
          } else {
            dequantize_row<Act>(s[id], ov[t]);
          }
        }
      },
      table.storage());
  return out;
}

}  // namespace precis
