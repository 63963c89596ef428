// Tests for precis/io/safetensors.hpp: every validation rule of model-semantics.md §1e rejects a
// file that breaks it (and only it) with a format_error naming the file, the tensor where there is
// one, and the problem; valid edge cases (empty and scalar tensors, padding, metadata) parse.
//
// Malformed files are built byte by byte (io_test_support.hpp), since the writer cannot produce
// them; each case changes one thing relative to a valid file.
#include <cstddef>           // std::byte
#include <cstdint>           // std::uint64_t
#include <initializer_list>  // std::initializer_list
#include <optional>          // std::optional
#include <string>            // std::string
#include <string_view>       // std::string_view
#include <utility>           // std::pair
#include <vector>            // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, SECTION, REQUIRE

#include <precis/core/error.hpp>     // precis::format_error
#include <precis/io/safetensors.hpp>  // precis::io::SafetensorsFile

#include "io_test_support.hpp"  // raw_safetensors, counting_bytes

using precis::dtype_code;
using precis::io::SafetensorsFile;
using precis::test::counting_bytes;
using precis::test::raw_safetensors;
using Catch::Matchers::Contains;

namespace {

constexpr std::string_view source = "bad.safetensors";

/// Parsing `bytes` throws a precis::format_error whose message names the file and contains
/// every string in `parts`.
void require_rejected(const std::vector<std::byte>& bytes, std::initializer_list<std::string_view> parts) {
  try {
    (void)SafetensorsFile::parse(bytes, std::string(source));
    FAIL("parse accepted a malformed file");
  } catch (const precis::format_error& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK_THAT(msg, Contains(std::string("'") + std::string(source) + "'"));
    for (auto p : parts) CHECK_THAT(msg, Contains(std::string(p)));
  }
}

/// One F32 [2] tensor "x" with the given header fragments substituted.
std::string entry(std::string_view name, std::string_view dtype, std::string_view shape, std::string_view offsets) {
  return "\"" + std::string(name) + "\":{\"dtype\":" + std::string(dtype) + ",\"shape\":" + std::string(shape) +
         ",\"data_offsets\":" + std::string(offsets) + "}";
}

}  // namespace

TEST_CASE("safetensors: a hand-built valid file parses, with offsets relative to the buffer", "[io][safetensors]") {
  // Two tensors declared in reverse storage order; the reader sorts them by offset.
  const std::string header = "{" + entry("b", "\"U8\"", "[3]", "[8,11]") + "," +
                             entry("a", "\"F32\"", "[2]", "[0,8]") + ",\"__metadata__\":{\"format\":\"pt\"}}";
  const auto buffer = counting_bytes(11);
  // parse() of a temporary buffer takes ownership of it: the views below must not dangle (an
  // ASan build, -DPRECIS_SANITIZE=ON, turns a dangling read into a failure).
  const auto f = SafetensorsFile::parse(raw_safetensors(header, buffer), "ok.safetensors");

  REQUIRE(f.size() == 2);
  REQUIRE(f.header_size() == header.size());
  REQUIRE(f.entries()[0].name == "a");
  REQUIRE(f.entries()[1].name == "b");
  REQUIRE(f.names() == std::vector<std::string>{"a", "b"});
  const auto b = f.tensor("b");
  REQUIRE(b.dtype() == dtype_code::u8);
  REQUIRE(b.shape() == std::vector<precis::index_t>{3});
  REQUIRE(b.bytes().size() == 3);
  REQUIRE(static_cast<unsigned>(b.bytes()[0]) == 8u);  // buffer byte 8: offsets are buffer-relative
  REQUIRE(b.source() == "ok.safetensors");
  REQUIRE(f.metadata("format") == std::optional<std::string>("pt"));
  REQUIRE_FALSE(f.metadata("missing").has_value());
  REQUIRE(f.find("nope") == nullptr);
  REQUIRE_THROWS_WITH(f.tensor("nope"), Contains("no tensor named 'nope'") && Contains("ok.safetensors"));
}

