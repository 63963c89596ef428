// precis/io/safetensors_dtype.hpp — safetensors dtype strings ↔ precis::dtype_code.
//
// The safetensors header names each tensor's dtype with a string ("BF16", "F8_E4M3", …;
// model-semantics.md §1e, `enum Dtype` of huggingface/safetensors). Reader, writer and every
// load-time message use this one table, so the spelling a user sees in an error ("stored dtype
// F64, declared f32") is exactly what is written in their file.
//
// Three kinds of strings exist: ones precis maps to a dtype_code; ones the format defines but
// precis cannot represent (F4, F6_*, F8_E8M0, the FNUZ fp8 variants, C64) — rejected as
// "unsupported dtype"; and everything else — rejected as "unknown dtype".
#pragma once

#include <array>        // std::array
#include <optional>     // std::optional
#include <string_view>  // std::string_view

#include <precis/core/dtype.hpp>  // precis::dtype_code, to_string(dtype_code)

namespace precis::io {

namespace detail {
struct safetensors_dtype_entry {
  std::string_view name;
  dtype_code code;
};
// clang-format off
inline constexpr std::array<safetensors_dtype_entry, 15> safetensors_dtypes{{
    {"F64", dtype_code::f64},         {"F32", dtype_code::f32},         {"F16", dtype_code::f16},
    {"BF16", dtype_code::bf16},       {"F8_E4M3", dtype_code::f8_e4m3}, {"F8_E5M2", dtype_code::f8_e5m2},
    {"I8", dtype_code::i8},           {"U8", dtype_code::u8},           {"I16", dtype_code::i16},
    {"U16", dtype_code::u16},         {"I32", dtype_code::i32},         {"U32", dtype_code::u32},
    {"I64", dtype_code::i64},         {"U64", dtype_code::u64},         {"BOOL", dtype_code::boolean},
}};
/// Defined by the safetensors format, not representable in precis (sub-byte floats, E8M0 scales
/// as a tensor dtype, AMD's FNUZ fp8 encodings, complex).
inline constexpr std::array<std::string_view, 7> safetensors_unsupported_dtypes{
    "F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"};
// clang-format on
}  // namespace detail

/// The dtype_code of a safetensors dtype string precis supports, or nullopt.
[[nodiscard]] constexpr std::optional<dtype_code> dtype_from_safetensors(std::string_view s) noexcept {
  for (const auto& e : detail::safetensors_dtypes)
    if (e.name == s) return e.code;
  return std::nullopt;
}

/// True for strings the safetensors format defines but precis does not support.
[[nodiscard]] constexpr bool is_unsupported_safetensors_dtype(std::string_view s) noexcept {
  for (const auto& e : detail::safetensors_unsupported_dtypes)
    if (e == s) return true;
  return false;
}

/// The safetensors spelling of `c` ("F64"), or nullopt for codes with no safetensors dtype
/// (ggml block formats; MXFP4 is stored as two U8 tensors).
[[nodiscard]] constexpr std::optional<std::string_view> safetensors_name(dtype_code c) noexcept {
  for (const auto& e : detail::safetensors_dtypes)
    if (e.code == c) return e.name;
  return std::nullopt;
}

/// How a stored dtype is shown in messages: the safetensors spelling when there is one, else
/// precis' own name ("q4_0").
[[nodiscard]] constexpr std::string_view stored_dtype_name(dtype_code c) noexcept {
  const auto n = safetensors_name(c);
  return n ? *n : to_string(c);
}

}  // namespace precis::io
