// precis/core/tensor.hpp — Tensor<D, Rank, Dev>: an owning, aligned, row-major typed tensor.
//
// The dtype `D` and device `Dev` are part of the type. There is no implicit conversion between
// tensors of different dtypes or devices: `cast<To>(x)` (core/cast.hpp) and explicit copies are
// the only bridges. Tensors are move-only; `clone()` copies on purpose. A fresh tensor is
// zero-filled (never uninitialised memory reaching a kernel by accident).
#pragma once

#include <cstddef>    // std::size_t
#include <cstring>    // std::memset, std::memcpy
#include <new>        // ::operator new, std::align_val_t
#include <utility>    // std::exchange

#include <precis/core/config.hpp>       // precis::index_t, tensor_alignment
#include <precis/core/device.hpp>       // precis::host, device_allocator
#include <precis/core/dtype.hpp>        // precis::ElementDtype, storage_t
#include <precis/core/error.hpp>        // precis::shape_error
#include <precis/core/tensor_view.hpp>  // precis::TensorView

namespace precis {

template <>
struct device_allocator<host> {
  [[nodiscard]] static void* allocate(std::size_t bytes) {
    return ::operator new(bytes == 0 ? tensor_alignment : bytes, std::align_val_t{tensor_alignment});
  }
  static void deallocate(void* p) noexcept { ::operator delete(p, std::align_val_t{tensor_alignment}); }
  static void zero(void* p, std::size_t bytes) noexcept { std::memset(p, 0, bytes); }
};

/// f64 values exist on the host only (setup math, float64 references). Keeping them off the GPU
/// removes the path by which f64 RoPE tables promoted Q/K in the Qwen3-Omni seed bug.
template <class D, class Dev>
concept no_f64_on_device = !(std::same_as<D, f64> && std::same_as<Dev, cuda>);

template <class D, std::size_t Rank, Device Dev = host>
  requires ElementDtype<D> && (!std::is_const_v<D>) && no_f64_on_device<D, Dev>
class Tensor {
 public:
  using dtype = D;
  using device = Dev;
  using element_type = storage_t<D>;
  static constexpr std::size_t rank = Rank;

  Tensor() = default;

  /// A zero-filled tensor of the given extents.
  explicit Tensor(const extents_t<Rank>& extents) : extents_(extents) {
    for (std::size_t i = 0; i < Rank; ++i)
      PRECIS_CHECK(extents[i] >= 0, shape_error, "[Tensor] negative extent ", extents[i], " on axis ", i);
    const std::size_t bytes = static_cast<std::size_t>(numel()) * sizeof(element_type);
    data_ = static_cast<element_type*>(device_allocator<Dev>::allocate(bytes));
    device_allocator<Dev>::zero(data_, bytes);
  }

  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  Tensor(Tensor&& o) noexcept : data_(std::exchange(o.data_, nullptr)), extents_(std::exchange(o.extents_, {})) {}
  Tensor& operator=(Tensor&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      extents_ = std::exchange(o.extents_, {});
    }
    return *this;
  }
  ~Tensor() { release(); }

  /// A deep copy (explicit: tensors are not copied by accident).
  [[nodiscard]] Tensor clone() const
    requires std::same_as<Dev, host>
  {
    Tensor r(extents_);
    if (numel() > 0) std::memcpy(r.data_, data_, bytes());
    return r;
  }

  [[nodiscard]] element_type* data() noexcept { return data_; }
  [[nodiscard]] const element_type* data() const noexcept { return data_; }
  [[nodiscard]] const extents_t<Rank>& extents() const noexcept { return extents_; }
  [[nodiscard]] index_t extent(std::size_t i) const noexcept { return extents_[i]; }
  [[nodiscard]] index_t numel() const noexcept { return product(extents_); }
  [[nodiscard]] std::size_t bytes() const noexcept { return static_cast<std::size_t>(numel()) * sizeof(element_type); }
  [[nodiscard]] bool empty() const noexcept { return numel() == 0; }

  // Views of an lvalue tensor only: a view of a temporary would dangle the moment the full
  // expression ends (`TensorView<bf16, 2> v = make_tensor<bf16, 2>(...)` must not compile).
  [[nodiscard]] TensorView<D, Rank, Dev> view() & noexcept { return {data_, extents_}; }
  [[nodiscard]] TensorView<const D, Rank, Dev> view() const& noexcept { return {data_, extents_}; }
  [[nodiscard]] TensorView<const D, Rank, Dev> cview() const& noexcept { return {data_, extents_}; }
  void view() && = delete;
  void view() const&& = delete;
  void cview() const&& = delete;
  operator TensorView<D, Rank, Dev>() & noexcept { return view(); }                 // NOLINT
  operator TensorView<const D, Rank, Dev>() const& noexcept { return cview(); }     // NOLINT
  operator TensorView<D, Rank, Dev>() && = delete;
  operator TensorView<const D, Rank, Dev>() const&& = delete;

  template <class... Idx>
    requires(sizeof...(Idx) == Rank && std::same_as<Dev, host>)
  [[nodiscard]] element_type& operator()(Idx... idx) noexcept {
    return view()(idx...);
  }
  template <class... Idx>
    requires(sizeof...(Idx) == Rank && std::same_as<Dev, host>)
  [[nodiscard]] const element_type& operator()(Idx... idx) const noexcept {
    return cview()(idx...);
  }
  template <class... Idx>
    requires(sizeof...(Idx) == Rank && std::same_as<Dev, host>)
  [[nodiscard]] element_type& at(Idx... idx) {
    return view().at(idx...);
  }
  template <class... Idx>
    requires(sizeof...(Idx) == Rank && std::same_as<Dev, host>)
  [[nodiscard]] const element_type& at(Idx... idx) const {
    return cview().at(idx...);
  }

 private:
  void release() noexcept {
    if (data_ != nullptr) device_allocator<Dev>::deallocate(data_);
    data_ = nullptr;
  }

  element_type* data_ = nullptr;
  extents_t<Rank> extents_{};
};

template <class D, std::size_t Rank, class Dev>
struct tensor_traits<Tensor<D, Rank, Dev>> {
  using dtype = D;
  using device = Dev;
  static constexpr std::size_t rank = Rank;
  static constexpr bool writable = true;
};

template <class D, std::size_t Rank, class Dev>
[[nodiscard]] TensorView<const D, Rank, Dev> cview(const Tensor<D, Rank, Dev>& t) noexcept {
  return t.cview();
}

/// A tensor of `extents` filled from a list of floats (tests, examples). Each value is converted
/// explicitly with the dtype's own rounding.
template <FloatDtype D, std::size_t Rank>
[[nodiscard]] Tensor<D, Rank> make_tensor(const extents_t<Rank>& extents, std::initializer_list<float> values) {
  Tensor<D, Rank> t(extents);
  PRECIS_CHECK(static_cast<index_t>(values.size()) == t.numel(), shape_error, "[make_tensor] ", values.size(),
               " values for a tensor of ", t.numel(), " elements");
  index_t i = 0;
  for (float v : values) t.data()[i++] = static_cast<storage_t<D>>(v);
  return t;
}

}  // namespace precis
