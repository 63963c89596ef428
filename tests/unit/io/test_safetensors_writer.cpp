// Tests for precis/io/safetensors_writer.hpp: writer → reader round trips are bit-exact for every
// element dtype; the header follows model-semantics.md §1e (checked by parsing it independently
// with nlohmann::json, not with the reader under test); saving never narrows (dtype-bugs E28).
#include <cstddef>   // std::byte
#include <cstdint>   // std::uint64_t
#include <cstring>   // std::memcpy, std::memcmp
#include <string>    // std::string
#include <vector>    // std::vector

#include <catch2/catch.hpp>   // TEMPLATE_TEST_CASE, REQUIRE
#include <nlohmann/json.hpp>  // nlohmann::json (independent header check)

#include <precis/core/dtype.hpp>              // dtype tags
#include <precis/core/error.hpp>              // precis::dtype_error
#include <precis/core/tensor.hpp>             // precis::Tensor
#include <precis/io/load.hpp>                 // precis::io::load
#include <precis/io/safetensors.hpp>          // precis::io::SafetensorsFile
#include <precis/io/safetensors_writer.hpp>   // precis::io::SafetensorsWriter

#include "io_test_support.hpp"  // TempDir

using namespace precis;
using io::SafetensorsFile;
using io::SafetensorsWriter;
using Catch::Matchers::Contains;

namespace {

/// The safetensors spelling of each tag, written out here rather than taken from the library.
template <class D> constexpr const char* expected_spelling = nullptr;
template <> constexpr const char* expected_spelling<f64> = "F64";
template <> constexpr const char* expected_spelling<f32> = "F32";
template <> constexpr const char* expected_spelling<f16> = "F16";
template <> constexpr const char* expected_spelling<bf16> = "BF16";
template <> constexpr const char* expected_spelling<f8_e4m3> = "F8_E4M3";
template <> constexpr const char* expected_spelling<f8_e5m2> = "F8_E5M2";
template <> constexpr const char* expected_spelling<i8> = "I8";
template <> constexpr const char* expected_spelling<u8> = "U8";
template <> constexpr const char* expected_spelling<i32> = "I32";
template <> constexpr const char* expected_spelling<i64> = "I64";

/// Deterministic pseudo-random bytes (a 64-bit LCG), so every bit pattern class — NaNs, Infs,
/// subnormals, negative zero — is likely to appear among a few hundred values.
std::vector<std::byte> pattern_bytes(std::size_t n, std::uint64_t seed) {
  std::vector<std::byte> b(n);
  for (auto& x : b) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<std::byte>(seed >> 56);
  }
  return b;
}

/// The JSON header of a serialized file, parsed without the reader under test.
nlohmann::json independent_header(const std::vector<std::byte>& file, std::uint64_t* n_out = nullptr) {
  REQUIRE(file.size() >= 8);
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(file[i]) << (8 * i);
  if (n_out != nullptr) *n_out = n;
  REQUIRE(8 + n <= file.size());
  const std::string text(reinterpret_cast<const char*>(file.data()) + 8, n);
  return nlohmann::json::parse(text);
}

}  // namespace

TEMPLATE_TEST_CASE("SafetensorsWriter -> SafetensorsFile round trip is bit-exact", "[io][writer]", f64, f32, f16,
                   bf16, f8_e4m3, f8_e5m2, i8, u8, i32, i64) {
  using D = TestType;
  using S = storage_t<D>;
  Tensor<D, 3> t({2, 3, 37});  // 222 values: every byte class of the LCG appears
  const auto src = pattern_bytes(t.bytes(), sizeof(S) * 7919);
  std::memcpy(t.data(), src.data(), src.size());
  Tensor<D, 0> scalar(extents_t<0>{});
  std::memcpy(scalar.data(), src.data(), sizeof(S));
  Tensor<D, 2> empty({0, 4});

  SafetensorsWriter w;
  w.add("u8_pad", Tensor<u8, 1>({1}));  // makes the next tensor start at an odd offset
  w.add("weights", t);
  w.add("scalar", scalar);
  w.add("empty", empty);
  const auto file = w.serialize();

  // The header, checked independently of the reader.
  std::uint64_t n = 0;
  const auto h = independent_header(file, &n);
  REQUIRE((8 + n) % 8 == 0);
  REQUIRE(h["weights"]["dtype"] == expected_spelling<D>);
  REQUIRE(h["weights"]["shape"] == nlohmann::json::array({2, 3, 37}));
  REQUIRE(h["u8_pad"]["data_offsets"] == nlohmann::json::array({0, 1}));
  REQUIRE(h["weights"]["data_offsets"] == nlohmann::json::array({1, 1 + t.bytes()}));
  REQUIRE(h["scalar"]["shape"] == nlohmann::json::array());
  REQUIRE(file.size() == 8 + n + 1 + t.bytes() + sizeof(S));
  REQUIRE(std::memcmp(file.data() + 8 + n + 1, src.data(), src.size()) == 0);

  // Read back through a file: the same bytes, whether zero-copy or re-aligned.
  test::TempDir dir;
  test::write_file(dir / "rt.safetensors", file);
  const auto f = SafetensorsFile::open(dir / "rt.safetensors");
  const auto loaded = io::load<D, 3>(f.tensor("weights"), {2, 3, 37});
  REQUIRE(std::memcmp(loaded.data(), src.data(), src.size()) == 0);
  REQUIRE(loaded.is_zero_copy() == (alignof(S) == 1));  // offset 1 is misaligned for wider types
  const auto s = io::load<D, 0>(f.tensor("scalar"));
  REQUIRE(std::memcmp(s.data(), src.data(), sizeof(S)) == 0);
  REQUIRE(io::load<D, 2>(f.tensor("empty"), {0, 4}).numel() == 0);
}

