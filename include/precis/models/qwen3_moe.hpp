// precis/models/qwen3_moe.hpp — the Qwen3-MoE decoder (Qwen3-30B-A3B, Qwen3-235B-A22B; the text
// model of the Qwen3-Omni thinker, models/qwen3_omni_thinker.hpp): Qwen3MoeConfig,
// Qwen3MoeWeights, Qwen3Moe<Policy>::forward. Reads top to bottom like llama.hpp: embed → per
// layer {RMSNorm → q/k/v → per-head q/k RMSNorm → RoPE → KV cache → attention → o_proj →
// residual → RMSNorm → sparse MoE block or dense MLP → residual} → final RMSNorm → lm_head.
//
// Semantics (HF transformers models/qwen3_moe/modeling_qwen3_moe.py, "Q3M"; model-semantics §1b):
//   RMSNorm      Llama order, y = w · round_Act(x̂) (NormThenCast), eps = rms_norm_eps (1e-6).
//   q/k norm     q = q_norm(q_proj(x).view(T, H, D)), k likewise: RMSNorm over head_dim only
//                (weights [D]), per head, *before* RoPE; v is not normalised.
//   head_dim     from the config (128 for 30B-A3B ≠ hidden/heads = 64): q_proj is [H·D, hidden].
//   RoPE         NeoX rotate_half (half_split) with inv_freq = θ^(−2i/D), θ = rope_theta (1e6).
//   MoE block    logits = x·W_gateᵀ (no bias) → softmax over all E experts in f32 → top-k →
//                ÷ Σ top-k if norm_topk_prob (SoftmaxThenTopK, nn/router.hpp) → Σ_j w_j·
//                down(silu(gate_e(x))·up_e(x)); no shared expert, no expert biases.
//   layer kinds  Q3M `Qwen3MoeDecoderLayer.__init__`: layer l is sparse iff l ∉ mlp_only_layers,
//                num_experts > 0 and (l + 1) % decoder_sparse_step == 0; otherwise a dense
//                `Qwen3MoeMLP(intermediate_size)`. GGUF has no such keys: a layer is sparse iff
//                the file holds its router `blk.N.ffn_gate_inp.weight` (llama.cpp's qwen3moe loader
//                expects experts on every layer; the dense-layer form `blk.N.ffn_{gate,up,down}`
//                is the fixture's extension, tests/fixtures/models/README.md).
//   lm_head      `lm_head.weight` (tie_word_embeddings false for every released Qwen3-MoE).
//
// Where the files differ (named policies, not flags): Qwen3MoeTensorNames::hf() ("model.",
// "lm_head.weight"), ::hf_thinker() ("thinker.model.", "thinker.lm_head.weight"), ::gguf()
// (llama.cpp: token_embd, blk.N.attn_*, ffn_gate_inp, ffn_*_exps, output). HF experts come as E
// separate tensors per projection (viewed in place, models/moe_weights.hpp) or transformers-5's
// fused gate_up_proj; GGUF experts as stacked ffn_*_exps in any ggml format.
//
// Precision: Qwen3Moe<Policy, Backend> computes in Policy::activation with Backend's ops; weights stay in their stored format
// (AnyWeight, AnyExpertStack). Router logits are f32 (role::router_logits is pinned, dtype-bugs
// E18): an f32-output GEMM from the activations, where HF's bf16 model rounds the logits to bf16
// before its f32 softmax — the bf16 path here is the more accurate of the two. Expert outputs
// are combined in f32 and rounded once (the backend's `moe` op; nn/moe.hpp is its reference).
//
// Positions: the decoder core `run` takes a RopeTable, so the same code serves 1-D positions
// (Qwen3-MoE: position = cached length + t) and MRoPE positions [3, T] (the thinker).
#pragma once

#include <algorithm>    // std::find
#include <concepts>     // std::same_as
#include <cstdint>      // std::int64_t
#include <memory>       // std::unique_ptr
#include <optional>     // std::optional
#include <span>         // std::span
#include <string>       // std::string, std::to_string
#include <utility>      // std::move
#include <variant>      // std::variant, std::get_if
#include <vector>       // std::vector

#include <precis/backends/backend.hpp>        // backends::Backend, tensor_of, weight_of, param_of, experts_of
#include <precis/core/error.hpp>               // config_error, range_error, shape_error
#include <precis/core/precision_policy.hpp>    // PrecisionPolicy, role::*
#include <precis/core/scalar.hpp>              // Scalar<f32>
#include <precis/core/tensor.hpp>              // Tensor
#include <precis/io/conversion.hpp>            // ConversionReport
#include <precis/io/load.hpp>                  // io::Loaded
#include <precis/weights/any_weight.hpp>       // AnyWeight, activation_quantization
#include <precis/models/decoder.hpp>           // Decoder
#include <precis/models/causal_lm.hpp>         // CausalLM, CausalLMFor, ModelFiles, ModelInfo
#include <precis/models/model_config.hpp>      // HfConfig, GgufConfig, RopeSpec, rope_from_hf, rope_from_gguf
#include <precis/models/model_loading.hpp>     // LoadOptions, check_layer_count, ties_output_head
#include <precis/models/moe_weights.hpp>       // AnyMoeExperts, load_hf_qwen3_experts, load_gguf_experts
#include <precis/models/weight_loader.hpp>     // WeightLoader
#include <precis/models/weight_source.hpp>     // WeightSource
#include <precis/nn/activation.hpp>            // SiluGate
#include <precis/nn/attention.hpp>             // AttentionConfig
#include <precis/nn/kv_index.hpp>              // KvSeqId, KvLayerPlan
#include <precis/nn/norm.hpp>                  // NormThenCast
#include <precis/nn/rope.hpp>                  // InvFreq, RopeTable
#include <precis/nn/layer_expert_selector.hpp>  // LayerExpertSelector, BoundLayerSelector
#include <precis/nn/router.hpp>                // SoftmaxThenTopK, Routing

