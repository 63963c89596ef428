// Every validation rule of GgufFile (include/precis/io/gguf.hpp), each violated on its own in an
// otherwise valid file written to a temp file: the open must throw format_error whose message
// names the file and says what is wrong and where. The rules come from model-semantics.md §1d
// (ggml docs/gguf.md, src/gguf.cpp).
#include <cstddef>  // std::byte
#include <cstdint>  // std::uint64_t
#include <limits>   // std::numeric_limits
#include <span>     // std::span
#include <string>   // std::string
#include <vector>   // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, SECTION, REQUIRE, CHECK

#include <precis/core/error.hpp>  // precis::format_error
#include <precis/io/gguf.hpp>     // precis::io::GgufFile

#include "gguf_test_support.hpp"  // GgufBuilder, require_format_error, open_bytes

using precis::format_error;
using precis::io::GgufFile;
using precis::test::GgufBuilder;
using precis::test::le_bytes;
using precis::test::require_format_error;
namespace gt = precis::test::gt;

namespace {

/// A small valid file: one metadata key and one F32 [2, 2] tensor.
GgufBuilder valid_one_tensor() {
  GgufBuilder b;
  b.arch().tensor("t", {2, 2}, 0, 0).data_f32({1, 2, 3, 4});
  return b;
}

}  // namespace

TEST_CASE("the builder's valid files parse (so each rejection below is caused by its one defect)", "[gguf][validation]") {
  precis::test::TempDir dir;
  const GgufFile f = precis::test::open_bytes(dir, valid_one_tensor().bytes());
  REQUIRE(f.tensor_infos().size() == 1);
  CHECK(f.tensor_infos()[0].nbytes == 16);
  const GgufFile e = precis::test::open_bytes(dir, GgufBuilder{}.bytes(), "empty.gguf");
  CHECK(e.keys().empty());
  CHECK(e.tensor_infos().empty());
}

TEST_CASE("magic and version", "[gguf][validation]") {
  SECTION("empty file") { require_format_error({}, {"not a GGUF file", "shorter than 4 bytes"}); }
  SECTION("wrong magic") { require_format_error(GgufBuilder{}.magic("GGML").bytes(), {"magic is 'GGML'", "expected 'GGUF'", "offset 0"}); }
  SECTION("version 1") { require_format_error(valid_one_tensor().version(1).bytes(), {"version 1 is not supported", "offset 4"}); }
  SECTION("version 0") { require_format_error(valid_one_tensor().version(0).bytes(), {"version 0"}); }
  SECTION("version 4") { require_format_error(valid_one_tensor().version(4).bytes(), {"unsupported GGUF version 4"}); }
  SECTION("a big-endian file") {
    require_format_error(valid_one_tensor().version(0x03000000u).bytes(), {"big-endian", "byte-swapped"});
  }
  SECTION("version 2 is accepted (identical layout for little-endian files)") {
    precis::test::TempDir dir;
    CHECK(precis::test::open_bytes(dir, valid_one_tensor().version(2).bytes()).version() == 2);
  }
}

TEST_CASE("header truncation and hostile counts", "[gguf][validation]") {
  const auto full = valid_one_tensor().bytes();
  SECTION("truncated inside the counts") {
    require_format_error(std::vector<std::byte>(full.begin(), full.begin() + 20), {"metadata_kv_count needs 8 bytes", "offset 16"});
  }
  SECTION("a metadata count no file of this size can hold") {
    require_format_error(valid_one_tensor().declared_kv_count(std::uint64_t{1} << 62).bytes(),
                         {"metadata_kv_count 4611686018427387904 cannot fit"});
  }
  SECTION("a tensor count no file of this size can hold") {
    require_format_error(valid_one_tensor().declared_tensor_count(std::numeric_limits<std::uint64_t>::max()).bytes(),
                         {"tensor_count 18446744073709551615 cannot fit"});
  }
  SECTION("one more tensor declared than present") {
    require_format_error(valid_one_tensor().declared_tensor_count(2).bytes(), {"tensor"});
  }
  SECTION("every proper prefix of a valid file is rejected, never read past") {
    for (std::size_t n = 0; n < full.size(); ++n) {
      INFO("prefix of " << n << " bytes");
      CHECK_THROWS_AS(GgufFile::parse(std::span<const std::byte>(full.data(), n), "prefix"), format_error);
    }
  }
}

