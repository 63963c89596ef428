// precis/io/load.hpp — load<D, Rank>: where a stored dtype code becomes a static dtype.
//
// Every checkpoint tensor reaches typed code through here. The declared dtype `D` comes from
// the model (directly, or as `role_dtype_t<Role, Policy>` through `load_role`); the stored dtype
// comes from the file. They must be equal, or the call site must list a named conversion
// (io/conversion.hpp) that maps the stored dtype to `D` — and then the conversion is logged.
// Dtype and shape are checked together and both are fatal (dtype-bugs E29: "sizes are checked,
// dtypes are not" is exactly the asymmetry to avoid; seed bug 2: an F64 `inv_freq` must not
// flow into an f32 model).
//
// Result type: `Loaded<D, Rank>`. safetensors offsets carry no alignment guarantee, so a stored
// tensor can start at an address that is not a multiple of alignof(storage_t<D>). Loaded is a
// zero-copy view into the mapped file when the data is aligned, and otherwise owns an aligned
// copy (as it does for the output of a conversion). Either way it reads like a
// `TensorView<const D, Rank>`, converts to one implicitly, and keeps the file mapping alive for
// as long as the view is in use.
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t, std::byte
#include <cstdint>      // std::uintptr_t
#include <cstring>      // std::memcpy
#include <memory>       // std::shared_ptr
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move

#include <precis/core/config.hpp>            // precis::index_t
#include <precis/core/device.hpp>            // precis::host
#include <precis/core/dtype.hpp>             // ElementDtype, dtype_traits, storage_t
#include <precis/core/error.hpp>             // dtype_error, shape_error, format_error
#include <precis/core/precision_policy.hpp>  // PrecisionPolicy, role_dtype_t, role::*, is_pinned_role
#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/core/tensor_view.hpp>       // precis::TensorView, extents_t, tensor_traits
#include <precis/io/any_tensor.hpp>          // precis::io::AnyTensor, shape_string
#include <precis/io/conversion.hpp>          // widen, narrow, LoadConversion, ConversionReport

namespace precis::io {

/// A loaded tensor: a zero-copy view into the checkpoint, or an owned aligned tensor (after a
/// misaligned copy or a conversion). Read-only; move-only.
template <ElementDtype D, std::size_t Rank>
class Loaded {
 public:
  using dtype = D;
  using element_type = const storage_t<D>;
  static constexpr std::size_t rank = Rank;

  /// A view into storage kept alive by `owner`.
  [[nodiscard]] static Loaded borrowed(TensorView<const D, Rank> view, std::shared_ptr<const void> owner) {
    Loaded l;
    l.view_ = view;
    l.owner_ = std::move(owner);
    l.zero_copy_ = true;
    return l;
  }
  /// Takes ownership of `t` (its heap buffer does not move with the Loaded).
  [[nodiscard]] static Loaded owned(Tensor<D, Rank> t) {
    Loaded l;
    l.owned_ = std::move(t);
    l.view_ = l.owned_.cview();
    l.zero_copy_ = false;
    return l;
  }

  [[nodiscard]] TensorView<const D, Rank> view() const noexcept { return view_; }
  operator TensorView<const D, Rank>() const noexcept { return view_; }  // NOLINT(google-explicit-constructor)

  /// True if the data is read in place from the checkpoint (no copy was made).
  [[nodiscard]] bool is_zero_copy() const noexcept { return zero_copy_; }

  [[nodiscard]] const storage_t<D>* data() const noexcept { return view_.data(); }
  [[nodiscard]] const extents_t<Rank>& extents() const noexcept { return view_.extents(); }
  [[nodiscard]] index_t extent(std::size_t i) const noexcept { return view_.extent(i); }
  [[nodiscard]] index_t numel() const noexcept { return view_.numel(); }

  template <class... Idx>
    requires(sizeof...(Idx) == Rank)
  [[nodiscard]] const storage_t<D>& operator()(Idx... idx) const noexcept {
    return view_(idx...);
  }

  /// An owning copy (always a copy: the Loaded stays valid).
  [[nodiscard]] Tensor<D, Rank> to_tensor() const {
    Tensor<D, Rank> t(view_.extents());
    if (t.numel() > 0) std::memcpy(t.data(), view_.data(), t.bytes());
    return t;
  }

 private:
  Loaded() = default;

