// GgufFile against a file written by the reference writer (gguf-py 0.19.0's GGUFWriter, via
// tools/make_gguf_fixtures.py) and the sidecar that script wrote from numpy / gguf-py:
// tests/fixtures/gguf/reference.{gguf,json}.
//
// Checked: the header (version 3, the non-default general.alignment 64, the data offset gguf-py's
// GGUFReader found), every metadata value of every type in file order, every tensor's row-major
// shape (the file stores them reversed; non-square shapes catch a missing reversal), ggml type,
// offset and size, its bytes (byte-exact), and its values: element types read through
// io::load<D, R>, block types through io::quant_view<F, R> + precis::dequantize<f32>, compared
// with gguf-py's dequantize exactly (tolerance 0: precis' dequantizers are bit-exact ports of
// ggml-quants.c, tests/unit/quant/; F16/BF16 widen to f32 exactly). Then the typed getters'
// conversion rules on the fixture's extreme values.
#include <algorithm>    // std::equal
#include <cmath>        // std::signbit
#include <concepts>     // std::same_as
#include <cstddef>      // std::byte, std::size_t
#include <cstdint>      // std::int64_t, std::uint64_t
#include <cstring>      // std::memcpy
#include <fstream>      // std::ifstream
#include <limits>       // std::numeric_limits
#include <stdexcept>    // std::logic_error
#include <string>       // std::string
#include <vector>       // std::vector

#include <catch2/catch.hpp>    // TEST_CASE, REQUIRE, CHECK
#include <nlohmann/json.hpp>   // nlohmann::json (the sidecar)

#include <precis/core/dtype.hpp>        // dtype tags, dtype_code
#include <precis/core/error.hpp>        // format_error, range_error
#include <precis/io/gguf.hpp>           // precis::io::GgufFile
#include <precis/io/load.hpp>           // precis::io::load
#include <precis/io/quant_load.hpp>     // precis::io::quant_view
#include <precis/quant/dequantize.hpp>  // precis::dequantize

#include "gguf_test_support.hpp"  // gguf_fixture

using nlohmann::json;
using precis::format_error;
using precis::range_error;
using precis::io::GgufFile;
using precis::io::gguf_value_type;

