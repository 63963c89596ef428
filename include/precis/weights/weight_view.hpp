// precis/weights/weight_view.hpp — WeightView<D>: a float matrix [N, K] named as weight-only
// *storage*, like a block format. Under bf16 activations an f32 or f16 weight is not an
// activation (dtype-bugs C1: `matmul(x_bf16, w_f32)` does not compile); naming it as storage is
// what makes the mixed pair legal, and the output dtype is still the activation's (or a declared
// f32), never the weight's. Backends read it (backends/cpu/weights.hpp, the reference backend).
#pragma once

#include <concepts>  // std::same_as

#include <precis/core/dtype.hpp>        // precis::f32, bf16, f16
#include <precis/core/tensor.hpp>       // precis::Tensor
#include <precis/core/tensor_view.hpp>  // precis::TensorView
#include <precis/ops/host_tensor.hpp>   // precis::HostTensorOfRank

namespace precis {

/// Float dtypes a weight may be stored in (and the CPU kernels read).
template <class D>
concept weight_storage_dtype = std::same_as<D, f32> || std::same_as<D, bf16> || std::same_as<D, f16>;

/// A float weight [N, K] named as weight-only storage: usable with activations of any dtype.
/// Non-owning, like TensorView; built by `as_weight`.
template <weight_storage_dtype D>
class WeightView {
 public:
  using storage_dtype = D;

  explicit WeightView(TensorView<const D, 2> w) noexcept : w_(w) {}

  [[nodiscard]] TensorView<const D, 2> view() const noexcept { return w_; }  // [N, K]
  [[nodiscard]] const extents_t<2>& extents() const noexcept { return w_.extents(); }
  [[nodiscard]] index_t extent(std::size_t i) const noexcept { return w_.extent(i); }

 private:
  TensorView<const D, 2> w_;  // [N, K]
};

/// `w` read as a weight in its own storage dtype, for activations of any dtype (see header).
template <HostTensorOfRank<2> W>
  requires weight_storage_dtype<dtype_of<W>>
[[nodiscard]] WeightView<dtype_of<W>> as_weight(const W& w) noexcept {
  return WeightView<dtype_of<W>>(TensorView<const dtype_of<W>, 2>(w));
}
/// Not from a temporary tensor: the view would dangle at the end of the full expression.
template <class D>
void as_weight(Tensor<D, 2>&&) = delete;

}  // namespace precis
