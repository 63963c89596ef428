// precis/core/tensor_view.hpp — TensorView<D, Rank, Dev>: a strided, non-owning, typed view.
//
// `D` may be const-qualified: `TensorView<const bf16, 2>` is read-only, `TensorView<bf16, 2>`
// writable, and only the writable → read-only conversion is implicit (like std::span<const T>).
// Strides count elements, not bytes. Element access on the host is `v(i, j)`; GPU views expose
// `data()` for kernels only.
#pragma once

#include <array>        // std::array
#include <cstddef>      // std::size_t
#include <type_traits>  // std::conditional_t, std::is_const_v

#include <precis/core/config.hpp>  // precis::index_t, PRECIS_HD
#include <precis/core/device.hpp>  // precis::host, precis::Device
#include <precis/core/dtype.hpp>   // precis::ElementDtype, storage_t
#include <precis/core/error.hpp>   // precis::shape_error

namespace precis {

template <std::size_t Rank>
using extents_t = std::array<index_t, Rank>;

/// Row-major (C order) strides for `extents`.
template <std::size_t Rank>
[[nodiscard]] constexpr extents_t<Rank> row_major_strides(const extents_t<Rank>& extents) noexcept {
  extents_t<Rank> s{};
  index_t acc = 1;
  for (std::size_t i = Rank; i-- > 0;) {
    s[i] = acc;
    acc *= extents[i];
  }
  return s;
}

template <std::size_t Rank>
[[nodiscard]] constexpr index_t product(const extents_t<Rank>& e) noexcept {
  index_t n = 1;
  for (index_t x : e) n *= x;
  return n;
}

template <class D, std::size_t Rank, Device Dev = host>
  requires ElementDtype<D>
class TensorView {
 public:
  using dtype = std::remove_cv_t<D>;
  using device = Dev;
  using element_type = std::conditional_t<std::is_const_v<D>, const storage_t<dtype>, storage_t<dtype>>;
  static constexpr std::size_t rank = Rank;

  constexpr TensorView() = default;
  constexpr TensorView(element_type* data, const extents_t<Rank>& extents) noexcept
      : data_(data), extents_(extents), strides_(row_major_strides(extents)) {}
  constexpr TensorView(element_type* data, const extents_t<Rank>& extents, const extents_t<Rank>& strides) noexcept
      : data_(data), extents_(extents), strides_(strides) {}

  /// Writable → read-only, the only implicit conversion between views.
  template <class U>
    requires(std::is_const_v<D> && std::same_as<U, std::remove_const_t<D>>)
  constexpr TensorView(const TensorView<U, Rank, Dev>& other) noexcept  // NOLINT(google-explicit-constructor)
      : data_(other.data()), extents_(other.extents()), strides_(other.strides()) {}

  [[nodiscard]] constexpr element_type* data() const noexcept { return data_; }
  [[nodiscard]] constexpr const extents_t<Rank>& extents() const noexcept { return extents_; }
  [[nodiscard]] constexpr const extents_t<Rank>& strides() const noexcept { return strides_; }
  [[nodiscard]] constexpr index_t extent(std::size_t i) const noexcept { return extents_[i]; }
  [[nodiscard]] constexpr index_t stride(std::size_t i) const noexcept { return strides_[i]; }
  [[nodiscard]] constexpr index_t numel() const noexcept { return product(extents_); }
  [[nodiscard]] constexpr bool empty() const noexcept { return numel() == 0; }
  [[nodiscard]] constexpr bool is_contiguous() const noexcept { return strides_ == row_major_strides(extents_); }

  /// Host element access (unchecked, like operator[] of the standard containers).
  template <class... Idx>
    requires(sizeof...(Idx) == Rank && std::same_as<Dev, host>)
  [[nodiscard]] constexpr element_type& operator()(Idx... idx) const noexcept {
    const extents_t<Rank> i{static_cast<index_t>(idx)...};  // std::array: valid for Rank 0 too
    index_t off = 0;
    for (std::size_t d = 0; d < Rank; ++d) off += i[d] * strides_[d];
    return data_[off];
  }

