// precis/models/causal_lm.hpp — CausalLM: the small type-erased interface command-line tools
// use to run any model, whatever its architecture and precision policy.
//
//   std::unique_ptr<CausalLM> lm = load_model(path, precision::bf16, {});   // runtime/load_model.hpp
//   SequenceId s = lm->new_sequence();
//   Tensor<f32, 2> logits = lm->forward(s, prompt);        // prefill: [T, vocab]
//   Tensor<f32, 2> next = lm->forward(s, {&token, 1});     // one decode step: [1, vocab]
//   Tensor<f32, 2> last = lm->forward_last(s, prompt);     // prefill, last row only: [1, vocab]
//   Tensor<f32, 2> rows = lm->decode_batch(seqs, tokens);  // B sequences, one token each: [B, vocab]
//   SampleOutcome o = lm->forward_last_sampled(s, prompt, chain.request(history));  // sampled on the backend
//   lm->set_expert_selector(hook);                         // MoE models: nn/layer_expert_selector.hpp
//
// The typed models (Llama<Policy, Backend>, …) stay typed: CausalLMFor<Model> wraps one behind
// virtual calls. Each call runs in the model's backend's execution context (models/decoder.hpp:
// the CPU backend's own oneTBB task_arena, so LoadOptions::n_threads limits the threads of that
// model only, with no process-wide global_control). Token ids cross the
// interface as int64 (the width of HF's `input_ids`), logits always as f32 [rows, vocab].
//
// A model class plugs in by providing (checked by the `TypedCausalLM` concept):
//   KvSeqId new_sequence();  void release(KvSeqId);  index_t length(KvSeqId) const;
//   Tensor<f32, 2> forward(KvSeqId, std::span<const std::int64_t>);
//   Tensor<f32, 2> decode_batch(std::span<const KvSeqId>, std::span<const std::int64_t>);
// and optionally forward(KvSeqId, tokens, logits_rows) (else forward_last computes every row and
// keeps the last) and forward(KvSeqId, tokens, TensorView<const i64, 2> positions [3, T]) for
// MRoPE models, and set_expert_selector(LayerExpertSelector) for MoE models (a model without it
// refuses a non-empty hook). A model without the positions overload accepts 3-D positions only
// when all three rows are the plain positions length(seq) + t (text-only input, where MRoPE is
// 1-D RoPE, model-semantics §1c).
#pragma once

#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t
#include <map>          // std::map
#include <memory>       // std::unique_ptr
#include <optional>     // std::optional
#include <sstream>      // std::ostringstream
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include <precis/core/dtype.hpp>            // f32, i64
#include <precis/core/error.hpp>            // config_error, shape_error
#include <precis/core/tensor.hpp>           // Tensor
#include <precis/models/model_config.hpp>   // HfConfig
#include <precis/models/model_loading.hpp>  // LoadOptions
#include <precis/models/weight_source.hpp>  // WeightSource, weight_format
#include <precis/nn/kv_format.hpp>          // KvCacheFormat
#include <precis/nn/kv_index.hpp>           // KvSeqId
#include <precis/nn/layer_expert_selector.hpp>  // LayerExpertSelector
#include <precis/nn/sampling.hpp>   // SampleRequest, SampleOutcome, sample_rows

namespace precis::models {

/// The precision policy a model runs under, chosen at run time by a tool.
enum class precision {
  f32,   ///< f32_policy: f32 activations and KV cache (the reference path)
  bf16,  ///< bf16_policy: bf16 activations and KV cache, f32 accumulation
};

[[nodiscard]] constexpr std::string_view to_string(precision p) noexcept { return p == precision::f32 ? "f32" : "bf16"; }

/// "f32" / "bf16" → precision; nullopt for anything else.
[[nodiscard]] inline std::optional<precision> parse_precision(std::string_view s) noexcept {
  if (s == "f32") return precision::f32;
  if (s == "bf16") return precision::bf16;
  return std::nullopt;
}

/// A sequence of a loaded model (a slot of its KV cache; stale once released).
using SequenceId = KvSeqId;


/// What was loaded, for `--info`-style output and for tests.
struct ModelInfo {
  std::string architecture;                       ///< "llama", …
  std::string source;                             ///< the path given to load_model
  weight_format format = weight_format::safetensors;
  precision compute = precision::f32;
  activation_quantization quantize_activations = activation_quantization::none;
  index_t n_layers = 0;
  index_t vocab_size = 0;
  index_t hidden_size = 0;
  index_t n_experts = 0;                          ///< per MoE layer (0: a dense model)
  index_t n_experts_per_token = 0;                ///< top-k of the routing (0: a dense model)
  index_t context_length = 0;                     ///< positions per sequence in this load
  index_t model_context_length = 0;               ///< what the config declares
  index_t max_sequences = 0;
  std::size_t n_parameters = 0;                   ///< elements of every tensor the model reads
  std::map<std::string, std::size_t> weight_formats;  ///< stored dtype → number of tensors
  std::size_t bytes_mapped = 0;                   ///< size of the mapped weight files
  std::size_t bytes_copied = 0;                   ///< weight bytes that had to be copied (misaligned)
  std::size_t kv_cache_bytes = 0;
  KvCacheFormat kv_format = {};                   ///< how K and V rows are stored
  std::size_t kv_bytes_per_token = 0;             ///< cache bytes one context position adds (full layers)
  std::string rope;                               ///< RopeSpec::describe()
  std::string conversions;                        ///< the ConversionReport, one line per conversion
  std::vector<std::string> unused_tensors;        ///< in the file(s), never read