  Tensor<D, Rank> owned_;  // empty when borrowed
  TensorView<const D, Rank> view_;
  std::shared_ptr<const void> owner_;  // keeps a mapping alive when borrowed
  bool zero_copy_ = false;
};

/// Every listed conversion must produce the declared dtype: listing `widen<bf16, f32>` when
/// loading an f16 tensor is a mistake the compiler catches.
template <class D, class... Cs>
concept conversions_target_declared_dtype = (std::same_as<typename Cs::to, D> && ...);

namespace detail {

template <class Role>
[[nodiscard]] constexpr std::string_view role_name() noexcept {
  if constexpr (std::same_as<Role, role::activation>) return "activation";
  else if constexpr (std::same_as<Role, role::weight>) return "weight";
  else if constexpr (std::same_as<Role, role::bias>) return "bias";
  else if constexpr (std::same_as<Role, role::norm_weight>) return "norm_weight";
  else if constexpr (std::same_as<Role, role::kv_store>) return "kv_store";
  else if constexpr (std::same_as<Role, role::rope_table>) return "rope_table";
  else if constexpr (std::same_as<Role, role::sinks>) return "sinks";
  else if constexpr (std::same_as<Role, role::router_logits>) return "router_logits";
  else if constexpr (std::same_as<Role, role::router_bias>) return "router_bias";
  else if constexpr (std::same_as<Role, role::norm_accumulator>) return "norm_accumulator";
  else if constexpr (std::same_as<Role, role::attention_scores>) return "attention_scores";
  else if constexpr (std::same_as<Role, role::positions>) return "positions";
  else return "unnamed role";
}

/// The stored bytes of `t` as a `D` tensor: in place when aligned, else an aligned copy.
template <ElementDtype D, std::size_t Rank>
[[nodiscard]] Loaded<D, Rank> stored_as(const AnyTensor& t, const extents_t<Rank>& extents) {
  using S = storage_t<D>;
  const std::byte* p = t.bytes().data();
  if (reinterpret_cast<std::uintptr_t>(p) % alignof(S) == 0) {
    // The mapping holds the bytes of trivially copyable S objects written by a safetensors
    // writer; reading them in place is what every zero-copy loader does (C++23 would spell it
    // std::start_lifetime_as_array).
    return Loaded<D, Rank>::borrowed(TensorView<const D, Rank>(reinterpret_cast<const S*>(p), extents), t.owner());
  }
  Tensor<D, Rank> copy(extents);
  if (copy.numel() > 0) std::memcpy(copy.data(), p, copy.bytes());
  return Loaded<D, Rank>::owned(std::move(copy));
}

template <ElementDtype D, std::size_t Rank, LoadConversion... Cs>
[[nodiscard]] Loaded<D, Rank> load_impl(const AnyTensor& t, const extents_t<Rank>* expected, ConversionReport* report,
                                        std::string_view declared_note) {
  constexpr dtype_code declared = dtype_traits<D>::code;
  const dtype_code stored = t.dtype();

  // --- dtype: equal, or a listed conversion maps stored → D --------------------------------------
  const bool convertible = ((stored == dtype_traits<typename Cs::from>::code) || ...);
  if (stored != declared && !convertible) {
    std::string hint;
    if constexpr (sizeof...(Cs) > 0) {
      hint = "; listed conversions:";
      ((hint += " " + conversion_name<Cs>()), ...);
    } else if (widens_exactly(stored, declared)) {
      hint = std::string("; list widen<") + std::string(to_string(stored)) + ", " + std::string(dtype_name<D>) +
             "> to accept it, logged in a ConversionReport";
    } else if (is_float_code(stored) && is_float_code(declared)) {
      hint = std::string("; narrow<") + std::string(to_string(stored)) + ", " + std::string(dtype_name<D>) +
             "> exists as an explicit opt-in";
    }
    fail<dtype_error>("[load] tensor '", t.name(), "' ('", t.source(), "'): stored dtype ", stored_dtype_name(stored),
                      ", declared ", dtype_name<D>, declared_note,
                      " (the checkpoint does not match the model's declared type; no implicit conversion is done",
                      hint, ")");
  }

  // --- shape ---------------------------------------------------------------------------------
  if (t.rank() != Rank)
    fail<shape_error>("[load] tensor '", t.name(), "' ('", t.source(), "'): stored shape ", shape_string(t.shape()),
                      " has rank ", t.rank(), ", declared rank ", Rank);
  extents_t<Rank> extents{};
  for (std::size_t i = 0; i < Rank; ++i) extents[i] = t.shape()[i];
  if (expected != nullptr && extents != *expected)
    fail<shape_error>("[load] tensor '", t.name(), "' ('", t.source(), "'): stored shape ", shape_string(t.shape()),
                      ", expected ", shape_string(*expected));
  const auto need = static_cast<std::size_t>(t.numel()) * element_bytes(stored);
  if (t.bytes().size() != need)
    fail<format_error>("[load] tensor '", t.name(), "' ('", t.source(), "'): ", t.bytes().size(),
                       " bytes for shape ", shape_string(t.shape()), " of ", stored_dtype_name(stored), " (needs ",
                       need, ")");

  if constexpr (sizeof...(Cs) == 0) {
    return stored_as<D, Rank>(t, extents);  // stored == declared, checked above
  } else {
    if (stored == declared) return stored_as<D, Rank>(t, extents);
    // --- the first listed conversion whose source is the stored dtype -------------------------
    std::optional<Loaded<D, Rank>> result;
    const auto try_one = [&]<class C>(C) {
      if (result || stored != dtype_traits<typename C::from>::code) return;
      const Loaded<typename C::from, Rank> src = stored_as<typename C::from, Rank>(t, extents);
      result.emplace(Loaded<D, Rank>::owned(C::template apply<Rank>(src.view(), t)));
      report->record({t.name(), t.source(), stored, declared, conversion_name<C>()});
    };
    (try_one(Cs{}), ...);
    return std::move(*result);
  }
}

template <class Role, PrecisionPolicy P>
[[nodiscard]] std::string role_note() {
  if constexpr (is_pinned_role<Role>)
    return std::string(" for role '") + std::string(role_name<Role>()) + "', pinned to f32 by every policy";
  else
    return std::string(" for role '") + std::string(role_name<Role>()) + "' of the precision policy";
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// load<D, Rank>: declared dtype given directly
// ---------------------------------------------------------------------------------------------

/// `t` as a `D` tensor of rank `Rank`. dtype_error unless the stored dtype is `D`; shape_error
/// unless the rank is `Rank`.
template <ElementDtype D, std::size_t Rank>
[[nodiscard]] Loaded<D, Rank> load(const AnyTensor& t) {
  return detail::load_impl<D, Rank>(t, nullptr, nullptr, "");
}

/// As above, and the extents must equal `expected` (shape_error naming both shapes).
template <ElementDtype D, std::size_t Rank>
[[nodiscard]] Loaded<D, Rank> load(const AnyTensor& t, const extents_t<Rank>& expected) {
  return detail::load_impl<D, Rank>(t, &expected, nullptr, "");
}

/// Accepts a stored dtype other than `D` only through one of the listed named conversions;
/// the conversion that runs is appended to `report`.
template <ElementDtype D, std::size_t Rank, LoadConversion... Cs>
  requires(sizeof...(Cs) > 0) && conversions_target_declared_dtype<D, Cs...>
[[nodiscard]] Loaded<D, Rank> load(const AnyTensor& t, ConversionReport& report, Cs... /*conversions*/) {
  return detail::load_impl<D, Rank, Cs...>(t, nullptr, &report, "");
}

template <ElementDtype D, std::size_t Rank, LoadConversion... Cs>
  requires(sizeof...(Cs) > 0) && conversions_target_declared_dtype<D, Cs...>
[[nodiscard]] Loaded<D, Rank> load(const AnyTensor& t, const extents_t<Rank>& expected, ConversionReport& report,
                                   Cs... /*conversions*/) {
  return detail::load_impl<D, Rank, Cs...>(t, &expected, &report, "");
}

// ---------------------------------------------------------------------------------------------
// load_role<Role, Policy, Rank>: declared dtype from the precision policy
// ---------------------------------------------------------------------------------------------

/// The declared dtype of a role, when it is an element dtype (a block-format weight role is
/// loaded through the quantized loaders instead).
template <class Role, class P>
concept loadable_role = PrecisionPolicy<P> && ElementDtype<role_dtype_t<Role, P>>;

template <class Role, class P, std::size_t Rank>
  requires loadable_role<Role, P>
[[nodiscard]] Loaded<role_dtype_t<Role, P>, Rank> load_role(const AnyTensor& t) {
  return detail::load_impl<role_dtype_t<Role, P>, Rank>(t, nullptr, nullptr, detail::role_note<Role, P>());
}

template <class Role, class P, std::size_t Rank>
  requires loadable_role<Role, P>
[[nodiscard]] Loaded<role_dtype_t<Role, P>, Rank> load_role(const AnyTensor& t, const extents_t<Rank>& expected) {
  return detail::load_impl<role_dtype_t<Role, P>, Rank>(t, &expected, nullptr, detail::role_note<Role, P>());
}

template <class Role, class P, std::size_t Rank, LoadConversion... Cs>
  requires loadable_role<Role, P> && (sizeof...(Cs) > 0) &&
           conversions_target_declared_dtype<role_dtype_t<Role, P>, Cs...>
[[nodiscard]] Loaded<role_dtype_t<Role, P>, Rank> load_role(const AnyTensor& t, ConversionReport& report,
                                                             Cs... /*conversions*/) {
  return detail::load_impl<role_dtype_t<Role, P>, Rank, Cs...>(t, nullptr, &report, detail::role_note<Role, P>());
}

template <class Role, class P, std::size_t Rank, LoadConversion... Cs>
  requires loadable_role<Role, P> && (sizeof...(Cs) > 0) &&
           conversions_target_declared_dtype<role_dtype_t<Role, P>, Cs...>
[[nodiscard]] Loaded<role_dtype_t<Role, P>, Rank> load_role(const AnyTensor& t, const extents_t<Rank>& expected,
                                                             ConversionReport& report, Cs... /*conversions*/) {
  return detail::load_impl<role_dtype_t<Role, P>, Rank, Cs...>(t, &expected, &report, detail::role_note<Role, P>());
}

}  // namespace precis::io

namespace precis {
/// A Loaded tensor is tensor-like (read-only, host), so cast<To>, to_float and friends accept it.
template <class D, std::size_t Rank>
struct tensor_traits<io::Loaded<D, Rank>> {
  using dtype = D;
  using device = host;
  static constexpr std::size_t rank = Rank;
  static constexpr bool writable = false;
};
}  // namespace precis
