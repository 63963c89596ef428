// libFuzzer target: check_tokenizer_json (hostile_fuzz_checks.hpp). Every input is accepted or rejected with
// a precis::error; anything else (another exception, a crash, a sanitizer report) is a bug.
// Seeds: tests/fuzz/corpus/tokenizer_json/ (tools/make_fuzz_seeds.py); ctest fuzz.tokenizer_json runs it for
// PRECIS_FUZZ_SECONDS; the replay test runs every seed in every build.
#include <cstddef>  // std::byte, std::size_t
#include <cstdint>  // std::uint8_t
#include <span>     // std::span

#include "hostile_fuzz_checks.hpp"  // precis::test::check_tokenizer_json

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)precis::test::check_tokenizer_json(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}
