// precis/core/scalar.hpp — Scalar<D>: a typed scalar, and the compute type scalars of D use.
//
// Why: a bare `float` literal multiplied into a bf16 tensor is how mixed-precision bugs start
// (dtype-bugs E1: DeBERTa's hard-coded float and "value cannot be converted to type
// at::BFloat16 without overflow"; E27: an f32 scalar silently promoting bf16 activations).
// In precis a scalar operand carries its dtype like a tensor does, so `mul(Tensor<bf16>,
// Scalar<f32>)` is rejected by the same rule as mixed tensors (same_dtype_no_implicit_cast).
//
//   Scalar<bf16> s = 0.5;          literal: checked at compile time (consteval), so -inf, NaN,
//                                  1e39 (overflows to ±Inf) or 1e-60 (rounds to 0) are errors
//                                  naming the reason (scalar_literal_overflows_dtype, ...).
//   Scalar<bf16>::from(x)          run-time value: the same checks, throwing precis::range_error.
//
// The value is stored already rounded to D (round to nearest even, one rounding from double:
// f64 → f32 uses round-to-odd so that the second rounding to a 16/8-bit type is correct).
// Gemma's normaliser shows why that matters: sqrt(3072) = 55.4256 *is* 55.5 in bf16, and a
// Scalar<bf16> says so instead of pretending to be exact.
//
// compute_t<D> / to_compute<D> / from_compute<D>: every reference op widens a storage value to
// its compute type (float for 8/16/32-bit floats, double for f64), computes, and rounds once.
#pragma once

#include <bit>          // std::bit_cast
#include <concepts>     // std::same_as
#include <cstdint>      // std::uint32_t
#include <limits>       // std::numeric_limits
#include <type_traits>  // std::conditional_t, std::is_arithmetic_v

#include <precis/core/config.hpp>  // PRECIS_HD
#include <precis/core/dtype.hpp>   // precis::FloatDtype, storage_t, dtype_name
#include <precis/core/error.hpp>   // precis::range_error, PRECIS_CHECK
#include <precis/numeric/round_to_odd.hpp>  // f64_to_f32_round_to_odd

namespace precis {

// ---------------------------------------------------------------------------------------------
// Compute type of a floating dtype
// ---------------------------------------------------------------------------------------------

/// The type values of dtype `D` are computed in: double for f64, float for every narrower float
/// (bf16/f16/fp8 have no arithmetic of their own; f32 accumulation is the default, E19–E21).
template <FloatDtype D>
using compute_t = std::conditional_t<std::same_as<std::remove_cv_t<D>, f64>, double, float>;

/// Widens one stored value to its compute type (exact).
template <FloatDtype D>
[[nodiscard]] PRECIS_HD constexpr compute_t<D> to_compute(const storage_t<D>& v) noexcept {
  return static_cast<compute_t<D>>(v);
}

/// Rounds a compute-type value to the storage of `D` (round to nearest even).
template <FloatDtype D>
[[nodiscard]] PRECIS_HD constexpr storage_t<D> from_compute(compute_t<D> v) noexcept {
  return static_cast<storage_t<D>>(v);
}

// ---------------------------------------------------------------------------------------------
// Scalar<D>
// ---------------------------------------------------------------------------------------------

namespace detail {

// Not constexpr on purpose: reaching one of these while evaluating a consteval Scalar
// constructor makes the literal ill-formed, and both g++ and clang++ name the function.
inline void scalar_literal_is_not_finite() {}
inline void scalar_literal_overflows_dtype() {}
inline void scalar_literal_underflows_to_zero() {}

enum class scalar_check { ok, not_finite, overflows, underflows_to_zero };

[[nodiscard]] constexpr bool finite(double v) noexcept {
  return v == v && v <= std::numeric_limits<double>::max() && v >= -std::numeric_limits<double>::max();
}

/// Rounds `v` to dtype `D` and reports whether the result is a faithful finite value.
template <FloatDtype D>
[[nodiscard]] constexpr storage_t<D> round_scalar(double v, scalar_check& check) noexcept {
  check = scalar_check::ok;
  if (!finite(v)) {
    check = scalar_check::not_finite;
    return storage_t<D>{};
  }
  if constexpr (std::same_as<std::remove_cv_t<D>, f64>) {
    return v;
  } else {
    constexpr double flt_max = static_cast<double>(std::numeric_limits<float>::max());
    if (v > flt_max || v < -flt_max) {
      check = scalar_check::overflows;
      return storage_t<D>{};
    }
    storage_t<D> r{};
    if constexpr (std::same_as<std::remove_cv_t<D>, f32>)
      r = static_cast<float>(v);  // one rounding, double → float
    else
      r = storage_t<D>(f64_to_f32_round_to_odd(v));  // round-to-odd, then one rounding to D
    const float back = static_cast<float>(r);
    if (!(back == back) || back > std::numeric_limits<float>::max() || back < -std::numeric_limits<float>::max())
      check = scalar_check::overflows;  // ±Inf (bf16, f16, e5m2) or NaN (e4m3 has no Inf)
    else if (v != 0.0 && back == 0.0f)
      check = scalar_check::underflows_to_zero;
    return r;
  }
}

}  // namespace detail

/// A scalar of dtype `D`, stored rounded to D. The operand type of tensor×scalar ops.
template <FloatDtype D>
class Scalar {
 public:
  using dtype = std::remove_cv_t<D>;
  using storage_type = storage_t<D>;