  /// Bounds-checked host element access: throws range_error naming the axis.
  template <class... Idx>
    requires(sizeof...(Idx) == Rank && std::same_as<Dev, host>)
  [[nodiscard]] element_type& at(Idx... idx) const {
    const extents_t<Rank> i{static_cast<index_t>(idx)...};  // std::array: valid for Rank 0 too
    for (std::size_t d = 0; d < Rank; ++d)
      PRECIS_CHECK(i[d] >= 0 && i[d] < extents_[d], range_error, "[TensorView::at] index ", i[d], " out of range [0, ",
                   extents_[d], ") on axis ", d);
    return (*this)(idx...);
  }

  /// The sub-view at index `i` of the leading axis (rank drops by one).
  [[nodiscard]] constexpr TensorView<D, Rank - 1, Dev> operator[](index_t i) const noexcept
    requires(Rank > 1)
  {
    extents_t<Rank - 1> e{}, s{};
    for (std::size_t d = 1; d < Rank; ++d) {
      e[d - 1] = extents_[d];
      s[d - 1] = strides_[d];
    }
    return {data_ + i * strides_[0], e, s};
  }

  /// Elements [begin, end) along `axis`; same rank.
  [[nodiscard]] TensorView slice(std::size_t axis, index_t begin, index_t end) const {
    PRECIS_CHECK(axis < Rank && 0 <= begin && begin <= end && end <= extents_[axis], range_error,
                 "[TensorView::slice] range [", begin, ", ", end, ") invalid for axis ", axis);
    TensorView r = *this;
    r.data_ = data_ + begin * strides_[axis];
    r.extents_[axis] = end - begin;
    return r;
  }

  /// Same elements, new extents; requires a contiguous view and an equal element count.
  template <std::size_t NewRank>
  [[nodiscard]] TensorView<D, NewRank, Dev> reshape(const extents_t<NewRank>& extents) const {
    PRECIS_CHECK(is_contiguous(), shape_error, "[TensorView::reshape] the view is not contiguous");
    PRECIS_CHECK(product(extents) == numel(), shape_error, "[TensorView::reshape] ", numel(),
                 " elements cannot take a shape of ", product(extents), " elements");
    return {data_, extents};
  }

 private:
  element_type* data_ = nullptr;
  extents_t<Rank> extents_{};
  extents_t<Rank> strides_{};
};

// ---------------------------------------------------------------------------------------------
// tensor_traits: what every tensor-like argument (Tensor or TensorView) is, for constrained ops.
// ---------------------------------------------------------------------------------------------

template <class T>
struct tensor_traits;  // not a tensor

template <class D, std::size_t Rank, class Dev>
struct tensor_traits<TensorView<D, Rank, Dev>> {
  using dtype = std::remove_cv_t<D>;
  using device = Dev;
  static constexpr std::size_t rank = Rank;
  static constexpr bool writable = !std::is_const_v<D>;
};

template <class T>
concept TensorLike = requires { typename tensor_traits<std::remove_cvref_t<T>>::dtype; };

template <TensorLike T>
using dtype_of = typename tensor_traits<std::remove_cvref_t<T>>::dtype;
template <TensorLike T>
using device_of = typename tensor_traits<std::remove_cvref_t<T>>::device;
template <TensorLike T>
inline constexpr std::size_t rank_of = tensor_traits<std::remove_cvref_t<T>>::rank;

/// Calls `f(flat, offset)` for every element of `v` in row-major order, where `flat` is the
/// row-major index and `offset` the element offset from `v.data()` (handles any strides).
template <class View, class F>
void for_each_offset(const View& v, F&& f) {
  constexpr std::size_t R = View::rank;
  extents_t<R> idx{};
  const index_t n = v.numel();
  for (index_t flat = 0; flat < n; ++flat) {
    index_t off = 0;
    for (std::size_t d = 0; d < R; ++d) off += idx[d] * v.stride(d);
    f(flat, off);
    for (std::size_t d = R; d-- > 0;) {
      if (++idx[d] < v.extent(d)) break;
      idx[d] = 0;
    }
  }
}

/// A read-only view of any tensor-like argument.
template <class D, std::size_t Rank, class Dev>
[[nodiscard]] constexpr TensorView<const std::remove_cv_t<D>, Rank, Dev> cview(const TensorView<D, Rank, Dev>& v) noexcept {
  return v;
}

}  // namespace precis
