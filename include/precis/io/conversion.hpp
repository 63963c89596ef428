// precis/io/conversion.hpp — named load-time conversions and the report that logs them.
//
// A checkpoint tensor whose stored dtype differs from the declared one is an error
// (dtype-bugs E28, E29: loaders that cast silently lost 417 f32 tensors to bf16 in one case and
// reinterpreted bf16 bytes as f32 in another). A caller that *wants* a conversion lists it by
// name at the call site, and every conversion that actually runs is appended to a
// ConversionReport the caller can print:
//
//   widen<bf16, f32>    exact: every stored value is representable in the target
//   narrow<f64, f32>    rounds (to nearest, ties to even); opt-in only, never implied; a finite
//                       value that would overflow to ±Inf is a range_error, not a silent Inf
//
// `widen` only exists for exact pairs and `narrow` only for inexact ones, so the name at the
// call site always tells the truth about what happens to the values.
#pragma once

#include <cmath>        // std::isfinite
#include <concepts>     // std::same_as, std::convertible_to
#include <cstddef>      // std::size_t
#include <ostream>      // std::ostream
#include <sstream>      // std::ostringstream
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include <precis/core/cast.hpp>         // precis::cast
#include <precis/core/dtype.hpp>        // dtype tags, FloatDtype, dtype_code
#include <precis/core/error.hpp>        // precis::range_error
#include <precis/core/tensor.hpp>       // precis::Tensor
#include <precis/core/tensor_view.hpp>  // precis::TensorView, for_each_offset
#include <precis/io/any_tensor.hpp>     // precis::io::AnyTensor
#include <precis/io/safetensors_dtype.hpp>  // stored_dtype_name

namespace precis::io {

namespace detail {
[[nodiscard]] constexpr bool is_float_code(dtype_code c) noexcept {
  return c == dtype_code::f64 || c == dtype_code::f32 || c == dtype_code::f16 || c == dtype_code::bf16 ||
         c == dtype_code::f8_e4m3 || c == dtype_code::f8_e5m2;
}

/// True if every value of `from` (NaN and ±Inf included) is exactly a value of `to`.
/// fp8 → f16/bf16: E4M3 (3 mantissa bits, 2^-9 … 448) and E5M2 (2 bits, 2^-16 … 57344) both fit
/// inside binary16 and bfloat16; f16 and bf16 are not subsets of each other (f16 has more
/// mantissa, bf16 more range), so f16 ↔ bf16 is a narrowing in both directions.
[[nodiscard]] constexpr bool widens_exactly(dtype_code from, dtype_code to) noexcept {
  using c = dtype_code;
  switch (from) {
    case c::f8_e4m3:
    case c::f8_e5m2: return to == c::f16 || to == c::bf16 || to == c::f32 || to == c::f64;
    case c::f16:
    case c::bf16: return to == c::f32 || to == c::f64;
    case c::f32: return to == c::f64;
    default: return false;
  }
}
}  // namespace detail

/// `From → To` loses nothing.
template <class From, class To>
concept exact_float_widening =
    FloatDtype<From> && FloatDtype<To> && detail::widens_exactly(dtype_traits<From>::code, dtype_traits<To>::code);

/// `From → To` rounds or can overflow: allowed only through the opt-in name `narrow`.
template <class From, class To>
concept float_narrowing = FloatDtype<From> && FloatDtype<To> && (!std::same_as<From, To>) &&
                          (!exact_float_widening<From, To>);

/// Exact widening of a stored `From` tensor to the declared `To` (e.g. bf16-stored sinks loaded
/// into the f32 role they are pinned to, dtype-bugs §3 load-time test 3).
template <FloatDtype From, FloatDtype To>
  requires exact_float_widening<From, To>
struct widen {
  using from = From;
  using to = To;
  static constexpr std::string_view kind = "widen";

  template <std::size_t Rank>
  [[nodiscard]] static Tensor<To, Rank> apply(const TensorView<const From, Rank>& in, const AnyTensor& /*source*/) {
    return cast<To>(in);  // exact by the constraint
  }
};

/// Rounding conversion of a stored `From` tensor to the declared `To` (e.g. an f64 `inv_freq`
/// into the f32 RoPE role, the seed-2 bug, when the model opts in). Finite values that would
/// become ±Inf are a range_error naming the tensor and the element.
template <FloatDtype From, FloatDtype To>
  requires float_narrowing<From, To>
struct narrow {
  using from = From;
  using to = To;
  static constexpr std::string_view kind = "narrow";

  template <std::size_t Rank>
  [[nodiscard]] static Tensor<To, Rank> apply(const TensorView<const From, Rank>& in, const AnyTensor& source) {
    Tensor<To, Rank> out = cast<To>(in);
    for_each_offset(in, [&](index_t flat, index_t off) {
      const double v = to_double(in.data()[off]);
      const double r = to_double(out.data()[flat]);
      PRECIS_CHECK(!std::isfinite(v) || std::isfinite(r), range_error, "[load] tensor '", source.name(), "' ('",
                   source.source(), "'): narrow<", dtype_name<From>, ", ", dtype_name<To>, "> of the finite value ",
                   v, " at flat index ", flat, " overflows ", dtype_name<To>);
    });
    return out;
  }

 private:
  template <class S>
  [[nodiscard]] static double to_double(const S& s) noexcept {
    if constexpr (std::same_as<S, double>) return s;
    else return static_cast<double>(static_cast<float>(s));
  }
};

/// What a load-time conversion must provide (widen, narrow, or a user-defined named one).
template <class C>
concept LoadConversion = requires {
  typename C::from;
  typename C::to;
  { C::kind } -> std::convertible_to<std::string_view>;
} && ElementDtype<typename C::from> && ElementDtype<typename C::to>;

/// "widen<bf16, f32>"
template <LoadConversion C>
[[nodiscard]] std::string conversion_name() {
  return std::string(C::kind) + "<" + std::string(dtype_name<typename C::from>) + ", " +
         std::string(dtype_name<typename C::to>) + ">";
}

/// One conversion that ran.
struct ConversionRecord {
  std::string tensor;      // checkpoint name of the tensor
  std::string source;      // file it came from
  dtype_code from;         // stored dtype
  dtype_code to;           // declared dtype
  std::string conversion;  // "widen<bf16, f32>"
};

/// The log of every conversion a load performed. Loading with conversions requires one, so no
/// conversion can run unrecorded (dtype-bugs E29: "every conversion is a named, logged operation").
class ConversionReport {
 public:
  void record(ConversionRecord r) { records_.push_back(std::move(r)); }
  [[nodiscard]] const std::vector<ConversionRecord>& records() const noexcept { return records_; }
  [[nodiscard]] bool empty() const noexcept { return records_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return records_.size(); }

  /// One line per conversion: "tensor 'sinks' ('model.safetensors'): stored BF16 -> f32 via widen<bf16, f32>".
  friend std::ostream& operator<<(std::ostream& os, const ConversionReport& r) {
    for (const auto& c : r.records_)
      os << "tensor '" << c.tensor << "' ('" << c.source << "'): stored " << stored_dtype_name(c.from) << " -> "
         << precis::to_string(c.to) << " via " << c.conversion << '\n';
    return os;
  }
  [[nodiscard]] std::string to_string() const {
    std::ostringstream os;
    os << *this;
    return os.str();
  }

 private:
  std::vector<ConversionRecord> records_;
};

}  // namespace precis::io