namespace precis::models {

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/// Qwen3-MoE hyper-parameters, from config.json (HF Qwen3MoeConfig, or a `text_config` nested in
/// Qwen3-Omni's `thinker_config`) or `qwen3moe.*` GGUF metadata. `keys` are the names the file
/// uses, so shape errors cite keys the user can check.
struct Qwen3MoeConfig {
  index_t vocab_size = 0;
  index_t hidden_size = 0;
  index_t intermediate_size = 0;      ///< dense layers' MLP width
  index_t moe_intermediate_size = 0;  ///< every expert's width
  index_t num_hidden_layers = 0;
  index_t num_attention_heads = 0;
  index_t num_key_value_heads = 0;
  index_t head_dim = 0;
  index_t num_experts = 0;
  index_t num_experts_per_tok = 0;
  bool norm_topk_prob = false;        ///< renormalise the top-k probabilities (true for 30B-A3B)
  std::vector<bool> sparse_layers;    ///< per layer: the MoE block (true) or the dense MLP
  double rms_norm_eps = 1e-6;
  index_t max_position_embeddings = 0;
  bool attention_bias = false;        ///< q/k/v/o biases (HF `attention_bias`; false in releases)
  bool tie_word_embeddings = false;
  RopeSpec rope;

  std::string source;  ///< config.json or the .gguf file
  struct Keys {
    std::string vocab = "vocab_size", hidden = "hidden_size", ffn = "intermediate_size",
                moe_ffn = "moe_intermediate_size", layers = "num_hidden_layers", heads = "num_attention_heads",
                kv_heads = "num_key_value_heads", head_dim = "head_dim", experts = "num_experts";
  } keys;

  [[nodiscard]] bool is_sparse(index_t layer) const { return sparse_layers[static_cast<std::size_t>(layer)]; }

