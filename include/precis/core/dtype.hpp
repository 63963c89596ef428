// precis/core/dtype.hpp — dtype tags, dtype_traits<D>, and the concepts every typed API uses.
//
// A dtype is an empty tag type (`f32`, `bf16`, `q4_0`, ...). Its traits give the storage type,
// the bit width, a display name and the codes used by safetensors and GGUF. Runtime dtype codes
// (`dtype_code`) exist only at the I/O boundary: checkpoint readers turn them into tags after a
// check (`load<T>`), and nothing else in precis switches on them.
//
// Element dtypes (`ElementDtype`) are addressable one value at a time and can form a `Tensor`.
// Block formats (`BlockFormat`: q8_0, q4_0, q4_1, mxfp4 in two nibble layouts, and the GGUF download
// formats q5_0, q5_1, iq4_nl, q2_K … q6_K, iq4_xs) are not: their
// values exist only in blocks and reach activations through dequantize or a quantized matmul.
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int8_t ...
#include <optional>     // std::optional
#include <string_view>  // std::string_view
#include <type_traits>  // std::remove_cv_t

#include <precis/numeric/bfloat16.hpp>      // precis::bfloat16
#include <precis/numeric/float16.hpp>       // precis::float16
#include <precis/numeric/float8.hpp>        // precis::float8_e4m3, float8_e5m2
#include <precis/quant/kquant_blocks.hpp>    // block_q5_0 ... block_iq4_xs (ggml layouts)