TEST_CASE("metadata: strings, types, arrays, bools, duplicates", "[gguf][validation]") {
  SECTION("key length runs past the end of the file") {
    std::vector<std::byte> raw = le_bytes({std::uint64_t{1} << 40}, 8);
    raw.resize(raw.size() + 24);  // room for the minimum entry, but not for the key
    require_format_error(GgufBuilder{}.kv_bytes(raw).bytes(), {"key of metadata entry 0", "string length 1099511627776", "offset 24"});
  }
  SECTION("string value length runs past the end of the file") {
    require_format_error(GgufBuilder{}.kv_raw("k", gt::string, le_bytes({1000}, 8)).bytes(),
                         {"metadata key 'k' string value", "string length 1000 runs past the end"});
  }
  SECTION("unknown value type id") {
    require_format_error(GgufBuilder{}.kv_raw("k", 13, le_bytes({0}, 8)).bytes(),
                         {"metadata key 'k'", "unknown value type id 13", "offset 33"});
  }
  SECTION("unknown array element type id") {
    require_format_error(GgufBuilder{}.kv_array("k", 99, 1, le_bytes({0}, 8)).bytes(),
                         {"metadata key 'k'", "unknown array element type id 99"});
  }
  SECTION("nested arrays, as gguf-py writes them, are rejected clearly") {
    require_format_error(precis::test::read_bytes(precis::test::gguf_fixture("nested_array.gguf")),
                         {"metadata key 'test.nested'", "nested arrays"});
    require_format_error(GgufBuilder{}.kv_array("n", gt::array, 1, le_bytes({gt::u8, 1, 7}, 4)).bytes(),
                         {"metadata key 'n'", "nested arrays"});
  }
  SECTION("array of fixed-size elements longer than the file") {
    require_format_error(GgufBuilder{}.kv_array("k", gt::u64, std::uint64_t{1} << 61, le_bytes({0}, 8)).bytes(),
                         {"metadata key 'k'", "array of 2305843009213693952 u64", "only 8 are left"});
  }
  SECTION("array of strings longer than the file") {
    require_format_error(GgufBuilder{}.kv_array("k", gt::string, std::uint64_t{1} << 50, le_bytes({0}, 8)).bytes(),
                         {"metadata key 'k'", "array of 1125899906842624 strings cannot fit"});
  }
  SECTION("a string inside an array runs past the end") {
    require_format_error(GgufBuilder{}.kv_array("k", gt::string, 2, le_bytes({0, 50}, 8)).bytes(),
                         {"metadata key 'k' array element 1", "string length 50"});
  }
  SECTION("truncated scalar") {
    require_format_error(GgufBuilder{}.kv_raw("k", gt::u64, le_bytes({0}, 2)).bytes(), {"metadata key 'k' value needs 8 bytes"});
  }
  SECTION("bool byte other than 0/1") {
    require_format_error(GgufBuilder{}.kv_raw("k", gt::boolean, le_bytes({2}, 1)).bytes(), {"metadata key 'k'", "bool byte 2"});
    require_format_error(GgufBuilder{}.kv_array("k", gt::boolean, 3, le_bytes({0, 1, 9}, 1)).bytes(),
                         {"metadata key 'k'", "array element 2", "bool byte 9"});
  }
  SECTION("duplicate key") {
    require_format_error(GgufBuilder{}.arch().kv_u32("x", 1).kv_u32("x", 2).bytes(), {"duplicate metadata key 'x'", "entry 2"});
  }
  SECTION("empty arrays are valid") {
    precis::test::TempDir dir;
    const GgufFile f = precis::test::open_bytes(dir, GgufBuilder{}.kv_array("e", gt::i32, 0, {}).kv_array("s", gt::string, 0, {}).bytes());
    CHECK(f.at("e").size() == 0);
    CHECK(f.get_array<int>("e").empty());
    CHECK(f.get_array<std::string>("s").empty());
  }
}