  [[nodiscard]] std::string describe() const {
    std::ostringstream os;
    os << "model        " << architecture << " (" << to_string(format) << ", '" << source << "')\n"
       << "precision    " << to_string(compute) << " activations, KV cache " << kv_format.describe()
       << (quantize_activations == activation_quantization::none ? "" : ", q8 activations for block-quantized weights")
       << "\n"
       << "shape        " << n_layers << " layers, hidden " << hidden_size << ", vocab " << vocab_size << ", "
       << n_parameters << " parameters";
    if (n_experts > 0) os << ", " << n_experts << " experts per MoE layer, top-" << n_experts_per_token;
    os << "\n"
       << "context      " << context_length << " positions (model: " << model_context_length << "), "
       << max_sequences << " sequence(s)\n"
       << "rope         " << rope << "\n"
       << "weights      ";
    bool first = true;
    for (const auto& [fmt, n] : weight_formats) {
      os << (first ? "" : ", ") << n << " × " << fmt;
      first = false;
    }
    os << "\nmemory       " << bytes_mapped << " bytes mapped, " << bytes_copied << " bytes copied, "
       << kv_cache_bytes << " bytes of KV cache (" << kv_bytes_per_token << " per context token)\n";
    if (!conversions.empty()) os << "conversions\n" << conversions;
    if (!unused_tensors.empty()) {
      os << "unused       " << unused_tensors.size() << " tensor(s):";
      for (std::size_t i = 0; i < unused_tensors.size() && i < 8; ++i) os << " '" << unused_tensors[i] << "'";
      if (unused_tensors.size() > 8) os << " …";
      os << "\n";
    }
    return os.str();
  }
};

/// The KV cache figures of ModelInfo from a model's cache: its bytes, its formats and the bytes
/// one more context position costs (the full-attention layers; sliding rings are fixed-size).
template <class Cache>
void record_kv_cache(ModelInfo& info, const Cache& cache) {
  info.kv_cache_bytes = cache.bytes();
  info.kv_format = cache.format();
  index_t full = 0;
  for (index_t l = 0; l < cache.n_layers(); ++l) full += cache.window(l) == 0 ? 1 : 0;
  info.kv_bytes_per_token = cache.bytes_per_position() * static_cast<std::size_t>(full);
}

/// The interface tools program against.
class CausalLM {
 public:
  virtual ~CausalLM() = default;

  /// A new, empty sequence (range_error when max_sequences are live).
  [[nodiscard]] virtual SequenceId new_sequence() = 0;
  /// Frees a sequence's KV-cache pages; its id becomes stale.
  virtual void release(SequenceId seq) = 0;
  /// Tokens cached for `seq` (the position of its next token).
  [[nodiscard]] virtual index_t length(SequenceId seq) const = 0;

  /// Runs `tokens` [T] of `seq` (prefill when T > 1, one decode step when T = 1), appending to
  /// its KV cache. Returns logits f32 [T, vocab].
  [[nodiscard]] virtual Tensor<f32, 2> forward(SequenceId seq, std::span<const std::int64_t> tokens) = 0;

  /// As forward(seq, tokens), returning only the last token's logits [1, vocab] (generation).
  [[nodiscard]] virtual Tensor<f32, 2> forward_last(SequenceId seq, std::span<const std::int64_t> tokens) = 0;

  /// As forward(seq, tokens), with explicit MRoPE positions [3, T] (rows t, h, w).
  [[nodiscard]] virtual Tensor<f32, 2> forward(SequenceId seq, std::span<const std::int64_t> tokens,
                                               TensorView<const i64, 2> positions) = 0;

