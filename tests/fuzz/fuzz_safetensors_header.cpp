// libFuzzer target for the safetensors reader (precis/io/safetensors.hpp).
//
// A checkpoint is untrusted input; SafetensorsFile::parse must turn every malformed file into a
// precis::format_error. Anything else — another exception, a crash, an ASan/UBSan report, or an
// accepted file that breaks the format's invariants (safetensors_fuzz_check.hpp) — is a bug.
//
// Built only with -DPRECIS_FUZZ=ON and clang (tests/fuzz/CMakeLists.txt); the committed seed
// corpus is tests/fuzz/corpus/safetensors/ (tests/fuzz/make_corpus.py), and ctest runs
// `fuzz.safetensors_header` for PRECIS_FUZZ_SECONDS.
#include <cstddef>  // std::byte, std::size_t
#include <cstdint>  // std::uint8_t
#include <span>     // std::span

#include "safetensors_fuzz_check.hpp"  // precis::test::check_safetensors_input

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)precis::test::check_safetensors_input(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}
