// tests/unit/blocks/test_vector_io.cpp — the CPU kernels' f32 batch loads and stores
// (backends/cpu/vector_io.hpp) against the scalar conversions of numeric/ (bfloat16(float),
// float16(float)), bit for bit, on every class of value: normals, ties, subnormals (which
// AVX-512 BF16's vcvtneps2bf16 would flush: the vector body must fall back), overflow to ±Inf,
// and NaNs with payloads only in the low bits (which the naive add-and-shift rounding would turn
// into Inf). One documented latitude: an f16 *load* of a signalling NaN may come back quieted
// (vcvtph2ps does that); it is NaN either way and every store quiets NaNs anyway. The norm, RoPE and activation kernels promise "the reference's conversions";
// this is where that promise is checked directly. Built twice, so both the portable and the
// AVX-512 (incl. BF16) bodies are covered.
#include <catch2/catch.hpp>  // TEST_CASE, CHECK

#include <bit>      // std::bit_cast
#include <cstdint>  // std::uint32_t, std::uint16_t
#include <random>   // std::mt19937
#include <vector>   // std::vector

#include <precis/backends/cpu/vector_io.hpp>  // precis::backends::cpu::detail

#include "blocks_test_support.hpp"  // make_rng

using namespace precis;
namespace io = precis::backends::cpu::detail;
using precis::backends::cpu::fbatch;

namespace {

/// Bit patterns of every class, then random ones (NaNs included), padded to whole batches.
std::vector<std::uint32_t> patterns() {
  std::vector<std::uint32_t> p = {
      0x00000000u, 0x80000000u,              // ±0
      0x3f800000u, 0xbf800000u,              // ±1
      0x3f808000u, 0x3f818000u,              // ties at bit 16: to even (down), to even (up)
      0x3f808001u, 0x3f807fffu,              // just above / below a tie
      0x00800000u, 0x80800000u,              // ±FLT_MIN
      0x00400000u, 0x00000001u, 0x80000001u, // subnormals
      0x00008000u, 0x00018000u, 0x007fffffu, // subnormal ties and the largest subnormal
      0x7f7fffffu, 0xff7fffffu,              // ±FLT_MAX: round to ±Inf in bf16 and f16
      0x477ff000u, 0x477fefffu,              // 65520 → f16 Inf, just below stays 65504
      0x7f800000u, 0xff800000u,              // ±Inf
      0x7f800001u, 0xff800001u,              // signalling NaNs with a low payload only
      0x7fc00000u, 0xffc00001u, 0x7fbfffffu, // quiet NaNs, a high-payload signalling NaN
      0x33800000u, 0x33000000u, 0x32ffffffu, // f16: 2^-24 (min subnormal), its half (tie), below
  };
  auto rng = test::make_rng(1001);
  std::uniform_int_distribution<std::uint32_t> any;
  for (int i = 0; i < 1 << 16; ++i) p.push_back(any(rng));
  // Interleave a subnormal into some batches of otherwise normal values, so a batch is converted
  // by the fallback body as a whole.
  for (std::size_t i = 3; i < p.size(); i += 97) p[i] = 0x00001234u;
  while (p.size() % (2 * static_cast<std::size_t>(io::lanes)) != 0) p.push_back(0x3f800000u);
  return p;
}

}  // namespace

TEST_CASE("vector stores round to bf16 and f16 exactly like the scalar conversions", "[blocks][vector_io]") {
  const auto bits = patterns();
  const auto n = static_cast<index_t>(bits.size());
  std::vector<float> f(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) f[i] = std::bit_cast<float>(bits[i]);
  std::vector<bfloat16> b(bits.size());
  std::vector<float16> h(bits.size());
  std::vector<float> rb(bits.size()), rh(bits.size());
  for (index_t i = 0; i < n; i += io::lanes) {
    const fbatch v = fbatch::load_unaligned(f.data() + i);
    io::store_f32<bf16>(b.data() + i, v);
    io::store_f32<f16>(h.data() + i, v);
    io::round_through<bf16>(v).store_unaligned(rb.data() + i);
    io::round_through<f16>(v).store_unaligned(rh.data() + i);
  }
  std::size_t bad_b = 0, bad_h = 0, bad_rb = 0, bad_rh = 0;
  for (std::size_t i = 0; i < bits.size(); ++i) {
    const bfloat16 want_b(f[i]);
    const float16 want_h(f[i]);
    bad_b += b[i].bits != want_b.bits;
    bad_h += h[i].bits != want_h.bits;
    bad_rb += std::bit_cast<std::uint32_t>(rb[i]) != std::bit_cast<std::uint32_t>(static_cast<float>(want_b));
    bad_rh += std::bit_cast<std::uint32_t>(rh[i]) != std::bit_cast<std::uint32_t>(static_cast<float>(want_h));
  }
  INFO("values: " << bits.size() << ", lanes " << io::lanes);
  CHECK(bad_b == 0);
  CHECK(bad_h == 0);
  CHECK(bad_rb == 0);
  CHECK(bad_rh == 0);
}

