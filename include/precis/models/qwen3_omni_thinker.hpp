// precis/models/qwen3_omni_thinker.hpp — the text model of the Qwen3-Omni-MoE "thinker":
// the Qwen3-MoE decoder (models/qwen3_moe.hpp) with interleaved MRoPE driven by explicit 3-D
// integer positions, so that a caller can supply the (t, h, w) layout of image, audio and video
// spans. Nothing else differs (model-semantics §1c).
//
// Semantics (HF transformers models/qwen3_omni_moe/modeling_qwen3_omni_moe.py "QOM", and
// models/qwen3_vl_moe/modeling_qwen3_vl_moe.py "Q3VLM" it inherits from):
//   decoder      QOM `Qwen3OmniMoeThinkerTextModel`: Qwen3-MoE attention with q/k norm, the same
//                sparse MoE block (softmax → top-k → renorm, no shared expert), dense layers by
//                `mlp_only_layers` / `decoder_sparse_step`. Deepstack visual injection is part
//                of the multimodal path and out of scope for the text model.
//   RoPE         Q3VLM `apply_interleaved_mrope`: positions [3, T] (rows t, h, w); frequency slot
//                i takes h if i ≡ 1 (mod 3) and i < 3·section[1], w if i ≡ 2 (mod 3) and
//                i < 3·section[2], t otherwise (mrope::interleaved, nn/rope.hpp), then NeoX
//                rotate_half. transformers uses the interleaved layout for this model whatever
//                the config's `interleaved` flag says, so the layout is fixed here and only the
//                sections come from `rope_scaling.mrope_section` (default [24, 20, 20]).
//   positions    explicit [3, T] via forward(seq, tokens, positions). Without them (the CausalLM
//                1-D call, or decode_batch) a sequence continues from one past the largest
//                position it has seen on every row — HF's text positions after a media span
//                (`get_rope_index`: text resumes at max + 1; decoding adds `rope_deltas`). For a
//                text-only sequence that is length(seq) + t, where MRoPE is 1-D RoPE bit for bit.
//   names        `thinker.model.*`, `thinker.lm_head.weight` (Qwen3MoeTensorNames::hf_thinker());
//                the config under `thinker_config.text_config` (HfConfig unwraps it). Talker and
//                code2wav weights, if present, are not read. GGUF: llama.cpp's converter writes
//                the thinker's text model as architecture `qwen3vlmoe` (its Qwen3OmniMoeTextModel)
//                with qwen3moe tensor names and `rope.dimension_sections`
//                (Qwen3OmniThinkerConfig::from_gguf).
#pragma once

#include <algorithm>    // std::max
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t
#include <memory>       // std::unique_ptr
#include <span>         // std::span
#include <string>       // std::string
#include <utility>      // std::move
#include <variant>      // std::visit
#include <vector>       // std::vector

#include <precis/core/error.hpp>            // config_error, range_error, shape_error
#include <precis/core/precision_policy.hpp> // PrecisionPolicy
#include <precis/core/tensor.hpp>           // Tensor
#include <precis/models/causal_lm.hpp>      // CausalLM, CausalLMFor, ModelFiles, ModelInfo
#include <precis/models/model_config.hpp>   // HfConfig
#include <precis/models/model_loading.hpp>  // LoadOptions
#include <precis/models/qwen3_moe.hpp>      // Qwen3Moe, Qwen3MoeConfig, Qwen3MoeTensorNames
#include <precis/models/weight_source.hpp>  // WeightSource
#include <precis/nn/kv_index.hpp>           // KvSeqId
#include <precis/nn/rope.hpp>               // RopeTable, mrope::interleaved

namespace precis::models {

/// The thinker's hyper-parameters: the Qwen3-MoE decoder's, and the MRoPE sections.
struct Qwen3OmniThinkerConfig {
  Qwen3MoeConfig decoder;
  mrope::interleaved mrope;

