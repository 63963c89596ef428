// precis/nn/linear.hpp — Linear<D>: y = x · Wᵀ (+ b) with weights, bias and activations of one dtype.
//
// Why a dtype-typed layer: Megatron's router Linear was constructed without the model dtype and
// met bf16 hidden states (dtype-bugs E2); T5's `wo` kept in f32 handed f32 states to an fp16
// layer norm (CogVideo#170). A Linear<D> holds Tensor<D> weights, and `forward` accepts only D
// activations (same_dtype_no_implicit_cast) — a Linear in another precision is a different type,
// written down as such (`Linear<f32>` router, then an explicit cast<f32> of its input).
//
// Tied weights (class C11): a Linear is never built from a `Tied<Embedding<E>>` — casting the
// tied weight for an f32 head would also cast the embedding (prime-rl#2438). The constructor
// from a tied embedding is deleted (tied_weights_need_untie); `untie<W>(tied)`
// (nn/embedding.hpp) is the named conversion that copies the weight into its own Linear<W>.
// A tied embedding *is* usable as an LM head of its own dtype: `Tied<Embedding<D>>::forward`.
#pragma once

#include <optional>  // std::optional
#include <type_traits>  // std::remove_cvref_t

#include <precis/core/dtype.hpp>       // precis::ActivationDtype, same_dtype_no_implicit_cast
#include <precis/core/error.hpp>       // precis::shape_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>      // precis::Tensor
#include <precis/ops/host_tensor.hpp>  // precis::HostTensorOfRank
#include <precis/ops/matmul.hpp>       // precis::matmul

namespace precis {

template <class E>
class Tied;  // nn/embedding.hpp

template <class T>
inline constexpr bool is_tied = false;
template <class E>
inline constexpr bool is_tied<Tied<E>> = true;

/// Tied weights become a separate Linear only through `untie<W>(tied)` (C11).
template <class T>
concept tied_weights_need_untie = is_tied<std::remove_cvref_t<T>>;

template <ActivationDtype D>
class Linear {
 public:
  using dtype = D;

  /// weight [out_features, in_features] (checkpoint layout), no bias.
  explicit Linear(Tensor<D, 2> weight) : weight_(std::move(weight)) {}
  /// weight [out, in] and bias [out], both of dtype D.
  Linear(Tensor<D, 2> weight, Tensor<D, 1> bias) : weight_(std::move(weight)), bias_(std::move(bias)) {
    PRECIS_CHECK(bias_->extent(0) == weight_.extent(0), shape_error, "[Linear] bias of ", bias_->extent(0),
                 " entries for ", weight_.extent(0), " output features");
  }
  /// Not from a tied embedding: use `untie<D>(tied)` (see header comment).
  template <tied_weights_need_untie T>
  explicit Linear(const T&) = delete;

  [[nodiscard]] index_t in_features() const noexcept { return weight_.extent(1); }
  [[nodiscard]] index_t out_features() const noexcept { return weight_.extent(0); }
  [[nodiscard]] TensorView<const D, 2> weight() const noexcept { return weight_.cview(); }  // [out, in]

  /// x [T, in] of dtype D → [T, out] of dtype D (accumulated in f32).
  template <HostTensorOfRank<2> X>
    requires same_dtype_no_implicit_cast<dtype_of<X>, D>
  [[nodiscard]] Tensor<D, 2> forward(const X& x) const {
    if (bias_) return matmul(x, weight_, *bias_);
    return matmul(x, weight_);
  }

 private:
  Tensor<D, 2> weight_;               // [out_features, in_features]
  std::optional<Tensor<D, 1>> bias_;  // [out_features]
};

}  // namespace precis
