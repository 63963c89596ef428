// Tests for precis/io/mapped_file.hpp: the bytes seen through the mapping are the bytes written,
// empty files map to an empty span, and failures name the path and the OS reason.
#include <cstddef>  // std::byte
#include <string>   // std::string
#include <type_traits>  // std::is_copy_constructible_v
#include <utility>  // std::move
#include <vector>   // std::vector

#include <catch2/catch.hpp>  // TEST_CASE, REQUIRE

#include <precis/core/error.hpp>      // precis::io_error
#include <precis/io/mapped_file.hpp>  // precis::io::MappedFile

#include "io_test_support.hpp"  // TempDir, write_file, counting_bytes

using precis::io::MappedFile;
using Catch::Matchers::Contains;

TEST_CASE("MappedFile exposes exactly the file's bytes", "[io][mapped_file]") {
  precis::test::TempDir dir;
  const auto bytes = precis::test::counting_bytes(10'000);  // more than one page
  precis::test::write_file(dir / "data.bin", bytes);

  const MappedFile f = MappedFile::open(dir / "data.bin");
  REQUIRE(f.size() == bytes.size());
  REQUIRE(std::vector<std::byte>(f.bytes().begin(), f.bytes().end()) == bytes);
  REQUIRE(f.path() == dir / "data.bin");
}

TEST_CASE("MappedFile maps an empty file to an empty span", "[io][mapped_file]") {
  precis::test::TempDir dir;
  precis::test::write_file(dir / "empty.bin", {});
  const MappedFile f = MappedFile::open(dir / "empty.bin");
  REQUIRE(f.empty());
  REQUIRE(f.bytes().empty());
}

TEST_CASE("MappedFile errors name the path and the OS reason", "[io][mapped_file]") {
  precis::test::TempDir dir;
  const auto missing = (dir / "missing.safetensors").string();
  REQUIRE_THROWS_WITH(MappedFile::open(missing), Contains(missing) && Contains("open failed") &&
                                                     Contains("No such file or directory"));
  REQUIRE_THROWS_AS(MappedFile::open(missing), precis::io_error);
  REQUIRE_THROWS_WITH(MappedFile::open(dir.path()), Contains(dir.path().string()) && Contains("not a regular file"));
}

TEST_CASE("MappedFile is move-only and a move transfers the mapping", "[io][mapped_file]") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<MappedFile>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<MappedFile>);

  precis::test::TempDir dir;
  precis::test::write_file(dir / "a.bin", precis::test::counting_bytes(64));
  MappedFile a = MappedFile::open(dir / "a.bin");
  const std::byte* p = a.bytes().data();
  MappedFile b = std::move(a);
  REQUIRE(b.bytes().data() == p);
  REQUIRE(b.size() == 64);
  REQUIRE(a.bytes().empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  MappedFile c;
  c = std::move(b);
  REQUIRE(c.bytes().data() == p);
  REQUIRE(static_cast<unsigned>(c.bytes()[63]) == 63u);
}