namespace {

json load_sidecar() {
  std::ifstream in(precis::test::gguf_fixture("reference.json"));
  REQUIRE(in.good());
  return json::parse(in);
}

const json& sidecar_tensor(const json& side, const std::string& name) {
  for (const auto& t : side["tensors"])
    if (t["name"] == name) return t;
  FAIL("no tensor '" << name << "' in the sidecar");
  throw std::logic_error("unreachable");
}

std::vector<std::byte> from_hex(const std::string& hex) {
  std::vector<std::byte> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::byte>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

/// Float values, exactly (the sidecar holds the f32 values widened to double by numpy).
void check_values_exact(const std::vector<double>& got, const json& expected) {
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    const double e = expected[i].get<double>();
    CHECK(got[i] == e);
    CHECK(std::signbit(got[i]) == std::signbit(e));  // -0.0 must stay -0.0
  }
}

template <class D, std::size_t R>
void check_float_tensor(const GgufFile& f, const json& side, const std::string& name) {
  INFO("tensor " << name);
  const auto loaded = precis::io::load<D, R>(f.tensor(name));
  std::vector<double> got;
  for (precis::index_t i = 0; i < loaded.numel(); ++i) {
    if constexpr (std::same_as<D, precis::f64>) got.push_back(loaded.data()[i]);
    else got.push_back(static_cast<double>(static_cast<float>(loaded.data()[i])));  // f16/bf16 widen exactly
  }
  check_values_exact(got, sidecar_tensor(side, name)["values"]);
}

template <class D, std::size_t R>
void check_int_tensor(const GgufFile& f, const json& side, const std::string& name) {
  INFO("tensor " << name);
  const auto loaded = precis::io::load<D, R>(f.tensor(name));
  const json& values = sidecar_tensor(side, name)["values"];
  REQUIRE(static_cast<std::size_t>(loaded.numel()) == values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    CHECK(static_cast<std::int64_t>(loaded.data()[i]) == values[i].get<std::int64_t>());
}

template <class F, std::size_t R>
void check_block_tensor(const GgufFile& f, const json& side, const std::string& name) {
  INFO("tensor " << name);
  const precis::io::AnyTensor t = f.tensor(name);
  const auto q = precis::io::quant_view<F, R>(t);
  const auto deq = precis::dequantize<precis::f32>(q);
  std::vector<double> got;
  for (precis::index_t i = 0; i < deq.numel(); ++i) got.push_back(deq.data()[i]);
  check_values_exact(got, sidecar_tensor(side, name)["values"]);
}

}  // namespace

TEST_CASE("reference.gguf: header", "[gguf][fixture]") {
  const json side = load_sidecar();
  const GgufFile f = GgufFile::open(precis::test::gguf_fixture("reference.gguf"));
  CHECK(f.version() == side["version"].get<std::uint32_t>());
  CHECK(f.alignment() == 64);
  CHECK(f.alignment() == side["alignment"].get<std::uint64_t>());
  CHECK(f.data_offset() == side["data_offset"].get<std::uint64_t>());
  CHECK(f.architecture() == side["architecture"].get<std::string>());
  CHECK(f.path() == precis::test::gguf_fixture("reference.gguf"));
}

TEST_CASE("reference.gguf: every metadata value round-trips, in file order", "[gguf][fixture]") {
  const json side = load_sidecar();
  const GgufFile f = GgufFile::open(precis::test::gguf_fixture("reference.gguf"));
  std::vector<std::string> expected_keys;
  for (const auto& m : side["metadata"]) expected_keys.push_back(m["key"].get<std::string>());
  REQUIRE(f.keys() == expected_keys);

  for (const auto& m : side["metadata"]) {
    const auto key = m["key"].get<std::string>();
    const auto type = m["type"].get<std::string>();
    INFO("key " << key << " (" << type << ")");
    REQUIRE(f.has(key));
    const precis::io::GgufValue& v = f.at(key);
    CHECK(v.key() == key);
    CHECK(precis::io::gguf_value_type_name(v.type()) == type);
    const json& value = m["value"];
    if (type == "array") {
      const auto elem = m["array_type"].get<std::string>();
      CHECK(precis::io::gguf_value_type_name(v.array_type()) == elem);
      CHECK(v.size() == value.size());
      if (elem == "string") {
        CHECK(f.get_array<std::string>(key) == value.get<std::vector<std::string>>());
        for (std::size_t i = 0; i < value.size(); ++i) CHECK(v.string_at(i) == value[i].get<std::string>());
      } else if (elem == "bool") {
        CHECK(f.get_array<bool>(key) == value.get<std::vector<bool>>());
      } else if (elem == "f32" || elem == "f64") {
        const auto got = f.get_array<double>(key);
        REQUIRE(got.size() == value.size());
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == value[i].get<double>());
      } else if (elem == "u64") {
        CHECK(f.get_array<std::uint64_t>(key) == value.get<std::vector<std::uint64_t>>());
      } else {
        CHECK(f.get_array<std::int64_t>(key) == value.get<std::vector<std::int64_t>>());
      }
    } else {
      CHECK(v.size() == 1);
      if (type == "string") CHECK(f.get<std::string>(key) == value.get<std::string>());
      else if (type == "bool") CHECK(f.get<bool>(key) == value.get<bool>());
      else if (type == "f32" || type == "f64") CHECK(f.get<double>(key) == value.get<double>());
      else if (type == "u64") CHECK(f.get<std::uint64_t>(key) == value.get<std::uint64_t>());
      else CHECK(f.get<std::int64_t>(key) == value.get<std::int64_t>());
    }
  }
}

