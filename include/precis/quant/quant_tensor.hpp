// precis/quant/quant_tensor.hpp — QuantTensor<F, Rank, Dev>: the owning counterpart of QuantView.
//
// Like Tensor it is move-only (clone() copies on purpose), aligned to tensor_alignment, and
// zero-filled when created (all-zero blocks dequantize to ±0 in every format). Like QuantView it
// has no `dtype`, no tensor_traits and no element access (dtype-bugs E26, class C7): it is
// written through quantize<F>() or by a loader copying checkpoint bytes into blocks() /
// nibbles() + scales(), and read through view().
//
// Storage is one allocation: the block array for ggml formats; for HF/OpenAI mxfp4 the nibble
// plane [..., K/32, 16] followed, at the next tensor_alignment boundary, by the scale plane
// [..., K/32].
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t, std::byte
#include <cstdint>      // std::uint8_t
#include <cstring>      // std::memcpy
#include <type_traits>  // std::is_const_v
#include <utility>      // std::exchange

#include <precis/core/config.hpp>        // precis::index_t, tensor_alignment
#include <precis/core/device.hpp>        // precis::host, device_allocator
#include <precis/core/dtype.hpp>         // precis::BlockFormat, dtype_traits, mxfp4
#include <precis/core/tensor.hpp>        // device_allocator<host>
#include <precis/core/tensor_view.hpp>   // precis::extents_t, product
#include <precis/quant/quant_view.hpp>   // precis::QuantView, detail::check_quant_extents

namespace precis {

template <BlockFormat F, std::size_t Rank, Device Dev = host>
class QuantTensor {
  static_assert(Rank >= 1, "QUANT_RANK: a quantized tensor has at least its K axis");
  static_assert(!std::is_const_v<F>, "QUANT_FORMAT_CV: name the bare format tag");

 public:
  using format = F;  // no `dtype` (dtype-bugs E26)
  using device = Dev;
  using block_type = typename dtype_traits<F>::block_type;
  static constexpr std::size_t rank = Rank;

  QuantTensor() = default;

  /// Zero-filled storage for a quantized tensor of the given *logical* extents (last one a
  /// multiple of 32, else shape_error naming it).
  explicit QuantTensor(const extents_t<Rank>& logical_extents) : extents_(logical_extents) {
    detail::check_quant_extents<F>(extents_, "QuantTensor");
    const std::size_t n = allocation_bytes();
    data_ = static_cast<std::byte*>(device_allocator<Dev>::allocate_zeroed(n));
  }

  QuantTensor(const QuantTensor&) = delete;
  QuantTensor& operator=(const QuantTensor&) = delete;
  QuantTensor(QuantTensor&& o) noexcept
      : extents_(std::exchange(o.extents_, {})), data_(std::exchange(o.data_, nullptr)) {}
  QuantTensor& operator=(QuantTensor&& o) noexcept {
    if (this != &o) {
      release();
      extents_ = std::exchange(o.extents_, {});
      data_ = std::exchange(o.data_, nullptr);
    }
    return *this;
  }
  ~QuantTensor() { release(); }

  /// A deep copy (explicit: weights are not copied by accident).
  [[nodiscard]] QuantTensor clone() const
    requires std::same_as<Dev, host>
  {
    QuantTensor r(extents_);
    if (data_ != nullptr) std::memcpy(r.data_, data_, allocation_bytes());
    return r;
  }

  [[nodiscard]] QuantView<F, Rank, Dev> view() const noexcept {
    if constexpr (detail::is_two_plane_mxfp4<F>) return view_from(nibbles(), scales());
    else return view_from(blocks());
  }
  operator QuantView<F, Rank, Dev>() const noexcept { return view(); }  // NOLINT(google-explicit-constructor)

  [[nodiscard]] const extents_t<Rank>& extents() const noexcept { return extents_; }
  [[nodiscard]] index_t extent(std::size_t i) const noexcept { return extents_[i]; }
  [[nodiscard]] index_t numel() const noexcept { return product(extents_); }
  [[nodiscard]] bool empty() const noexcept { return numel() == 0; }
  [[nodiscard]] index_t blocks_per_row() const noexcept { return extents_[Rank - 1] / detail::block_values<F>; }
  [[nodiscard]] index_t num_blocks() const noexcept { return numel() / detail::block_values<F>; }
  /// Stored bytes (both planes for mxfp4), excluding alignment padding.
  [[nodiscard]] std::size_t bytes() const noexcept {
    return static_cast<std::size_t>(num_blocks()) * dtype_traits<F>::stored_bytes;
  }

  [[nodiscard]] block_type* blocks() noexcept
    requires(!std::same_as<F, mxfp4>)
  {
    return reinterpret_cast<block_type*>(data_);
  }
  [[nodiscard]] const block_type* blocks() const noexcept
    requires(!std::same_as<F, mxfp4>)
  {
    return reinterpret_cast<const block_type*>(data_);
  }
  [[nodiscard]] std::uint8_t* nibbles() noexcept
    requires std::same_as<F, mxfp4>
  {
    return reinterpret_cast<std::uint8_t*>(data_);
  }
  [[nodiscard]] const std::uint8_t* nibbles() const noexcept
    requires std::same_as<F, mxfp4>
  {
    return reinterpret_cast<const std::uint8_t*>(data_);
  }
  [[nodiscard]] std::uint8_t* scales() noexcept
    requires std::same_as<F, mxfp4>
  {
    return data_ == nullptr ? nullptr : reinterpret_cast<std::uint8_t*>(data_ + scale_plane_offset());
  }
  [[nodiscard]] const std::uint8_t* scales() const noexcept
    requires std::same_as<F, mxfp4>
  {
    return data_ == nullptr ? nullptr : reinterpret_cast<const std::uint8_t*>(data_ + scale_plane_offset());
  }

 private:
  [[nodiscard]] std::size_t scale_plane_offset() const noexcept {
    const std::size_t nib = static_cast<std::size_t>(num_blocks()) * 16;
    return (nib + tensor_alignment - 1) / tensor_alignment * tensor_alignment;
  }
  [[nodiscard]] std::size_t allocation_bytes() const noexcept {
    if constexpr (detail::is_two_plane_mxfp4<F>) return scale_plane_offset() + static_cast<std::size_t>(num_blocks());
    else return bytes();
  }
  // Views are built without re-checking the extents (checked at construction); a default-
  // constructed tensor gives an empty view.
  [[nodiscard]] QuantView<F, Rank, Dev> view_from(const block_type* b) const noexcept {
    if (data_ == nullptr) return {};
    return QuantView<F, Rank, Dev>(b, extents_);
  }
  [[nodiscard]] QuantView<F, Rank, Dev> view_from(const std::uint8_t* n, const std::uint8_t* s) const noexcept {
    if (data_ == nullptr) return {};
    return QuantView<F, Rank, Dev>(n, s, extents_);
  }
  void release() noexcept {
    if (data_ != nullptr) device_allocator<Dev>::deallocate(data_, allocation_bytes());
    data_ = nullptr;
  }

  extents_t<Rank> extents_{};
  std::byte* data_ = nullptr;
};

}  // namespace precis
