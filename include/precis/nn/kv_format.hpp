// precis/nn/kv_format.hpp — the formats a KV cache may store its K and V rows in, chosen at run
// time (`--cache-type-k` / `--cache-type-v`, llama.cpp's `-ctk` / `-ctv`), and the one scalar
// encoder / decoder of a row per format (the math spec the kernels are tested against).
//
//   KvCacheTypes types{.k = KvFormat::q8_0, .v = KvFormat::q8_0};      // the runners' flags
//   KvCacheFormat fmt = types.resolve<bf16>();                          // unset = the compute type
//   auto cache = backend.make_kv_cache<bf16>(plan, size, fmt);
//
// Why a run-time format and not a store type: the model's forward is compiled once per compute
// dtype; 5 × 5 K/V formats as template arguments would compile every model 25 times. The type
// rules of nn/kv_cache.hpp still hold: `append` takes tensors of exactly the compute dtype, the
// cache encodes them with the format's named quantizer below, and the stored rows are read only
// through a KvStoredView, which carries the format next to the bytes, so a row is never decoded
// as a format it was not written in (dtype-bugs E9: bf16 bits read back as f16).
//
// A row is the head_dim values of one (position, kv head):
//   f32, f16, bf16  head_dim elements; f16 and bf16 round to nearest even from f32 (bf16 from a
//                   bf16 activation is exact)
//   q8_0, q4_0      head_dim / 32 ggml blocks (quant/block_reference.hpp: `quantize_row_q8_0_ref`
//                   and `quantize_row_q4_0_ref`, bit-exact against ggml), so head_dim must be a
//                   multiple of 32 — it is for every target model (64 SmolLM2 and gpt-oss, 128
//                   Qwen3-MoE and the Qwen3-Omni thinker). The encoder sees the activation widened
//                   to f32, as llama.cpp's `ggml_cpy` into a quantized cache does.
// Decoding is exact products rounded once to f32 (code · scale), the same in every kernel.
#pragma once

#include <array>        // std::array
#include <cstddef>      // std::size_t
#include <cstdint>      // std::uint8_t
#include <cstring>      // std::memcpy
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::pair

#include <precis/core/dtype.hpp>              // f32, f16, bf16, ActivationDtype, block_q8_0, block_q4_0
#include <precis/core/error.hpp>              // config_error, fail
#include <precis/core/scalar.hpp>             // to_compute
#include <precis/quant/block_reference.hpp>   // quantize_block_q8_0, quantize_block_q4_0, dequantize_block

namespace precis {

/// How one half (K or V) of a KV cache stores a row.
enum class KvFormat : std::uint8_t { f32, f16, bf16, q8_0, q4_0 };

inline constexpr std::array<KvFormat, 5> all_kv_formats = {KvFormat::f32, KvFormat::f16, KvFormat::bf16,
                                                          KvFormat::q8_0, KvFormat::q4_0};

[[nodiscard]] constexpr std::string_view to_string(KvFormat f) noexcept {
  switch (f) {
    case KvFormat::f32: return "f32";
    case KvFormat::f16: return "f16";
    case KvFormat::bf16: return "bf16";
    case KvFormat::q8_0: return "q8_0";
    case KvFormat::q4_0: return "q4_0";
  }
  return "?";
}

/// The format that stores rows of activation dtype A unchanged.
template <ActivationDtype A>
[[nodiscard]] constexpr KvFormat native_kv_format() noexcept {
  if constexpr (std::same_as<A, f32>) return KvFormat::f32;
  else if constexpr (std::same_as<A, bf16>) return KvFormat::bf16;
  else return KvFormat::f16;
}

/// True for the ggml block formats (rows of head_dim / 32 blocks).
[[nodiscard]] constexpr bool is_block_kv_format(KvFormat f) noexcept {
  return f == KvFormat::q8_0 || f == KvFormat::q4_0;
}

/// Bytes of one stored row of `head_dim` values (head_dim a multiple of 32 for block formats).
[[nodiscard]] constexpr std::size_t kv_row_bytes(KvFormat f, index_t head_dim) noexcept {
  const auto d = static_cast<std::size_t>(head_dim);
  switch (f) {
    case KvFormat::f32: return 4 * d;
    case KvFormat::f16:
    case KvFormat::bf16: return 2 * d;
    case KvFormat::q8_0: return d / 32 * sizeof(block_q8_0);  // 34 bytes per 32 values
    case KvFormat::q4_0: return d / 32 * sizeof(block_q4_0);  // 18 bytes per 32 values
  }
  return 0;
}

/// The K and V formats of one cache.
struct KvCacheFormat {
  KvFormat k = KvFormat::f32;
  KvFormat v = KvFormat::f32;