TEST_CASE("reference.gguf: tensor infos, bytes and values", "[gguf][fixture]") {
  const json side = load_sidecar();
  const GgufFile f = GgufFile::open(precis::test::gguf_fixture("reference.gguf"));
  REQUIRE(f.tensor_infos().size() == side["tensors"].size());
  std::vector<std::string> expected_names;
  for (const auto& t : side["tensors"]) expected_names.push_back(t["name"].get<std::string>());
  CHECK(f.tensor_names() == expected_names);

  for (const auto& e : side["tensors"]) {
    const auto name = e["name"].get<std::string>();
    INFO("tensor " << name);
    REQUIRE(f.contains(name));
    const GgufFile::TensorInfo& info = f.tensor_info(name);
    CHECK(info.shape == e["shape"].get<std::vector<precis::index_t>>());  // row-major, i.e. reversed
    CHECK(info.ggml_type == e["ggml_type"].get<std::uint32_t>());
    CHECK(precis::io::ggml_type_name(info.ggml_type) == e["type_name"].get<std::string>());
    CHECK(info.offset == e["offset"].get<std::uint64_t>());
    CHECK(info.offset % f.alignment() == 0);
    CHECK(info.nbytes == e["nbytes"].get<std::uint64_t>());
    if (!precis::io::ggml_type_dtype(info.ggml_type)) continue;
    const precis::io::AnyTensor t = f.tensor(name);
    CHECK(t.name() == name);
    CHECK(t.dtype() == *precis::io::ggml_type_dtype(info.ggml_type));
    CHECK(t.shape() == info.shape);
    CHECK(t.source() == f.path().string());
    CHECK(t.owner() != nullptr);
    const auto expected_bytes = from_hex(e["bytes_hex"].get<std::string>());
    REQUIRE(t.bytes().size() == expected_bytes.size());
    CHECK(std::equal(t.bytes().begin(), t.bytes().end(), expected_bytes.begin()));
    // The view is the file's data section, zero-copy.
    CHECK(t.bytes().data() == f.data().data() + info.offset);
  }

  check_float_tensor<precis::f32, 1>(f, side, "f32_1d");
  check_float_tensor<precis::f32, 3>(f, side, "f32_3d");
  check_float_tensor<precis::f16, 2>(f, side, "f16_2d");
  check_float_tensor<precis::bf16, 2>(f, side, "bf16_2d");
  check_float_tensor<precis::f64, 2>(f, side, "f64_2d");
  check_int_tensor<precis::i8, 1>(f, side, "i8_1d");
  check_int_tensor<precis::i32, 1>(f, side, "i32_1d");
  check_int_tensor<precis::i64, 1>(f, side, "i64_1d");
  {  // i16 has no precis dtype tag (no compute uses it): read its bytes.
    const auto t = f.tensor("i16_2d");
    CHECK(t.dtype() == precis::dtype_code::i16);
    const json& values = sidecar_tensor(side, "i16_2d")["values"];
    REQUIRE(t.bytes().size() == 2 * values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      std::int16_t v;
      std::memcpy(&v, t.bytes().data() + 2 * i, 2);
      CHECK(v == values[i].get<std::int64_t>());
    }
  }
  check_block_tensor<precis::q8_0, 2>(f, side, "q8_0_2d");
  check_block_tensor<precis::q4_0, 2>(f, side, "q4_0_2d");
  check_block_tensor<precis::q4_1, 3>(f, side, "q4_1_3d");
  check_block_tensor<precis::mxfp4_ggml, 2>(f, side, "mxfp4_2d");
}

TEST_CASE("reference.gguf: its Q4_K tensor comes out as q4_K blocks viewing the mapping", "[gguf][fixture]") {
  const GgufFile f = GgufFile::open(precis::test::gguf_fixture("reference.gguf"));
  const auto& info = f.tensor_info("blk.0.attn_q.weight");
  CHECK(info.ggml_type == 12);
  CHECK(info.shape == std::vector<precis::index_t>{2, 256});
  CHECK(info.nbytes == 2 * 144);
  const precis::io::AnyTensor t = f.tensor("blk.0.attn_q.weight");
  CHECK(t.dtype() == precis::dtype_code::q4_K);
  const auto q = precis::io::quant_view<precis::q4_K, 2>(t);
  CHECK(q.extents() == precis::extents_t<2>{2, 256});
  CHECK(q.num_blocks() == 2);
  CHECK(static_cast<const void*>(q.blocks()) == static_cast<const void*>(f.data().data() + info.offset));
  const auto as_q4_0 = [&] { return precis::io::quant_view<precis::q4_0, 2>(t); };
  CHECK_THROWS_WITH(as_q4_0(), Catch::Contains("stored dtype q4_K, declared q4_0"));
  CHECK_THROWS_WITH(f.tensor("no.such.tensor"), Catch::Contains("no tensor named 'no.such.tensor'"));
  CHECK_FALSE(f.contains("no.such.tensor"));
  CHECK(f.find_tensor("no.such.tensor") == nullptr);
}