TEST_CASE("general.alignment", "[gguf][validation]") {
  SECTION("must be u32") {
    require_format_error(GgufBuilder{}.kv_uint("general.alignment", gt::u64, 32, 8).bytes(),
                         {"general.alignment must be a u32", "u64 32"});
    require_format_error(GgufBuilder{}.kv_uint("general.alignment", gt::i32, 32, 4).bytes(),
                         {"general.alignment must be a u32", "i32 32"});
  }
  SECTION("must be a power of two") {
    require_format_error(GgufBuilder{}.kv_u32("general.alignment", 24).bytes(), {"general.alignment 24 is not a power of two"});
    require_format_error(GgufBuilder{}.kv_u32("general.alignment", 0).bytes(), {"general.alignment 0 is not a power of two"});
  }
  SECTION("a custom alignment governs padding and offsets") {
    precis::test::TempDir dir;
    GgufBuilder b;
    b.kv_u32("general.alignment", 8).pad_to(8).tensor("a", {1}, 0, 0).tensor("b", {1}, 0, 8).data_f32({1, 0, 2});
    const GgufFile f = precis::test::open_bytes(dir, b.bytes());
    CHECK(f.alignment() == 8);
    CHECK(f.data_offset() % 8 == 0);
    GgufBuilder bad;
    bad.kv_u32("general.alignment", 8).pad_to(8).tensor("a", {1}, 0, 4).data_f32({0, 1});
    require_format_error(bad.bytes(), {"tensor 'a'", "data offset 4 is not a multiple of the alignment 8"});
  }
}

