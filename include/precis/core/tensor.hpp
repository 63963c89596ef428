// precis/core/tensor.hpp — Tensor<D, Rank, Dev>: an owning, aligned, row-major typed tensor.
//
// The dtype `D` and device `Dev` are part of the type. There is no implicit conversion between
// tensors of different dtypes or devices: `cast<To>(x)` (core/cast.hpp) and explicit copies are
// the only bridges. Tensors are move-only; `clone()` copies on purpose. A fresh tensor is
// zero-filled (never uninitialised memory reaching a kernel by accident).
#pragma once

#include <cstddef>    // std::size_t
#include <cstring>    // std::memset, std::memcpy
#include <new>        // ::operator new, std::align_val_t, std::bad_alloc

#include <sys/mman.h>  // ::mmap, ::munmap (large zero-filled blocks, committed on first write)
#include <limits>     // std::numeric_limits
#include <string>     // std::string
#include <utility>    // std::exchange

#include <precis/core/config.hpp>       // precis::index_t, tensor_alignment
#include <precis/core/device.hpp>       // precis::host, device_allocator
#include <precis/core/dtype.hpp>        // precis::ElementDtype, storage_t
#include <precis/core/error.hpp>        // precis::shape_error
#include <precis/core/tensor_view.hpp>  // precis::TensorView

namespace precis {

/// Host memory for owning tensors. Blocks of at least `lazy_bytes` are anonymous private
/// mappings: the kernel gives zero pages and commits each on its first write, so a KV pool sized
/// for every sequence's whole context costs resident memory only for the positions written
/// (robustness sweep: 20 prompts at 4096 positions each committed 3.7 GB before any work, when
/// the pool was memset). Smaller blocks are aligned operator new + memset. Failure is a
/// resource_error saying how many bytes were asked for (not a bare std::bad_alloc).
template <>
struct device_allocator<host> {
  static constexpr std::size_t lazy_bytes = std::size_t{1} << 20;

  [[nodiscard]] static void* allocate_zeroed(std::size_t bytes) {
    if (bytes >= lazy_bytes) {
      void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) out_of_memory(bytes);
      return p;
    }
    void* p = nullptr;
    try {
      p = ::operator new(bytes == 0 ? tensor_alignment : bytes, std::align_val_t{tensor_alignment});
    } catch (const std::bad_alloc&) {
      out_of_memory(bytes);
    }
    std::memset(p, 0, bytes);
    return p;
  }
  static void deallocate(void* p, std::size_t bytes) noexcept {
    if (bytes >= lazy_bytes) (void)::munmap(p, bytes);
    else ::operator delete(p, std::align_val_t{tensor_alignment});
  }

 private:
  [[noreturn]] static void out_of_memory(std::size_t bytes) {
    fail<resource_error>("[memory] cannot allocate a host tensor of ", bytes, " bytes (",
                         static_cast<double>(bytes) / static_cast<double>(std::size_t{1} << 30),
                         " GiB): not enough memory");
  }
};

/// f64 values exist on the host only (setup math, float64 references). Keeping them off the GPU
/// removes the path by which f64 RoPE tables promoted Q/K in the Qwen3-Omni seed bug.
template <class D, class Dev>
concept no_f64_on_device = !(std::same_as<D, f64> && std::same_as<Dev, cuda>);

namespace detail {
template <std::size_t Rank>
[[nodiscard]] std::string format_extents_of(const extents_t<Rank>& e) {
  std::string s = "[";
  for (std::size_t i = 0; i < Rank; ++i) s += (i ? ", " : "") + std::to_string(e[i]);
  return s + "]";
}
}  // namespace detail

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
    std::size_t bytes = sizeof(element_type);
    for (std::size_t i = 0; i < Rank; ++i) {
      PRECIS_CHECK(extents[i] >= 0, shape_error, "[Tensor] negative extent ", extents[i], " on axis ", i);
      // Sizes come from files: extents whose product overflows are refused, not wrapped around.
      PRECIS_CHECK(!__builtin_mul_overflow(bytes, static_cast<std::size_t>(extents[i]), &bytes) &&
                       bytes <= static_cast<std::size_t>(std::numeric_limits<index_t>::max()),
                   resource_error, "[Tensor] extents ", detail::format_extents_of(extents), " need more bytes than memory has");
    }
    data_ = static_cast<element_type*>(device_allocator<Dev>::allocate_zeroed(bytes));
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
    if (data_ != nullptr) device_allocator<Dev>::deallocate(data_, bytes());
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