TEST_CASE("gguf: a type precis does not support is listed but refused by name", "[gguf]") {
  precis::test::GgufBuilder b;
  b.tensor("blk.0.attn_q.weight", {256}, 16, 0).data_zeros(66);  // IQ2_XXS: 256 values in 66 bytes
  const std::vector<std::byte> bytes = b.bytes();
  const GgufFile f = GgufFile::parse(std::span<const std::byte>(bytes.data(), bytes.size()), "iq2.gguf");
  const auto& info = f.tensor_info("blk.0.attn_q.weight");
  CHECK(info.ggml_type == 16);
  CHECK(info.nbytes == 66);
  CHECK_THROWS_AS(f.tensor("blk.0.attn_q.weight"), format_error);
  CHECK_THROWS_WITH(f.tensor("blk.0.attn_q.weight"),
                    Catch::Contains("blk.0.attn_q.weight is IQ2_XXS (ggml type 16), which precis does not support; "
                                    "supported: F32, F16, BF16") &&
                        Catch::Contains("Q4_K") && Catch::Contains("IQ4_XS") && Catch::Contains("iq2.gguf"));
}

TEST_CASE("reference.gguf: typed getters convert only what fits, and name key, value and types", "[gguf][fixture][metadata]") {
  const GgufFile f = GgufFile::open(precis::test::gguf_fixture("reference.gguf"));

  // Integers across widths and signedness, when in range.
  CHECK(f.get<std::uint8_t>("test.u8") == 255);
  CHECK(f.get<int>("test.u8") == 255);
  CHECK(f.get<std::int64_t>("test.u32") == 4294967295LL);
  CHECK(f.get<std::uint64_t>("test.u64") == std::numeric_limits<std::uint64_t>::max());
  CHECK(f.get<std::int64_t>("test.i64") == std::numeric_limits<std::int64_t>::min());
  CHECK(f.get<std::int8_t>("test.i8") == -128);
  CHECK(f.get<std::uint16_t>("test.small_u64") == 7);
  CHECK(f.get<int>("test.neg_i32") == -5);

  // Out of range: range_error naming the key and the value.
  CHECK_THROWS_AS(f.get<std::int8_t>("test.u8"), range_error);
  CHECK_THROWS_WITH(f.get<std::int8_t>("test.u8"), Catch::Contains("test.u8") && Catch::Contains("255") &&
                                                       Catch::Contains("does not fit in i8"));
  CHECK_THROWS_WITH(f.get<std::int64_t>("test.u64"), Catch::Contains("18446744073709551615"));
  CHECK_THROWS_WITH(f.get<std::uint32_t>("test.neg_i32"), Catch::Contains("test.neg_i32") && Catch::Contains("-5"));
  CHECK_THROWS_AS(f.get<std::uint64_t>("test.i64"), range_error);
  CHECK_THROWS_AS(f.get<float>("test.f64"), range_error);  // -1e300 is not a float

  // Floats: f32 widens exactly, f64 narrows when finite-in-range.
  CHECK(f.get<double>("test.f32") == static_cast<double>(0.1f));
  CHECK(f.get<float>("test.f32") == 0.1f);
  CHECK(f.get<double>("test.f64") == -1.0e300);

  // Wrong kind: format_error naming key, stored type and asked type.
  CHECK_THROWS_AS(f.get<std::string>("test.u32"), format_error);
  CHECK_THROWS_WITH(f.get<std::string>("test.u32"),
                    Catch::Contains("test.u32") && Catch::Contains("u32 4294967295") && Catch::Contains("asked for string"));
  CHECK_THROWS_WITH(f.get<int>("test.string"), Catch::Contains("test.string") && Catch::Contains("string") &&
                                                   Catch::Contains("asked for i32"));
  CHECK_THROWS_AS(f.get<float>("test.u32"), format_error);     // an integer is not a float
  CHECK_THROWS_AS(f.get<int>("test.f32"), format_error);       // nor a float an integer
  CHECK_THROWS_AS(f.get<bool>("test.u8"), format_error);
  CHECK_THROWS_AS(f.get<int>("test.bool_true"), format_error);
  CHECK_THROWS_WITH(f.get<int>("test.arr_i32"), Catch::Contains("array of 5 i32") && Catch::Contains("get_array"));
  CHECK_THROWS_AS(f.get_array<int>("test.u32"), format_error);
  CHECK_THROWS_AS(f.get_array<int>("test.arr_string"), format_error);
  CHECK_THROWS_AS(f.get_array<std::string>("test.arr_i32"), format_error);
  CHECK_THROWS_AS(f.at("test.u32").array_type(), format_error);

  // Arrays: the same rules per element, naming the element.
  CHECK(f.get_array<int>("test.arr_i32") == std::vector<int>{3, -1, 2147483647, -2147483648, 0});
  CHECK_THROWS_AS(f.get_array<std::int32_t>("test.arr_u32"), range_error);
  CHECK_THROWS_WITH(f.get_array<std::int32_t>("test.arr_u32"),
                    Catch::Contains("test.arr_u32") && Catch::Contains("element 3") && Catch::Contains("4294967295"));
  CHECK(f.get_array<float>("test.arr_f32") == std::vector<float>{0.5f, -2.25f, 1.0e-3f, 3.0e38f});

  // Absent keys.
  CHECK_FALSE(f.has("no.such.key"));
  CHECK_FALSE(f.find<int>("no.such.key").has_value());
  CHECK(f.find<int>("test.neg_i32") == -5);
  CHECK_THROWS_AS(f.find<std::string>("test.u32"), format_error);  // present but the wrong kind
  CHECK_THROWS_AS(f.at("no.such.key"), format_error);
  CHECK_THROWS_WITH(f.get<int>("no.such.key"), Catch::Contains("no metadata key 'no.such.key'") &&
                                                   Catch::Contains("reference.gguf"));
  CHECK(f.at("test.string").as_string_view() == "héllo wörld ✓ 日本語 🦙");
}

