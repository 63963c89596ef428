// precis/models/model_loading.hpp — what every model loader shares: LoadOptions (context,
// sequences, threads), typed loading of small role tensors (norm gains, biases) with the named
// conversions a policy allows, the layer-count consistency check, and KV-cache sizing.
//
// Role tensors (core/precision_policy.hpp): a norm gain is role::norm_weight, a bias role::bias;
// both are declared in the activation dtype. A stored dtype that differs is accepted only through
// a named conversion, logged in the model's ConversionReport (io/conversion.hpp):
//   f32 policy    widen<bf16, f32>, widen<f16, f32>      exact
//   bf16 policy   narrow<f32, bf16>, narrow<f16, bf16>   rounds, as running an f32 checkpoint in
//                                                        bf16 does in every framework (HF rounds
//                                                        each parameter once at load)
// Anything else (an F64 gain, an integer tensor) is a dtype_error naming the tensor and both
// dtypes. Pinned roles (sinks, router bias) are f32 under every policy and take only widen.
#pragma once

#include <cctype>       // std::isdigit
#include <concepts>     // std::same_as
#include <functional>  // std::function
#include <cstddef>      // std::size_t
#include <algorithm>    // std::max
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::forward

#include <precis/core/dtype.hpp>             // f32, bf16, f16
#include <precis/core/error.hpp>             // config_error
#include <precis/core/precision_policy.hpp>  // PrecisionPolicy, role_dtype_t, is_pinned_role
#include <precis/io/any_tensor.hpp>          // io::AnyTensor
#include <precis/io/conversion.hpp>          // io::ConversionReport, widen, narrow
#include <precis/io/load.hpp>                // io::load_role, io::Loaded
#include <precis/weights/any_experts.hpp>     // AnyExpertStack
#include <precis/weights/any_weight.hpp>      // AnyWeight, activation_quantization
#include <precis/models/weight_source.hpp>   // WeightSource
#include <precis/nn/kv_index.hpp>            // PagedKvSize
#include <precis/nn/kv_format.hpp>          // KvCacheTypes

namespace precis::models {

// Load options whose types live with the weights (weights/): named here too, as LoadOptions' fields.
using precis::activation_quantization;
using precis::mxfp4_experts;
using precis::to_string;  // to_string(activation_quantization), beside the models' own overloads

/// Which backend a model runs its ops on (runtime/load_model.hpp constructs it).
enum class backend_kind {
  cpu,        ///< backends::Cpu: the xsimd + oneTBB kernels (the default)
  reference,  ///< backends::Reference: the scalar reference ops, single-threaded (checking, not speed)
  cuda,       ///< a CUDA backend (refused by builds without one, with a message)
};

[[nodiscard]] constexpr std::string_view to_string(backend_kind b) noexcept {
  return b == backend_kind::cpu ? "cpu" : b == backend_kind::reference ? "reference" : "cuda";
}

/// Which positions of a forward pass produce logits: every one (conformance, scoring), or only
/// the last (generation: a prefill of T tokens then costs one lm_head row instead of T).
enum class logits_rows {
  all,   ///< [T, vocab]
  last,  ///< [1, vocab]: the row of the last token
};

/// How a model is loaded: how long and how many sequences its KV cache holds, and threads.
struct LoadOptions {
  index_t max_context = 0;    ///< positions per sequence; 0: the model's context length
  index_t max_sequences = 1;  ///< sequences alive at once (decode_batch batches up to this many)
  index_t kv_page_size = 64;  ///< positions per KV-cache page
  int n_threads = 0;          ///< worker threads for the CPU kernels; 0: oneTBB's default
  /// Activations meeting block-quantized weights: exact f32 (default), or quantized to 8-bit
  /// blocks with integer dot products as ggml does (weights/any_weight.hpp).
  activation_quantization quantize_activations = activation_quantization::none;
  /// How the KV cache stores K and V rows (`--cache-type-k/-v`, nn/kv_format.hpp); unset halves
  /// are the compute dtype.
  KvCacheTypes cache_types = {};
  backend_kind backend = backend_kind::cpu;  ///< where the ops run (runtime/load_model.hpp)
  /// Device backends: called as weights reach the device (bytes uploaded, bytes the weight
  /// files hold), about every 1%; host backends read the mapping in place and never call it.
  std::function<void(std::size_t uploaded, std::size_t total)> on_upload = {};
};

/// `w`, adding its bytes to `copied` when the load had to copy it (a misaligned safetensors
/// tensor): ModelInfo::bytes_copied, counted before the weight is uploaded to its backend.
[[nodiscard]] inline AnyWeight counted(AnyWeight w, std::size_t& copied) {
  if (!w.is_zero_copy()) copied += w.file_bytes().size();
  return w;
}
[[nodiscard]] inline AnyExpertStack counted(AnyExpertStack s, std::size_t& copied) {
  if (!s.is_zero_copy()) copied += s.stored_bytes();
  return s;
}

/// `t` typed by its role under policy P, through the conversions the header comment lists.
template <class Role, PrecisionPolicy P, std::size_t Rank = 1>
[[nodiscard]] io::Loaded<role_dtype_t<Role, P>, Rank> load_role_tensor(const io::AnyTensor& t,
                                                                       io::ConversionReport& report) {
  using D = role_dtype_t<Role, P>;
  if constexpr (std::same_as<D, f32>) {
    return io::load_role<Role, P, Rank>(t, report, io::widen<bf16, f32>{}, io::widen<f16, f32>{});
  } else if constexpr (std::same_as<D, bf16>) {
    return io::load_role<Role, P, Rank>(t, report, io::narrow<f32, bf16>{}, io::narrow<f16, bf16>{});
  } else {
    static_assert(std::same_as<D, f16>, "role dtype must be an activation dtype");
    return io::load_role<Role, P, Rank>(t, report, io::narrow<f32, f16>{}, io::narrow<bf16, f16>{});
  }
}

/// A config that declares fewer layers than the file holds is wrong about the model: the unused
/// layers would be dropped silently. config_error naming the key, its value and a tensor of the
/// first extra layer. `prefix` is the layer prefix ("model.layers.", "blk.").
inline void check_layer_count(const WeightSource& w, std::string_view prefix, index_t n_layers, std::string_view key,
                              std::string_view config_source) {
  // Both ways, before anything is sized by n_layers: a config claiming 10^12 layers over a file
  // of two ended in a bare std::bad_alloc (robustness sweep), and one claiming fewer than the
  // file holds would silently drop layers.
  index_t max_layer = -1;
  for (const std::string& name : w.names()) {
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::size_t i = prefix.size();
    index_t layer = 0;
    bool digits = false;
    while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) != 0 && layer < (index_t{1} << 40)) {
      layer = layer * 10 + (name[i] - '0');
      digits = true;
      ++i;
    }
    if (!digits || i >= name.size() || name[i] != '.') continue;
    if (layer >= n_layers)
      fail<config_error>("[model] '", config_source, "' says ", key, " = ", n_layers, " but '", w.path().string(),
                         "' holds tensors of layer ", layer, " ('", name, "')");
    max_layer = std::max(max_layer, layer);
  }
  if (max_layer + 1 < n_layers)
    fail<config_error>("[model] '", config_source, "' says ", key, " = ", n_layers, " but '", w.path().string(), "' ",
                       max_layer < 0 ? std::string("holds no layer tensors ('") + std::string(prefix) + "0.…')"
                                     : "holds tensors of layers 0.." + std::to_string(max_layer) + " only",
                       "");
}

