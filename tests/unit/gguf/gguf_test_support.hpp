// tests/unit/gguf/gguf_test_support.hpp — hand-built GGUF bytes, fixture paths, and the shared
// data lookup for the GGUF reader's tests.
//
// Well-formed files with every value type come from gguf-py (tools/make_gguf_fixtures.py);
// malformed ones — which gguf-py refuses to write — are assembled here field by field, so each
// validation rule of GgufFile can be violated on its own, next to an otherwise valid file.
#pragma once

#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::uint32_t, std::uint64_t
#include <cstring>      // std::memcpy
#include <filesystem>   // std::filesystem
#include <fstream>      // std::ifstream
#include <initializer_list>  // std::initializer_list
#include <iterator>     // std::istreambuf_iterator
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include <catch2/catch.hpp>  // REQUIRE, WARN, FAIL

#include <precis/core/error.hpp>  // precis::format_error
#include <precis/io/gguf.hpp>     // precis::io::GgufFile

#include "unit/io/io_test_support.hpp"  // precis::test::TempDir, write_file, append_le

namespace precis::test {

/// tests/fixtures/gguf/<name>.
[[nodiscard]] inline std::filesystem::path gguf_fixture(std::string_view name) {
  return std::filesystem::path(PRECIS_FIXTURES_DIR) / "gguf" / name;
}

/// A file of the shared test data (../shared/data/<rel>), or nullopt after a WARN saying the test
/// is skipped — the data lives beside the repository and may be absent.
[[nodiscard]] inline std::optional<std::filesystem::path> shared_data_file(std::string_view rel) {
  const std::filesystem::path p = std::filesystem::path(PRECIS_SHARED_DATA_DIR) / rel;
  if (!std::filesystem::is_regular_file(p)) {
    WARN("SKIPPED: shared test data file " << p.string()
                                            << " not found (configure with -DPRECIS_SHARED_DATA=<dir> to run this test)");
    return std::nullopt;
  }
  return p;
}

[[nodiscard]] inline std::vector<std::byte> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(text.size());
  if (!b.empty()) std::memcpy(b.data(), text.data(), text.size());
  return b;
}

/// GGUF value type ids (gguf.md), for the builder.
namespace gt {
inline constexpr std::uint32_t u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8,
                               array = 9, u64 = 10, i64 = 11, f64 = 12;
}

/// A GGUF file, field by field. Counts and padding are derived unless overridden.
class GgufBuilder {
 public:
  GgufBuilder& version(std::uint32_t v) { version_ = v; return *this; }
  GgufBuilder& magic(std::string_view m) { magic_ = std::string(m); return *this; }
  GgufBuilder& declared_tensor_count(std::uint64_t n) { n_tensors_override_ = n; return *this; }
  GgufBuilder& declared_kv_count(std::uint64_t n) { n_kv_override_ = n; return *this; }
  /// The padding the builder inserts before the data section (the reader derives its own).
  GgufBuilder& pad_to(std::uint64_t alignment) { pad_ = alignment; return *this; }

  /// A metadata entry with a raw payload after the type id.
  GgufBuilder& kv_raw(std::string_view key, std::uint32_t type, const std::vector<std::byte>& payload) {
    put_string(kvs_, key);
    append_le(kvs_, type, 4);
    kvs_.insert(kvs_.end(), payload.begin(), payload.end());
    ++n_kv_;
    return *this;
  }
  /// Raw bytes counted as one metadata entry (for malformed keys).
  GgufBuilder& kv_bytes(const std::vector<std::byte>& raw) {
    kvs_.insert(kvs_.end(), raw.begin(), raw.end());
    ++n_kv_;
    return *this;
  }
  GgufBuilder& kv_uint(std::string_view key, std::uint32_t type, std::uint64_t v, std::size_t width) {
    std::vector<std::byte> p;
    append_le(p, v, width);
    return kv_raw(key, type, p);
  }
  GgufBuilder& kv_u32(std::string_view key, std::uint32_t v) { return kv_uint(key, gt::u32, v, 4); }
  GgufBuilder& kv_str(std::string_view key, std::string_view s) {
    std::vector<std::byte> p;
    put_string(p, s);
    return kv_raw(key, gt::string, p);
  }
  /// An array header {elem type, n} followed by `payload`.
  GgufBuilder& kv_array(std::string_view key, std::uint32_t elem, std::uint64_t n,
                        const std::vector<std::byte>& payload) {
    std::vector<std::byte> p;
    append_le(p, elem, 4);
    append_le(p, n, 8);
    p.insert(p.end(), payload.begin(), payload.end());
    return kv_raw(key, gt::array, p);
  }
  GgufBuilder& arch(std::string_view a = "llama") { return kv_str("general.architecture", a); }

