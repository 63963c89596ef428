// precis/runtime/load_model.hpp — load_model(path, precision, options): opens a checkpoint
// directory, a .safetensors file or a .gguf file, picks the model from the file's own
// declaration and the backend from LoadOptions::backend, and returns the model behind the
// CausalLM interface (models/causal_lm.hpp). This is where models meet backends: the one header
// that names both (models/ name no backend; backends/ include no model).
//
// ===============================================================================================
//  REGISTERING A MODEL: add one row to `model_registry()` below, and the model header's include.
//  A row names the model, the strings that select it, and its loader:
//    {"llama", {"llama"}, {"LlamaForCausalLM"}, {"llama"}, PRECIS_MODEL_LOADER(load_llama)},
//     name     config.json    config.json         GGUF                  loader: a function
//              model_type     architectures[]     general.architecture  template (ModelFiles&,
//                                                                        precision, const LoadOptions&,
//                                                                        Backend) of the model header
//  The loader reads its config (files.config for safetensors, files.weights.gguf() for GGUF),
//  loads its weights from files.weights onto the backend and returns CausalLMFor<Model> (see
//  llama.hpp's load_llama for the pattern). Nothing else needs to change: the error for an
//  unknown model lists every row automatically, and every row runs on every backend.
//
//  REGISTERING A BACKEND: one case in detail::on_backend below.
// ===============================================================================================
//
// Selection: GGUF files by `general.architecture`; HF checkpoints by config.json's top-level
// `model_type`, then by `architectures` (transformers writes both; either may be missing in
// hand-made configs). A file naming no registered model is a config_error that quotes the
// value found and lists the supported ones.
#pragma once

#include <algorithm>    // std::find
#include <filesystem>   // std::filesystem::path, file_size, directory_iterator
#include <system_error> // std::error_code
#include <memory>       // std::unique_ptr
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <vector>       // std::vector

#include <precis/backends/cpu/backend.hpp>        // backends::Cpu
#include <precis/backends/reference/backend.hpp>  // backends::Reference
#if defined(PRECIS_WITH_CUDA)
#include <precis/backends/cuda/backend.hpp>       // backends::Cuda (link precis::cuda)
#endif
#include <precis/core/error.hpp>            // config_error
#include <precis/io/checkpoint_dtype.hpp>  // io::resolve_checkpoint_dtype
#include <precis/models/causal_lm.hpp>      // CausalLM, ModelFiles, precision
#include <precis/models/llama.hpp>          // load_llama
#include <precis/models/gpt_oss.hpp>        // load_gpt_oss
#include <precis/models/qwen3_moe.hpp>      // load_qwen3_moe
#include <precis/models/qwen3_omni_thinker.hpp>  // load_qwen3_omni_thinker
#include <precis/models/model_config.hpp>   // HfConfig
#include <precis/models/model_loading.hpp>  // LoadOptions
#include <precis/models/weight_source.hpp>  // WeightSource

namespace precis::models {

namespace detail {
/// Calls f(backend) with the backend LoadOptions::backend names, constructed from the options.
/// The bytes of the weight files of `w` (a GGUF file, or a checkpoint directory's .safetensors).
[[nodiscard]] inline std::size_t weight_file_bytes(const WeightSource& w) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(w.path())) return static_cast<std::size_t>(fs::file_size(w.path(), ec));
  std::size_t n = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(w.path(), ec))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") n += static_cast<std::size_t>(e.file_size(ec));
  return n;
}

template <class F>
[[nodiscard]] std::unique_ptr<CausalLM> on_backend(const LoadOptions& o, const ModelFiles& files, F&& f) {
  switch (o.backend) {
    case backend_kind::cpu: return f(backends::Cpu(o.n_threads));
    case backend_kind::reference: return f(backends::Reference(o.n_threads));
    case backend_kind::cuda:
#if defined(PRECIS_WITH_CUDA)
    {
      backends::Cuda be(o.n_threads);
      // Does the model fit? Said before the first upload, with both numbers.
      const std::size_t bytes = weight_file_bytes(files.weights);
      be.check_fits(bytes, "'" + files.weights.path().string() + "'");
      if (o.on_upload) be.report_uploads(bytes, o.on_upload);
      return f(std::move(be));
    }
#else
      (void)files;
      break;
#endif
  }
  fail<config_error>("[load_model] backend '", to_string(o.backend),
                     "': this build has no CUDA backend for models (backends: cpu, reference; configure with a CUDA "
                     "compiler and define PRECIS_WITH_CUDA, linking precis::cuda)");
}
}  // namespace detail

/// A registry row's loader: the model header's `load_x<Backend>`, on the backend of the options.
#define PRECIS_MODEL_LOADER(load_x)                                                           \
  [](ModelFiles& files, precision p, const LoadOptions& o) -> std::unique_ptr<CausalLM> {    \
    return detail::on_backend(o, files, [&](auto backend) { return load_x(files, p, o, std::move(backend)); }); \
  }

/// One loadable model.
struct ModelEntry {
  std::string_view name;                              ///< what info().architecture says
  std::vector<std::string_view> hf_model_types;       ///< config.json `model_type` values
  std::vector<std::string_view> hf_architectures;     ///< config.json `architectures` entries
  std::vector<std::string_view> gguf_architectures;   ///< GGUF `general.architecture` values
  std::unique_ptr<CausalLM> (*load)(ModelFiles&, precision, const LoadOptions&);
};