  /// From an HF config (Q3MC fields; HF defaults where HF has them). `model` names the caller in
  /// messages ("qwen3_moe", "qwen3_omni_thinker").
  [[nodiscard]] static Qwen3MoeConfig from_hf(const HfConfig& cfg, const std::string& model = "qwen3_moe") {
    Qwen3MoeConfig c;
    c.source = cfg.source();
    const std::string p = cfg.prefix();
    c.keys = {p + "vocab_size", p + "hidden_size", p + "intermediate_size", p + "moe_intermediate_size",
              p + "num_hidden_layers", p + "num_attention_heads", p + "num_key_value_heads", p + "head_dim",
              p + "num_experts"};
    c.vocab_size = cfg.positive("vocab_size");
    c.hidden_size = cfg.positive("hidden_size");
    c.intermediate_size = cfg.positive("intermediate_size");
    c.moe_intermediate_size = cfg.positive("moe_intermediate_size");
    c.num_hidden_layers = cfg.positive("num_hidden_layers", max_layers);
    c.num_attention_heads = cfg.positive("num_attention_heads");
    c.num_key_value_heads = cfg.has("num_key_value_heads") ? cfg.positive("num_key_value_heads") : c.num_attention_heads;
    // Q3MC: head_dim defaults to hidden_size // num_attention_heads (30B-A3B sets it: 128).
    if (cfg.has("head_dim")) {
      c.head_dim = cfg.positive("head_dim");
    } else {
      if (c.hidden_size % c.num_attention_heads != 0)
        fail<config_error>("[", model, "] ", cfg.where("hidden_size"), " = ", c.hidden_size,
                           " is not a multiple of num_attention_heads = ", c.num_attention_heads,
                           " and there is no head_dim");
      c.head_dim = c.hidden_size / c.num_attention_heads;
      c.keys.head_dim = p + "head_dim=hidden_size/num_attention_heads";
    }
    // Qwen3-MoE configs say `num_experts`; some writers add the Mixtral spelling too.
    const std::optional<index_t> ne = cfg.find<index_t>("num_experts");
    const std::optional<index_t> nle = cfg.find<index_t>("num_local_experts");
    if (ne && nle && *ne != *nle)
      fail<config_error>("[", model, "] ", cfg.where("num_experts"), " = ", *ne, " and ", cfg.where("num_local_experts"),
                         " = ", *nle, " disagree");
    if (!ne && !nle) fail<config_error>("[", model, "] missing required key ", cfg.where("num_experts"));
    c.num_experts = ne ? *ne : *nle;
    if (!ne) c.keys.experts = p + "num_local_experts";
    if (c.num_experts < 0) fail<config_error>("[", model, "] ", cfg.where(c.keys.experts.substr(p.size())), " < 0");
    c.num_experts_per_tok = cfg.positive("num_experts_per_tok");
    if (c.num_experts > 0 && c.num_experts_per_tok > c.num_experts)
      fail<config_error>("[", model, "] ", cfg.where("num_experts_per_tok"), " = ", c.num_experts_per_tok,
                         " exceeds ", c.keys.experts, " = ", c.num_experts);
    c.norm_topk_prob = cfg.get_or<bool>("norm_topk_prob", false);  // Q3MC default (30B-A3B: true)
    const index_t step = cfg.get_or<index_t>("decoder_sparse_step", 1);
    if (step < 1) fail<config_error>("[", model, "] ", cfg.where("decoder_sparse_step"), " must be ≥ 1, got ", step);
    const std::vector<index_t> dense = cfg.get_or<std::vector<index_t>>("mlp_only_layers", {});
    for (const index_t l : dense)
      if (l < 0 || l >= c.num_hidden_layers)
        fail<config_error>("[", model, "] ", cfg.where("mlp_only_layers"), " names layer ", l, ", outside [0, ",
                           c.num_hidden_layers, ")");
    for (index_t l = 0; l < c.num_hidden_layers; ++l)  // Q3M Qwen3MoeDecoderLayer.__init__
      c.sparse_layers.push_back(std::find(dense.begin(), dense.end(), l) == dense.end() && c.num_experts > 0 &&
                                (l + 1) % step == 0);
    c.rms_norm_eps = cfg.get_or<double>("rms_norm_eps", 1e-6);
    if (!(c.rms_norm_eps > 0.0 && c.rms_norm_eps < 1.0))
      fail<config_error>("[", model, "] ", cfg.where("rms_norm_eps"), " must be in (0, 1), got ", c.rms_norm_eps);
    c.max_position_embeddings = cfg.has("max_position_embeddings") ? cfg.positive("max_position_embeddings") : 32768;
    c.attention_bias = cfg.get_or<bool>("attention_bias", false);
    c.tie_word_embeddings = cfg.get_or<bool>("tie_word_embeddings", false);
    if (cfg.get_or<bool>("use_sliding_window", false))
      fail<config_error>("[", model, "] ", cfg.where("use_sliding_window"),
                         " is true; no released Qwen3-MoE slides and precis does not implement it for this model");
    const std::string act = cfg.get_or<std::string>("hidden_act", "silu");
    if (act != "silu")
      fail<config_error>("[", model, "] ", cfg.where("hidden_act"), " is \"", act,
                         "\"; the Qwen3-MoE MLP and experts are SiLU-gated (\"silu\")");
    c.rope = rope_from_hf(cfg, c.head_dim, 10000.0, c.max_position_embeddings);
    c.check(model);
    return c;
  }

  /// From the `qwen3moe.*` metadata of a GGUF file (llama.cpp LLM_ARCH_QWEN3MOE; NeoX RoPE, no
  /// Q/K permute, model-semantics §1d). Sparse layers are those with `blk.N.ffn_gate_inp.weight`.
  /// `arch` "qwen3vlmoe": the same keys under llama.cpp's Qwen3-VL-MoE architecture, which its
  /// converter writes for the Qwen3-Omni thinker (the MRoPE sections are the thinker's to read).
  [[nodiscard]] static Qwen3MoeConfig from_gguf(const io::GgufFile& file, const std::string& path,
                                                std::string_view arch = "qwen3moe") {
    const GgufConfig g(file, path);
    if (g.architecture() != arch)
      fail<config_error>("[qwen3_moe] '", path, "': general.architecture is \"", g.architecture(), "\", not \"", arch,
                         "\"");
    Qwen3MoeConfig c;
    c.source = path;
    c.keys = {g.key("vocab_size"),
              g.key("embedding_length"),
              g.key("feed_forward_length"),
              g.key("expert_feed_forward_length"),
              g.key("block_count"),
              g.key("attention.head_count"),
              g.key("attention.head_count_kv"),
              g.key("attention.key_length"),
              g.key("expert_count")};
    c.hidden_size = g.positive("embedding_length");
    c.num_hidden_layers = g.positive("block_count", max_layers);
    c.num_attention_heads = g.positive("attention.head_count");
    c.num_key_value_heads =
        g.has("attention.head_count_kv") ? g.positive("attention.head_count_kv") : c.num_attention_heads;
    c.head_dim = g.has("attention.key_length") ? g.positive("attention.key_length")
                                               : c.hidden_size / c.num_attention_heads;
    if (g.has("attention.value_length") && g.positive("attention.value_length") != c.head_dim)
      fail<config_error>("[qwen3_moe] ", g.where("attention.value_length"), " differs from the key length ", c.head_dim);
    c.num_experts = g.positive("expert_count");
    c.num_experts_per_tok = g.positive("expert_used_count");
    c.moe_intermediate_size = g.positive("expert_feed_forward_length");
    // A dense layer's width: only needed when the file has one.
    c.intermediate_size = g.get_or<index_t>("feed_forward_length", 0);
    // llama.cpp's qwen3moe graph always renormalises the top-k weights (build_moe_ffn with
    // norm_w = true); newer converters write the value as `expert_weights_norm`.
    c.norm_topk_prob = g.get_or<bool>("expert_weights_norm", true);
    if (g.has("vocab_size")) {
      c.vocab_size = g.positive("vocab_size");
    } else {
      const auto* embd = file.find_tensor("token_embd.weight");
      if (embd == nullptr || embd->shape.size() != 2)
        fail<config_error>("[qwen3_moe] '", path, "': no ", g.key("vocab_size"), " and no 2-D 'token_embd.weight'");
      c.vocab_size = embd->shape[0];
      c.keys.vocab = "token_embd.weight rows";
    }
    for (index_t l = 0; l < c.num_hidden_layers; ++l)
      c.sparse_layers.push_back(file.contains("blk." + std::to_string(l) + ".ffn_gate_inp.weight"));
    c.rms_norm_eps = g.get<double>("attention.layer_norm_rms_epsilon");
    if (!(c.rms_norm_eps > 0.0 && c.rms_norm_eps < 1.0))
      fail<config_error>("[qwen3_moe] ", g.where("attention.layer_norm_rms_epsilon"), " must be in (0, 1), got ",
                         c.rms_norm_eps);
    c.max_position_embeddings = g.positive("context_length");
    c.attention_bias = file.contains("blk.0.attn_q.bias");
    c.tie_word_embeddings = !file.contains("output.weight");
    c.rope = rope_from_gguf(g, c.head_dim, rope_layout::half_split);
    c.check("qwen3_moe");
    return c;
  }

