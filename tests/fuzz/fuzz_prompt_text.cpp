// libFuzzer target: check_prompt_text (hostile_fuzz_checks.hpp) over the tiny_smollm tokenizer
// fixture — a stranger's prompt: rejected if not UTF-8, else it round-trips exactly and, as chat
// turns, never becomes a control token. Seeds: tests/fuzz/corpus/prompt_text/.
#include <cstddef>     // std::byte, std::size_t
#include <cstdint>     // std::uint8_t
#include <filesystem>  // std::filesystem::path
#include <span>        // std::span

#include "hostile_fuzz_checks.hpp"  // precis::test::check_prompt_text

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const precis::text::Tokenizer tok =
      precis::text::Tokenizer::from_hf(std::filesystem::path(PRECIS_FIXTURES_DIR) / "tokenizer" / "tiny_smollm");
  (void)precis::test::check_prompt_text(tok, std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}
