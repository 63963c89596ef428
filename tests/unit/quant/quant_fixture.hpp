// tests/unit/quant/quant_fixture.hpp — reads the PRECQNT1 arrays of tests/fixtures/quant/ (written
// by tools/make_quant_fixtures.py, whose docstring specifies the format) and copies them into
// precis' quantized containers, so the tests need no Python.
#pragma once

#include <algorithm>  // std::equal
#include <bit>        // std::endian, std::bit_cast
#include <cstddef>    // std::size_t
#include <cstdint>    // std::uint8_t, std::uint32_t, std::uint64_t
#include <cstring>    // std::memcpy
#include <fstream>    // std::ifstream
#include <iterator>   // std::istreambuf_iterator
#include <string>     // std::string
#include <vector>     // std::vector

#include <precis/core/error.hpp>          // precis::format_error, io_error
#include <precis/core/tensor.hpp>         // precis::Tensor
#include <precis/quant/quant_tensor.hpp>  // precis::QuantTensor

namespace precis::test {

static_assert(std::endian::native == std::endian::little, "the quant fixtures are little-endian");

/// One fixture array: row-major extents and the raw payload.
struct FixtureArray {
  std::vector<index_t> dims;
  std::uint32_t element_bytes = 0;
  std::vector<std::uint8_t> payload;

  [[nodiscard]] index_t count() const {
    index_t n = 1;
    for (index_t d : dims) n *= d;
    return n;
  }
  /// The payload as f32 values (element_bytes must be 4).
  [[nodiscard]] std::vector<float> f32() const {
    PRECIS_CHECK(element_bytes == 4, format_error, "[fixture] f32() on an array of ", element_bytes, "-byte elements");
    std::vector<float> v(static_cast<std::size_t>(count()));
    std::memcpy(v.data(), payload.data(), payload.size());
    return v;
  }
};

/// Reads tests/fixtures/quant/<name>.
[[nodiscard]] inline FixtureArray read_quant_fixture(const std::string& name) {
  const std::string path = std::string(PRECIS_FIXTURES_DIR) + "/quant/" + name;
  std::ifstream f(path, std::ios::binary);
  PRECIS_CHECK(f.good(), io_error, "[fixture] cannot open ", path, " (run tools/make_quant_fixtures.py)");
  const std::vector<std::uint8_t> raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  PRECIS_CHECK(raw.size() >= 48 && std::equal(raw.begin(), raw.begin() + 8, "PRECQNT1"), format_error, "[fixture] ",
               path, ": not a PRECQNT1 file");
  std::uint32_t ndim = 0;
  FixtureArray a;
  std::memcpy(&ndim, raw.data() + 8, 4);
  std::memcpy(&a.element_bytes, raw.data() + 12, 4);
  PRECIS_CHECK(ndim >= 1 && ndim <= 4, format_error, "[fixture] ", path, ": ndim ", ndim);
  for (std::uint32_t i = 0; i < ndim; ++i) {
    std::uint64_t d = 0;
    std::memcpy(&d, raw.data() + 16 + 8 * i, 8);
    a.dims.push_back(static_cast<index_t>(d));
  }
  const auto expected = static_cast<std::size_t>(a.count()) * a.element_bytes;
  PRECIS_CHECK(raw.size() == 48 + expected, format_error, "[fixture] ", path, ": payload of ", raw.size() - 48,
               " bytes, header says ", expected);
  a.payload.assign(raw.begin() + 48, raw.end());
  return a;
}

/// A [dims...] f32 tensor holding a fixture's f32 payload.
template <std::size_t R>
[[nodiscard]] Tensor<f32, R> fixture_tensor(const FixtureArray& a, const extents_t<R>& extents) {
  Tensor<f32, R> t(extents);
  PRECIS_CHECK(a.element_bytes == 4 && a.count() == t.numel(), shape_error, "[fixture] ", a.count(),
               " values for a tensor of ", t.numel());
  std::memcpy(t.data(), a.payload.data(), a.payload.size());
  return t;
}

/// A ggml-format QuantTensor whose blocks are the fixture's bytes.
template <BlockFormat F, std::size_t R>
[[nodiscard]] QuantTensor<F, R> fixture_blocks(const FixtureArray& a, const extents_t<R>& logical) {
  QuantTensor<F, R> q(logical);
  PRECIS_CHECK(a.payload.size() == q.bytes(), shape_error, "[fixture] ", a.payload.size(), " bytes for ", q.bytes());
  std::memcpy(q.blocks(), a.payload.data(), q.bytes());
  return q;
}

/// An HF/OpenAI mxfp4 QuantTensor from a nibble plane and a scale plane.
template <std::size_t R>
[[nodiscard]] QuantTensor<mxfp4, R> fixture_mxfp4(const FixtureArray& nibbles, const FixtureArray& scales,
                                                  const extents_t<R>& logical) {
  QuantTensor<mxfp4, R> q(logical);
  const auto nb = static_cast<std::size_t>(q.num_blocks());
  PRECIS_CHECK(nibbles.payload.size() == 16 * nb && scales.payload.size() == nb, shape_error,
               "[fixture] mxfp4 planes of ", nibbles.payload.size(), " and ", scales.payload.size(), " bytes for ", nb,
               " blocks");
  std::memcpy(q.nibbles(), nibbles.payload.data(), 16 * nb);
  std::memcpy(q.scales(), scales.payload.data(), nb);
  return q;
}

/// Bit pattern of a float (bit-exact comparisons distinguish −0.0 and compare Inf/NaN exactly).
[[nodiscard]] inline std::uint32_t bits(float v) { return std::bit_cast<std::uint32_t>(v); }

}  // namespace precis::test
