// The tools' flag parsing (generate/cli.hpp): a value parses completely and lies in its range, or
// the usage_error names the flag, quotes the value and says what was expected.
#include <catch2/catch.hpp>  // TEST_CASE, CHECK, REQUIRE

#include <cstdint>  // std::uint64_t
#include <string>   // std::string

#include <precis/generate/cli.hpp>  // parse_in, parse_number, usage_error

namespace pg = precis::generate;

namespace {
template <class F>
std::string usage_message(F&& f) {
  try {
    f();
  } catch (const pg::usage_error& e) {
    return e.what;
  }
  return "(no usage_error)";
}
}  // namespace

TEST_CASE("parse_in accepts whole numbers inside the range", "[generate][cli]") {
  CHECK(pg::parse_in<int>("--threads", "4", 1, 4096, "1..4096") == 4);
  CHECK(pg::parse_in<int>("--threads", "4096", 1, 4096, "1..4096") == 4096);
  CHECK(pg::parse_in<float>("--top-p", "0.95", 0.0f, 1.0f, "0 < p <= 1") == 0.95f);
  CHECK(pg::parse_number<std::uint64_t>("--seed", "18446744073709551615") == 18446744073709551615ull);
}

TEST_CASE("parse_in names the flag, the value and the expected range", "[generate][cli]") {
  CHECK(usage_message([] { (void)pg::parse_in<int>("--threads", "0", 1, 4096, "1..4096"); }) ==
        "--threads 0 is out of range: expected 1..4096 (an integer from 1 to 4096)");
  CHECK(usage_message([] { (void)pg::parse_in<float>("--top-p", "1.5", 0.0f, 1.0f, "0 < p <= 1 (1 = off)"); }) ==
        "--top-p 1.5 is out of range: expected 0 < p <= 1 (1 = off)");
  // NaN compares false with everything: it must not slip through a range check
  CHECK(usage_message([] { (void)pg::parse_in<float>("--temp", "nan", 0.0f, 10.0f, ">= 0"); }) ==
        "--temp nan is out of range: expected >= 0");
}

TEST_CASE("parse_in: an integer flag given a huge, decimal or exponent value reports its range",
          "[generate][cli][robustness]") {
  constexpr int imax = 2147483647;
  CHECK(usage_message([] { (void)pg::parse_in<int>("-n", "1e12", -1, imax, "-1 (no limit) or >= 0"); }) ==
        "-n 1e12 is out of range: expected -1 (no limit) or >= 0 (an integer from -1 to 2147483647)");
  CHECK(usage_message([] { (void)pg::parse_in<int>("-n", "99999999999", -1, imax, ">= 0"); }) ==
        "-n 99999999999 is out of range: expected >= 0 (an integer from -1 to 2147483647)");
  CHECK(usage_message([] { (void)pg::parse_in<int>("-n", "2.5", -1, imax, ">= 0"); }) ==
        "-n 2.5 is not a whole number: expected >= 0 (an integer from -1 to 2147483647)");
  CHECK(usage_message([] { (void)pg::parse_in<int>("-n", "12x", -1, imax, ">= 0"); }) == "-n expects an integer, got '12x'");
  CHECK(pg::parse_in<int>("-n", "-1", -1, imax, ">= 0") == -1);
}

TEST_CASE("parse_number rejects partial, empty and out-of-type values", "[generate][cli]") {
  CHECK(usage_message([] { (void)pg::parse_number<int>("-n", "12x"); }) == "-n expects an integer, got '12x'");
  CHECK(usage_message([] { (void)pg::parse_number<int>("-n", ""); }) == "-n expects an integer, got ''");
  CHECK(usage_message([] { (void)pg::parse_number<float>("--temp", "warm"); }) ==
        "--temp expects a number, got 'warm'");
  CHECK(usage_message([] { (void)pg::parse_number<std::uint64_t>("--seed", "-1"); }) ==
        "--seed expects an integer >= 0, got '-1'");
  CHECK(usage_message([] { (void)pg::parse_number<int>("-c", "99999999999"); }) ==
        "-c expects an integer, got '99999999999'");
}