  /// From the Qwen3-Omni config.json (HfConfig unwraps `thinker_config.text_config`).
  [[nodiscard]] static Qwen3OmniThinkerConfig from_hf(const HfConfig& cfg) {
    Qwen3OmniThinkerConfig c{Qwen3MoeConfig::from_hf(cfg, "qwen3_omni_thinker"), {}};
    if (!c.decoder.rope.mrope)
      fail<config_error>("[qwen3_omni_thinker] ", c.decoder.rope.source,
                         " has no mrope_section; the thinker's RoPE is interleaved MRoPE (rope_scaling.mrope_section)");
    std::visit([&](const auto& m) { c.mrope.section = m.section; }, *c.decoder.rope.mrope);
    return c;
  }

  /// From a GGUF written by llama.cpp's convert_hf_to_gguf.py, which converts the thinker's text
  /// model (Qwen3OmniMoeTextModel) as architecture `qwen3vlmoe`: the qwen3moe keys, the MRoPE
  /// sections as `qwen3vlmoe.rope.dimension_sections` [t, h, w, 0] (frequency pairs, HF's
  /// `mrope_section` padded to 4; llama.cpp runs it as interleaved MRoPE, LLAMA_ROPE_TYPE_IMROPE,
  /// like HF's thinker), and `qwen3vlmoe.n_deepstack_layers` = 0. A Qwen3-VL-MoE text model
  /// with deepstack layers (visual features added to early layers) is refused by name.
  [[nodiscard]] static Qwen3OmniThinkerConfig from_gguf(const io::GgufFile& file, const std::string& path) {
    Qwen3OmniThinkerConfig c{Qwen3MoeConfig::from_gguf(file, path, "qwen3vlmoe"), {}};
    const GgufConfig g(file, path);
    const index_t deepstack = g.get_or<index_t>("n_deepstack_layers", 0);
    if (deepstack != 0)
      fail<config_error>("[qwen3_omni_thinker] ", g.where("n_deepstack_layers"), " = ", deepstack,
                         ": a Qwen3-VL-MoE model with deepstack visual layers, which precis does not implement "
                         "(the Qwen3-Omni thinker has none)");
    const std::string key = g.key("rope.dimension_sections");
    if (!file.has(key))
      fail<config_error>("[qwen3_omni_thinker] missing required key ", g.where("rope.dimension_sections"),
                         " (the MRoPE sections t, h, w)");
    const io::GgufValue& v = file.at(key);
    if (!v.is_array())
      fail<config_error>("[qwen3_omni_thinker] ", g.where("rope.dimension_sections"), " is not an array");
    const std::vector<std::int64_t> sec = v.template get_array<std::int64_t>();
    if (sec.size() < 3 || sec.size() > 4 || (sec.size() == 4 && sec[3] != 0))
      fail<config_error>("[qwen3_omni_thinker] ", g.where("rope.dimension_sections"), " has ", sec.size(),
                         " entries; expected [t, h, w] or [t, h, w, 0]");
    for (std::size_t i = 0; i < 3; ++i)
      if (sec[i] < 0 || sec[i] > c.decoder.head_dim)
        fail<config_error>("[qwen3_omni_thinker] ", g.where("rope.dimension_sections"), " entry ", i, " = ", sec[i],
                           " is outside [0, head_dim ", c.decoder.head_dim, "]");
    c.mrope.section = {static_cast<index_t>(sec[0]), static_cast<index_t>(sec[1]), static_cast<index_t>(sec[2])};
    if (sec[0] + sec[1] + sec[2] != c.decoder.rope.rotary_dim / 2)
      fail<config_error>("[qwen3_omni_thinker] ", g.where("rope.dimension_sections"), " sums to ",
                         sec[0] + sec[1] + sec[2], ", expected rotary_dim / 2 = ", c.decoder.rope.rotary_dim / 2);
    c.decoder.rope.mrope = mrope::interleaved{c.mrope.section};
    return c;
  }
};

template <PrecisionPolicy P, backends::Backend B>
  requires moe_kv_store_is_activation<P>
class Qwen3OmniThinker {
 public:
  using policy = P;
  using act = typename P::activation;

