// precis/quant/quant_view.hpp — QuantView<F, Rank, Dev>: a non-owning, read-only view of a
// block-quantized weight.
//
// A quantized weight is not a tensor of elements: its values exist only 32 at a time, inside
// blocks, and reach activations through dequantize<ActT> or a quantized matmul whose output
// type is the *activation* type. So a QuantView deliberately has no `dtype` member, no
// tensor_traits specialisation (it is not TensorLike) and no element access: the int8 storage
// type of a quantized lm_head read back as the compute dtype is dtype-bugs E26, and class C7
// (§2: "QuantTensor<Format> is its own type ... It has no .dtype usable as an activation type").
// Its format is `format`, a BlockFormat tag that no activation-typed API accepts.
//
// Extents are *logical* element extents: a [E, N, K] expert stack is a QuantView<F, 3> of
// extents {E, N, K}; the blocks run along the last axis, so K must be a multiple of 32.
// Storage is row-major and contiguous:
//   ggml formats (q8_0, q4_0, q4_1, mxfp4_ggml)  one array of block structs  [..., K/32]
//   mxfp4 (HF/OpenAI)                             nibbles [..., K/32, 16] u8 and scales
//                                                 [..., K/32] u8, two separate buffers, exactly
//                                                 as the checkpoint's `_blocks` / `_scales`
//                                                 tensors (model-semantics.md §1a)
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <type_traits>  // std::is_const_v

#include <precis/core/config.hpp>       // precis::index_t
#include <precis/core/device.hpp>       // precis::host, precis::Device
#include <precis/core/dtype.hpp>        // precis::BlockFormat, dtype_traits, mxfp4, dtype_name
#include <precis/core/error.hpp>        // precis::shape_error, range_error, PRECIS_CHECK
#include <precis/core/tensor_view.hpp>  // precis::extents_t, product

namespace precis {

namespace detail {

/// The HF/OpenAI MXFP4 layout is the one format stored as two planes.
template <class F>
inline constexpr bool is_two_plane_mxfp4 = std::same_as<std::remove_cv_t<F>, mxfp4>;

/// Values per block along the last axis (the same 32 for every BlockFormat).
template <BlockFormat F>
inline constexpr index_t block_values = static_cast<index_t>(dtype_traits<std::remove_cv_t<F>>::block_size);

/// Checks logical extents of a quantized tensor: non-negative, last a multiple of the block size.
/// `who` names the caller in the message ("QuantView", "QuantTensor", "quantize").
template <BlockFormat F, std::size_t Rank>
void check_quant_extents(const extents_t<Rank>& e, const char* who) {
  for (std::size_t i = 0; i < Rank; ++i)
    PRECIS_CHECK(e[i] >= 0, shape_error, "[", who, "<", dtype_name<F>, ">] negative extent ", e[i], " on axis ", i);
  PRECIS_CHECK(e[Rank - 1] % block_values<F> == 0, shape_error, "[", who, "<", dtype_name<F>, ">] last extent (K) ",
               e[Rank - 1], " is not a multiple of the block size ", block_values<F>);
}

}  // namespace detail

template <BlockFormat F, std::size_t Rank, Device Dev = host>
class QuantView {
  static_assert(Rank >= 1, "QUANT_RANK: a quantized tensor has at least its K axis");
  static_assert(!std::is_const_v<F>, "QUANT_FORMAT_CV: a quant view is always read-only; name the bare format tag");

 public:
  using format = F;  // no `dtype`: a quantized weight has no activation dtype (dtype-bugs E26)
  using device = Dev;
  using block_type = typename dtype_traits<F>::block_type;  // one block (ggml) / 16 nibble bytes (mxfp4)
  static constexpr std::size_t rank = Rank;

  QuantView() = default;

