// tests/unit/core/dtype_table.hpp — reads the scalar-conversion tables of tests/fixtures/dtype/.
//
// The tables hold what ml_dtypes / numpy produce for every narrow bit pattern (decode) and for
// chosen f32 inputs (encode); tools/make_dtype_tables.py writes them and documents the format
// (also tests/fixtures/dtype/README.md). Reading them here keeps the C++ tests free of Python
// while the expected bits still come from an implementation that is not precis.
#pragma once

#include <cstddef>   // std::size_t
#include <cstdint>   // std::uint8_t, std::uint32_t
#include <cstring>   // std::memcmp
#include <fstream>   // std::ifstream
#include <iterator>  // std::istreambuf_iterator
#include <string>    // std::string
#include <vector>    // std::vector

#include <precis/core/error.hpp>  // precis::format_error, precis::io_error, PRECIS_CHECK

namespace precis::test {

/// One conversion table: outputs[i] is the reference result for inputs[i] (both bit patterns,
/// zero-extended to 32 bits).
struct DtypeTable {
  std::vector<std::uint32_t> inputs;
  std::vector<std::uint32_t> outputs;

  [[nodiscard]] std::size_t size() const noexcept { return outputs.size(); }
};

namespace detail {
[[nodiscard]] inline std::uint32_t read_le(const unsigned char* p, std::size_t width) noexcept {
  std::uint32_t v = 0;
  for (std::size_t b = 0; b < width; ++b) v |= static_cast<std::uint32_t>(p[b]) << (8 * b);
  return v;
}
}  // namespace detail

/// Loads `PRECIS_FIXTURES_DIR/dtype/<name>.bin`, checking the header and the file size.
[[nodiscard]] inline DtypeTable load_dtype_table(const std::string& name) {
  const std::string path = std::string(PRECIS_FIXTURES_DIR) + "/dtype/" + name + ".bin";
  std::ifstream f(path, std::ios::binary);
  PRECIS_CHECK(f.good(), io_error, "[load_dtype_table] cannot open '", path,
               "' (regenerate with tools/make_dtype_tables.py)");
  const std::vector<unsigned char> blob((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());

  constexpr std::size_t header_bytes = 16;
  PRECIS_CHECK(blob.size() >= header_bytes && std::memcmp(blob.data(), "PRECTBL1", 8) == 0, format_error,
               "[load_dtype_table] '", path, "': expected magic PRECTBL1 and a 16-byte header, got ", blob.size(),
               " bytes");
  const std::size_t count = detail::read_le(blob.data() + 8, 4);
  const std::size_t in_width = blob[12];
  const std::size_t out_width = blob[13];
  PRECIS_CHECK((in_width == 0 || in_width == 1 || in_width == 2 || in_width == 4) &&
                   (out_width == 1 || out_width == 2 || out_width == 4),
               format_error, "[load_dtype_table] '", path, "': expected widths in {0,1,2,4}/{1,2,4}, got ", in_width,
               "/", out_width);
  const std::size_t expected_size = header_bytes + count * (in_width + out_width);
  PRECIS_CHECK(blob.size() == expected_size, format_error, "[load_dtype_table] '", path, "': expected ",
               expected_size, " bytes for ", count, " entries, got ", blob.size());

  DtypeTable t;
  t.inputs.resize(count);
  t.outputs.resize(count);
  const unsigned char* in = blob.data() + header_bytes;
  const unsigned char* out = in + count * in_width;
  for (std::size_t i = 0; i < count; ++i) {
    t.inputs[i] = in_width == 0 ? static_cast<std::uint32_t>(i) : detail::read_le(in + i * in_width, in_width);
    t.outputs[i] = detail::read_le(out + i * out_width, out_width);
  }
  return t;
}

}  // namespace precis::test