  /// Relations between the values (each one a config_error naming the values).
  void check(const std::string& model) const {
    if (num_attention_heads % num_key_value_heads != 0)
      fail<config_error>("[", model, "] ", keys.heads, " = ", num_attention_heads, " is not a multiple of ",
                         keys.kv_heads, " = ", num_key_value_heads, " ('", source, "')");
    if (rope.rotary_dim > head_dim)
      fail<config_error>("[", model, "] rotary dimension ", rope.rotary_dim, " exceeds head_dim ", head_dim, " ('",
                         source, "')");
    for (index_t l = 0; l < num_hidden_layers; ++l)
      if (!is_sparse(l) && intermediate_size < 1)
        fail<config_error>("[", model, "] layer ", l, " is a dense MLP layer but ", keys.ffn, " is not set ('", source,
                           "')");
  }
};

/// How the tensors of a Qwen3-MoE decoder are named (one policy per file convention).
struct Qwen3MoeTensorNames {
  std::string embed, final_norm, lm_head, layer_prefix;
  // per layer, without ".weight"
  std::string input_norm, q, k, v, o, q_norm, k_norm, post_norm;
  std::string router;                  // the MoE gate [E, hidden]
  std::string dense_gate, dense_up, dense_down;
  expert_layout experts_as = expert_layout::hf;  // how the files store the experts (a named policy)

  /// HF Qwen3MoeForCausalLM.
  [[nodiscard]] static Qwen3MoeTensorNames hf() { return hf_with("model.", "lm_head.weight"); }
  /// HF Qwen3OmniMoeForConditionalGeneration: the thinker's text model (QOM; `thinker.*`).
  [[nodiscard]] static Qwen3MoeTensorNames hf_thinker() { return hf_with("thinker.model.", "thinker.lm_head.weight"); }
  /// llama.cpp GGUF (gguf-py TENSOR_NAMES for LLM_ARCH_QWEN3MOE).
  [[nodiscard]] static Qwen3MoeTensorNames gguf_names() {
    return {"token_embd.weight", "output_norm.weight", "output.weight", "blk.", "attn_norm", "attn_q", "attn_k",
            "attn_v", "attn_output", "attn_q_norm", "attn_k_norm", "ffn_norm", "ffn_gate_inp", "ffn_gate", "ffn_up",
            "ffn_down", expert_layout::gguf};
  }

  [[nodiscard]] std::string layer(index_t l, const std::string& part, const char* suffix = ".weight") const {
    return layer_prefix + std::to_string(l) + "." + part + suffix;
  }
  /// "model.layers.3.mlp.experts" (HF) or "blk.3" (GGUF): where a layer's experts live.
  [[nodiscard]] std::string experts(index_t l) const {
    return experts_as == expert_layout::gguf ? layer_prefix + std::to_string(l) : layer_prefix + std::to_string(l) + ".mlp.experts";
  }