/// The context a model is loaded with: the option, or the model's own length; more than the
/// model's is refused (its positions would be outside what it was trained and checked for).
[[nodiscard]] inline index_t context_for(const LoadOptions& o, index_t model_context, std::string_view source) {
  if (o.max_context < 0)
    fail<config_error>("[model] max_context must be ≥ 0 (0: the model's own), got ", o.max_context);
  if (o.max_context > model_context)
    fail<config_error>("[model] max_context ", o.max_context, " exceeds the model's context length ", model_context,
                       " ('", source, "')");
  return o.max_context == 0 ? model_context : o.max_context;
}

/// A paged cache that holds `max_sequences` sequences of `context` positions each: pages are
/// never exhausted by a request that passed the context check.
[[nodiscard]] inline PagedKvSize kv_size_for(const LoadOptions& o, index_t context, index_t n_kv_heads,
                                             index_t head_dim) {
  if (o.max_sequences < 1 || o.kv_page_size < 1)
    fail<config_error>("[model] max_sequences and kv_page_size must be ≥ 1, got ", o.max_sequences, ", ",
                       o.kv_page_size);
  const index_t pages_per_seq = (context + o.kv_page_size - 1) / o.kv_page_size;
  return PagedKvSize{.n_kv_heads = n_kv_heads,
                     .head_dim = head_dim,
                     .page_size = o.kv_page_size,
                     .n_pages = pages_per_seq * o.max_sequences,
                     .max_sequences = o.max_sequences,
                     .max_append = context};
}

/// Whether the output projection is the embedding table. HF ties the head to the embedding when
/// config.json says tie_word_embeddings (a stored lm_head.weight is then not read: HF's tying
/// replaces it, and it shows in the unused-tensor list); GGUF has no flag, llama.cpp uses
/// token_embd when output.weight is absent, and the GGUF configs set tie_word_embeddings from
/// exactly that. An untied safetensors checkpoint without the tensor is a config_error. A tied
/// head is the embedding weight itself: one copy in the backend's memory, never two.
[[nodiscard]] inline bool ties_output_head(const WeightSource& w, std::string_view model, const std::string& source,
                                           bool tie_word_embeddings, const std::string& name) {
  if (!tie_word_embeddings && w.contains(name)) return false;
  if (!tie_word_embeddings && w.format() == weight_format::safetensors)
    fail<config_error>("[", model, "] '", source, "' says tie_word_embeddings = false but '", w.path().string(),
                       "' has no tensor '", name, "'");
  return true;
}

/// Models whose kernels take only exact activations refuse LoadOptions::quantize_activations
/// instead of ignoring it (a user asking for llama.cpp's arithmetic must not get another silently).
inline void check_exact_activations_only(const LoadOptions& o, std::string_view model) {
  PRECIS_CHECK(o.quantize_activations == activation_quantization::none, config_error, "[", model,
               "] quantized activations (", to_string(o.quantize_activations),
               ") are implemented for the Llama family only; this model runs with exact activations (none)");
}

}  // namespace precis::models
