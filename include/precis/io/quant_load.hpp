// precis/io/quant_load.hpp — quant_view<F, R>: a block-quantized AnyTensor (a GGUF Q8_0 / Q4_0 /
// Q4_1 / MXFP4 tensor) as a typed QuantView<F, R>.
//
// This is load<D, R> (io/load.hpp) for block formats: the stored format code must equal the
// declared format F — a Q4_1 tensor read as Q4_0 would dequantize to plausible garbage (the
// minimum `m` read as nibbles), so it is a dtype_error naming the tensor and both formats, never
// a reinterpretation (dtype-bugs C7/C8). Then the rank, the innermost extent (a multiple of the
// block size: 32 values, 256 for the K-quants), and the byte count (numel/block × bytes per block) are checked.
//
// Only the single-array ggml layouts qualify (q8_0, q4_0, q4_1, mxfp4_ggml: one array of block
// structs whose bytes are ggml's, core/dtype.hpp). HF/OpenAI MXFP4 is two U8 tensors and is
// loaded by io/load_mxfp4.hpp.
//
// Lifetime: quant_view returns a non-owning view; keep the AnyTensor (or its GgufFile) alive
// while the view is used. `load_quant` returns a LoadedQuant that holds the owner itself.
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uintptr_t
#include <memory>       // std::shared_ptr
#include <type_traits>  // std::remove_cv_t
#include <utility>      // std::move

#include <precis/core/config.hpp>       // precis::index_t
#include <precis/core/device.hpp>       // precis::host
#include <precis/core/dtype.hpp>        // BlockFormat, dtype_traits, mxfp4
#include <precis/core/error.hpp>        // dtype_error, shape_error, format_error
#include <precis/core/tensor_view.hpp>  // precis::extents_t
#include <precis/io/any_tensor.hpp>     // AnyTensor, shape_string
#include <precis/quant/quant_view.hpp>  // precis::QuantView

namespace precis::io {

/// A block format stored as one array of ggml block structs, i.e. viewable from one tensor's
/// bytes. HF/OpenAI `mxfp4` (two planes, two tensors) is not: use load_mxfp4.
template <class F>
concept single_array_block_format = BlockFormat<F> && !std::same_as<std::remove_cv_t<F>, mxfp4>;

/// `t` as a QuantView<F, R> of logical extents t.shape() (row-major, last axis K). Throws
/// dtype_error unless t's stored format is F; shape_error unless t has rank R and K is a multiple
/// of F's block size; format_error unless t's bytes are exactly numel/block_size blocks and aligned for F's block
/// struct. The view does not keep the file alive (see load_quant).
template <BlockFormat F, std::size_t R>
  requires single_array_block_format<F> && (R >= 1)
[[nodiscard]] QuantView<F, R, host> quant_view(const AnyTensor& t) {
  using block_type = typename dtype_traits<F>::block_type;
  constexpr dtype_code declared = dtype_traits<F>::code;
  constexpr auto block = static_cast<index_t>(dtype_traits<F>::block_size);
  if (t.dtype() != declared)
    fail<dtype_error>("[quant_view] tensor '", t.name(), "' ('", t.source(), "'): stored dtype ", t.dtype_name(),
                      ", declared ", dtype_name<F>,
                      " (a block format is never reinterpreted as another; dequantize or requantize explicitly)");
  if (t.rank() != R)
    fail<shape_error>("[quant_view<", dtype_name<F>, ">] tensor '", t.name(), "' ('", t.source(), "'): stored shape ",
                      shape_string(t.shape()), " has rank ", t.rank(), ", declared rank ", R);
  extents_t<R> extents{};
  index_t numel = 1;
  bool overflow = false;
  for (std::size_t i = 0; i < R; ++i) {
    extents[i] = t.shape()[i];
    if (extents[i] < 0)
      fail<shape_error>("[quant_view<", dtype_name<F>, ">] tensor '", t.name(), "' ('", t.source(), "'): shape ",
                        shape_string(t.shape()), " has a negative extent");
    overflow = overflow || __builtin_mul_overflow(numel, extents[i], &numel);
  }
  if (extents[R - 1] % block != 0)
    fail<shape_error>("[quant_view<", dtype_name<F>, ">] tensor '", t.name(), "' ('", t.source(), "'): innermost extent ",
                      extents[R - 1], " of shape ", shape_string(t.shape()), " is not a multiple of the block size ",
                      block);
  // One tensor holds one plane: the block struct. A format with a separate scale plane (OpenAI
  // MXFP4) is two tensors and is loaded by io::load_mxfp4, never through here.
  static_assert(dtype_traits<F>::scale_plane_bytes == 0, "quant_view reads one-plane block formats; use io::load_mxfp4");
  constexpr std::size_t block_bytes = sizeof(typename dtype_traits<F>::block_type);
  std::size_t need = 0;
  overflow = overflow || __builtin_mul_overflow(static_cast<std::size_t>(numel / block), block_bytes, &need);
  if (overflow || t.bytes().size() != need)
    fail<format_error>("[quant_view<", dtype_name<F>, ">] tensor '", t.name(), "' ('", t.source(), "'): ",
                       t.bytes().size(), " bytes for shape ", shape_string(t.shape()), " (needs ",
                       overflow ? std::string("more than 2^64") : std::to_string(need), ": ", dtype_name<F>, " stores ",
                       block, " values in ", block_bytes, " bytes)");
  const std::byte* p = t.bytes().data();
  // Block structs hold f16 fields (alignof 2 for q8_0/q4_*); GGUF's alignment (≥ 2 in practice,
  // 32 by default) keeps them aligned. A file with general.alignment 1 and an odd offset cannot
  // be viewed in place.
  if (reinterpret_cast<std::uintptr_t>(p) % alignof(block_type) != 0)
    fail<format_error>("[quant_view<", dtype_name<F>, ">] tensor '", t.name(), "' ('", t.source(),
                       "'): data is not aligned to ", alignof(block_type), " bytes (the block struct's alignment)");
  // The mapping holds ggml block structs byte for byte (static_asserts in io/gguf_ggml_type.hpp).
  return QuantView<F, R, host>(reinterpret_cast<const block_type*>(p), extents);
}

/// A QuantView<F, R> that keeps the storage it views (e.g. a GGUF mapping) alive.
template <BlockFormat F, std::size_t R>
class LoadedQuant {
 public:
  LoadedQuant(QuantView<F, R, host> view, std::shared_ptr<const void> owner) : view_(view), owner_(std::move(owner)) {}
  [[nodiscard]] const QuantView<F, R, host>& view() const noexcept { return view_; }
  operator const QuantView<F, R, host>&() const noexcept { return view_; }  // NOLINT(google-explicit-constructor)
  [[nodiscard]] const extents_t<R>& extents() const noexcept { return view_.extents(); }

 private:
  QuantView<F, R, host> view_;
  std::shared_ptr<const void> owner_;
};

/// quant_view<F, R>(t), holding t's owner.
template <BlockFormat F, std::size_t R>
  requires single_array_block_format<F> && (R >= 1)
[[nodiscard]] LoadedQuant<F, R> load_quant(const AnyTensor& t) {
  return LoadedQuant<F, R>(quant_view<F, R>(t), t.owner());
}

}  // namespace precis::io