TEST_CASE("vector loads widen bf16, f16 and f32 exactly, also from interleaved pairs", "[blocks][vector_io]") {
  const auto bits = patterns();
  const auto n = static_cast<index_t>(bits.size());
  std::vector<bfloat16> b(bits.size());
  std::vector<float16> h(bits.size());
  std::vector<float> f(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) {
    b[i] = bfloat16::from_bits(static_cast<std::uint16_t>(bits[i] >> 16));
    h[i] = float16::from_bits(static_cast<std::uint16_t>(bits[i]));
    f[i] = std::bit_cast<float>(bits[i]);
  }
  const auto same = [](float got, float want) { return std::bit_cast<std::uint32_t>(got) == std::bit_cast<std::uint32_t>(want); };
  // vcvtph2ps (the AVX-512 f16 body) quiets a signalling NaN, the scalar conversion keeps its
  // bits: an f16 load may set the quiet bit of a NaN and must be exact otherwise.
  const auto same_or_quieted = [&](float got, float want) {
    return same(got, want) || (want != want && std::bit_cast<std::uint32_t>(got) == (std::bit_cast<std::uint32_t>(want) | 0x00400000u));
  };
  std::size_t bad = 0, bad_pairs = 0;
  alignas(64) float out[64], even[64], odd[64];
  for (index_t i = 0; i + 2 * io::lanes <= n; i += 2 * io::lanes) {
    io::load_f32<bf16>(b.data() + i).store_aligned(out);
    for (index_t k = 0; k < io::lanes; ++k) bad += !same(out[k], static_cast<float>(b[static_cast<std::size_t>(i + k)]));
    io::load_f32<f16>(h.data() + i).store_aligned(out);
    for (index_t k = 0; k < io::lanes; ++k)
      bad += !same_or_quieted(out[k], static_cast<float>(h[static_cast<std::size_t>(i + k)]));
    fbatch e, o;
    io::load_f32_pairs<bf16>(b.data() + i, e, o);
    e.store_aligned(even);
    o.store_aligned(odd);
    for (index_t k = 0; k < io::lanes; ++k) {
      bad_pairs += !same(even[k], static_cast<float>(b[static_cast<std::size_t>(i + 2 * k)]));
      bad_pairs += !same(odd[k], static_cast<float>(b[static_cast<std::size_t>(i + 2 * k + 1)]));
    }
    io::load_f32_pairs<f16>(h.data() + i, e, o);
    e.store_aligned(even);
    o.store_aligned(odd);
    for (index_t k = 0; k < io::lanes; ++k) {
      bad_pairs += !same_or_quieted(even[k], static_cast<float>(h[static_cast<std::size_t>(i + 2 * k)]));
      bad_pairs += !same_or_quieted(odd[k], static_cast<float>(h[static_cast<std::size_t>(i + 2 * k + 1)]));
    }
    io::load_f32_pairs<f32>(f.data() + i, e, o);
    e.store_aligned(even);
    o.store_aligned(odd);
    for (index_t k = 0; k < io::lanes; ++k) {
      bad_pairs += !same(even[k], f[static_cast<std::size_t>(i + 2 * k)]);
      bad_pairs += !same(odd[k], f[static_cast<std::size_t>(i + 2 * k + 1)]);
    }
  }
  CHECK(bad == 0);
  CHECK(bad_pairs == 0);
}