  /// From a literal, checked at compile time: `Scalar<bf16> s = -1e39;` does not compile
  /// (dtype-bugs E1). Implicit, so `mul(x, Scalar<bf16>{0.5})` and `Scalar<bf16> s = 0.5;` read
  /// naturally; a run-time value must go through `from`.
  template <class T>
    requires std::is_arithmetic_v<T> && (!std::same_as<T, bool>)
  consteval Scalar(T literal)  // NOLINT(google-explicit-constructor)
      : value_(checked_literal(static_cast<double>(literal))) {}

  /// From a run-time value: throws range_error if `v` is not finite, overflows D, or is
  /// non-zero but rounds to zero in D.
  [[nodiscard]] static Scalar from(double v) {
    detail::scalar_check check{};
    const storage_type r = detail::round_scalar<D>(v, check);
    PRECIS_CHECK(check != detail::scalar_check::not_finite, range_error, "[Scalar<", dtype_name<D>, ">::from] value ",
                 v, " is not finite");
    PRECIS_CHECK(check != detail::scalar_check::overflows, range_error, "[Scalar<", dtype_name<D>, ">::from] value ", v,
                 " overflows ", dtype_name<D>);
    PRECIS_CHECK(check != detail::scalar_check::underflows_to_zero, range_error, "[Scalar<", dtype_name<D>,
                 ">::from] non-zero value ", v, " rounds to zero in ", dtype_name<D>);
    return Scalar(r, raw_tag{});
  }

  /// The stored (rounded) value.
  [[nodiscard]] constexpr storage_type storage() const noexcept { return value_; }
  /// The stored value widened to the compute type (exact).
  [[nodiscard]] constexpr compute_t<D> value() const noexcept { return to_compute<D>(value_); }

 private:
  struct raw_tag {};
  constexpr Scalar(storage_type v, raw_tag) noexcept : value_(v) {}

  static consteval storage_type checked_literal(double v) {
    detail::scalar_check check{};
    const storage_type r = detail::round_scalar<D>(v, check);
    if (check == detail::scalar_check::not_finite) detail::scalar_literal_is_not_finite();
    if (check == detail::scalar_check::overflows) detail::scalar_literal_overflows_dtype();
    if (check == detail::scalar_check::underflows_to_zero) detail::scalar_literal_underflows_to_zero();
    return r;
  }

  storage_type value_;
};

}  // namespace precis