namespace precis {

// ---------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------

struct f64 {};
struct f32 {};
struct f16 {};
struct bf16 {};
struct f8_e4m3 {};
struct f8_e5m2 {};
struct i8 {};
struct u8 {};
struct i32 {};
struct i64 {};

/// Nibble order inside an MXFP4 block.
enum class mxfp4_layout {
  /// HF / OpenAI checkpoints: blocks `[.., K/32, 16]` U8 and scales `[.., K/32]` U8 in two
  /// separate tensors; byte j holds element 2j (low nibble) and 2j+1 (high nibble).
  openai,
  /// ggml `block_mxfp4 {u8 e; u8 qs[16]}`: scale first; byte j holds element j (low nibble) and
  /// element j+16 (high nibble).
  ggml,
};

struct q8_0 {};
struct q4_0 {};
struct q4_1 {};
// The formats of the GGUF files people download (llama-quantize's types; quant/kquants.hpp).
struct q5_0 {};
struct q5_1 {};
struct iq4_nl {};
struct q2_K {};  // K-quants: 256-value super-blocks
struct q3_K {};
struct q4_K {};
struct q5_K {};
struct q6_K {};
struct iq4_xs {};
template <mxfp4_layout L>
struct mxfp4_t {
  static constexpr mxfp4_layout layout = L;
};
using mxfp4 = mxfp4_t<mxfp4_layout::openai>;
using mxfp4_ggml = mxfp4_t<mxfp4_layout::ggml>;

// ---------------------------------------------------------------------------------------------
// Runtime codes (I/O boundary only)
// ---------------------------------------------------------------------------------------------

/// Every dtype precis can name at run time, including ones it can read but not compute with.
// g++ < 13 wrongly reports that the scoped enumerators `dtype_code::mxfp4`/`mxfp4_ggml` shadow the
// tag aliases above under -Wshadow (a false positive: they live in different scopes).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
enum class dtype_code : std::uint8_t {
  f64, f32, f16, bf16, f8_e4m3, f8_e5m2, i8, u8, i16, u16, i32, u32, i64, u64, boolean,
  q8_0, q4_0, q4_1, mxfp4, mxfp4_ggml,
  q5_0, q5_1, iq4_nl, q2_K, q3_K, q4_K, q5_K, q6_K, iq4_xs,
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// ---------------------------------------------------------------------------------------------
// Traits
// ---------------------------------------------------------------------------------------------

/// Primary template: not a dtype. Specialisations below define the dtypes.
template <class D>
struct dtype_traits;

namespace detail {
template <class Storage, int Bits, bool Float, bool Signed, dtype_code Code>
struct element_traits_base {
  using storage_type = Storage;                 // one value in memory
  static constexpr int bits = Bits;             // bits per value
  static constexpr bool is_floating = Float;    // IEEE-like floating point
  static constexpr bool is_integer = !Float;
  static constexpr bool is_signed = Signed;
  static constexpr bool is_block = false;
  static constexpr std::size_t block_size = 1;  // values per block
  static constexpr dtype_code code = Code;
};
}  // namespace detail

// clang-format off
template <> struct dtype_traits<f64>     : detail::element_traits_base<double,        64, true,  true,  dtype_code::f64>     { static constexpr std::string_view name = "f64";     static constexpr std::string_view safetensors = "F64";     static constexpr std::optional<int> ggml_type = 28; };
template <> struct dtype_traits<f32>     : detail::element_traits_base<float,         32, true,  true,  dtype_code::f32>     { static constexpr std::string_view name = "f32";     static constexpr std::string_view safetensors = "F32";     static constexpr std::optional<int> ggml_type = 0;  };
template <> struct dtype_traits<f16>     : detail::element_traits_base<float16,       16, true,  true,  dtype_code::f16>     { static constexpr std::string_view name = "f16";     static constexpr std::string_view safetensors = "F16";     static constexpr std::optional<int> ggml_type = 1;  };
template <> struct dtype_traits<bf16>    : detail::element_traits_base<bfloat16,      16, true,  true,  dtype_code::bf16>    { static constexpr std::string_view name = "bf16";    static constexpr std::string_view safetensors = "BF16";    static constexpr std::optional<int> ggml_type = 30; };
template <> struct dtype_traits<f8_e4m3> : detail::element_traits_base<float8_e4m3,    8, true,  true,  dtype_code::f8_e4m3> { static constexpr std::string_view name = "f8_e4m3"; static constexpr std::string_view safetensors = "F8_E4M3"; static constexpr std::optional<int> ggml_type = std::nullopt; };
template <> struct dtype_traits<f8_e5m2> : detail::element_traits_base<float8_e5m2,    8, true,  true,  dtype_code::f8_e5m2> { static constexpr std::string_view name = "f8_e5m2"; static constexpr std::string_view safetensors = "F8_E5M2"; static constexpr std::optional<int> ggml_type = std::nullopt; };
template <> struct dtype_traits<i8>      : detail::element_traits_base<std::int8_t,    8, false, true,  dtype_code::i8>      { static constexpr std::string_view name = "i8";      static constexpr std::string_view safetensors = "I8";      static constexpr std::optional<int> ggml_type = 24; };
template <> struct dtype_traits<u8>      : detail::element_traits_base<std::uint8_t,   8, false, false, dtype_code::u8>      { static constexpr std::string_view name = "u8";      static constexpr std::string_view safetensors = "U8";      static constexpr std::optional<int> ggml_type = std::nullopt; };
template <> struct dtype_traits<i32>     : detail::element_traits_base<std::int32_t,  32, false, true,  dtype_code::i32>     { static constexpr std::string_view name = "i32";     static constexpr std::string_view safetensors = "I32";     static constexpr std::optional<int> ggml_type = 26; };
template <> struct dtype_traits<i64>     : detail::element_traits_base<std::int64_t,  64, false, true,  dtype_code::i64>     { static constexpr std::string_view name = "i64";     static constexpr std::string_view safetensors = "I64";     static constexpr std::optional<int> ggml_type = 27; };
// clang-format on

// ggml block structs (ggml-common.h); `d`/`m` are f16 bit patterns.
struct block_q8_0 { float16 d; std::int8_t qs[32]; };
struct block_q4_0 { float16 d; std::uint8_t qs[16]; };
struct block_q4_1 { float16 d; float16 m; std::uint8_t qs[16]; };
struct block_mxfp4_ggml { std::uint8_t e; std::uint8_t qs[16]; };
static_assert(sizeof(block_q8_0) == 34 && sizeof(block_q4_0) == 18 && sizeof(block_q4_1) == 20 &&
              sizeof(block_mxfp4_ggml) == 17, "ggml block layouts must be packed exactly");

namespace detail {
/// `ScalePlaneBytes`: bytes per block held in a separate scale plane (OpenAI MXFP4 keeps its E8M0
/// scales in their own tensor; 0 for the ggml formats, whose block struct holds everything). The
/// one source of truth for sizes: `sizeof(block_type)` is the struct one plane holds, and
/// `stored_bytes` = sizeof(block_type) + ScalePlaneBytes is what one block of 32 values occupies in
/// storage over all planes (what a kernel streams, what a file must hold).
/// `BlockSize`: values per block — 32 for the classic ggml formats, 256 (QK_K) for the K-quants
/// and IQ4_XS. Kernels walk every format in 32-value chunks (a 256-value super-block is 8 of them).
template <class Block, dtype_code Code, std::size_t ScalePlaneBytes = 0, std::size_t BlockSize = 32>
struct block_traits_base {
  using block_type = Block;                          // one block in memory (of the main plane)
  static constexpr bool is_floating = false;
  static constexpr bool is_integer = false;
  static constexpr bool is_block = true;
  static constexpr std::size_t block_size = BlockSize;  // values per block
  static constexpr std::size_t scale_plane_bytes = ScalePlaneBytes;
  static constexpr std::size_t stored_bytes = sizeof(Block) + ScalePlaneBytes;  // all planes
  static constexpr int bits = static_cast<int>(sizeof(Block) * 8);  // bits per *block*
  static constexpr dtype_code code = Code;
};
/// The OpenAI MXFP4 layout has no interleaved block struct: 16 bytes of nibbles in one tensor
/// and one E8M0 byte in another. `block_type` describes the 16 nibble bytes.
struct mxfp4_nibbles { std::uint8_t qs[16]; };
}  // namespace detail

// clang-format off
template <> struct dtype_traits<q8_0>       : detail::block_traits_base<block_q8_0, dtype_code::q8_0>       { static constexpr std::string_view name = "q8_0";       static constexpr std::optional<int> ggml_type = 8;  };
template <> struct dtype_traits<q4_0>       : detail::block_traits_base<block_q4_0, dtype_code::q4_0>       { static constexpr std::string_view name = "q4_0";       static constexpr std::optional<int> ggml_type = 2;  };
template <> struct dtype_traits<q4_1>       : detail::block_traits_base<block_q4_1, dtype_code::q4_1>       { static constexpr std::string_view name = "q4_1";       static constexpr std::optional<int> ggml_type = 3;  };
template <> struct dtype_traits<mxfp4_ggml> : detail::block_traits_base<block_mxfp4_ggml, dtype_code::mxfp4_ggml> { static constexpr std::string_view name = "mxfp4_ggml"; static constexpr std::optional<int> ggml_type = 39; };
template <> struct dtype_traits<q5_0>       : detail::block_traits_base<block_q5_0, dtype_code::q5_0>             { static constexpr std::string_view name = "q5_0";   static constexpr std::optional<int> ggml_type = 6;  };
template <> struct dtype_traits<q5_1>       : detail::block_traits_base<block_q5_1, dtype_code::q5_1>             { static constexpr std::string_view name = "q5_1";   static constexpr std::optional<int> ggml_type = 7;  };
template <> struct dtype_traits<iq4_nl>     : detail::block_traits_base<block_iq4_nl, dtype_code::iq4_nl>         { static constexpr std::string_view name = "iq4_nl"; static constexpr std::optional<int> ggml_type = 20; };
template <> struct dtype_traits<q2_K>       : detail::block_traits_base<block_q2_K, dtype_code::q2_K, 0, 256>     { static constexpr std::string_view name = "q2_K";   static constexpr std::optional<int> ggml_type = 10; };
template <> struct dtype_traits<q3_K>       : detail::block_traits_base<block_q3_K, dtype_code::q3_K, 0, 256>     { static constexpr std::string_view name = "q3_K";   static constexpr std::optional<int> ggml_type = 11; };
template <> struct dtype_traits<q4_K>       : detail::block_traits_base<block_q4_K, dtype_code::q4_K, 0, 256>     { static constexpr std::string_view name = "q4_K";   static constexpr std::optional<int> ggml_type = 12; };
template <> struct dtype_traits<q5_K>       : detail::block_traits_base<block_q5_K, dtype_code::q5_K, 0, 256>     { static constexpr std::string_view name = "q5_K";   static constexpr std::optional<int> ggml_type = 13; };
template <> struct dtype_traits<q6_K>       : detail::block_traits_base<block_q6_K, dtype_code::q6_K, 0, 256>     { static constexpr std::string_view name = "q6_K";   static constexpr std::optional<int> ggml_type = 14; };
template <> struct dtype_traits<iq4_xs>     : detail::block_traits_base<block_iq4_xs, dtype_code::iq4_xs, 0, 256> { static constexpr std::string_view name = "iq4_xs"; static constexpr std::optional<int> ggml_type = 23; };
template <> struct dtype_traits<mxfp4>      : detail::block_traits_base<detail::mxfp4_nibbles, dtype_code::mxfp4, 1> {
  static constexpr std::string_view name = "mxfp4";
  static constexpr std::optional<int> ggml_type = std::nullopt;  // stored as two U8 tensors in safetensors
};
// clang-format on

// ---------------------------------------------------------------------------------------------
// Concepts
// ---------------------------------------------------------------------------------------------

/// Any dtype tag (element or block). cv-qualifiers are not part of a dtype.
template <class D>
concept Dtype = requires { dtype_traits<std::remove_cv_t<D>>::code; };

/// A dtype whose values are individually addressable: may be the element type of a Tensor.
template <class D>
concept ElementDtype = Dtype<D> && !dtype_traits<std::remove_cv_t<D>>::is_block;

template <class D>
concept FloatDtype = ElementDtype<D> && dtype_traits<std::remove_cv_t<D>>::is_floating;

template <class D>
concept IntegerDtype = ElementDtype<D> && dtype_traits<std::remove_cv_t<D>>::is_integer;

/// A block-quantized weight format. Not element-addressable: never a Tensor element type.
template <class D>
concept BlockFormat = Dtype<D> && dtype_traits<std::remove_cv_t<D>>::is_block;

/// The dtypes activations may have inside a model graph. f64 is host-side setup and reference
/// math only (dtype-bugs E15: f64 cos/sin promoted Q/K); fp8 is a storage type reached through a
/// named quantizer.
template <class D>
concept ActivationDtype = std::same_as<std::remove_cv_t<D>, f32> || std::same_as<std::remove_cv_t<D>, bf16> ||
                          std::same_as<std::remove_cv_t<D>, f16>;

/// Integer dtypes that can hold positions and indices.
template <class D>
concept IndexDtype = std::same_as<std::remove_cv_t<D>, i32> || std::same_as<std::remove_cv_t<D>, i64>;

/// The rule for every binary tensor op: both operands have one dtype. The name is the
/// diagnostic a user sees ("because 'same_dtype_no_implicit_cast<bf16, f32>' evaluated to false").
template <class A, class B>
concept same_dtype_no_implicit_cast = std::same_as<std::remove_cv_t<A>, std::remove_cv_t<B>>;

template <Dtype D>
using storage_t = typename dtype_traits<std::remove_cv_t<D>>::storage_type;

template <Dtype D>
inline constexpr std::string_view dtype_name = dtype_traits<std::remove_cv_t<D>>::name;

/// Display name of a runtime code ("F64" style names are the safetensors spelling, see io/).
[[nodiscard]] constexpr std::string_view to_string(dtype_code c) noexcept {
  switch (c) {
    case dtype_code::f64: return "f64";
    case dtype_code::f32: return "f32";
    case dtype_code::f16: return "f16";
    case dtype_code::bf16: return "bf16";
    case dtype_code::f8_e4m3: return "f8_e4m3";
    case dtype_code::f8_e5m2: return "f8_e5m2";
    case dtype_code::i8: return "i8";
    case dtype_code::u8: return "u8";
    case dtype_code::i16: return "i16";
    case dtype_code::u16: return "u16";
    case dtype_code::i32: return "i32";
    case dtype_code::u32: return "u32";
    case dtype_code::i64: return "i64";
    case dtype_code::u64: return "u64";
    case dtype_code::boolean: return "bool";
    case dtype_code::q8_0: return "q8_0";
    case dtype_code::q4_0: return "q4_0";
    case dtype_code::q4_1: return "q4_1";
    case dtype_code::mxfp4: return "mxfp4";
    case dtype_code::mxfp4_ggml: return "mxfp4_ggml";
    case dtype_code::q5_0: return "q5_0";
    case dtype_code::q5_1: return "q5_1";
    case dtype_code::iq4_nl: return "iq4_nl";
    case dtype_code::q2_K: return "q2_K";
    case dtype_code::q3_K: return "q3_K";
    case dtype_code::q4_K: return "q4_K";
    case dtype_code::q5_K: return "q5_K";
    case dtype_code::q6_K: return "q6_K";
    case dtype_code::iq4_xs: return "iq4_xs";
  }
  return "?";
}

/// Bytes per element for element codes (0 for block formats).
[[nodiscard]] constexpr std::size_t element_bytes(dtype_code c) noexcept {
  switch (c) {
    case dtype_code::f64: case dtype_code::i64: case dtype_code::u64: return 8;
    case dtype_code::f32: case dtype_code::i32: case dtype_code::u32: return 4;
    case dtype_code::f16: case dtype_code::bf16: case dtype_code::i16: case dtype_code::u16: return 2;
    case dtype_code::f8_e4m3: case dtype_code::f8_e5m2: case dtype_code::i8: case dtype_code::u8:
    case dtype_code::boolean: return 1;
    default: return 0;
  }
}

}  // namespace precis
