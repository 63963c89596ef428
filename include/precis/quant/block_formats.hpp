// precis/quant/block_formats.hpp — the one list of block formats a GGUF tensor can hand out as a
// single array of ggml block structs, and the one run-time switch from a dtype_code to its tag.
//
// Everything that turns a stored format code into a typed QuantView (AnyWeight, AnyExperts, the
// CUDA upload, the fuzz harness, test helpers) visits this list instead of spelling its own
// switch, so a new format is added in one place (here) plus its block struct and math.
#pragma once

#include <concepts>     // std::same_as
#include <string_view>  // std::string_view

#include <precis/core/dtype.hpp>  // dtype tags, dtype_code, dtype_traits

namespace precis {

template <class... F>
struct format_list {};

/// The formats llama-quantize writes beyond q8_0/q4_0/q4_1 (the "download formats": quant/kquants.hpp).
using download_block_formats = format_list<q5_0, q5_1, iq4_nl, q2_K, q3_K, q4_K, q5_K, q6_K, iq4_xs>;

namespace detail {
template <class A, class B>
struct concat_formats;
template <class... A, class... B>
struct concat_formats<format_list<A...>, format_list<B...>> {
  using type = format_list<A..., B...>;
};
template <class F, class List>
inline constexpr bool in_format_list = false;
template <class F, class... L>
inline constexpr bool in_format_list<F, format_list<L...>> = (std::same_as<F, L> || ...);
}  // namespace detail

/// Single-array ggml block formats (HF/OpenAI mxfp4 is two planes and is loaded on its own).
using ggml_block_formats =
    typename detail::concat_formats<format_list<q8_0, q4_0, q4_1, mxfp4_ggml>, download_block_formats>::type;

/// F is one of the download formats.
template <class F>
concept download_format = detail::in_format_list<F, download_block_formats>;

/// ggml's spelling of the same list, for messages.
inline constexpr std::string_view ggml_block_format_names =
    "Q8_0, Q4_0, Q4_1, MXFP4, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS";

/// Calls `fn.template operator()<F>()` for the format F of `code` in ggml_block_formats; returns
/// false (calling nothing) when `code` is not one of them.
template <class Fn>
constexpr bool visit_ggml_block_format(dtype_code code, Fn&& fn) {
  return [&]<class... F>(format_list<F...>) {
    return ((code == dtype_traits<F>::code ? (fn.template operator()<F>(), true) : false) || ...);
  }(ggml_block_formats{});
}

/// True when `code` is in ggml_block_formats.
[[nodiscard]] constexpr bool is_ggml_block_format(dtype_code code) noexcept {
  return visit_ggml_block_format(code, []<class>() {});
}

}  // namespace precis