 private:
  [[nodiscard]] static Qwen3MoeTensorNames hf_with(const std::string& model, const std::string& head) {
    return {model + "embed_tokens.weight", model + "norm.weight", head, model + "layers.", "input_layernorm",
            "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "self_attn.q_norm",
            "self_attn.k_norm", "post_attention_layernorm", "mlp.gate", "mlp.gate_proj", "mlp.up_proj",
            "mlp.down_proj", expert_layout::hf};
  }
};

// ---------------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------------

/// Q3M `Qwen3MoeMLP`: a dense SiLU-gated MLP of intermediate_size (layers in mlp_only_layers).
template <backends::Backend B>
struct Qwen3DenseMlp {
  backends::weight_of<B> gate_proj;  // [ffn, hidden]
  backends::weight_of<B> up_proj;    // [ffn, hidden]
  backends::weight_of<B> down_proj;  // [hidden, ffn]
};

/// Q3M `Qwen3MoeSparseMoeBlock`: the router and the experts (no shared expert, no biases).
template <ActivationDtype Act, backends::Backend B>
struct Qwen3SparseMoe {
  backends::weight_of<B> gate;                       // [E, hidden]      mlp.gate.weight: the router
  backends::experts_of<B, SiluGate, Act> experts;    // gate/up [E, I, hidden], down [E, hidden, I]
};

/// One decoder layer (HF names; shapes [rows, cols], D = head_dim), in backend B's memory.
template <PrecisionPolicy P, backends::Backend B>
struct Qwen3MoeLayerWeights {
  using act = typename P::activation;
  using norm_t = role_dtype_t<role::norm_weight, P>;
  using bias_t = role_dtype_t<role::bias, P>;
  using weight = backends::weight_of<B>;
  template <class D>
  using param = backends::param_of<B, D, 1>;

  param<norm_t> input_layernorm;           // [hidden]
  weight q_proj;                           // [H·D, hidden]
  weight k_proj;                           // [Hkv·D, hidden]
  weight v_proj;                           // [Hkv·D, hidden]
  weight o_proj;                           // [hidden, H·D]
  std::optional<param<bias_t>> q_bias;     // [H·D]    (attention_bias)
  std::optional<param<bias_t>> k_bias;     // [Hkv·D]
  std::optional<param<bias_t>> v_bias;     // [Hkv·D]
  std::optional<param<bias_t>> o_bias;     // [hidden]
  param<norm_t> q_norm;                    // [D]
  param<norm_t> k_norm;                    // [D]
  param<norm_t> post_attention_layernorm;  // [hidden]
  std::variant<Qwen3DenseMlp<B>, Qwen3SparseMoe<act, B>> mlp;
};

template <PrecisionPolicy P, backends::Backend B>
struct Qwen3MoeWeights {
  using act = typename P::activation;
  using norm_t = role_dtype_t<role::norm_weight, P>;
  using weight = backends::weight_of<B>;

  weight embed_tokens;                             // [vocab, hidden]
  std::vector<Qwen3MoeLayerWeights<P, B>> layers;  // [num_hidden_layers]
  backends::param_of<B, norm_t, 1> norm;           // [hidden]
  std::optional<weight> lm_head;                   // [vocab, hidden]; absent when tied to embed_tokens
  io::ConversionReport conversions;                // every named conversion the load performed
  std::size_t bytes_copied = 0;                    // host bytes the load had to copy

  [[nodiscard]] bool tied() const noexcept { return !lm_head.has_value(); }
  [[nodiscard]] const weight& head() const noexcept { return lm_head ? *lm_head : embed_tokens; }

