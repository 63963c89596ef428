// JSON files from strangers (io/json.hpp): nesting, size and non-regular files are refused before
// anything recursive runs, and messages quote values in bounded excerpts. Regression tests for the
// robustness sweep's stack overflow (config.json / tokenizer.json nested 100 000 deep).
#include <string>

#include <catch2/catch.hpp>

#include <precis/io/json.hpp>
#include <precis/models/model_config.hpp>
#include <precis/text/hf_vocab.hpp>

#include "io_test_support.hpp"

namespace {

std::string nested(std::size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

}  // namespace

TEST_CASE("JSON nested 100000 deep in config.json and tokenizer.json is a format_error, not a stack overflow",
          "[io][json][robustness]") {
  precis::test::TempDir dir;
  const std::string deep = "{\"architectures\": " + nested(100000) + "}";
  precis::test::write_text(dir / "config.json", deep);
  precis::test::write_text(dir / "tokenizer.json", deep);
  try {
    (void)precis::models::HfConfig::open(dir / "config.json");
    FAIL("no error");
  } catch (const precis::format_error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("deeper than 128 levels"));
    CHECK_THAT(msg, Catch::Contains("config.json"));
    CHECK_THAT(msg, Catch::Contains("line 1, column 146"));  // the 128th '[' after `{"architectures": `
    CHECK(msg.size() < 400);
  }
  CHECK_THROWS_WITH(precis::text::vocab_from_hf(dir.path()), Catch::Contains("deeper than 128 levels"));
  // Objects count as well as arrays.
  CHECK_THROWS_AS(precis::io::parse_json_text("{\"a\":" + std::string(5000, '{') + std::string(5000, '}') + "}", "t", "s"),
                  precis::format_error);
}

TEST_CASE("JSON at exactly the depth limit parses; one deeper does not", "[io][json][robustness]") {
  precis::io::JsonLimits lim;
  lim.max_depth = 16;
  CHECK(precis::io::parse_json_text(nested(16), "t", "s", lim).is_array());
  CHECK_THROWS_WITH(precis::io::parse_json_text(nested(17), "t", "s", lim),
                    Catch::Contains("deeper than 16 levels") && Catch::Contains("column 17"));
  // Brackets inside strings are text, not nesting (also for the position report).
  CHECK(precis::io::parse_json_text("[\"" + std::string(40, '[') + "\\\"[\"]", "t", "s", lim).size() == 1);
}

TEST_CASE("JSON files: not a regular file, too large, unreadable are io/format errors naming the file",
          "[io][json][robustness]") {
  precis::test::TempDir dir;
  CHECK_THROWS_WITH(precis::io::read_json_file("/dev/zero", "config"),
                    Catch::Contains("/dev/zero") && Catch::Contains("not a regular file"));
  CHECK_THROWS_WITH(precis::io::read_json_file(dir.path(), "config"), Catch::Contains("not a regular file"));
  CHECK_THROWS_WITH(precis::io::read_json_file(dir / "absent.json", "config"), Catch::Contains("no such file"));
  precis::test::write_text(dir / "big.json", "[" + std::string(5000, ' ') + "1]");
  precis::io::JsonLimits lim;
  lim.max_bytes = 4096;
  CHECK_THROWS_WITH(precis::io::read_json_file(dir / "big.json", "config", lim),
                    Catch::Contains("5003 bytes") && Catch::Contains("at most 4096"));
  CHECK(precis::io::read_json_file(dir / "big.json", "config").at(0) == 1);
  precis::test::write_text(dir / "bad.json", "{\"a\": [1, 2,]}");
  CHECK_THROWS_WITH(precis::io::read_json_file(dir / "bad.json", "config"),
                    Catch::Contains("bad.json") && Catch::Contains("not valid JSON"));
}

TEST_CASE("json_excerpt keeps error messages bounded", "[io][json][robustness]") {
  const nlohmann::json long_string = std::string(10000, 'x');
  CHECK(precis::io::json_excerpt(long_string).size() <= 124);
  nlohmann::json big = nlohmann::json::array();
  for (int i = 0; i < 100000; ++i) big.push_back(i);
  CHECK(precis::io::json_excerpt(big) == "[… 100000 elements]");
  CHECK(precis::io::json_excerpt(nlohmann::json{{"a", 1}}) == "{\"a\":1}");
  // A config value of the wrong type is quoted, cut.
  precis::test::TempDir dir;
  precis::test::write_text(dir / "config.json", "{\"hidden_size\": \"" + std::string(100000, 'y') + "\"}");
  const auto cfg = precis::models::HfConfig::open(dir / "config.json");
  try {
    (void)cfg.get<precis::index_t>("hidden_size");
    FAIL("no error");
  } catch (const precis::config_error& e) {
    CHECK(std::string(e.what()).size() < 300);
  }
}