TEST_CASE("SafetensorsWriter: raw adds round-trip the dtypes that have no tag", "[io][writer]") {
  const std::pair<dtype_code, const char*> raw[] = {{dtype_code::i16, "I16"},
                                                    {dtype_code::u16, "U16"},
                                                    {dtype_code::u32, "U32"},
                                                    {dtype_code::u64, "U64"},
                                                    {dtype_code::boolean, "BOOL"}};
  SafetensorsWriter w;
  for (const auto& [code, name] : raw) {
    const auto bytes = pattern_bytes(element_bytes(code) * 6, element_bytes(code));
    w.add_raw(name, code, {2, 3}, bytes);
  }
  const auto file = w.serialize();
  const auto h = independent_header(file);
  const auto f = SafetensorsFile::parse(file, "raw");
  for (const auto& [code, name] : raw) {
    INFO(name);
    REQUIRE(h[name]["dtype"] == name);
    const auto t = f.tensor(name);
    REQUIRE(t.dtype() == code);
    const auto expected = pattern_bytes(element_bytes(code) * 6, element_bytes(code));
    REQUIRE(std::vector<std::byte>(t.bytes().begin(), t.bytes().end()) == expected);
  }
}

TEST_CASE("SafetensorsWriter pads the header with spaces so 8 + N is a multiple of 8", "[io][writer]") {
  for (std::size_t len = 1; len <= 24; ++len) {
    SafetensorsWriter w;
    w.add(std::string(len, 'n'), Tensor<f32, 1>({1}));
    const auto file = w.serialize();
    std::uint64_t n = 0;
    (void)independent_header(file, &n);
    INFO("name length " << len);
    REQUIRE((8 + n) % 8 == 0);
    const std::string text(reinterpret_cast<const char*>(file.data()) + 8, n);
    REQUIRE(text.front() == '{');
    const auto last = text.find_last_not_of(' ');
    REQUIRE(text[last] == '}');
    REQUIRE(n - 1 - last < 8);  // fewer than 8 padding spaces
  }
}

TEST_CASE("SafetensorsWriter writes __metadata__ and strided views in row-major order", "[io][writer]") {
  Tensor<f32, 2> t({3, 4});
  for (index_t i = 0; i < 12; ++i) t.data()[i] = static_cast<float>(i) * 0.5f;
  const TensorView<const f32, 2> cols = t.cview().slice(1, 1, 3);  // [3, 2], strides {4, 1}
  REQUIRE_FALSE(cols.is_contiguous());

  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.set_metadata("producer", "precis");
  w.add("cols", cols);
  const auto file = w.serialize();
  REQUIRE(independent_header(file)["__metadata__"] == nlohmann::json({{"format", "pt"}, {"producer", "precis"}}));

  const auto f = SafetensorsFile::parse(file, "m");
  REQUIRE(f.metadata("producer") == std::optional<std::string>("precis"));
  const auto l = io::load<f32, 2>(f.tensor("cols"), {3, 2});
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < 2; ++j) REQUIRE(l(i, j) == cols(i, j));
}