TEST_CASE("tensor infos", "[gguf][validation]") {
  SECTION("name longer than 64 bytes (gguf.md); 64 is fine") {
    const std::string long_name(65, 'n');
    GgufBuilder b;
    b.tensor(long_name, {1}, 0, 0).data_f32({1});
    require_format_error(b.bytes(), {"name is 65 bytes", "64"});
    precis::test::TempDir dir;
    GgufBuilder ok;
    ok.tensor(std::string(64, 'n'), {1}, 0, 0).data_f32({1});
    CHECK(precis::test::open_bytes(dir, ok.bytes()).contains(std::string(64, 'n')));
  }
  SECTION("duplicate tensor name") {
    GgufBuilder b;
    b.tensor("t", {1}, 0, 0).tensor("t", {1}, 0, 32).data_zeros(36);
    require_format_error(b.bytes(), {"duplicate tensor name 't'", "tensor info 1"});
  }
  SECTION("n_dims above GGML_MAX_DIMS") {
    GgufBuilder b;
    b.tensor("t", {1, 1, 1, 1, 1}, 0, 0).data_f32({1});
    require_format_error(b.bytes(), {"tensor 't'", "n_dims 5 exceeds GGML_MAX_DIMS (4)"});
  }
  SECTION("a zero dim") {
    GgufBuilder b;
    b.tensor("t", {4, 0}, 0, 0).data_f32({1});
    require_format_error(b.bytes(), {"tensor 't'", "dims[1] is 0"});
  }
  SECTION("a dim above INT64_MAX") {
    GgufBuilder b;
    b.tensor("t", {std::uint64_t{1} << 63}, 0, 0).data_f32({1});
    require_format_error(b.bytes(), {"tensor 't'", "dims[0] = 9223372036854775808 exceeds INT64_MAX"});
  }
  SECTION("element count overflow") {
    GgufBuilder b;
    b.tensor("t", {std::uint64_t{1} << 32, std::uint64_t{1} << 32}, 0, 0).data_f32({1});
    require_format_error(b.bytes(), {"tensor 't'", "more elements or bytes than fit in 64 bits"});
  }
  SECTION("byte count overflow with a representable element count") {
    GgufBuilder b;
    b.tensor("t", {std::uint64_t{1} << 61}, 28, 0).data_f32({1});  // F64: 2^61 elements, 2^64 bytes
    require_format_error(b.bytes(), {"tensor 't'", "F64", "more elements or bytes than fit in 64 bits"});
  }
  SECTION("unknown and removed ggml type ids") {
    GgufBuilder b;
    b.tensor("t", {32}, 77, 0).data_zeros(64);
    require_format_error(b.bytes(), {"tensor 't'", "unknown ggml type id 77"});
    GgufBuilder removed;
    removed.tensor("t", {32}, 4, 0).data_zeros(64);  // Q4_2, removed from ggml
    require_format_error(removed.bytes(), {"tensor 't'", "unknown ggml type id 4"});
  }
  SECTION("innermost dim not a multiple of the block size") {
    GgufBuilder b;
    b.tensor("q", {16, 2}, 8, 0).data_zeros(68);
    require_format_error(b.bytes(), {"tensor 'q'", "dims[0] = 16", "Q8_0's block size 32"});
    GgufBuilder k;
    k.tensor("k", {128}, 12, 0).data_zeros(144);
    require_format_error(k.bytes(), {"tensor 'k'", "Q4_K's block size 256"});
  }
  SECTION("offset not a multiple of the default alignment 32") {
    GgufBuilder b;
    b.tensor("t", {1}, 0, 4).data_zeros(8);
    require_format_error(b.bytes(), {"tensor 't'", "data offset 4 is not a multiple of the alignment 32"});
  }
  SECTION("data past the end of the file") {
    GgufBuilder b;
    b.tensor("t", {8}, 0, 0).data_f32({1, 2, 3, 4});
    require_format_error(b.bytes(), {"tensor 't'", "32 bytes", "runs past the end of the file", "holds 16 bytes"});
    GgufBuilder far;
    far.tensor("t", {1}, 0, std::uint64_t{1} << 63).data_f32({1});
    require_format_error(far.bytes(), {"tensor 't'", "offset 9223372036854775808", "runs past the end"});
  }
  SECTION("tensor infos end so close to the end of the file that the data section cannot start") {
    GgufBuilder b;
    b.kv_u32("general.alignment", 1u << 20).tensor("t", {1}, 0, 0);
    require_format_error(b.pad_to(1).bytes(), {"tensor data section would start at offset 1048576"});
  }
  SECTION("overlapping tensors") {
    GgufBuilder b;
    b.tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).data_zeros(64);
    require_format_error(b.bytes(), {"tensor 'b' data [32, 48) overlaps tensor 'a' data [0, 64)"});
  }
  SECTION("truncated tensor info") {
    const auto full = valid_one_tensor().bytes();
    // Cut inside the tensor info's offset field (the last 8 bytes before padding).
    std::vector<std::byte> cut(full.begin(), full.end());
    cut.resize(105);
    require_format_error(cut, {"tensor 't' offset needs 8 bytes"});
  }
  SECTION("n_dims 0 is a scalar (ggml: every ne is 1)") {
    precis::test::TempDir dir;
    GgufBuilder b;
    b.tensor("s", {}, 0, 0).data_f32({2.5f});
    const GgufFile f = precis::test::open_bytes(dir, b.bytes());
    CHECK(f.tensor_infos()[0].shape.empty());
    CHECK(f.tensor_infos()[0].nbytes == 4);
    CHECK(f.tensor("s").rank() == 0);
  }
}
