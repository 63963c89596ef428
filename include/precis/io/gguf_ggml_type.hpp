// precis/io/gguf_ggml_type.hpp — the ggml tensor type ids a GGUF file stores, with their block
// geometry, and which of them precis can hand out as an AnyTensor.
//
// A GGUF tensor-info entry names its element encoding with a raw `u32 ggml_type`
// (model-semantics.md §1d; ggml `include/ggml.h` `enum ggml_type`). The reader must know the
// block size and bytes per block of *every* id, supported or not, to compute a tensor's byte
// size and check that it lies inside the file — a Q4_K tensor precis cannot compute with is still
// listed by GgufFile::tensor_infos() with the right size.
//
// Geometry source: gguf-py 0.19.0 `GGML_QUANT_SIZES` (the reference writer), cross-checked
// against ggml-common.h's block structs. One disagreement: gguf-py lists Q8_1 as 40 bytes per
// block (an old `{float d; float s; i8 qs[32]}` layout); ggml-common.h's `block_q8_1` is
// `{ggml_half d; ggml_half s; i8 qs[32]}` = 36 bytes (static_assert there), which is what ggml's
// reader uses, so 36 is used here. (Q8_1 is an activation format; no converter writes it.)
// Ids 4, 5 (Q4_2, Q4_3), 31–33 (Q4_0_4_4 …) and 36–38 (IQ4_NL_4_4 …) were removed from ggml and
// are unknown here too, as they are to ggml's `gguf_init_from_file`.
#pragma once

#include <array>        // std::array
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint32_t
#include <optional>     // std::optional
#include <string_view>  // std::string_view

#include <precis/core/dtype.hpp>           // precis::dtype_code
#include <precis/quant/block_formats.hpp>  // ggml_block_formats