  /// One decode step for several sequences: tokens[b] continues seqs[b]. Returns [B, vocab].
  [[nodiscard]] virtual Tensor<f32, 2> decode_batch(std::span<const SequenceId> seqs,
                                                    std::span<const std::int64_t> tokens) = 0;

  /// As forward_last, sampling the last row on the model's backend (nn/sampling.hpp): a device
  /// backend returns only the token id. The outcome names the first NaN/+inf logit instead of a
  /// token when there is one.
  [[nodiscard]] virtual sampling::SampleOutcome forward_last_sampled(SequenceId seq, std::span<const std::int64_t> tokens,
                                                                     const sampling::SampleRequest& request) = 0;

  /// As decode_batch, sampling row b with requests[b] on the model's backend.
  [[nodiscard]] virtual std::vector<sampling::SampleOutcome> decode_batch_sampled(
      std::span<const SequenceId> seqs, std::span<const std::int64_t> tokens,
      std::span<const sampling::SampleRequest> requests) = 0;

  /// Installs an expert-selection hook on every MoE layer (nn/layer_expert_selector.hpp); an
  /// empty one restores the model's own routing. config_error for a model without experts.
  virtual void set_expert_selector(LayerExpertSelector selector) = 0;

  [[nodiscard]] virtual const ModelInfo& info() const = 0;
};

/// What a typed model provides to be wrapped (see the header comment).
template <class M>
concept TypedCausalLM = requires(M& m, const M& cm, KvSeqId s, std::span<const std::int64_t> t,
                                 std::span<const KvSeqId> ss) {
  { m.new_sequence() } -> std::same_as<KvSeqId>;
  m.release(s);
  { cm.length(s) } -> std::same_as<index_t>;
  { m.forward(s, t) } -> std::same_as<Tensor<f32, 2>>;
  { m.decode_batch(ss, t) } -> std::same_as<Tensor<f32, 2>>;
};

/// The model can skip the lm_head rows it is not asked for.
template <class M>
concept SelectsLogitsRows = requires(M& m, KvSeqId s, std::span<const std::int64_t> t) {
  { m.forward(s, t, logits_rows::last) } -> std::same_as<Tensor<f32, 2>>;
};

/// The model takes MRoPE positions itself.
template <class M>
concept TakesMropePositions = requires(M& m, KvSeqId s, std::span<const std::int64_t> t, TensorView<const i64, 2> p) {
  { m.forward(s, t, p) } -> std::same_as<Tensor<f32, 2>>;
};

/// The model samples on its backend (models/decoder.hpp gives every Decoder-based model this).
template <class M>
concept SamplesOnBackend = requires(M& m, KvSeqId s, std::span<const std::int64_t> t, std::span<const KvSeqId> ss,
                                    const sampling::SampleRequest& r, std::span<const sampling::SampleRequest> rs) {
  { m.forward_sampled(s, t, r) } -> std::same_as<sampling::SampleOutcome>;
  { m.decode_batch_sampled(ss, t, rs) } -> std::same_as<std::vector<sampling::SampleOutcome>>;
};

/// The model routes tokens to experts and takes a selection hook.
template <class M>
concept TakesExpertSelector = requires(M& m, LayerExpertSelector s) { m.set_expert_selector(std::move(s)); };

/// CausalLM over a typed model (which runs each call in its backend's context).
template <TypedCausalLM Model>
class CausalLMFor final : public CausalLM {
 public:
  CausalLMFor(Model model, ModelInfo info) : model_(std::move(model)), info_(std::move(info)) {}

  [[nodiscard]] SequenceId new_sequence() override { return model_.new_sequence(); }
  void release(SequenceId seq) override { model_.release(seq); }
  [[nodiscard]] index_t length(SequenceId seq) const override { return model_.length(seq); }

  [[nodiscard]] Tensor<f32, 2> forward(SequenceId seq, std::span<const std::int64_t> tokens) override {
    return model_.forward(seq, tokens);
  }

  [[nodiscard]] Tensor<f32, 2> forward_last(SequenceId seq, std::span<const std::int64_t> tokens) override {
    if constexpr (SelectsLogitsRows<Model>) {
      return model_.forward(seq, tokens, logits_rows::last);
    } else {
      const Tensor<f32, 2> all = forward(seq, tokens);  // [T, vocab]
      Tensor<f32, 2> last({1, all.extent(1)});          // [1, vocab]
      for (index_t v = 0; v < all.extent(1); ++v) last(0, v) = all(all.extent(0) - 1, v);
      return last;
    }
  }