TEST_CASE("safetensors: valid edge cases parse", "[io][safetensors]") {
  SECTION("empty header object, no data") {
    const auto f = SafetensorsFile::parse(raw_safetensors("{}"), "e");
    REQUIRE(f.size() == 0);
  }
  SECTION("header right-padded with spaces") {
    const auto f = SafetensorsFile::parse(raw_safetensors("{}      "), "e");
    REQUIRE(f.header_size() == 8);
  }
  SECTION("0-rank (scalar) and empty tensors") {
    // The empty tensors sit at offset 0 and at the end; sorting by (begin, end) tiles them.
    const std::string header = "{" + entry("s", "\"F64\"", "[]", "[0,8]") + "," + entry("z", "\"F32\"", "[0,4]", "[0,0]") +
                               "," + entry("z2", "\"BF16\"", "[3,0]", "[8,8]") + "}";
    const auto f = SafetensorsFile::parse(raw_safetensors(header, counting_bytes(8)), "e");
    REQUIRE(f.tensor("s").rank() == 0);
    REQUIRE(f.tensor("s").numel() == 1);
    REQUIRE(f.tensor("z").numel() == 0);
    REQUIRE(f.tensor("z2").bytes().empty());
  }
  SECTION("every supported dtype string") {
    const std::pair<const char*, dtype_code> all[] = {
        {"F64", dtype_code::f64}, {"F32", dtype_code::f32}, {"F16", dtype_code::f16},
        {"BF16", dtype_code::bf16}, {"F8_E4M3", dtype_code::f8_e4m3}, {"F8_E5M2", dtype_code::f8_e5m2},
        {"I8", dtype_code::i8}, {"U8", dtype_code::u8}, {"I16", dtype_code::i16},
        {"U16", dtype_code::u16}, {"I32", dtype_code::i32}, {"U32", dtype_code::u32},
        {"I64", dtype_code::i64}, {"U64", dtype_code::u64}, {"BOOL", dtype_code::boolean}};
    for (const auto& [name, code] : all) {
      const std::size_t bytes = precis::element_bytes(code);
      const std::string header =
          "{" + entry("t", std::string("\"") + name + "\"", "[1]", "[0," + std::to_string(bytes) + "]") + "}";
      const auto f = SafetensorsFile::parse(raw_safetensors(header, counting_bytes(bytes)), "e");
      INFO(name);
      REQUIRE(f.tensor("t").dtype() == code);
      REQUIRE(f.tensor("t").dtype_name() == name);
    }
  }
  SECTION("extra keys inside an entry are ignored, as the reference implementation does") {
    const std::string header = R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"note":[1,{"x":2}]}})";
    REQUIRE(SafetensorsFile::parse(raw_safetensors(header, counting_bytes(1)), "e").size() == 1);
  }
}

TEST_CASE("safetensors: the length prefix and header bounds are checked", "[io][safetensors]") {
  SECTION("shorter than 8 bytes") {
    for (std::size_t n : {0u, 1u, 7u}) require_rejected(counting_bytes(n), {"shorter than the 8-byte"});
  }
  SECTION("header length above 100,000,000") {
    require_rejected(raw_safetensors("{}", {}, 100'000'001u), {"header length 100000001", "maximum of 100000000"});
    require_rejected(raw_safetensors("{}", {}, ~std::uint64_t{0}), {"exceeds the format's maximum"});
  }
  SECTION("8 + N beyond the file size") {
    require_rejected(raw_safetensors("{}", {}, 3), {"header length 3 runs past the end of the file", "file size 10"});
  }
}