  /// A tensor info; `dims` in GGUF order (innermost first).
  GgufBuilder& tensor(std::string_view name, std::initializer_list<std::uint64_t> dims, std::uint32_t ggml_type,
                      std::uint64_t offset) {
    put_string(infos_, name);
    append_le(infos_, dims.size(), 4);
    for (std::uint64_t d : dims) append_le(infos_, d, 8);
    append_le(infos_, ggml_type, 4);
    append_le(infos_, offset, 8);
    ++n_tensors_;
    return *this;
  }
  /// A tensor info with raw bytes after the name (for malformed n_dims / dims).
  GgufBuilder& tensor_raw(std::string_view name, const std::vector<std::byte>& rest) {
    put_string(infos_, name);
    infos_.insert(infos_.end(), rest.begin(), rest.end());
    ++n_tensors_;
    return *this;
  }

  GgufBuilder& data(const std::vector<std::byte>& d) {
    data_.insert(data_.end(), d.begin(), d.end());
    return *this;
  }
  GgufBuilder& data_f32(std::initializer_list<float> v) {
    for (float f : v) {
      std::uint32_t bits;
      std::memcpy(&bits, &f, 4);
      append_le(data_, bits, 4);
    }
    return *this;
  }
  GgufBuilder& data_zeros(std::size_t n) {
    data_.resize(data_.size() + n);
    return *this;
  }

  [[nodiscard]] std::vector<std::byte> bytes() const {
    std::vector<std::byte> out;
    for (char c : magic_) out.push_back(static_cast<std::byte>(c));
    append_le(out, version_, 4);
    append_le(out, n_tensors_override_.value_or(n_tensors_), 8);
    append_le(out, n_kv_override_.value_or(n_kv_), 8);
    out.insert(out.end(), kvs_.begin(), kvs_.end());
    out.insert(out.end(), infos_.begin(), infos_.end());
    if (n_tensors_ > 0 || !data_.empty())
      while (out.size() % pad_ != 0) out.push_back(std::byte{0});
    out.insert(out.end(), data_.begin(), data_.end());
    return out;
  }

  static void put_string(std::vector<std::byte>& out, std::string_view s) {
    append_le(out, s.size(), 8);
    for (char c : s) out.push_back(static_cast<std::byte>(c));
  }

 private:
  std::string magic_ = "GGUF";
  std::uint32_t version_ = 3;
  std::optional<std::uint64_t> n_tensors_override_, n_kv_override_;
  std::uint64_t pad_ = 32;
  std::vector<std::byte> kvs_;
  std::uint64_t n_kv_ = 0;
  std::vector<std::byte> infos_;
  std::uint64_t n_tensors_ = 0;
  std::vector<std::byte> data_;
};

/// Little-endian bytes of integers, each `width` bytes wide.
[[nodiscard]] inline std::vector<std::byte> le_bytes(std::initializer_list<std::uint64_t> values, std::size_t width) {
  std::vector<std::byte> out;
  for (std::uint64_t v : values) append_le(out, v, width);
  return out;
}

/// Writes `bytes` to a temp file and opens it: the path users take (mmap included).
inline precis::io::GgufFile open_bytes(const TempDir& dir, const std::vector<std::byte>& bytes,
                                       std::string_view name = "test.gguf") {
  const auto path = dir / name;
  write_file(path, bytes);
  return precis::io::GgufFile::open(path);
}

/// Opening `bytes` (from a temp file) must throw format_error whose message names the file and
/// contains every fragment.
inline void require_format_error(const std::vector<std::byte>& bytes, std::initializer_list<std::string_view> fragments) {
  TempDir dir;
  const auto path = dir / "corrupt.gguf";
  write_file(path, bytes);
  try {
    (void)precis::io::GgufFile::open(path);
    FAIL("expected a format_error containing '" << *fragments.begin() << "', but the file was accepted");
  } catch (const precis::format_error& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find(path.string()) != std::string::npos);
    for (std::string_view f : fragments) CHECK(msg.find(f) != std::string::npos);
  }
}

}  // namespace precis::test