  [[nodiscard]] static Qwen3OmniThinker load(B backend, WeightSource& w, const Qwen3OmniThinkerConfig& config,
                                             const LoadOptions& options) {
    const Qwen3MoeTensorNames names =
        w.format() == weight_format::gguf ? Qwen3MoeTensorNames::gguf_names() : Qwen3MoeTensorNames::hf_thinker();
    return Qwen3OmniThinker(Qwen3Moe<P, B>::load(std::move(backend), w, config.decoder, names, options,
                                                 "qwen3_omni_thinker"),
                            config.mrope, options);
  }

  Qwen3OmniThinker(Qwen3Moe<P, B> decoder, const mrope::interleaved& layout, const LoadOptions& options)
      : decoder_(std::move(decoder)), mrope_(layout), next_(static_cast<std::size_t>(options.max_sequences), 0) {}

  [[nodiscard]] const Qwen3Moe<P, B>& decoder() const noexcept { return decoder_; }
  [[nodiscard]] const Qwen3MoeConfig& config() const noexcept { return decoder_.config(); }
  [[nodiscard]] const mrope::interleaved& mrope_layout() const noexcept { return mrope_; }
  [[nodiscard]] index_t context_length() const noexcept { return decoder_.context_length(); }

  /// The decoder's selection hook (Qwen3Moe::set_expert_selector).
  void set_expert_selector(LayerExpertSelector selector) { decoder_.set_expert_selector(std::move(selector)); }

  [[nodiscard]] KvSeqId new_sequence() {
    const KvSeqId s = decoder_.new_sequence();
    next_at(s) = 0;
    return s;
  }
  void release(KvSeqId seq) { decoder_.release(seq); }
  /// Tokens cached for `seq` (not its next position: MRoPE positions run ahead after media).
  [[nodiscard]] index_t length(KvSeqId seq) const { return decoder_.length(seq); }
  /// The position a token without explicit positions gets next on every row: max seen + 1.
  [[nodiscard]] index_t next_position(KvSeqId seq) const { return next_[static_cast<std::size_t>(seq.slot)]; }

  /// `tokens` [T] with explicit MRoPE positions [3, T] (rows t, h, w), appended to `seq`.
  /// Returns logits [T, vocab].
  [[nodiscard]] Tensor<f32, 2> forward(KvSeqId seq, std::span<const std::int64_t> tokens,
                                       TensorView<const i64, 2> positions) {
    const auto n = static_cast<index_t>(tokens.size());
    PRECIS_CHECK(positions.extent(0) == 3 && positions.extent(1) == n, shape_error,
                 "[qwen3_omni_thinker] positions ", format_extents(positions.extents()), " for ", n,
                 " tokens: expected [3, ", n, "] (rows t, h, w)");
    decoder_.check_context(length(seq), n, seq);
    index_t top = next_position(seq) - 1;
    for (index_t r = 0; r < 3; ++r)
      for (index_t t = 0; t < n; ++t) {
        PRECIS_CHECK(positions(r, t) >= 0, range_error, "[qwen3_omni_thinker] position row ", r, " token ", t, " is ",
                     positions(r, t), "; positions are ≥ 0");
        top = std::max<index_t>(top, positions(r, t));
      }
    RopeTable<f32> rope = RopeTable<f32>::from_positions(positions, decoder_.inv_freq(), mrope_);  // [T, D/2]
    Tensor<f32, 2> logits = decoder_.forward_table(std::span<const KvSeqId>(&seq, 1), tokens, std::move(rope));
    next_at(seq) = top + 1;
    return logits;
  }