/// Every model load_model knows. THE place to register one (see the header comment).
///
/// The registry's loaders instantiate every model × policy × backend × weight format, which is what makes
/// a translation unit that calls load_model slow to compile (~2 min at -O3 with g++ on 2 cores).
/// precis' own build compiles it once per flag set: its tools and tests define
/// PRECIS_MODELS_COMPILED_SEPARATELY, which turns this into a declaration, and link a library
/// whose one source defines PRECIS_MODELS_DEFINE_REGISTRY before including this header
/// (src/model_registry.cpp, cmake/PrecisModelRegistry.cmake). The library must be compiled
/// with the same ISA flags as its users, because the CPU kernels pick their bodies from the
/// translation unit's ISA (backends/cpu/arch.hpp). Code that includes precis without either
/// macro gets the inline definition below, as before.
#if defined(PRECIS_MODELS_COMPILED_SEPARATELY) && !defined(PRECIS_MODELS_DEFINE_REGISTRY)
[[nodiscard]] std::span<const ModelEntry> model_registry();
#else
#if defined(PRECIS_MODELS_DEFINE_REGISTRY)
[[nodiscard]] std::span<const ModelEntry> model_registry() {
#else
[[nodiscard]] inline std::span<const ModelEntry> model_registry() {
#endif
  static const std::vector<ModelEntry> registry = {
      {"llama", {"llama"}, {"LlamaForCausalLM"}, {"llama"}, PRECIS_MODEL_LOADER(load_llama)},
      {"qwen3_moe", {"qwen3_moe"}, {"Qwen3MoeForCausalLM"}, {"qwen3moe"}, PRECIS_MODEL_LOADER(load_qwen3_moe)},
      {"gpt_oss", {"gpt_oss"}, {"GptOssForCausalLM"}, {"gpt-oss"}, PRECIS_MODEL_LOADER(load_gpt_oss)},
      {"qwen3_omni_thinker", {"qwen3_omni_moe", "qwen3_omni_moe_thinker"}, {"Qwen3OmniMoeForConditionalGeneration"},
       {"qwen3vlmoe"}, PRECIS_MODEL_LOADER(load_qwen3_omni_thinker)},
  };
  return registry;
}
#endif

namespace detail {
[[nodiscard]] inline std::string supported_models() {
  std::string s;
  for (const ModelEntry& e : model_registry()) {
    s += s.empty() ? "" : "; ";
    s += std::string(e.name) + " (model_type";
    for (const auto m : e.hf_model_types) s += " \"" + std::string(m) + "\"";
    s += ", GGUF";
    for (const auto g : e.gguf_architectures) s += " \"" + std::string(g) + "\"";
    s += ")";
  }
  return s;
}

[[nodiscard]] inline bool listed(const std::vector<std::string_view>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}
}  // namespace detail

/// The registry row for the files, or config_error listing the supported models.
[[nodiscard]] inline const ModelEntry& select_model(const ModelFiles& files) {
  if (const io::GgufFile* g = files.weights.gguf()) {
    const std::string arch = g->architecture();
    for (const ModelEntry& e : model_registry())
      if (detail::listed(e.gguf_architectures, arch)) return e;
    fail<config_error>("[load_model] '", files.weights.path().string(), "': general.architecture \"", arch,
                       "\" is not a supported model; supported: ", detail::supported_models());
  }
  if (!files.config)
    fail<config_error>("[load_model] '", files.weights.path().string(),
                       "' has no config.json, so the model cannot be identified; supported: ",
                       detail::supported_models());
  const std::string type = files.config->model_type();
  for (const ModelEntry& e : model_registry())
    if (!type.empty() && detail::listed(e.hf_model_types, type)) return e;
  const std::vector<std::string> archs = files.config->architectures();
  for (const ModelEntry& e : model_registry())
    for (const auto& a : archs)
      if (detail::listed(e.hf_architectures, a)) return e;
  std::string found = type.empty() ? std::string("no model_type") : "model_type \"" + type + "\"";
  for (const auto& a : archs) found += ", architectures \"" + a + "\"";
  fail<config_error>("[load_model] '", files.config->source(), "': ", found, " is not a supported model; supported: ",
                     detail::supported_models());
}

/// Opens `path` (checkpoint directory, .safetensors or .gguf), identifies the model and loads it
/// under the `precision` policy.
[[nodiscard]] inline std::unique_ptr<CausalLM> load_model(const std::filesystem::path& path, precision p,
                                                          const LoadOptions& options = {}) {
  ModelFiles files{WeightSource::open(path), std::nullopt};
  if (const io::Checkpoint* c = files.weights.checkpoint(); c != nullptr && c->config()) {
    files.config = HfConfig::from_json(*c->config(), files.weights.config_source());
    // The tensor headers against config.json's torch_dtype / dtype, and F16 mixed with BF16: a
    // config_error naming a tensor and both dtypes (io/checkpoint_dtype.hpp, robustness sweep).
    (void)io::resolve_checkpoint_dtype(*c);
  }
  return select_model(files).load(files, p, options);
}

}  // namespace precis::models