  /// Loads and checks every tensor against `c` from `w`, named by `names`, onto `be`.
  [[nodiscard]] static Qwen3MoeWeights load(B& be, WeightSource& w, const Qwen3MoeConfig& c,
                                            const Qwen3MoeTensorNames& names, const std::string& model = "qwen3_moe") {
    const auto& k = c.keys;
    const index_t hidden = c.hidden_size, d = c.head_dim, q_rows = c.num_attention_heads * d,
                  kv_rows = c.num_key_value_heads * d, vocab = c.vocab_size;
    const std::string hid = k.hidden + "=" + std::to_string(hidden);
    const std::string q_why = k.heads + "=" + std::to_string(c.num_attention_heads) + " × " + k.head_dim + "=" +
                              std::to_string(d);
    const std::string kv_why = k.kv_heads + "=" + std::to_string(c.num_key_value_heads) + " × " + k.head_dim + "=" +
                               std::to_string(d);
    const std::string d_why = k.head_dim + "=" + std::to_string(d);
    const std::string ffn_why = k.ffn + "=" + std::to_string(c.intermediate_size);
    const std::string vocab_why = k.vocab + "=" + std::to_string(vocab);
    const std::string moe_why = k.experts + "=" + std::to_string(c.num_experts) + ", " + k.moe_ffn + "=" +
                                std::to_string(c.moe_intermediate_size) + ", " + hid;

    WeightLoader<P, B> ld(be, w);
    const auto norm = [&](const std::string& name, index_t n, const std::string& why) {
      return ld.template param<role::norm_weight>(name, n, why);
    };
    const auto bias = [&](const std::string& name, index_t n, const std::string& why) {  // config: attention_bias
      return ld.template param_if<role::bias>(c.attention_bias, name, n, why);
    };

    auto embed = ld.weight(names.embed, vocab, hidden, vocab_why + ", " + hid);
    std::vector<Qwen3MoeLayerWeights<P, B>> layers;
    check_layer_count(w, names.layer_prefix, c.num_hidden_layers, k.layers, c.source);
    layers.reserve(static_cast<std::size_t>(c.num_hidden_layers));
    for (index_t l = 0; l < c.num_hidden_layers; ++l) {
      const auto n = [&](const std::string& part, const char* suffix = ".weight") { return names.layer(l, part, suffix); };
      std::variant<Qwen3DenseMlp<B>, Qwen3SparseMoe<act, B>> mlp;
      if (c.is_sparse(l)) {
        const index_t ne = c.num_experts, ni = c.moe_intermediate_size;
        ExpertTensors e = names.experts_as == expert_layout::gguf ? load_gguf_experts(w, names.experts(l), ne, ni, hidden, moe_why)
                                     : load_hf_qwen3_experts(w, names.experts(l), ne, ni, hidden, moe_why);
        mlp.template emplace<Qwen3SparseMoe<act, B>>(Qwen3SparseMoe<act, B>{
            ld.weight(n(names.router), ne, hidden, k.experts + "=" + std::to_string(ne) + ", " + hid),
            be.upload(AnyMoeExperts<SiluGate, act>::separate_gate_up(SiluGate{}, ld.experts(std::move(e.gate)),
                                                                     ld.experts(std::move(e.up)),
                                                                     ld.experts(std::move(e.down))))});
      } else {
        const index_t ffn = c.intermediate_size;
        mlp.template emplace<Qwen3DenseMlp<B>>(Qwen3DenseMlp<B>{ld.weight(n(names.dense_gate), ffn, hidden, ffn_why + ", " + hid),
                                                          ld.weight(n(names.dense_up), ffn, hidden, ffn_why + ", " + hid),
                                                          ld.weight(n(names.dense_down), hidden, ffn, hid + ", " + ffn_why)});
      }
      layers.push_back(Qwen3MoeLayerWeights<P, B>{
          norm(n(names.input_norm), hidden, hid),
          ld.weight(n(names.q), q_rows, hidden, q_why + ", " + hid),
          ld.weight(n(names.k), kv_rows, hidden, kv_why + ", " + hid),
          ld.weight(n(names.v), kv_rows, hidden, kv_why + ", " + hid),
          ld.weight(n(names.o), hidden, q_rows, hid + ", " + q_why),
          bias(n(names.q, ".bias"), q_rows, q_why),
          bias(n(names.k, ".bias"), kv_rows, kv_why),
          bias(n(names.v, ".bias"), kv_rows, kv_why),
          bias(n(names.o, ".bias"), hidden, hid),
          norm(n(names.q_norm), d, d_why),
          norm(n(names.k_norm), d, d_why),
          norm(n(names.post_norm), hidden, hid),
          std::move(mlp),
      });
    }
    auto final_norm = norm(names.final_norm, hidden, hid);

    std::optional<backends::weight_of<B>> head;
    if (!ties_output_head(w, model, c.source, c.tie_word_embeddings, names.lm_head))
      head = ld.weight(names.lm_head, vocab, hidden, vocab_why + ", " + hid);
    return Qwen3MoeWeights{std::move(embed), std::move(layers), std::move(final_norm), std::move(head),
                           ld.take_report(), ld.bytes_copied()};
  }
};

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// The KV cache stores the activation dtype (no quantized KV store is wired into the MoE models).
template <class P>
concept moe_kv_store_is_activation = std::same_as<typename P::kv_store, typename P::activation>;

/// A Qwen3-MoE decoder under policy P on backend B (shared plumbing: models/decoder.hpp).
template <PrecisionPolicy P, backends::Backend B>
  requires moe_kv_store_is_activation<P>
class Qwen3Moe : public Decoder<Qwen3Moe<P, B>, B, typename P::activation> {
  using base = Decoder<Qwen3Moe<P, B>, B, typename P::activation>;

 public:
  using policy = P;
  using act = typename P::activation;  // f32 or bf16: what every hidden state is
  template <std::size_t R>
  using tensor = backends::tensor_of<B, act, R>;

  [[nodiscard]] static Qwen3Moe load(B backend, WeightSource& w, const Qwen3MoeConfig& config,
                                     const Qwen3MoeTensorNames& names, const LoadOptions& options,
                                     const std::string& model = "qwen3_moe") {
    Qwen3MoeWeights<P, B> weights = Qwen3MoeWeights<P, B>::load(backend, w, config, names, model);
    return Qwen3Moe(std::move(backend), config, std::move(weights), options, model);
  }

  Qwen3Moe(B backend, Qwen3MoeConfig config, Qwen3MoeWeights<P, B> weights, const LoadOptions& options,
           const std::string& model = "qwen3_moe")
      : base(std::move(backend), options,
             {.name = model,
              .source = config.source,
              .model_context = config.max_position_embeddings,
              .plan = KvLayerPlan(full_attention_layers{}, config.num_hidden_layers),
              .n_kv_heads = config.num_key_value_heads,
              .head_dim = config.head_dim}),
        cfg_(std::move(config)),
        w_(std::move(weights)),
        inv_freq_(cfg_.rope.inv_freq()),
        eps_(Scalar<f32>::from(cfg_.rms_norm_eps)),
        attn_{.n_heads = cfg_.num_attention_heads, .n_kv_heads = cfg_.num_key_value_heads, .head_dim = cfg_.head_dim},
        route_{.norm_topk_prob = cfg_.norm_topk_prob} {
    check_exact_activations_only(options, model);
  }