  /// ggml formats: `blocks` points at the row-major block array [..., K/32].
  QuantView(const block_type* blocks, const extents_t<Rank>& logical_extents)
    requires(!std::same_as<F, mxfp4>)
      : extents_(logical_extents), blocks_(blocks) {
    detail::check_quant_extents<F>(extents_, "QuantView");
  }

  /// HF/OpenAI mxfp4: nibbles [..., K/32, 16] u8 and scales [..., K/32] u8 (E8M0).
  QuantView(const std::uint8_t* nibbles, const std::uint8_t* scales, const extents_t<Rank>& logical_extents)
    requires std::same_as<F, mxfp4>
      : extents_(logical_extents), nibbles_(nibbles), scales_(scales) {
    detail::check_quant_extents<F>(extents_, "QuantView");
  }

  [[nodiscard]] const extents_t<Rank>& extents() const noexcept { return extents_; }
  [[nodiscard]] index_t extent(std::size_t i) const noexcept { return extents_[i]; }
  [[nodiscard]] index_t numel() const noexcept { return product(extents_); }
  [[nodiscard]] bool empty() const noexcept { return numel() == 0; }
  /// Blocks along the last axis: K/32.
  [[nodiscard]] index_t blocks_per_row() const noexcept { return extents_[Rank - 1] / detail::block_values<F>; }
  /// Rows of K values: the product of all extents but the last.
  [[nodiscard]] index_t rows() const noexcept { return extents_[Rank - 1] == 0 ? 0 : numel() / extents_[Rank - 1]; }
  [[nodiscard]] index_t num_blocks() const noexcept { return numel() / detail::block_values<F>; }
  /// Total stored bytes (both planes for mxfp4: 16 + 1 per block).
  [[nodiscard]] std::size_t bytes() const noexcept {
    return static_cast<std::size_t>(num_blocks()) * dtype_traits<F>::stored_bytes;
  }

  /// The sub-view at index `i` of the leading axis (one expert of [E, N, K], one row of [N, K]).
  [[nodiscard]] QuantView<F, Rank - 1, Dev> operator[](index_t i) const
    requires(Rank > 1)
  {
    PRECIS_CHECK(i >= 0 && i < extents_[0], range_error, "[QuantView<", dtype_name<F>, ">::operator[]] index ", i,
                 " out of range [0, ", extents_[0], ")");
    QuantView<F, Rank - 1, Dev> sub;
    for (std::size_t d = 1; d < Rank; ++d) sub.extents_[d - 1] = extents_[d];
    const index_t first_block = i * sub.num_blocks();
    if constexpr (detail::is_two_plane_mxfp4<F>) {
      sub.nibbles_ = nibbles_ + first_block * 16;
      sub.scales_ = scales_ + first_block;
    } else {
      sub.blocks_ = blocks_ + first_block;
    }
    return sub;
  }

  // Raw access for kernels and the reference dequantizer.
  /// ggml formats: the row-major block array [..., K/32].
  [[nodiscard]] const block_type* blocks() const noexcept
    requires(!std::same_as<F, mxfp4>)
  {
    return blocks_;
  }
  /// mxfp4: nibble plane [..., K/32, 16]; block b's bytes are nibbles() + 16·b.
  [[nodiscard]] const std::uint8_t* nibbles() const noexcept
    requires std::same_as<F, mxfp4>
  {
    return nibbles_;
  }
  /// mxfp4: E8M0 scale plane [..., K/32]; block b's scale is scales()[b].
  [[nodiscard]] const std::uint8_t* scales() const noexcept
    requires std::same_as<F, mxfp4>
  {
    return scales_;
  }

 private:
  template <BlockFormat, std::size_t, Device>
  friend class QuantView;

  extents_t<Rank> extents_{};
  const block_type* blocks_ = nullptr;     // ggml formats
  const std::uint8_t* nibbles_ = nullptr;  // mxfp4: [..., K/32, 16]
  const std::uint8_t* scales_ = nullptr;   // mxfp4: [..., K/32]
};

}  // namespace precis
