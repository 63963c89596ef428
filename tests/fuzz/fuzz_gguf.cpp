// libFuzzer target for the GGUF reader (precis/io/gguf.hpp) and the block-tensor views built on
// it (precis/io/quant_load.hpp).
//
// A model file is untrusted input; GgufFile::parse must turn every malformed file into a
// precis::format_error. Anything else — another exception, a crash, an ASan/UBSan report, or an
// accepted file that breaks the reader's promises (gguf_fuzz_check.hpp) — is a bug.
//
// Built only with -DPRECIS_FUZZ=ON and clang (tests/fuzz/CMakeLists.txt); the committed seed
// corpus is tests/fuzz/corpus/gguf/ (tools/make_gguf_fixtures.py), and ctest runs `fuzz.gguf`
// for PRECIS_FUZZ_SECONDS.
#include <cstddef>  // std::byte, std::size_t
#include <cstdint>  // std::uint8_t
#include <span>     // std::span

#include "gguf_fuzz_check.hpp"  // precis::test::check_gguf_input

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)precis::test::check_gguf_input(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}
