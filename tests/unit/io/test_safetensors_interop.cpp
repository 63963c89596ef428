// Interop with the reference implementation: tests/fixtures/safetensors/reference.safetensors was
// written by HuggingFace's `safetensors` package (tools/make_safetensors_fixture.py). precis must
// read every tensor with the right dtype, shape and values, and its own writer's output must
// carry the same per-tensor header fields (the reference sorts tensors by alignment, precis
// keeps insertion order, so only the per-tensor fields and the bytes are compared).
//
// Expected values are the literals of the Python script, each exactly representable in its
// dtype; comparisons are exact (tolerance 0).
#include <cstdint>   // std::int64_t, ...
#include <cstring>   // std::memcpy
#include <filesystem>  // std::filesystem::path
#include <limits>    // std::numeric_limits
#include <string>    // std::string
#include <vector>    // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, REQUIRE

#include <precis/core/tensor.hpp>            // precis::Tensor
#include <precis/io/load.hpp>                // load
#include <precis/io/safetensors.hpp>         // SafetensorsFile
#include <precis/io/safetensors_writer.hpp>  // SafetensorsWriter

using namespace precis;
using io::SafetensorsFile;

namespace {
const std::filesystem::path fixture = std::filesystem::path(PRECIS_FIXTURES_DIR) / "safetensors" / "reference.safetensors";

template <class T>
T raw_at(const io::AnyTensor& t, index_t i) {
  T v;
  std::memcpy(&v, t.bytes().data() + sizeof(T) * static_cast<std::size_t>(i), sizeof(T));
  return v;
}
}  // namespace

TEST_CASE("interop: a file written by the reference safetensors package reads back exactly", "[io][interop]") {
  const auto f = SafetensorsFile::open(fixture);
  REQUIRE(f.size() == 17);
  REQUIRE(f.metadata("format") == std::optional<std::string>("pt"));
  REQUIRE(f.metadata("producer") == std::optional<std::string>("tools/make_safetensors_fixture.py"));
  REQUIRE((8 + f.header_size()) % 8 == 0);  // the reference writer's padding rule

  const auto f64v = io::load<f64, 1>(f.tensor("f64"), {3});
  REQUIRE(f64v(0) == 1.0 / 3.0);
  REQUIRE(f64v(1) == -1e300);
  REQUIRE(f64v(2) == std::numeric_limits<double>::denorm_min());

  const auto f32v = io::load<f32, 2>(f.tensor("f32"), {2, 3});
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 3; ++j) REQUIRE(f32v(i, j) == static_cast<float>(i * 3 + j) * 0.5f - 1.0f);

  const auto f16v = io::load<f16, 1>(f.tensor("f16"), {4});
  const float f16_expected[] = {0.5f, -1024.0f, 6.103515625e-05f, 65504.0f};
  for (index_t i = 0; i < 4; ++i) REQUIRE(static_cast<float>(f16v(i)) == f16_expected[i]);

  const auto bf16v = io::load<bf16, 1>(f.tensor("bf16"), {4});
  const std::uint16_t bf16_bits[] = {0x3f80, 0xc020, 0x3e20, 0x4780};  // 1, -2.5, 0.15625, 65536
  for (index_t i = 0; i < 4; ++i) REQUIRE(bf16v(i).bits == bf16_bits[i]);

  const auto e4m3 = io::load<f8_e4m3, 1>(f.tensor("f8_e4m3"), {4});
  const std::uint8_t e4m3_bits[] = {0x30, 0xfe, 0x01, 0x3e};  // 0.5, -448, 2^-9, 1.75 (OCP E4M3FN)
  for (index_t i = 0; i < 4; ++i) REQUIRE(e4m3(i).bits == e4m3_bits[i]);
  const auto e5m2 = io::load<f8_e5m2, 1>(f.tensor("f8_e5m2"), {3});
  const std::uint8_t e5m2_bits[] = {0x38, 0xfb, 0x01};  // 0.5, -57344, 2^-16
  for (index_t i = 0; i < 3; ++i) REQUIRE(e5m2(i).bits == e5m2_bits[i]);

  const auto i64v = io::load<i64, 1>(f.tensor("i64"), {3});
  REQUIRE(i64v(0) == -1);
  REQUIRE(i64v(1) == (std::int64_t{1} << 40));
  REQUIRE(i64v(2) == 7);
  const auto i32v = io::load<i32, 2>(f.tensor("i32"), {2, 2});
  REQUIRE(i32v(0, 0) == std::numeric_limits<std::int32_t>::min());
  REQUIRE(i32v(0, 1) == std::numeric_limits<std::int32_t>::max());
  REQUIRE(i32v(1, 1) == -5);
  const auto i8v = io::load<i8, 1>(f.tensor("i8"), {3});
  REQUIRE(i8v(0) == -128);
  REQUIRE(i8v(1) == 127);
  const auto u8v = io::load<u8, 1>(f.tensor("u8"), {5});
  for (index_t i = 0; i < 5; ++i) REQUIRE(u8v(i) == i);

  // Dtypes without a precis tag: read through AnyTensor.
  REQUIRE(f.tensor("i16").dtype() == dtype_code::i16);
  REQUIRE(raw_at<std::int16_t>(f.tensor("i16"), 0) == -32768);
  REQUIRE(raw_at<std::uint16_t>(f.tensor("u16"), 0) == 65535);
  REQUIRE(raw_at<std::uint32_t>(f.tensor("u32"), 0) == 4294967295u);
  REQUIRE(raw_at<std::uint64_t>(f.tensor("u64"), 0) == std::numeric_limits<std::uint64_t>::max());
  REQUIRE(f.tensor("bool").dtype() == dtype_code::boolean);
  REQUIRE(raw_at<std::uint8_t>(f.tensor("bool"), 0) == 1);
  REQUIRE(raw_at<std::uint8_t>(f.tensor("bool"), 1) == 0);

  REQUIRE(*io::load<f32, 0>(f.tensor("scalar")).data() == 42.0f);  // rank-0 operator() trips -Wpedantic in core
  REQUIRE(io::load<f32, 2>(f.tensor("empty"), {0, 3}).numel() == 0);
}

TEST_CASE("interop: precis' writer reproduces the reference writer's tensor bytes and header fields",
          "[io][interop]") {
  const auto ref = SafetensorsFile::open(fixture);
  io::SafetensorsWriter w;
  for (const auto& t : ref.tensors()) w.add_raw(t.name(), t.dtype(), t.shape(), t.bytes());
  const auto bytes = w.serialize();
  const auto mine = SafetensorsFile::parse(bytes, "precis");
  REQUIRE(mine.names() == ref.names());
  for (const auto& name : ref.names()) {
    INFO(name);
    const auto a = ref.tensor(name);
    const auto b = mine.tensor(name);
    REQUIRE(a.dtype() == b.dtype());
    REQUIRE(a.shape() == b.shape());
    REQUIRE(std::vector<std::byte>(a.bytes().begin(), a.bytes().end()) ==
            std::vector<std::byte>(b.bytes().begin(), b.bytes().end()));
  }
}
