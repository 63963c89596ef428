// tests/unit/io/io_test_support.hpp — temp directories and hand-built safetensors bytes.
//
// Every load-time test writes its own tiny checkpoint (dtype-bugs §3: "fixtures: tiny safetensors
// files written by the test"). Well-formed files come from SafetensorsWriter; malformed ones —
// which the writer refuses to produce — are assembled here byte by byte from a header string
// and a buffer, so each validation rule of the reader can be violated on its own.
#pragma once

#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::uint64_t
#include <cstdlib>      // ::mkdtemp
#include <cstring>      // std::memcpy
#include <filesystem>   // std::filesystem
#include <fstream>      // std::ofstream
#include <initializer_list>  // std::initializer_list
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include <catch2/catch.hpp>  // REQUIRE, FAIL

#include <precis/core/error.hpp>  // precis::io_error

namespace precis::test {

/// A fresh directory under the system temp dir, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "precis-io-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw precis::io_error("[TempDir] mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary);
  REQUIRE(out.good());
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline void write_text(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  REQUIRE(out.good());
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  REQUIRE(out.good());
}

/// `n` little-endian bytes of `v`.
inline void append_le(std::vector<std::byte>& out, std::uint64_t v, std::size_t n = 8) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xffu));
}

/// A safetensors file from a header string and a buffer, with the length prefix set to the
/// header's size unless `declared_header_len` overrides it.
inline std::vector<std::byte> raw_safetensors(std::string_view header, const std::vector<std::byte>& buffer = {},
                                              std::optional<std::uint64_t> declared_header_len = std::nullopt) {
  std::vector<std::byte> out;
  append_le(out, declared_header_len.value_or(header.size()));
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  out.insert(out.end(), buffer.begin(), buffer.end());
  return out;
}

/// `n` bytes 0, 1, 2, … (mod 256): a buffer whose content is irrelevant but deterministic.
inline std::vector<std::byte> counting_bytes(std::size_t n) {
  std::vector<std::byte> b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(i & 0xffu);
  return b;
}

template <class T>
std::vector<std::byte> bytes_of(std::initializer_list<T> values) {
  std::vector<std::byte> b(values.size() * sizeof(T));
  std::memcpy(b.data(), std::data(values), b.size());
  return b;
}

}  // namespace precis::test