  friend constexpr bool operator==(const KvCacheFormat&, const KvCacheFormat&) = default;
  /// Bytes one position occupies in one full-attention layer: (K row + V row) × kv heads.
  [[nodiscard]] constexpr std::size_t bytes_per_position(index_t n_kv_heads, index_t head_dim) const noexcept {
    return (kv_row_bytes(k, head_dim) + kv_row_bytes(v, head_dim)) * static_cast<std::size_t>(n_kv_heads);
  }
  [[nodiscard]] std::string describe() const {
    return "k " + std::string(to_string(k)) + ", v " + std::string(to_string(v));
  }
};

/// What the runners' flags ask for: a format per half, or nothing (the compute dtype).
struct KvCacheTypes {
  std::optional<KvFormat> k, v;

  template <ActivationDtype A>
  [[nodiscard]] constexpr KvCacheFormat resolve() const noexcept {
    return {k.value_or(native_kv_format<A>()), v.value_or(native_kv_format<A>())};
  }
};

/// `--cache-type-k` / `--cache-type-v` values: f32 | f16 | bf16 | q8_0 | q4_0.
[[nodiscard]] inline std::optional<KvFormat> parse_kv_format(std::string_view s) noexcept {
  for (KvFormat f : all_kv_formats)
    if (to_string(f) == s) return f;
  return std::nullopt;
}

/// config_error unless `fmt` can store rows of `head_dim` values (`owner` prefixes the message).
inline void check_kv_format(const KvCacheFormat& fmt, index_t head_dim, const char* owner) {
  for (const auto& [half, f] : {std::pair{"k", fmt.k}, std::pair{"v", fmt.v}})
    if (is_block_kv_format(f) && (head_dim <= 0 || head_dim % 32 != 0))
      fail<config_error>("[", owner, "] cache type ", half, " = ", to_string(f), " stores rows in blocks of 32 values, "
                         "but head_dim is ", head_dim, " (not a multiple of 32); use f32, f16 or bf16");
}

// ---------------------------------------------------------------------------------------------
// The scalar row codec (the math spec)
// ---------------------------------------------------------------------------------------------

/// Encodes x [head_dim] (activation dtype A) into one row of `f` at dst (kv_row_bytes bytes).
template <ActivationDtype A>
void kv_encode_row_reference(KvFormat f, const storage_t<A>* x, index_t head_dim, std::uint8_t* dst) noexcept {
  const auto widened = [&](index_t d) { return static_cast<float>(to_compute<A>(x[d])); };
  switch (f) {
    case KvFormat::f32:
      for (index_t d = 0; d < head_dim; ++d) {
        const float v = widened(d);
        std::memcpy(dst + 4 * d, &v, 4);
      }
      return;
    case KvFormat::f16:
      for (index_t d = 0; d < head_dim; ++d) {
        const float16 v(widened(d));
        std::memcpy(dst + 2 * d, &v.bits, 2);
      }
      return;
    case KvFormat::bf16:
      for (index_t d = 0; d < head_dim; ++d) {
        const bfloat16 v(widened(d));
        std::memcpy(dst + 2 * d, &v.bits, 2);
      }
      return;
    case KvFormat::q8_0:
    case KvFormat::q4_0: {
      float block[32];
      for (index_t b = 0; b < head_dim / 32; ++b) {
        for (int j = 0; j < 32; ++j) block[j] = widened(32 * b + j);
        if (f == KvFormat::q8_0) {
          block_q8_0 q{};
          quantize_block_q8_0(block, q);
          std::memcpy(dst + b * sizeof(block_q8_0), &q, sizeof(q));
        } else {
          block_q4_0 q{};
          quantize_block_q4_0(block, q);
          std::memcpy(dst + b * sizeof(block_q4_0), &q, sizeof(q));
        }
      }
      return;
    }
  }
}

/// Decodes one row of `f` at src into out [head_dim] f32 (exact for f32/f16/bf16; code · scale
/// rounded once for the block formats).
inline void kv_decode_row_reference(KvFormat f, const std::uint8_t* src, index_t head_dim, float* out) noexcept {
  switch (f) {
    case KvFormat::f32: std::memcpy(out, src, 4 * static_cast<std::size_t>(head_dim)); return;
    case KvFormat::f16:
      for (index_t d = 0; d < head_dim; ++d) {
        std::uint16_t b = 0;
        std::memcpy(&b, src + 2 * d, 2);
        out[d] = static_cast<float>(float16::from_bits(b));
      }
      return;
    case KvFormat::bf16:
      for (index_t d = 0; d < head_dim; ++d) {
        std::uint16_t b = 0;
        std::memcpy(&b, src + 2 * d, 2);
        out[d] = static_cast<float>(bfloat16::from_bits(b));
      }
      return;
    case KvFormat::q8_0:
      for (index_t b = 0; b < head_dim / 32; ++b) {
        block_q8_0 q{};
        std::memcpy(&q, src + b * sizeof(block_q8_0), sizeof(q));
        dequantize_block(q, out + 32 * b);
      }
      return;
    case KvFormat::q4_0:
      for (index_t b = 0; b < head_dim / 32; ++b) {
        block_q4_0 q{};
        std::memcpy(&q, src + b * sizeof(block_q4_0), sizeof(q));
        dequantize_block(q, out + 32 * b);
      }
      return;
  }
}

}  // namespace precis