TEST_CASE("architecture() is required", "[gguf][metadata]") {
  precis::test::TempDir dir;
  const GgufFile f = precis::test::open_bytes(dir, precis::test::GgufBuilder{}.kv_u32("x", 1).bytes());
  CHECK_THROWS_AS(f.architecture(), format_error);
  CHECK_THROWS_WITH(f.architecture(), Catch::Contains("general.architecture"));
  const GgufFile g = precis::test::open_bytes(
      dir, precis::test::GgufBuilder{}.kv_u32("general.architecture", 1).bytes(), "arch_u32.gguf");
  CHECK_THROWS_AS(g.architecture(), format_error);  // present, but not a string
}

TEST_CASE("ggml type names and dtypes", "[gguf][types]") {
  using precis::io::ggml_type_dtype;
  using precis::io::ggml_type_name;
  CHECK(ggml_type_name(0) == "F32");
  CHECK(ggml_type_name(12) == "Q4_K");
  CHECK(ggml_type_name(30) == "BF16");
  CHECK(ggml_type_name(39) == "MXFP4");
  CHECK(ggml_type_name(4) == "unknown(4)");  // Q4_2, removed from ggml
  CHECK(ggml_type_name(77) == "unknown(77)");
  CHECK(ggml_type_name(1023) == "unknown(1023)");
  CHECK(ggml_type_name(4000000000u) == "unknown(>=1024)");
  CHECK(ggml_type_dtype(0) == precis::dtype_code::f32);
  CHECK(ggml_type_dtype(1) == precis::dtype_code::f16);
  CHECK(ggml_type_dtype(2) == precis::dtype_code::q4_0);
  CHECK(ggml_type_dtype(3) == precis::dtype_code::q4_1);
  CHECK(ggml_type_dtype(8) == precis::dtype_code::q8_0);
  CHECK(ggml_type_dtype(30) == precis::dtype_code::bf16);
  CHECK(ggml_type_dtype(39) == precis::dtype_code::mxfp4_ggml);
  CHECK(ggml_type_dtype(12) == precis::dtype_code::q4_K);
  CHECK(ggml_type_dtype(23) == precis::dtype_code::iq4_xs);
  CHECK(ggml_type_dtype(6) == precis::dtype_code::q5_0);
  CHECK_FALSE(ggml_type_dtype(16).has_value());  // IQ2_XXS
  CHECK_FALSE(ggml_type_dtype(15).has_value());  // Q8_K
  CHECK_FALSE(ggml_type_dtype(9).has_value());  // Q8_1
  // Block geometry of the supported block types agrees with core/dtype.hpp's ggml structs.
  CHECK(precis::io::ggml_type_info(8)->type_size == sizeof(precis::block_q8_0));
  CHECK(precis::io::ggml_type_info(2)->type_size == sizeof(precis::block_q4_0));
  CHECK(precis::io::ggml_type_info(3)->type_size == sizeof(precis::block_q4_1));
  CHECK(precis::io::ggml_type_info(39)->type_size == sizeof(precis::block_mxfp4_ggml));
  CHECK(offsetof(precis::block_q4_1, m) == 2);
  CHECK(offsetof(precis::block_q4_1, qs) == 4);
  CHECK(offsetof(precis::block_q8_0, qs) == 2);
  CHECK(offsetof(precis::block_mxfp4_ggml, qs) == 1);
}
