// libFuzzer target: check_config_json (config_fuzz_check.hpp). Every input is accepted or rejected with
// a precis::error; anything else (another exception, a crash, a sanitizer report) is a bug.
// Seeds: tests/fuzz/corpus/config_json/ (tools/make_fuzz_seeds.py); ctest fuzz.config_json runs it for
// PRECIS_FUZZ_SECONDS; the replay test runs every seed in every build.
#include <cstddef>  // std::byte, std::size_t
#include <cstdint>  // std::uint8_t
#include <span>     // std::span

#include "config_fuzz_check.hpp"  // precis::test::check_config_json

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)precis::test::check_config_json(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}