  [[nodiscard]] const Qwen3MoeConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] const Qwen3MoeWeights<P, B>& weights() const noexcept { return w_; }
  [[nodiscard]] const InvFreq& inv_freq() const noexcept { return inv_freq_; }

  /// Installs a selection hook on every sparse layer's routing (nn/layer_expert_selector.hpp);
  /// an empty one restores the model's own ranking.
  void set_expert_selector(LayerExpertSelector selector) { selector_ = std::move(selector); }

  /// The decoder over N token rows at 1-D positions [N] (models/decoder.hpp).
  [[nodiscard]] backends::tensor_of<B, f32, 2> run(std::span<const KvSeqId> seqs, std::span<const std::int64_t> tokens,
                                                   const Tensor<i64, 1>& positions, logits_rows rows) {
    return run_table(seqs, tokens, RopeTable<f32>::from_positions(positions, inv_freq_), rows);
  }

  /// As forward, with a RoPE table the caller built (the thinker's MRoPE rows): checks nothing
  /// but the table's length, so the caller has checked the context.
  [[nodiscard]] Tensor<f32, 2> forward_table(std::span<const KvSeqId> seqs, std::span<const std::int64_t> tokens,
                                             RopeTable<f32> rope) {
    return this->execute([&] { return this->backend().to_host(run_table(seqs, tokens, std::move(rope), logits_rows::all)); });
  }

 private:
  /// The decoder over N token rows with their RoPE table [N, rd/2] (1-D or MRoPE): one sequence
  /// with N tokens, or N sequences with one token each.
  [[nodiscard]] backends::tensor_of<B, f32, 2> run_table(std::span<const KvSeqId> seqs,
                                                         std::span<const std::int64_t> tokens, RopeTable<f32> table,
                                                         logits_rows rows) {
    B& be = this->backend();
    const auto n = static_cast<index_t>(tokens.size());
    const index_t H = cfg_.num_attention_heads, Hkv = cfg_.num_key_value_heads, D = cfg_.head_dim;
    PRECIS_CHECK(table.n_positions() == n, shape_error, "[", this->name(), "] RoPE table of ", table.n_positions(),
                 " positions for ", n, " tokens");
    const auto rope = be.upload(std::move(table));  // [N, rd/2]

    tensor<2> x = be.template embed<act>(w_.embed_tokens, tokens);  // [N, hidden]
    for (index_t l = 0; l < cfg_.num_hidden_layers; ++l) {
      const Qwen3MoeLayerWeights<P, B>& L = w_.layers[static_cast<std::size_t>(l)];

      // --- self-attention (Q3M Qwen3MoeAttention.forward) ---------------------------------------
      const tensor<2> h = be.template rms_norm<NormThenCast>(x, L.input_layernorm, eps_);  // [N, hidden]
      const tensor<2> q = linear(be, h, L.q_proj, L.q_bias);                              // [N, H·D]
      const tensor<2> k = linear(be, h, L.k_proj, L.k_bias);                              // [N, Hkv·D]
      const tensor<2> v = linear(be, h, L.v_proj, L.v_bias);                              // [N, Hkv·D]
      // q/k RMSNorm per head over D, before RoPE; v is not normalised.
      tensor<3> qn = be.template rms_norm<NormThenCast>(q.cview().template reshape<3>({n, H, D}), L.q_norm, eps_);
      tensor<3> kn = be.template rms_norm<NormThenCast>(k.cview().template reshape<3>({n, Hkv, D}), L.k_norm, eps_);
      const auto v3 = v.cview().template reshape<3>({n, Hkv, D});                         // [N, Hkv, D]
      be.template rope<rope_layout::half_split>(qn.view(), rope);                          // [N, H, D]
      be.template rope<rope_layout::half_split>(kn.view(), rope);                          // [N, Hkv, D]
      const tensor<3> o3 = this->attend(l, seqs, qn.cview(), kn.cview(), v3, attn_);     // [N, H, D]
      be.add_inplace(x.view(), linear(be, o3.cview().template reshape<2>({n, H * D}), L.o_proj, L.o_bias));  // [N, hidden]

      // --- MLP: the sparse MoE block or the dense MLP --------------------------------------------
      const tensor<2> h2 = be.template rms_norm<NormThenCast>(x, L.post_attention_layernorm, eps_);  // [N, hidden]
      if (const auto* moe = std::get_if<Qwen3SparseMoe<act, B>>(&L.mlp)) {
        const auto logits = be.template linear<f32>(h2, moe->gate, activation_quantization::none);  // [N, E] f32 router logits
        const auto r = be.route(route_, logits, cfg_.num_experts_per_tok, BoundLayerSelector(selector_, l));  // softmax → top-k → renorm
        be.add_inplace(x.view(), be.moe(moe->experts, h2, r));                    // [N, hidden]
      } else {
        const auto& mlp = std::get<Qwen3DenseMlp<B>>(L.mlp);
        const tensor<2> gate = be.linear(h2, mlp.gate_proj, activation_quantization::none);  // [N, ffn]
        const tensor<2> up = be.linear(h2, mlp.up_proj, activation_quantization::none);      // [N, ffn]
        be.add_inplace(x.view(), be.linear(be.glu(SiluGate{}, gate, up), mlp.down_proj, activation_quantization::none));  // [N, hidden]
      }
    }
    const auto out = x.cview().slice(0, rows == logits_rows::last ? n - 1 : 0, n);             // [N or 1, hidden]
    const tensor<2> hf = be.template rms_norm<NormThenCast>(out, w_.norm, eps_);               // [N or 1, hidden]
    return be.template linear<f32>(hf, w_.head(), activation_quantization::none);              // [N or 1, vocab], f32
  }

