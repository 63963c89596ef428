// precis/core/cast.hpp — the explicit bridges between dtypes.
//
//   cast<To>(x)       floating ↔ floating, or integer ↔ integer (range-checked narrowing).
//   to_float<To>(x)   integer → f32/f64, only where every value is exact (|v| ≤ 2^24 for f32).
//   round_to<To>(x)   floating → integer, round half to even, range-checked.
//
// All three are [[nodiscard]]: discarding a conversion's result (the vllm-omni `cos.to(q.dtype)`
// bug, dtype-bugs E15) is a compile error under -Werror=unused-result. There is no
// "cast like that tensor" (`type_as`), no integer → bf16/f16 conversion at all (a bf16 position
// 15962 rounds to 15936: bf16 spacing is 64 there, dtype-bugs E13), and no "cast every parameter" operation.
#pragma once

#include <bit>     // std::bit_cast
#include <cmath>   // std::nearbyint, std::fabs, std::isnan, std::ldexp
#include <limits>  // std::numeric_limits

#include <precis/core/dtype.hpp>        // dtype concepts
#include <precis/numeric/round_to_odd.hpp>  // f64_to_f32_round_to_odd
#include <precis/core/error.hpp>        // precis::range_error
#include <precis/core/tensor.hpp>       // precis::Tensor
#include <precis/core/tensor_view.hpp>  // precis::TensorView

namespace precis {

/// `cast<To>` converts within one kind of number; crossing between integers and floats is a
/// named operation (`to_float`, `round_to`).
template <class From, class To>
concept cast_within_kind = ElementDtype<From> && ElementDtype<To> &&
                           ((FloatDtype<From> && FloatDtype<To>) || (IntegerDtype<From> && IntegerDtype<To>));

/// Integer → float is exact only for f32 and f64 targets (bf16/f16 cannot hold every position).
template <class From, class To>
concept exact_integer_to_float = IntegerDtype<From> && (std::same_as<To, f32> || std::same_as<To, f64>);

namespace detail {
template <class T>
concept host_tensor_input = TensorLike<T> && std::same_as<device_of<T>, host>;
}  // namespace detail

/// Elementwise dtype conversion of a host tensor into a new tensor of dtype `To`.
/// Float → float rounds to nearest even (once: f64 → bf16 does not double-round through f32).
template <ElementDtype To, detail::host_tensor_input X>
  requires cast_within_kind<dtype_of<X>, To>
[[nodiscard]] Tensor<To, rank_of<X>> cast(const X& x) {
  using From = dtype_of<X>;
  constexpr std::size_t R = rank_of<X>;
  const TensorView<const From, R> in = x;
  Tensor<To, R> out(in.extents());
  for_each_offset(in, [&](index_t flat, index_t off) {
    const auto& v = in.data()[off];
    if constexpr (FloatDtype<From>) {
      if constexpr (std::same_as<From, f64> && std::same_as<To, f64>) {
        out.data()[flat] = v;
      } else if constexpr (std::same_as<From, f64> && std::same_as<To, f32>) {
        out.data()[flat] = static_cast<float>(v);
      } else if constexpr (std::same_as<From, f64>) {
        out.data()[flat] = static_cast<storage_t<To>>(f64_to_f32_round_to_odd(v));
      } else if constexpr (std::same_as<To, f64>) {
        out.data()[flat] = static_cast<double>(static_cast<float>(v));
      } else {
        out.data()[flat] = static_cast<storage_t<To>>(static_cast<float>(v));  // exact widening, one rounding
      }
    } else {
      using ToS = storage_t<To>;
      const auto wide = static_cast<std::int64_t>(v);
      if constexpr (!std::same_as<To, i64>) {
        PRECIS_CHECK(wide >= static_cast<std::int64_t>(std::numeric_limits<ToS>::min()) &&
                         wide <= static_cast<std::int64_t>(std::numeric_limits<ToS>::max()),
                     range_error, "[cast<", dtype_name<To>, ">] value ", wide, " at flat index ", flat,
                     " does not fit");
      }
      out.data()[flat] = static_cast<ToS>(wide);
    }
  });
  return out;
}

/// Integer → f32/f64, checking that every value is exactly representable.
template <FloatDtype To, detail::host_tensor_input X>
  requires exact_integer_to_float<dtype_of<X>, To>
[[nodiscard]] Tensor<To, rank_of<X>> to_float(const X& x) {
  constexpr std::size_t R = rank_of<X>;
  const TensorView<const dtype_of<X>, R> in = x;
  Tensor<To, R> out(in.extents());
  constexpr std::int64_t limit = std::same_as<To, f32> ? (std::int64_t{1} << 24) : (std::int64_t{1} << 53);
  for_each_offset(in, [&](index_t i, index_t off) {
    const auto v = static_cast<std::int64_t>(in.data()[off]);
    PRECIS_CHECK(v >= -limit && v <= limit, range_error, "[to_float<", dtype_name<To>, ">] value ", v,
                 " at flat index ", i, " is not exactly representable");
    out.data()[i] = static_cast<storage_t<To>>(v);
  });
  return out;
}

/// Floating → integer, round half to even, range-checked (NaN is an error).
template <IntegerDtype To, detail::host_tensor_input X>
  requires FloatDtype<dtype_of<X>>
[[nodiscard]] Tensor<To, rank_of<X>> round_to(const X& x) {
  constexpr std::size_t R = rank_of<X>;
  const TensorView<const dtype_of<X>, R> in = x;
  Tensor<To, R> out(in.extents());
  using ToS = storage_t<To>;
  for_each_offset(in, [&](index_t i, index_t off) {
    double v;
    if constexpr (std::same_as<dtype_of<X>, f64>) v = in.data()[off];
    else v = static_cast<double>(static_cast<float>(in.data()[off]));
    const double r = std::nearbyint(v);
    // Upper bound 2^digits (= max + 1, exact as a double): `r <= double(max)` would admit 2^63
    // for i64, whose max rounds up to 2^63 as a double, and the conversion below would be UB.
    PRECIS_CHECK(r >= static_cast<double>(std::numeric_limits<ToS>::min()) &&
                     r < std::ldexp(1.0, std::numeric_limits<ToS>::digits),
                 range_error, "[round_to<", dtype_name<To>, ">] value ", v, " at flat index ", i, " does not fit");
    out.data()[i] = static_cast<ToS>(r);
  });
  return out;
}

}  // namespace precis
