// tests/fuzz/config_fuzz_check.hpp — the config.json fuzzer's check (fuzz_config_json.cpp and the
// seed replay test), apart from hostile_fuzz_checks.hpp because it loads whole models: it needs
// the model registry (precis_link_model_registry) and precis::cpu, which the other fuzzers do not.
#pragma once

#include <cstdint>     // std::int64_t
#include <filesystem>  // std::filesystem
#include <span>        // std::span
#include <vector>      // std::vector

#include "hostile_fuzz_checks.hpp"  // hostile_outcome, detail::scratch_dir, write_file, as_text

#include <precis/io/json.hpp>              // io::parse_json_text
#include <precis/models/gpt_oss.hpp>       // GptOssConfig
#include <precis/models/llama.hpp>         // LlamaConfig
#include <precis/models/model_config.hpp>  // HfConfig
#include <precis/models/qwen3_moe.hpp>     // Qwen3MoeConfig
#include <precis/runtime/load_model.hpp>   // models::load_model

namespace precis::test {

/// config.json interpretation: the bounded parser, then every architecture's reading of it, then
/// a whole-model load of a crafted directory (this config.json over the llama fixture's weights,
/// PRECIS_FIXTURES_DIR) and one forward pass — shape disagreements must be errors, not reads out
/// of bounds.
[[nodiscard]] inline hostile_outcome check_config_json(std::span<const std::byte> in) {
  namespace fs = std::filesystem;
  {
    const fs::path dir = detail::scratch_dir() / "model";
    fs::create_directories(dir);
    detail::write_file(dir / "config.json", detail::as_text(in));
    std::error_code ec;
    if (!fs::exists(dir / "model.safetensors"))
      fs::create_symlink(fs::path(PRECIS_FIXTURES_DIR) / "models" / "llama" / "model.safetensors", dir / "model.safetensors", ec);
    try {
      models::LoadOptions lo;
      lo.max_context = 8;
      const auto lm = models::load_model(dir, models::precision::f32, lo);
      const auto seq = lm->new_sequence();
      const std::vector<std::int64_t> ids{1, 2, 3};
      (void)lm->forward_last(seq, ids);
      lm->release(seq);
    } catch (const precis::error&) {
    }
  }
  bool any = false;
  try {
    const auto root = io::parse_json_text(detail::as_text(in), "config", "fuzz");
    const auto cfg = models::HfConfig::from_json(root, "fuzz/config.json");
    const auto attempt = [&](auto&& f) {
      try {
        f();
        any = true;
      } catch (const precis::error&) {
      }
    };
    attempt([&] { (void)models::LlamaConfig::from_hf(cfg); });
    attempt([&] { (void)models::Qwen3MoeConfig::from_hf(cfg); });
    attempt([&] { (void)models::GptOssConfig::from_hf(cfg); });
  } catch (const precis::error&) {
    return hostile_outcome::rejected;
  }
  return any ? hostile_outcome::accepted : hostile_outcome::rejected;
}

}  // namespace precis::test
