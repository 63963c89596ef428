// precis/io/any_tensor.hpp — AnyTensor: one stored tensor whose dtype is still a runtime code.
//
// This is the only place in precis where a tensor's dtype is a value instead of a type
// (core/dtype.hpp: "runtime dtype codes exist only at the I/O boundary"). An AnyTensor has a
// name, a dtype_code, a shape, its raw little-endian bytes and the file it came from — and no
// element access and no arithmetic. The only way to compute with it is `load<D, Rank>`
// (io/load.hpp), which compares the stored dtype with the declared one first (dtype-bugs §2 C8,
// E28/E29: the stored dtype must be checked where a tensor becomes typed).
//
// The bytes usually point into a memory-mapped checkpoint; `owner()` keeps that mapping alive
// for as long as any AnyTensor (or zero-copy Loaded view) refers to it.
#pragma once

#include <cstddef>  // std::byte, std::size_t
#include <memory>   // std::shared_ptr
#include <span>     // std::span
#include <sstream>  // std::ostringstream
#include <string>   // std::string
#include <string_view>  // std::string_view
#include <utility>  // std::move
#include <vector>   // std::vector

#include <precis/core/config.hpp>        // precis::index_t
#include <precis/core/dtype.hpp>         // precis::dtype_code, dtype_code_of, ElementDtype, storage_t
#include <precis/core/error.hpp>         // PRECIS_CHECK, shape_error
#include <precis/core/tensor_view.hpp>   // precis::TensorView
#include <precis/io/safetensors_dtype.hpp>  // stored_dtype_name

namespace precis::io {

/// "[2, 3]" — the shape spelling used in every io/ message.
[[nodiscard]] inline std::string shape_string(std::span<const index_t> shape) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

class SafetensorsFile;
class GgufFile;
namespace detail {
struct AnyTensorBytes;  // tests only (tests/support/any_tensor_bytes.hpp): hand-made bad tensors
}  // namespace detail

class AnyTensor {
 public:
  /// A typed in-memory tensor as an AnyTensor (e.g. to hand to AnyWeight::from): the dtype code
  /// is the view's own dtype — there is no way to attach another one.
  template <class D, std::size_t R>
    requires ElementDtype<D>
  [[nodiscard]] static AnyTensor of(std::string name, TensorView<const D, R> v, std::string source,
                                    std::shared_ptr<const void> owner = {}) {
    std::vector<index_t> shape(v.extents().begin(), v.extents().end());
    PRECIS_CHECK(v.is_contiguous(), shape_error, "[AnyTensor] '", name, "': the view must be contiguous");
    const auto* p = reinterpret_cast<const std::byte*>(v.data());
    return AnyTensor(std::move(name), dtype_traits<D>::code, std::move(shape),
                     std::span<const std::byte>(p, static_cast<std::size_t>(v.numel()) * sizeof(storage_t<D>)),
                     std::move(source), std::move(owner));
  }

  /// The tensor's name in its checkpoint ("model.layers.0.self_attn.sinks").
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// The stored dtype, as the file declares it.
  [[nodiscard]] dtype_code dtype() const noexcept { return dtype_; }
  /// The stored dtype as the file spells it ("BF16").
  [[nodiscard]] std::string_view dtype_name() const noexcept { return stored_dtype_name(dtype_); }
  /// Row-major extents; empty for a 0-rank (scalar) tensor.
  [[nodiscard]] const std::vector<index_t>& shape() const noexcept { return shape_; }
  [[nodiscard]] std::size_t rank() const noexcept { return shape_.size(); }
  [[nodiscard]] index_t numel() const noexcept {
    index_t n = 1;
    for (index_t e : shape_) n *= e;  // cannot overflow: the reader checked the product
    return n;
  }
  /// The stored bytes (little-endian, row-major), exactly numel × element size.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return bytes_; }
  /// The file the tensor was read from (for messages).
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  /// Keeps the underlying storage (e.g. a memory mapping) alive; null if the caller owns it.
  [[nodiscard]] const std::shared_ptr<const void>& owner() const noexcept { return owner_; }

 private:
  // Bytes get a dtype code only where a file declares it (the readers) — no public relabelling:
  // bf16 bits could otherwise be declared f16 (robustness sweep, load-time dtype holes;
  // tests/compile_fail/cf_20_any_tensor_relabel.cpp).
  friend class SafetensorsFile;
  friend class GgufFile;
  friend struct detail::AnyTensorBytes;
  AnyTensor(std::string name, dtype_code dtype, std::vector<index_t> shape, std::span<const std::byte> bytes,
            std::string source, std::shared_ptr<const void> owner = {})
      : name_(std::move(name)),
        dtype_(dtype),
        shape_(std::move(shape)),
        bytes_(bytes),
        source_(std::move(source)),
        owner_(std::move(owner)) {}

  std::string name_;
  dtype_code dtype_;
  std::vector<index_t> shape_;
  std::span<const std::byte> bytes_;
  std::string source_;
  std::shared_ptr<const void> owner_;
};

}  // namespace precis::io