TEST_CASE("safetensors: the header must be UTF-8 JSON starting with '{'", "[io][safetensors]") {
  SECTION("invalid UTF-8") {
    require_rejected(raw_safetensors("{\"\xff\":1}"), {"not valid UTF-8", "0xff", "offset 2"});
    require_rejected(raw_safetensors("{\"\xc0\xaf\":1}"), {"not valid UTF-8"});          // overlong '/'
    require_rejected(raw_safetensors("{\"\xed\xa0\x80\":1}"), {"not valid UTF-8"});      // surrogate
    require_rejected(raw_safetensors("{\"\xf4\x90\x80\x80\":1}"), {"not valid UTF-8"});  // > U+10FFFF
    require_rejected(raw_safetensors("{\"\xe2\x82"), {"not valid UTF-8"});               // truncated
  }
  SECTION("valid multi-byte UTF-8 names are accepted") {
    const std::string header = "{" + entry("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"U8\"", "[1]", "[0,1]") + "}";
    REQUIRE(SafetensorsFile::parse(raw_safetensors(header, counting_bytes(1)), "e").size() == 1);
  }
  SECTION("not starting with '{'") {
    require_rejected(raw_safetensors(""), {"does not start with '{'"});
    require_rejected(raw_safetensors(" {}"), {"does not start with '{'"});
    require_rejected(raw_safetensors("[]"), {"does not start with '{'"});
  }
  SECTION("not valid JSON") {
    require_rejected(raw_safetensors("{"), {"not valid JSON"});
    require_rejected(raw_safetensors("{\"a\":}"), {"not valid JSON"});
    require_rejected(raw_safetensors("{} {}"), {"not valid JSON"});
    require_rejected(raw_safetensors(std::string("{}\0", 3)), {"not valid JSON"});  // NUL padding is not JSON
  }
  SECTION("duplicate keys") {
    const std::string e = entry("a", "\"U8\"", "[1]", "[0,1]");
    require_rejected(raw_safetensors("{" + e + "," + e + "}", counting_bytes(1)), {"key 'a' twice"});
    require_rejected(
        raw_safetensors(R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", counting_bytes(1)),
        {"key 'dtype' twice"});
    require_rejected(raw_safetensors(R"({"__metadata__":{"k":"1","k":"2"}})"), {"key 'k' twice"});
  }
  SECTION("deep nesting") {
    const std::string header = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
    require_rejected(raw_safetensors(header), {"nests deeper than 64"});
  }
}

TEST_CASE("safetensors: entries need a well-typed dtype, shape and data_offsets", "[io][safetensors]") {
  const auto buf = counting_bytes(8);
  const auto one = [&](const std::string& e, std::initializer_list<std::string_view> parts) {
    require_rejected(raw_safetensors("{" + e + "}", buf), parts);
  };
  SECTION("entry is not an object") { one("\"x\":[1,2]", {"tensor 'x'", "entry must be a JSON object"}); }
  SECTION("missing fields") {
    one(R"("x":{"shape":[2],"data_offsets":[0,8]})", {"tensor 'x'", "no \"dtype\""});
    one(R"("x":{"dtype":"F32","data_offsets":[0,8]})", {"tensor 'x'", "no \"shape\""});
    one(R"("x":{"dtype":"F32","shape":[2]})", {"tensor 'x'", "no \"data_offsets\""});
  }
  SECTION("ill-typed fields") {
    one(entry("x", "32", "[2]", "[0,8]"), {"tensor 'x'", "\"dtype\" must be a string"});
    one(entry("x", "\"F32\"", "2", "[0,8]"), {"tensor 'x'", "\"shape\" must be an array"});
    one(entry("x", "\"F32\"", "[2]", "\"0-8\""), {"tensor 'x'", "\"data_offsets\" must be an array [BEGIN, END]"});
    one(entry("x", "\"F32\"", "[2]", "[0,8,8]"), {"tensor 'x'", "\"data_offsets\" must be an array [BEGIN, END]"});
    one(entry("x", "\"F32\"", "[2]", "[0]"), {"\"data_offsets\" must be an array [BEGIN, END]"});
  }
  SECTION("unknown and unsupported dtype strings name the tensor and the dtype") {
    one(entry("x", "\"F17\"", "[2]", "[0,8]"), {"tensor 'x'", "unknown dtype \"F17\""});
    one(entry("x", "\"f32\"", "[2]", "[0,8]"), {"unknown dtype \"f32\""});  // case matters
    for (const char* d : {"F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"})
      one(entry("w", std::string("\"") + d + "\"", "[2]", "[0,8]"),
          {"tensor 'w'", std::string("unsupported dtype ") + d});
  }
  SECTION("negative or non-integer shape entries") {
    one(entry("x", "\"F32\"", "[-2]", "[0,8]"), {"tensor 'x'", "shape[0] has the negative value -2"});
    one(entry("x", "\"F32\"", "[1,2.5]", "[0,8]"), {"shape[1] has the non-integer value 2.5"});
    one(entry("x", "\"F32\"", "[2.0]", "[0,8]"), {"shape[0] has the non-integer value"});
    one(entry("x", "\"F32\"", "[\"2\"]", "[0,8]"), {"shape[0] must be an integer, got string"});
    one(entry("x", "\"F32\"", "[9223372036854775808]", "[0,8]"), {"shape[0] value 9223372036854775808 is too large"});
  }
  SECTION("shape products that overflow 64 bits") {
    one(entry("x", "\"U8\"", "[4294967296,4294967296]", "[0,8]"), {"more elements than fit in 64 bits"});
    one(entry("x", "\"U8\"", "[4294967296,4294967296,0]", "[0,0]"), {"more elements than fit in 64 bits"});
    one(entry("x", "\"F64\"", "[2305843009213693952]", "[0,8]"), {"needs more bytes than fit in 64 bits"});
  }
  SECTION("bad offsets") {
    one(entry("x", "\"F32\"", "[2]", "[-1,7]"), {"data_offsets[0] has the negative value -1"});
    one(entry("x", "\"F32\"", "[0]", "[8,0]"), {"tensor 'x'", "BEGIN > END"});
    one(entry("x", "\"F32\"", "[4]", "[0,16]"), {"tensor 'x'", "end beyond the data buffer of 8 bytes"});
    one(entry("x", "\"F32\"", "[2]", "[0,18446744073709551615]"), {"end beyond the data buffer"});
  }
  SECTION("byte size different from numel x element size") {
    one(entry("x", "\"F32\"", "[3]", "[0,8]"), {"tensor 'x'", "span 8 bytes but shape [3] of F32 needs 12 bytes"});
    one(entry("x", "\"BF16\"", "[2,3]", "[0,8]"), {"needs 12 bytes"});
  }
}

TEST_CASE("safetensors: tensors must tile the buffer exactly", "[io][safetensors]") {
  SECTION("overlap") {
    const std::string h = "{" + entry("a", "\"U8\"", "[8]", "[0,8]") + "," + entry("b", "\"U8\"", "[8]", "[4,12]") + "}";
    require_rejected(raw_safetensors(h, counting_bytes(12)), {"tensor 'b'", "overlap tensor 'a'"});
  }
  SECTION("identical ranges") {
    const std::string h = "{" + entry("a", "\"U8\"", "[4]", "[0,4]") + "," + entry("b", "\"U8\"", "[4]", "[0,4]") + "}";
    require_rejected(raw_safetensors(h, counting_bytes(4)), {"overlap tensor 'a'"});
  }
  SECTION("hole between tensors") {
    const std::string h = "{" + entry("a", "\"U8\"", "[4]", "[0,4]") + "," + entry("b", "\"U8\"", "[4]", "[8,12]") + "}";
    require_rejected(raw_safetensors(h, counting_bytes(12)), {"tensor 'b'", "leave a hole", "'a' ends at 4"});
  }
  SECTION("hole before the first tensor") {
    const std::string h = "{" + entry("a", "\"U8\"", "[4]", "[4,8]") + "}";
    require_rejected(raw_safetensors(h, counting_bytes(8)), {"tensor 'a'", "leave a hole", "ends at 0"});
  }
  SECTION("trailing bytes after the last tensor") {
    const std::string h = "{" + entry("a", "\"U8\"", "[4]", "[0,4]") + "}";
    require_rejected(raw_safetensors(h, counting_bytes(6)), {"cover 4 bytes", "holds 6 bytes"});
    require_rejected(raw_safetensors("{}", counting_bytes(1)), {"cover 0 bytes", "holds 1 bytes"});
  }
}

TEST_CASE("safetensors: __metadata__ must map strings to strings", "[io][safetensors]") {
  require_rejected(raw_safetensors(R"({"__metadata__":["a"]})"), {"__metadata__ must be a JSON object", "array"});
  require_rejected(raw_safetensors(R"({"__metadata__":{"n":1}})"), {"__metadata__ value of key 'n'", "number"});
  require_rejected(raw_safetensors(R"({"__metadata__":{"n":null}})"), {"__metadata__ value of key 'n'"});
  const auto f = SafetensorsFile::parse(raw_safetensors(R"({"__metadata__":{}})"), "e");
  REQUIRE(f.metadata().empty());
}

TEST_CASE("safetensors: open() maps a file and reports a missing one", "[io][safetensors]") {
  precis::test::TempDir dir;
  const std::string h = "{" + entry("a", "\"U8\"", "[3]", "[0,3]") + "}";
  precis::test::write_file(dir / "m.safetensors", raw_safetensors(h, counting_bytes(3)));
  const auto f = SafetensorsFile::open(dir / "m.safetensors");
  REQUIRE(f.source_name() == (dir / "m.safetensors").string());
  REQUIRE(static_cast<unsigned>(f.tensor("a").bytes()[2]) == 2u);
  REQUIRE_THROWS_AS(SafetensorsFile::open(dir / "none.safetensors"), precis::io_error);

  precis::test::write_file(dir / "short.safetensors", counting_bytes(4));
  REQUIRE_THROWS_WITH(SafetensorsFile::open(dir / "short.safetensors"),
                      Contains((dir / "short.safetensors").string()) && Contains("shorter than the 8-byte"));
}