TEST_CASE("SafetensorsWriter widens exactly with add_as and refuses to narrow (E28)", "[io][writer]") {
  Tensor<f32, 1> x({4});
  const float values[] = {1.0f / 3.0f, -1.0e-40f, 3.0e38f, 0.1f};  // inexact in bf16/f16, one subnormal
  std::memcpy(x.data(), values, sizeof values);
  Tensor<bf16, 1> b({2});
  b.data()[0] = bfloat16::from_bits(0x3eab);  // 0.333984375
  b.data()[1] = bfloat16::from_bits(0xff80);  // -Inf

  SafetensorsWriter w;
  w.add_as<f64>("x64", x);                     // static target
  w.add_as("b32", dtype_code::f32, b);         // run-time target, exact widening
  w.add_as("x32", dtype_code::f32, x);         // same dtype
  const auto f = SafetensorsFile::parse(w.serialize(), "w");

  const auto x64 = io::load<f64, 1>(f.tensor("x64"));
  for (index_t i = 0; i < 4; ++i) REQUIRE(x64(i) == static_cast<double>(values[i]));
  const auto b32 = io::load<f32, 1>(f.tensor("b32"));
  std::uint32_t bits0 = 0, bits1 = 0;
  std::memcpy(&bits0, &b32(0), 4);
  std::memcpy(&bits1, &b32(1), 4);
  REQUIRE(bits0 == 0x3eab0000u);  // bf16 is the top half of the f32
  REQUIRE(bits1 == 0xff800000u);
  REQUIRE(io::load<f32, 1>(f.tensor("x32"))(0) == values[0]);

  // Run-time narrowing target: the save-side dtype check of dtype-bugs §3 test 9.
  SafetensorsWriter bad;
  REQUIRE_THROWS_AS((bad.add_as("sinks", dtype_code::bf16, x)), dtype_error);
  REQUIRE_THROWS_WITH((bad.add_as("sinks", dtype_code::f16, x)),
                      Contains("tensor 'sinks'") && Contains("declared f32") && Contains("stored dtype F16") &&
                          Contains("E28"));
  REQUIRE_THROWS_WITH((bad.add_as("b", dtype_code::f16, b)), Contains("declared bf16") && Contains("stored dtype F16"));
  REQUIRE_THROWS_AS((bad.add_as("x", dtype_code::i32, x)), dtype_error);
  REQUIRE(bad.size() == 0);
}

namespace {
template <class Stored, class X>
concept can_add_as = requires(SafetensorsWriter w, const X& x) { w.template add_as<Stored>(std::string("n"), x); };
}  // namespace

TEST_CASE("SafetensorsWriter: a static narrowing target does not compile", "[io][writer]") {
  STATIC_REQUIRE(can_add_as<f64, Tensor<f32, 1>>);
  STATIC_REQUIRE(can_add_as<f32, Tensor<bf16, 2>>);
  STATIC_REQUIRE(can_add_as<f16, Tensor<f8_e4m3, 1>>);
  STATIC_REQUIRE(can_add_as<f32, Tensor<f32, 1>>);
  STATIC_REQUIRE_FALSE(can_add_as<bf16, Tensor<f32, 1>>);  // E28
  STATIC_REQUIRE_FALSE(can_add_as<f16, Tensor<bf16, 1>>);  // range loss
  STATIC_REQUIRE_FALSE(can_add_as<bf16, Tensor<f16, 1>>);  // precision loss
  STATIC_REQUIRE_FALSE(can_add_as<f32, Tensor<f64, 1>>);
  STATIC_REQUIRE_FALSE(can_add_as<f32, Tensor<i32, 1>>);   // no integer → float via save
}

TEST_CASE("SafetensorsWriter rejects duplicate and reserved names, and reports write failures", "[io][writer]") {
  SafetensorsWriter w;
  w.add("a", Tensor<f32, 1>({1}));
  REQUIRE_THROWS_WITH((w.add("a", Tensor<f32, 1>({1}))), Contains("tensor 'a' added twice"));
  REQUIRE_THROWS_WITH((w.add("__metadata__", Tensor<f32, 1>({1}))), Contains("reserved"));

  test::TempDir dir;
  const auto target = dir / "no_such_dir" / "x.safetensors";
  REQUIRE_THROWS_AS(w.write(target), io_error);
  REQUIRE_THROWS_WITH(w.write(target), Contains(target.string()) && Contains("No such file or directory"));
  w.write(dir / "ok.safetensors");
  REQUIRE(SafetensorsFile::open(dir / "ok.safetensors").contains("a"));
}