namespace precis::io {

/// Block geometry of one ggml type: `block_size` values are stored in `type_size` bytes.
struct GgmlTypeInfo {
  std::string_view name;    // ggml's spelling: "Q4_K", "BF16"
  std::uint32_t block_size;  // values per block (1 for element types)
  std::uint32_t type_size;   // bytes per block
};

namespace detail {

inline constexpr std::uint32_t ggml_type_count = 42;  // one past the largest id known (Q1_0 = 41)

// clang-format off
inline constexpr std::array<GgmlTypeInfo, ggml_type_count> ggml_types{{
    {"F32", 1, 4},        {"F16", 1, 2},        {"Q4_0", 32, 18},     {"Q4_1", 32, 20},
    {{}, 0, 0},           {{}, 0, 0},           {"Q5_0", 32, 22},     {"Q5_1", 32, 24},
    {"Q8_0", 32, 34},     {"Q8_1", 32, 36},     {"Q2_K", 256, 84},    {"Q3_K", 256, 110},
    {"Q4_K", 256, 144},   {"Q5_K", 256, 176},   {"Q6_K", 256, 210},   {"Q8_K", 256, 292},
    {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74},  {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
    {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110},  {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136},
    {"I8", 1, 1},         {"I16", 1, 2},        {"I32", 1, 4},        {"I64", 1, 8},
    {"F64", 1, 8},        {"IQ1_M", 256, 56},   {"BF16", 1, 2},       {{}, 0, 0},
    {{}, 0, 0},           {{}, 0, 0},           {"TQ1_0", 256, 54},   {"TQ2_0", 256, 66},
    {{}, 0, 0},           {{}, 0, 0},           {{}, 0, 0},           {"MXFP4", 32, 17},
    {"NVFP4", 64, 36},    {"Q1_0", 128, 18},
}};
// clang-format on

/// "unknown(N)" spelled out at compile time for N < 1024, so ggml_type_name can return a
/// string_view without allocating (ids that large are hostile input, not future types).
struct unknown_ggml_type_names {
  static constexpr std::size_t count = 1024;
  std::array<std::array<char, 16>, count> text{};
  std::array<std::size_t, count> length{};
  constexpr unknown_ggml_type_names() {
    for (std::size_t id = 0; id < count; ++id) {
      auto& t = text[id];
      std::size_t n = 0;
      for (char c : std::string_view("unknown(")) t[n++] = c;
      char digits[4] = {};
      std::size_t nd = 0;
      std::size_t v = id;
      do {
        digits[nd++] = static_cast<char>('0' + v % 10);
        v /= 10;
      } while (v != 0);
      while (nd > 0) t[n++] = digits[--nd];
      t[n++] = ')';
      length[id] = n;
    }
  }
};
inline constexpr unknown_ggml_type_names unknown_ggml_names{};

}  // namespace detail

/// The geometry of ggml type `id`, or nullptr for ids ggml does not define (or has removed).
[[nodiscard]] constexpr const GgmlTypeInfo* ggml_type_info(std::uint32_t id) noexcept {
  if (id >= detail::ggml_type_count || detail::ggml_types[id].block_size == 0) return nullptr;
  return &detail::ggml_types[id];
}

/// ggml's name of type `id` ("Q4_K"), or "unknown(77)" for an id ggml does not define.
[[nodiscard]] constexpr std::string_view ggml_type_name(std::uint32_t ggml_type) noexcept {
  if (const GgmlTypeInfo* t = ggml_type_info(ggml_type)) return t->name;
  if (ggml_type < detail::unknown_ggml_type_names::count)
    return {detail::unknown_ggml_names.text[ggml_type].data(), detail::unknown_ggml_names.length[ggml_type]};
  return "unknown(>=1024)";
}

/// The dtype_code GgufFile::tensor hands out for ggml type `id`, or nullopt when precis does not
/// support it (Q8_1/Q8_K, the IQ1–IQ3 grids, TQ*, NVFP4, Q1_0, …). The block formats map to the tags whose
/// block structs (core/dtype.hpp) have ggml's exact byte layout (ggml-common.h).
[[nodiscard]] constexpr std::optional<dtype_code> ggml_type_dtype(std::uint32_t ggml_type) noexcept {
  switch (ggml_type) {
    case 0: return dtype_code::f32;
    case 1: return dtype_code::f16;
    case 2: return dtype_code::q4_0;
    case 3: return dtype_code::q4_1;
    case 6: return dtype_code::q5_0;
    case 7: return dtype_code::q5_1;
    case 8: return dtype_code::q8_0;
    case 10: return dtype_code::q2_K;
    case 11: return dtype_code::q3_K;
    case 12: return dtype_code::q4_K;
    case 13: return dtype_code::q5_K;
    case 14: return dtype_code::q6_K;
    case 20: return dtype_code::iq4_nl;
    case 23: return dtype_code::iq4_xs;
    case 24: return dtype_code::i8;
    case 25: return dtype_code::i16;
    case 26: return dtype_code::i32;
    case 27: return dtype_code::i64;
    case 28: return dtype_code::f64;
    case 30: return dtype_code::bf16;
    case 39: return dtype_code::mxfp4_ggml;
    default: return std::nullopt;
  }
}

/// The element and block types GgufFile::tensor hands out — for messages.
inline constexpr std::string_view ggml_supported_types_list =
    "F32, F16, BF16, F64, I8, I16, I32, I64, Q8_0, Q4_0, Q4_1, MXFP4, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, "
    "Q6_K, IQ4_XS";

// The block tags' structs must be ggml's, byte for byte (ggml-common.h static_asserts): every
// single-array block format's ggml id, block size and struct size agree with the geometry table.
static_assert([]<class... F>(format_list<F...>) {
  return ((*dtype_traits<F>::ggml_type >= 0 && ggml_type_dtype(static_cast<std::uint32_t>(*dtype_traits<F>::ggml_type)) == dtype_traits<F>::code &&
           detail::ggml_types[static_cast<std::size_t>(*dtype_traits<F>::ggml_type)].block_size == dtype_traits<F>::block_size &&
           detail::ggml_types[static_cast<std::size_t>(*dtype_traits<F>::ggml_type)].type_size == sizeof(typename dtype_traits<F>::block_type)) && ...);
}(ggml_block_formats{}), "core/dtype.hpp's block formats must agree with ggml.h / ggml-common.h");
static_assert(dtype_traits<q8_0>::ggml_type == 8 && dtype_traits<bf16>::ggml_type == 30 &&
                  dtype_traits<f64>::ggml_type == 28,
              "core/dtype.hpp's ggml ids must agree with ggml.h");

}  // namespace precis::io