  /// `tokens` [T] as text: every row at next_position(seq) + t.
  [[nodiscard]] Tensor<f32, 2> forward(KvSeqId seq, std::span<const std::int64_t> tokens) {
    const auto n = static_cast<index_t>(tokens.size());
    Tensor<i64, 2> positions({3, n});  // [3, T]
    for (index_t r = 0; r < 3; ++r)
      for (index_t t = 0; t < n; ++t) positions(r, t) = next_position(seq) + t;
    return forward(seq, tokens, positions.cview());
  }

  /// One text decode step for several sequences, each at its next_position. Returns [B, vocab].
  [[nodiscard]] Tensor<f32, 2> decode_batch(std::span<const KvSeqId> seqs, std::span<const std::int64_t> tokens) {
    const auto b = static_cast<index_t>(seqs.size());
    (void)decoder_.batch_positions(seqs, tokens);  // checks: one token each, no repeats, context
    Tensor<i64, 2> positions({3, b});              // [3, B]
    for (index_t r = 0; r < 3; ++r)
      for (index_t i = 0; i < b; ++i) positions(r, i) = next_position(seqs[static_cast<std::size_t>(i)]);
    RopeTable<f32> rope = RopeTable<f32>::from_positions(positions, decoder_.inv_freq(), mrope_);  // [B, D/2]
    Tensor<f32, 2> logits = decoder_.forward_table(seqs, tokens, std::move(rope));
    for (const KvSeqId s : seqs) ++next_at(s);
    return logits;
  }

 private:
  index_t& next_at(KvSeqId seq) { return next_[static_cast<std::size_t>(seq.slot)]; }

  Qwen3Moe<P, B> decoder_;
  mrope::interleaved mrope_;
  std::vector<index_t> next_;  // per sequence slot: one past the largest position seen
};

// ---------------------------------------------------------------------------------------------
// load_model's entry (runtime/load_model.hpp picks the backend)
// ---------------------------------------------------------------------------------------------

namespace detail {
template <PrecisionPolicy P, backends::Backend B>
[[nodiscard]] std::unique_ptr<CausalLM> make_qwen3_omni_thinker(ModelFiles& files, const Qwen3OmniThinkerConfig& cfg,
                                                                const LoadOptions& options, precision p, B backend) {
  Qwen3OmniThinker<P, B> model = Qwen3OmniThinker<P, B>::load(std::move(backend), files.weights, cfg, options);
  ModelInfo info;
  info.architecture = "qwen3_omni_thinker";
  fill_qwen3_moe_info(info, model.decoder(), files.weights, options, p);
  return std::make_unique<CausalLMFor<Qwen3OmniThinker<P, B>>>(std::move(model), std::move(info));
}
}  // namespace detail

/// Loads the thinker text model of a Qwen3-Omni-MoE HF checkpoint, under the f32 or bf16 policy,
/// onto `backend`.
template <backends::Backend B>
[[nodiscard]] std::unique_ptr<CausalLM> load_qwen3_omni_thinker(ModelFiles& files, precision p,
                                                                const LoadOptions& options, B backend) {
  Qwen3OmniThinkerConfig cfg;
  if (files.weights.format() == weight_format::gguf) {
    cfg = Qwen3OmniThinkerConfig::from_gguf(*files.weights.gguf(), files.weights.path().string());
  } else {
    if (!files.config)
      fail<config_error>("[qwen3_omni_thinker] '", files.weights.path().string(),
                         "': an HF thinker checkpoint needs its config.json (or give the GGUF llama.cpp's "
                         "convert_hf_to_gguf.py writes, architecture qwen3vlmoe)");
    cfg = Qwen3OmniThinkerConfig::from_hf(*files.config);
  }
  if (p == precision::f32) return detail::make_qwen3_omni_thinker<f32_policy>(files, cfg, options, p, std::move(backend));
  return detail::make_qwen3_omni_thinker<bf16_policy>(files, cfg, options, p, std::move(backend));
}

}  // namespace precis::models