  /// x·Wᵀ (+ b) in the activation dtype (exact activations: MoE models refuse q8).
  template <class X, class Bias>
  [[nodiscard]] tensor<2> linear(B& be, const X& x, const backends::weight_of<B>& w,
                                 const std::optional<Bias>& bias) const {
    if (bias) return be.linear(x, w, *bias, activation_quantization::none);
    return be.linear(x, w, activation_quantization::none);
  }

  Qwen3MoeConfig cfg_;
  Qwen3MoeWeights<P, B> w_;
  InvFreq inv_freq_;       // [rotary_dim/2], f32 (role::rope_table)
  Scalar<f32> eps_;
  AttentionConfig attn_;
  SoftmaxThenTopK route_;  // Qwen3 routing order (model-semantics §1.7 item 2)
  LayerExpertSelector selector_;  // the user's selection hook; empty = the model's own ranking
};

// ---------------------------------------------------------------------------------------------
// load_model's entry (runtime/load_model.hpp picks the backend)
// ---------------------------------------------------------------------------------------------

namespace detail {

/// The ModelInfo fields every Qwen3-MoE-based model fills the same way.
template <PrecisionPolicy P, backends::Backend B>
void fill_qwen3_moe_info(ModelInfo& info, const Qwen3Moe<P, B>& model, const WeightSource& w, const LoadOptions& options,
                         precision p) {
  const Qwen3MoeConfig& cfg = model.config();
  fill_common_info(info, info.architecture, cfg, model, w, options, p);
  info.n_experts = cfg.num_experts;
  info.n_experts_per_token = cfg.num_experts_per_tok;
  info.bytes_copied = model.weights().bytes_copied;
  record_kv_cache(info, model.cache());
}

template <PrecisionPolicy P, backends::Backend B>
[[nodiscard]] std::unique_ptr<CausalLM> make_qwen3_moe(ModelFiles& files, const Qwen3MoeConfig& cfg,
                                                       const Qwen3MoeTensorNames& names, const LoadOptions& options,
                                                       precision p, B backend) {
  Qwen3Moe<P, B> model = Qwen3Moe<P, B>::load(std::move(backend), files.weights, cfg, names, options);
  ModelInfo info;
  info.architecture = "qwen3_moe";
  fill_qwen3_moe_info(info, model, files.weights, options, p);
  return std::make_unique<CausalLMFor<Qwen3Moe<P, B>>>(std::move(model), std::move(info));
}

}  // namespace detail

/// Loads a Qwen3-MoE from an HF checkpoint (config.json + safetensors) or a GGUF file of
/// architecture `qwen3moe`, under the f32 or bf16 policy, onto `backend`.
template <backends::Backend B>
[[nodiscard]] std::unique_ptr<CausalLM> load_qwen3_moe(ModelFiles& files, precision p, const LoadOptions& options,
                                                       B backend) {
  Qwen3MoeConfig cfg;
  Qwen3MoeTensorNames names;
  if (files.weights.format() == weight_format::gguf) {
    cfg = Qwen3MoeConfig::from_gguf(*files.weights.gguf(), files.weights.path().string());
    names = Qwen3MoeTensorNames::gguf_names();
  } else {
    if (!files.config)
      fail<config_error>("[qwen3_moe] '", files.weights.path().string(),
                         "' has no config.json to read the model's shape from");
    cfg = Qwen3MoeConfig::from_hf(*files.config);
    names = Qwen3MoeTensorNames::hf();
  }
  if (cfg.rope.mrope)
    fail<config_error>("[qwen3_moe] the config describes MRoPE (", cfg.rope.source,
                       "); Qwen3-MoE uses 1-D RoPE (the Qwen3-Omni thinker is its MRoPE variant)");
  if (p == precision::f32) return detail::make_qwen3_moe<f32_policy>(files, cfg, names, options, p, std::move(backend));
  return detail::make_qwen3_moe<bf16_policy>(files, cfg, names, options, p, std::move(backend));
}

}  // namespace precis::models