  [[nodiscard]] Tensor<f32, 2> forward(SequenceId seq, std::span<const std::int64_t> tokens,
                                       TensorView<const i64, 2> positions) override {
    const auto n = static_cast<index_t>(tokens.size());
    PRECIS_CHECK(positions.extent(0) == 3 && positions.extent(1) == n, shape_error, "[", info_.architecture,
                 "] positions ", format_extents(positions.extents()), " for ", n, " tokens: expected [3, ", n, "]");
    if constexpr (TakesMropePositions<Model>) {
      return model_.forward(seq, tokens, positions);
    } else {
      const index_t start = model_.length(seq);
      for (index_t r = 0; r < 3; ++r)
        for (index_t t = 0; t < n; ++t)
          PRECIS_CHECK(positions(r, t) == start + t, config_error, "[", info_.architecture,
                       "] takes 1-D positions only, but position row ", r, " at token ", t, " is ", positions(r, t),
                       ", not ", start + t, " (3-D MRoPE positions need an MRoPE model)");
      return forward(seq, tokens);
    }
  }

  [[nodiscard]] Tensor<f32, 2> decode_batch(std::span<const SequenceId> seqs,
                                            std::span<const std::int64_t> tokens) override {
    return model_.decode_batch(seqs, tokens);
  }

  [[nodiscard]] sampling::SampleOutcome forward_last_sampled(SequenceId seq, std::span<const std::int64_t> tokens,
                                                             const sampling::SampleRequest& request) override {
    if constexpr (SamplesOnBackend<Model>) {
      return model_.forward_sampled(seq, tokens, request);
    } else {
      const Tensor<f32, 2> last = forward_last(seq, tokens);  // [1, vocab]
      return sampling::sample_rows(last, std::span(&request, 1)).front();
    }
  }

  [[nodiscard]] std::vector<sampling::SampleOutcome> decode_batch_sampled(
      std::span<const SequenceId> seqs, std::span<const std::int64_t> tokens,
      std::span<const sampling::SampleRequest> requests) override {
    if constexpr (SamplesOnBackend<Model>) {
      return model_.decode_batch_sampled(seqs, tokens, requests);
    } else {
      PRECIS_CHECK(requests.size() == seqs.size(), shape_error, "[", info_.architecture, "::decode_batch] ",
                   requests.size(), " sampling requests for ", seqs.size(), " sequences");
      return sampling::sample_rows(decode_batch(seqs, tokens), requests);
    }
  }

  void set_expert_selector(LayerExpertSelector selector) override {
    if constexpr (TakesExpertSelector<Model>) {
      model_.set_expert_selector(std::move(selector));
    } else {
      PRECIS_CHECK(!selector, config_error, "[", info_.architecture,
                   "] has no mixture-of-experts layers: an expert selector does not apply");
    }
  }

  [[nodiscard]] const ModelInfo& info() const override { return info_; }

  /// The typed model (tests, tools that need more than the interface).
  [[nodiscard]] Model& model() noexcept { return model_; }

 private:
  Model model_;
  ModelInfo info_;
};

/// The files a model is loaded from, as load_model found them.
struct ModelFiles {
  WeightSource weights;
  std::optional<HfConfig> config;  ///< config.json (safetensors checkpoints)
};

/// Fills the weight-related fields of `info` from what the loader read.
inline void fill_weight_info(ModelInfo& info, const WeightSource& w) {
  info.source = w.path().string();
  info.format = w.format();
  info.bytes_mapped = w.bytes_mapped();
  info.unused_tensors = w.unused();
  info.n_parameters = 0;
  info.weight_formats.clear();
  for (const auto& name : w.used()) {
    const io::AnyTensor t = w.peek(name);
    info.n_parameters += static_cast<std::size_t>(t.numel());
    ++info.weight_formats[std::string(precis::to_string(t.dtype()))];
  }
}

/// The ModelInfo fields every model fills the same way: from its config (the HF key names
/// num_hidden_layers, vocab_size, hidden_size, max_position_embeddings, and its RopeSpec), the
/// loaded model (context_length(), weights().conversions) and the weight files.
template <class Config, class Model>
void fill_common_info(ModelInfo& info, std::string architecture, const Config& cfg, const Model& model,
                      const WeightSource& w, const LoadOptions& options, precision p) {
  info.architecture = std::move(architecture);
  info.compute = p;
  info.quantize_activations = options.quantize_activations;
  info.n_layers = cfg.num_hidden_layers;
  info.vocab_size = cfg.vocab_size;
  info.hidden_size = cfg.hidden_size;
  info.context_length = model.context_length();
  info.model_context_length = cfg.max_position_embeddings;
  info.max_sequences = options.max_sequences;
  info.rope = cfg.rope.describe();
  info.conversions = model.weights().conversions.to_string();
  fill_weight_info(info, w);
}

}  // namespace precis::models
