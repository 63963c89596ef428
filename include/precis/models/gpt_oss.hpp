// precis/models/gpt_oss.hpp — OpenAI gpt-oss (20b, 120b): GptOssConfig, GptOssWeights,
// GptOss<Policy, Backend>::run. Reads top to bottom like llama.hpp: embed → per layer {RMSNorm →
// q/k/v (+bias) → YaRN RoPE → KV cache (ring on sliding layers) → attention with sinks →
// o_proj (+bias) → residual → RMSNorm → router (+bias) → top-k → softmax → clamped-SwiGLU
// experts (+biases) → residual} → final RMSNorm → lm_head.
//
// Semantics (HF transformers models/gpt_oss/modeling_gpt_oss.py "HF-GO", OpenAI gpt_oss/torch/
// model.py "OAI"; model-semantics §1a), each a named policy of the blocks it uses:
//   RMSNorm      y = round_Act(w · x̂) (MultiplyThenCast, "main diff with Llama"); the gains are
//                kept in f32 as HF does (`_keep_in_fp32_modules`), eps = rms_norm_eps (1e-5).
//   attention    q/k/v/o with biases; scale head_dim^-½; one sink logit per *query* head (f32,
//                role::sinks pinned: unscaled, unmasked, no value — nn/attention.hpp); GQA.
//   windows      HF `layer_types` ("sliding_attention" / "full_attention"; default: even layers
//                slide, OAI `sliding_window if layer_idx % 2 == 0`), window `sliding_window`
//                counting the current token. A sliding layer's KV cache is a ring of
//                window − 1 + prefill_chunk positions (nn/kv_index.hpp): its memory does not
//                grow with the sequence; prompts longer than prefill_chunk are prefilled in chunks.
//   RoPE         half_split (NeoX), YaRN with truncate = false (yarn_bounds::exact) and the
//                attention factor mscale on cos *and* sin (so q·k scales by mscale², not applied
//                again to the softmax scale) — HF-GO `cos = emb.cos() * attention_scaling`.
//   router       logits = x·Wᵀ + b (f32: role::router_logits / router_bias are pinned) → top-k
//                of the raw logits → softmax over the k (TopKThenSoftmax, §1.7 item 2).
//   experts      gate_up rows interleaved (even gate, odd up), ClampedSwiglu{swiglu_alpha,
//                swiglu_limit}: min(g, L)·σ(α·min(g, L))·(clamp(u, ±L) + 1), per-expert biases
//                on gate_up and down (the down bias before the routing weight).
//
// Files (named tensor-name policies): HF checkpoints hold the experts as MXFP4 `_blocks` /
// `_scales` U8 + bf16 biases (read in place as InterleavedGateUp<mxfp4>, or repacked to ggml's
// layout on request: mxfp4_experts, models/moe_weights.hpp), the rest bf16 (f32 in the fixtures).
// GGUF (llama.cpp arch `gpt-oss`): gate and up are split out of the interleave
// (`ffn_gate_exps`, `ffn_up_exps`, MXFP4 ggml layout, biases apart), so the layer runs as
// SeparateGateUp<mxfp4_ggml> with the two biases side by side [gate | up]; the sink is
// `attn_sinks`, the router `ffn_gate_inp` (+bias), the post-attention norm `post_attention_norm`.
// GGUF has no key for YaRN's `truncate`; gpt-oss *is* truncate = false (HF config, OAI
// `_compute_concentration_and_inv_freq`), so a gpt-oss GGUF is run with exact bounds — where
// llama.cpp's ggml_rope_yarn_corr_dims floors/ceils and so differs from the reference model.
#pragma once

#include <algorithm>    // std::min
#include <concepts>     // std::same_as
#include <cstdint>      // std::int64_t
#include <memory>       // std::unique_ptr
#include <optional>     // std::optional
#include <span>         // std::span
#include <string>       // std::string, std::to_string
#include <utility>      // std::move
#include <variant>      // std::get_if
#include <vector>       // std::vector

#include <precis/backends/backend.hpp>        // backends::Backend, tensor_of, weight_of, param_of, experts_of
#include <precis/core/error.hpp>               // config_error, range_error, shape_error
#include <precis/core/precision_policy.hpp>    // PrecisionPolicy, role::*
#include <precis/core/scalar.hpp>              // Scalar<f32>
#include <precis/core/tensor.hpp>              // Tensor
#include <precis/io/conversion.hpp>            // ConversionReport, widen
#include <precis/io/load.hpp>                  // io::load, io::Loaded
#include <precis/weights/any_weight.hpp>       // AnyWeight, activation_quantization
#include <precis/models/decoder.hpp>           // Decoder
#include <precis/models/causal_lm.hpp>         // CausalLM, CausalLMFor, ModelFiles, ModelInfo
#include <precis/models/model_config.hpp>      // HfConfig, GgufConfig, RopeSpec, rope_from_hf, rope_from_gguf
#include <precis/models/model_loading.hpp>     // LoadOptions, check_layer_count, ties_output_head
#include <precis/models/moe_weights.hpp>       // AnyMoeExperts, load_hf_gpt_oss_experts, load_gguf_experts
#include <precis/models/weight_loader.hpp>     // WeightLoader
#include <precis/models/weight_source.hpp>     // WeightSource
#include <precis/nn/activation.hpp>            // ClampedSwiglu
#include <precis/nn/attention.hpp>             // AttentionConfig
#include <precis/nn/kv_index.hpp>              // KvSeqId, KvLayerPlan
#include <precis/nn/norm.hpp>                  // MultiplyThenCast
#include <precis/nn/rope.hpp>                  // InvFreq, RopeTable, yarn_bounds
#include <precis/nn/layer_expert_selector.hpp>  // LayerExpertSelector, BoundLayerSelector
#include <precis/nn/router.hpp>                // TopKThenSoftmax, Routing

namespace precis::models {

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/// gpt-oss hyper-parameters, from config.json (HF GptOssConfig) or `gpt-oss.*` GGUF metadata.
struct GptOssConfig {
  index_t vocab_size = 0;
  index_t hidden_size = 0;
  index_t intermediate_size = 0;  ///< every expert's width (2880 for 20b/120b)
  index_t num_hidden_layers = 0;
  index_t num_attention_heads = 0;
  index_t num_key_value_heads = 0;
  index_t head_dim = 0;
  index_t num_experts = 0;        ///< `num_local_experts`
  index_t num_experts_per_tok = 0;
  std::vector<index_t> windows;   ///< per layer: 0 = full attention, w > 0 = sliding window w
  double rms_norm_eps = 1e-5;
  double swiglu_alpha = 1.702;    ///< HF-GO hard-codes 1.702; newer configs: `swiglu_alpha`
  double swiglu_limit = 7.0;
  index_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  RopeSpec rope;

  std::string source;
  struct Keys {
    std::string vocab = "vocab_size", hidden = "hidden_size", ffn = "intermediate_size",
                layers = "num_hidden_layers", heads = "num_attention_heads", kv_heads = "num_key_value_heads",
                head_dim = "head_dim", experts = "num_local_experts";
  } keys;

  [[nodiscard]] static GptOssConfig from_hf(const HfConfig& cfg) {
    GptOssConfig c;
    c.source = cfg.source();
    c.vocab_size = cfg.positive("vocab_size");
    c.hidden_size = cfg.positive("hidden_size");
    c.intermediate_size = cfg.positive("intermediate_size");
    c.num_hidden_layers = cfg.positive("num_hidden_layers", max_layers);
    c.num_attention_heads = cfg.positive("num_attention_heads");
    c.num_key_value_heads = cfg.has("num_key_value_heads") ? cfg.positive("num_key_value_heads") : c.num_attention_heads;
    c.head_dim = cfg.has("head_dim") ? cfg.positive("head_dim") : 64;  // HF-GOC default
    c.num_experts = same_or_alias(cfg, "num_local_experts", "num_experts", c.keys.experts);
    std::string k_used = "num_experts_per_tok";
    c.num_experts_per_tok = same_or_alias(cfg, "num_experts_per_tok", "experts_per_token", k_used);
    if (c.num_experts_per_tok > c.num_experts)
      fail<config_error>("[gpt_oss] ", cfg.where(k_used), " = ", c.num_experts_per_tok, " exceeds ",
                         cfg.where(c.keys.experts), " = ", c.num_experts);
    // Windows: HF `layer_types`, else OAI's even-layers rule, with `sliding_window`.
    const index_t window = cfg.has("sliding_window") ? cfg.positive("sliding_window") : 128;
    if (cfg.has("layer_types")) {
      const nlohmann::json& lt = cfg.json().at("layer_types");
      if (!lt.is_array() || static_cast<index_t>(lt.size()) != c.num_hidden_layers)
        fail<config_error>("[gpt_oss] ", cfg.where("layer_types"), " must list ", c.num_hidden_layers,
                           " layer types (num_hidden_layers), got ", io::json_excerpt(lt));
      for (std::size_t l = 0; l < lt.size(); ++l) {
        const std::string t = lt[l].is_string() ? lt[l].get<std::string>() : std::string();
        if (t == "sliding_attention") c.windows.push_back(window);
        else if (t == "full_attention") c.windows.push_back(0);
        else
          fail<config_error>("[gpt_oss] ", cfg.where("layer_types[" + std::to_string(l) + "]"), " is ", io::json_excerpt(lt[l]),
                             "; expected \"sliding_attention\" or \"full_attention\"");
      }
    } else {
      for (index_t l = 0; l < c.num_hidden_layers; ++l) c.windows.push_back(l % 2 == 0 ? window : 0);
    }
    c.rms_norm_eps = cfg.get_or<double>("rms_norm_eps", 1e-5);
    if (!(c.rms_norm_eps > 0.0 && c.rms_norm_eps < 1.0))
      fail<config_error>("[gpt_oss] ", cfg.where("rms_norm_eps"), " must be in (0, 1), got ", c.rms_norm_eps);
    c.swiglu_alpha = cfg.get_or<double>("swiglu_alpha", 1.702);
    c.swiglu_limit = cfg.get_or<double>("swiglu_limit", 7.0);
    if (!(c.swiglu_limit > 0.0) || !(c.swiglu_alpha > 0.0))
      fail<config_error>("[gpt_oss] ", cfg.where("swiglu_limit"), " and ", cfg.where("swiglu_alpha"),
                         " must be > 0, got ", c.swiglu_limit, ", ", c.swiglu_alpha);
    c.max_position_embeddings = cfg.has("max_position_embeddings") ? cfg.positive("max_position_embeddings") : 131072;
    c.tie_word_embeddings = cfg.get_or<bool>("tie_word_embeddings", false);
    if (!cfg.get_or<bool>("attention_bias", true))
      fail<config_error>("[gpt_oss] ", cfg.where("attention_bias"), " is false; gpt-oss attention has biases");
    c.rope = rope_from_hf(cfg, c.head_dim, 150000.0, c.max_position_embeddings);
    c.check();
    return c;
  }

  /// From the `gpt-oss.*` metadata of a GGUF file (llama.cpp LLM_ARCH_OPENAI_MOE).
  [[nodiscard]] static GptOssConfig from_gguf(const io::GgufFile& file, const std::string& path) {
    const GgufConfig g(file, path);
    if (g.architecture() != "gpt-oss")
      fail<config_error>("[gpt_oss] '", path, "': general.architecture is \"", g.architecture(), "\", not \"gpt-oss\"");
    GptOssConfig c;
    c.source = path;
    c.keys = {g.key("vocab_size"),           g.key("embedding_length"),     g.key("expert_feed_forward_length"),
              g.key("block_count"),          g.key("attention.head_count"), g.key("attention.head_count_kv"),
              g.key("attention.key_length"), g.key("expert_count")};
    c.hidden_size = g.positive("embedding_length");
    c.num_hidden_layers = g.positive("block_count", max_layers);
    c.num_attention_heads = g.positive("attention.head_count");
    c.num_key_value_heads =
        g.has("attention.head_count_kv") ? g.positive("attention.head_count_kv") : c.num_attention_heads;
    c.head_dim = g.has("attention.key_length") ? g.positive("attention.key_length") : 64;
    c.num_experts = g.positive("expert_count");
    c.num_experts_per_tok = g.positive("expert_used_count");
    c.intermediate_size = g.positive("expert_feed_forward_length");
    if (g.has("vocab_size")) {
      c.vocab_size = g.positive("vocab_size");
    } else {
      const auto* embd = file.find_tensor("token_embd.weight");
      if (embd == nullptr || embd->shape.size() != 2)
        fail<config_error>("[gpt_oss] '", path, "': no ", g.key("vocab_size"), " and no 2-D 'token_embd.weight'");
      c.vocab_size = embd->shape[0];
      c.keys.vocab = "token_embd.weight rows";
    }
    // Windows: `attention.sliding_window_pattern` (one bool per layer) when present, else
    // llama.cpp's hard-coded rule: even layers slide.
    const index_t window = g.positive("attention.sliding_window");
    const std::string pattern_key = g.key("attention.sliding_window_pattern");
    if (file.has(pattern_key)) {
      const std::vector<bool> pattern = file.get_array<bool>(pattern_key);
      if (static_cast<index_t>(pattern.size()) != c.num_hidden_layers)
        fail<config_error>("[gpt_oss] '", pattern_key, "' in '", path, "' has ", pattern.size(), " entries for ",
                           c.num_hidden_layers, " layers (", g.key("block_count"), ")");
      for (const bool slides : pattern) c.windows.push_back(slides ? window : 0);
    } else {
      for (index_t l = 0; l < c.num_hidden_layers; ++l) c.windows.push_back(l % 2 == 0 ? window : 0);
    }
    c.rms_norm_eps = g.get<double>("attention.layer_norm_rms_epsilon");
    // No GGUF key carries swiglu_limit / swiglu_alpha for gpt-oss (gguf-py 0.19 constants):
    // llama.cpp hard-codes the released values, as HF-GO hard-codes α.
    c.swiglu_limit = 7.0;
    c.swiglu_alpha = 1.702;
    c.max_position_embeddings = g.positive("context_length");
    c.tie_word_embeddings = !file.contains("output.weight");
    c.rope = rope_from_gguf(g, c.head_dim, rope_layout::half_split);
    // gpt-oss is YaRN with truncate = false (see the header comment): GGUF cannot say so.
    if (auto* y = std::get_if<rope_scaling::yarn>(&c.rope.scaling)) y->bounds = yarn_bounds::exact;
    c.check();
    return c;
  }

  void check() const {
    if (num_attention_heads % num_key_value_heads != 0)
      fail<config_error>("[gpt_oss] ", keys.heads, " = ", num_attention_heads, " is not a multiple of ", keys.kv_heads,
                         " = ", num_key_value_heads, " ('", source, "')");
    if (rope.rotary_dim > head_dim)
      fail<config_error>("[gpt_oss] rotary dimension ", rope.rotary_dim, " exceeds head_dim ", head_dim, " ('", source,
                         "')");
    if (rope.mrope) fail<config_error>("[gpt_oss] the config describes MRoPE (", rope.source, "); gpt-oss has 1-D RoPE");
  }

 private:
  /// A count under its name or its alias (HF-GOC `num_local_experts` / `num_experts`; OAI
  /// `experts_per_token`): when both are present they must agree. `used` gets the key read.
  [[nodiscard]] static index_t same_or_alias(const HfConfig& cfg, const std::string& key, const std::string& alias,
                                             std::string& used) {
    const std::optional<index_t> a = cfg.find<index_t>(key), b = cfg.find<index_t>(alias);
    if (a && b && *a != *b)
      fail<config_error>("[gpt_oss] ", cfg.where(key), " = ", *a, " and ", cfg.where(alias), " = ", *b, " disagree");
    if (!a && !b) fail<config_error>("[gpt_oss] missing required key ", cfg.where(key));
    used = a ? key : alias;
    const index_t v = a ? *a : *b;
    if (v < 1) fail<config_error>("[gpt_oss] ", cfg.where(used), " must be ≥ 1, got ", v);
    return v;
  }
};

/// How the tensors of a gpt-oss are named (one policy per file convention).
struct GptOssTensorNames {
  std::string embed, final_norm, lm_head, layer_prefix;
  std::string input_norm, q, k, v, o, post_norm, router;  // per layer, without ".weight"
  std::string sinks;                                       // per layer, the full suffix (HF has no ".weight")
  expert_layout experts_as = expert_layout::hf;  // split ffn_*_exps (gguf) or HF interleaved MXFP4 / float

  /// HF GptOssForCausalLM.
  [[nodiscard]] static GptOssTensorNames hf() {
    return {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", "model.layers.",
            "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "post_attention_layernorm", "mlp.router", "self_attn.sinks", expert_layout::hf};
  }
  /// llama.cpp GGUF (gguf-py TENSOR_NAMES for gpt-oss).
  [[nodiscard]] static GptOssTensorNames gguf_names() {
    return {"token_embd.weight", "output_norm.weight", "output.weight", "blk.", "attn_norm", "attn_q", "attn_k",
            "attn_v", "attn_output", "post_attention_norm", "ffn_gate_inp", "attn_sinks.weight", expert_layout::gguf};
  }

  [[nodiscard]] std::string layer(index_t l, const std::string& part, const char* suffix = ".weight") const {
    return layer_prefix + std::to_string(l) + "." + part + suffix;
  }
};

// ---------------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------------

/// One decoder layer (HF names), in backend B's memory.
template <PrecisionPolicy P, backends::Backend B>
struct GptOssLayerWeights {
  using act = typename P::activation;
  using bias_t = role_dtype_t<role::bias, P>;
  using weight = backends::weight_of<B>;
  template <class D>
  using param = backends::param_of<B, D, 1>;

  param<f32> input_layernorm;                           // [hidden] f32 (HF _keep_in_fp32_modules)
  weight q_proj;                                        // [H·D, hidden]
  weight k_proj;                                        // [Hkv·D, hidden]
  weight v_proj;                                        // [Hkv·D, hidden]
  weight o_proj;                                        // [hidden, H·D]
  param<bias_t> q_bias;                                 // [H·D]
  param<bias_t> k_bias;                                 // [Hkv·D]
  param<bias_t> v_bias;                                 // [Hkv·D]
  param<bias_t> o_bias;                                 // [hidden]
  param<f32> sinks;                                     // [H] f32 (role::sinks, pinned)
  param<f32> post_attention_layernorm;                  // [hidden] f32
  weight router;                                        // [E, hidden]
  param<f32> router_bias;                               // [E] f32 (role::router_bias, pinned)
  backends::experts_of<B, ClampedSwiglu, act> experts;  // gate/up [E, 2I, hidden] (or split), down [E, hidden, I]
};

template <PrecisionPolicy P, backends::Backend B>
struct GptOssWeights {
  using weight = backends::weight_of<B>;

  weight embed_tokens;                           // [vocab, hidden]
  std::vector<GptOssLayerWeights<P, B>> layers;  // [num_hidden_layers]
  backends::param_of<B, f32, 1> norm;            // [hidden] f32
  std::optional<weight> lm_head;                 // [vocab, hidden]; absent when tied to embed_tokens
  io::ConversionReport conversions;
  std::size_t bytes_copied = 0;                  // host bytes the load had to copy

  [[nodiscard]] bool tied() const noexcept { return !lm_head.has_value(); }
  [[nodiscard]] const weight& head() const noexcept { return lm_head ? *lm_head : embed_tokens; }

  [[nodiscard]] static GptOssWeights load(B& be, WeightSource& w, const GptOssConfig& c, const GptOssTensorNames& names,
                                          mxfp4_experts mxfp4 = mxfp4_experts::as_stored) {
    using act = typename P::activation;
    const auto& k = c.keys;
    const index_t hidden = c.hidden_size, d = c.head_dim, q_rows = c.num_attention_heads * d,
                  kv_rows = c.num_key_value_heads * d, vocab = c.vocab_size, ne = c.num_experts,
                  ni = c.intermediate_size;
    const std::string hid = k.hidden + "=" + std::to_string(hidden);
    const std::string q_why = k.heads + "=" + std::to_string(c.num_attention_heads) + " × " + k.head_dim + "=" +
                              std::to_string(d);
    const std::string kv_why = k.kv_heads + "=" + std::to_string(c.num_key_value_heads) + " × " + k.head_dim + "=" +
                               std::to_string(d);
    const std::string heads_why = k.heads + "=" + std::to_string(c.num_attention_heads);
    const std::string e_why = k.experts + "=" + std::to_string(ne);
    const std::string moe_why = e_why + ", " + k.ffn + "=" + std::to_string(ni) + ", " + hid;
    const std::string vocab_why = k.vocab + "=" + std::to_string(vocab);

    WeightLoader<P, B> ld(be, w);
    // Norm gains are kept in f32 under every policy (HF `_keep_in_fp32_modules`; MultiplyThenCast
    // multiplies in f32 anyway): a bf16 gain widens exactly, logged.
    const auto norm = [&](const std::string& name) { return ld.f32_param(name, hidden, hid); };
    const auto bias = [&](const std::string& name, index_t n, const std::string& why) {
      return ld.template param<role::bias>(name, n, why);
    };
    const auto bias2 = [&](const std::string& name, index_t rows, index_t cols, const std::string& why) {
      return ld.template host_param<role::bias, 2>(name, {{rows, cols}, why}).to_tensor();  // [E, N]
    };

    auto embed = ld.weight(names.embed, vocab, hidden, vocab_why + ", " + hid);
    std::vector<GptOssLayerWeights<P, B>> layers;
    check_layer_count(w, names.layer_prefix, c.num_hidden_layers, k.layers, c.source);
    layers.reserve(static_cast<std::size_t>(c.num_hidden_layers));
    const ClampedSwiglu act_fn{Scalar<f32>::from(c.swiglu_alpha), Scalar<f32>::from(c.swiglu_limit)};
    for (index_t l = 0; l < c.num_hidden_layers; ++l) {
      const auto n = [&](const std::string& part, const char* suffix = ".weight") { return names.layer(l, part, suffix); };
      std::optional<AnyMoeExperts<ClampedSwiglu, act>> experts;
      if (names.experts_as == expert_layout::gguf) {
        const std::string blk = names.layer_prefix + std::to_string(l);
        ExpertTensors e = load_gguf_experts(w, blk, ne, ni, hidden, moe_why);
        Tensor<act, 2> gu_bias = concat_halves(bias2(blk + ".ffn_gate_exps.bias", ne, ni, moe_why),
                                               bias2(blk + ".ffn_up_exps.bias", ne, ni, moe_why));  // [E, 2I]
        experts.emplace(AnyMoeExperts<ClampedSwiglu, act>::separate_gate_up(
            act_fn, ld.experts(std::move(e.gate)), ld.experts(std::move(e.up)),
            ld.experts(std::move(e.down)), std::move(gu_bias),
            bias2(blk + ".ffn_down_exps.bias", ne, hidden, moe_why)));
      } else {
        const std::string pre = names.layer_prefix + std::to_string(l) + ".mlp.experts";
        InterleavedExpertTensors e = load_hf_gpt_oss_experts(w, pre, ne, ni, hidden, moe_why, mxfp4);
        experts.emplace(AnyMoeExperts<ClampedSwiglu, act>::interleaved_gate_up(
            act_fn, ld.experts(std::move(e.gate_up)), ld.experts(std::move(e.down)),
            bias2(pre + ".gate_up_proj_bias", ne, 2 * ni, moe_why),
            bias2(pre + ".down_proj_bias", ne, hidden, moe_why)));
      }
      layers.push_back(GptOssLayerWeights<P, B>{
          norm(n(names.input_norm)),
          ld.weight(n(names.q), q_rows, hidden, q_why + ", " + hid),
          ld.weight(n(names.k), kv_rows, hidden, kv_why + ", " + hid),
          ld.weight(n(names.v), kv_rows, hidden, kv_why + ", " + hid),
          ld.weight(n(names.o), hidden, q_rows, hid + ", " + q_why),
          bias(n(names.q, ".bias"), q_rows, q_why),
          bias(n(names.k, ".bias"), kv_rows, kv_why),
          bias(n(names.v, ".bias"), kv_rows, kv_why),
          bias(n(names.o, ".bias"), hidden, hid),
          ld.template param<role::sinks>(n(names.sinks, ""), c.num_attention_heads, heads_why),
          norm(n(names.post_norm)),
          ld.weight(n(names.router), ne, hidden, e_why + ", " + hid),
          ld.template param<role::router_bias>(n(names.router, ".bias"), ne, e_why),
          be.upload(std::move(*experts)),
      });
    }
    auto final_norm = norm(names.final_norm);

    std::optional<backends::weight_of<B>> head;
    if (!ties_output_head(w, "gpt_oss", c.source, c.tie_word_embeddings, names.lm_head))
      head = ld.weight(names.lm_head, vocab, hidden, vocab_why + ", " + hid);
    return GptOssWeights{std::move(embed), std::move(layers), std::move(final_norm), std::move(head),
                         ld.take_report(), ld.bytes_copied()};
  }
};

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// gpt-oss under policy P on backend B (shared plumbing: models/decoder.hpp).
template <PrecisionPolicy P, backends::Backend B>
  requires std::same_as<typename P::kv_store, typename P::activation>
class GptOss : public Decoder<GptOss<P, B>, B, typename P::activation> {
  using base = Decoder<GptOss<P, B>, B, typename P::activation>;

 public:
  using policy = P;
  using act = typename P::activation;
  template <std::size_t R>
  using tensor = backends::tensor_of<B, act, R>;
  template <std::size_t R>
  using view = backends::view_of<B, act, R>;

  /// Tokens one append brings at most: prompts are prefilled in chunks of this many, and a
  /// sliding layer's ring holds window − 1 + prefill_chunk positions (nn/kv_index.hpp). 256 keeps
  /// the rings of gpt-oss (window 128) at 383 positions per sequence, whatever the context.
  static constexpr index_t default_prefill_chunk = 256;

  [[nodiscard]] static GptOss load(B backend, WeightSource& w, const GptOssConfig& config,
                                   const GptOssTensorNames& names, const LoadOptions& options,
                                   mxfp4_experts mxfp4 = mxfp4_experts::as_stored,
                                   index_t prefill_chunk = default_prefill_chunk) {
    GptOssWeights<P, B> weights = GptOssWeights<P, B>::load(backend, w, config, names, mxfp4);
    return GptOss(std::move(backend), config, std::move(weights), options, prefill_chunk);
  }

  GptOss(B backend, GptOssConfig config, GptOssWeights<P, B> weights, const LoadOptions& options,
         index_t prefill_chunk = default_prefill_chunk)
      : base(std::move(backend), options,
             {.name = "gpt_oss",
              .source = config.source,
              .model_context = config.max_position_embeddings,
              .plan = KvLayerPlan(config.windows),
              .n_kv_heads = config.num_key_value_heads,
              .head_dim = config.head_dim,
              // sliding rings hold window − 1 + one prefill chunk (the Decoder caps it at the context)
              .max_append = checked_chunk(prefill_chunk)}),
        cfg_(std::move(config)),
        w_(std::move(weights)),
        inv_freq_(cfg_.rope.inv_freq()),
        eps_(Scalar<f32>::from(cfg_.rms_norm_eps)) {
    check_exact_activations_only(options, "gpt_oss");
    for (const index_t win : cfg_.windows)
      attn_.push_back({.n_heads = cfg_.num_attention_heads, .n_kv_heads = cfg_.num_key_value_heads,
                       .head_dim = cfg_.head_dim, .sliding_window = win});
  }

  [[nodiscard]] const GptOssConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] const GptOssWeights<P, B>& weights() const noexcept { return w_; }
  [[nodiscard]] const InvFreq& inv_freq() const noexcept { return inv_freq_; }
  [[nodiscard]] index_t prefill_chunk() const noexcept { return this->max_append(); }
  /// Positions a sliding layer's ring keeps per sequence: window − 1 + prefill_chunk.
  [[nodiscard]] index_t ring_positions(index_t layer) const {
    const index_t win = this->cache().window(layer);
    return win == 0 ? this->context_length() : win - 1 + prefill_chunk();
  }

  /// Installs a selection hook on every layer's routing (nn/layer_expert_selector.hpp); an empty
  /// one restores the model's own ranking.
  void set_expert_selector(LayerExpertSelector selector) { selector_ = std::move(selector); }

  /// Runs `tokens` [T] of `seq` at positions length(seq) + t, in chunks of ≤ prefill_chunk (the
  /// sliding rings hold window − 1 + prefill_chunk positions). Returns logits [T, vocab], or the
  /// last token's [1, vocab] with rows = logits_rows::last.
  [[nodiscard]] Tensor<f32, 2> forward(KvSeqId seq, std::span<const std::int64_t> tokens,
                                       logits_rows rows = logits_rows::all) {
    const auto n = static_cast<index_t>(tokens.size());
    this->check_context(this->length(seq), n, seq);
    Tensor<f32, 2> logits({rows == logits_rows::all ? n : 1, cfg_.vocab_size});  // [T or 1, vocab]
    const index_t chunk = prefill_chunk();
    for (index_t t0 = 0; t0 < n; t0 += chunk) {
      const index_t m = std::min(chunk, n - t0);
      const auto part_tokens = tokens.subspan(static_cast<std::size_t>(t0), static_cast<std::size_t>(m));
      const Tensor<f32, 2> part = base::forward(seq, part_tokens, rows);  // [m or 1, vocab]: models/decoder.hpp
      const index_t dst = rows == logits_rows::all ? t0 : 0;
      for (index_t t = 0; t < part.extent(0); ++t)
        for (index_t j = 0; j < cfg_.vocab_size; ++j) logits(dst + t, j) = part(t, j);
    }
    return logits;
  }

  /// The forward pass over N token rows (one sequence with N ≤ prefill_chunk tokens, or N
  /// sequences with one token each) at absolute positions [N] (models/decoder.hpp).
  [[nodiscard]] backends::tensor_of<B, f32, 2> run(std::span<const KvSeqId> seqs, std::span<const std::int64_t> tokens,
                                                   const Tensor<i64, 1>& positions, logits_rows rows) {
    B& be = this->backend();
    const index_t n = positions.extent(0), H = cfg_.num_attention_heads, Hkv = cfg_.num_key_value_heads,
                  D = cfg_.head_dim;
    constexpr activation_quantization exact = activation_quantization::none;
    // YaRN: cos and sin carry mscale (InvFreq::attention_factor), applied to q and k alike.
    const auto rope = be.upload(RopeTable<f32>::from_positions(positions, inv_freq_));  // [N, D/2]

    tensor<2> x = be.template embed<act>(w_.embed_tokens, tokens);  // [N, hidden]
    for (index_t l = 0; l < cfg_.num_hidden_layers; ++l) {
      const GptOssLayerWeights<P, B>& L = w_.layers[static_cast<std::size_t>(l)];

      // --- self-attention with sinks (HF-GO GptOssAttention, eager_attention_forward) ------------
      const tensor<2> h = be.template rms_norm<MultiplyThenCast>(x, L.input_layernorm, eps_);  // [N, hidden]
      tensor<2> q = be.linear(h, L.q_proj, L.q_bias, exact);                                 // [N, H·D]
      tensor<2> k = be.linear(h, L.k_proj, L.k_bias, exact);                                 // [N, Hkv·D]
      const tensor<2> v = be.linear(h, L.v_proj, L.v_bias, exact);                           // [N, Hkv·D]
      const view<3> q3 = q.view().template reshape<3>({n, H, D});                            // [N, H, D]
      const view<3> k3 = k.view().template reshape<3>({n, Hkv, D});                          // [N, Hkv, D]
      const auto v3 = v.cview().template reshape<3>({n, Hkv, D});                            // [N, Hkv, D]
      be.template rope<rope_layout::half_split>(q3, rope);
      be.template rope<rope_layout::half_split>(k3, rope);
      const tensor<3> o3 = this->attend(l, seqs, q3, k3, v3, attn_[static_cast<std::size_t>(l)], L.sinks);  // [N, H, D]
      be.add_inplace(x.view(), be.linear(o3.cview().template reshape<2>({n, H * D}), L.o_proj, L.o_bias, exact));  // [N, hidden]

      // --- MoE: router (+bias) → top-k → softmax → clamped-SwiGLU experts (+biases) -----------
      const tensor<2> h2 = be.template rms_norm<MultiplyThenCast>(x, L.post_attention_layernorm, eps_);  // [N, hidden]
      const auto logits = be.template linear<f32>(h2, L.router, L.router_bias, exact);  // [N, E] f32
      const auto r = be.route(TopKThenSoftmax{}, logits, cfg_.num_experts_per_tok,
                              BoundLayerSelector(selector_, l));  // top-k of raw logits, softmax
      be.add_inplace(x.view(), be.moe(L.experts, h2, r));         // [N, hidden]
    }
    const auto out = x.cview().slice(0, rows == logits_rows::last ? n - 1 : 0, n);   // [N or 1, hidden]
    const tensor<2> hf = be.template rms_norm<MultiplyThenCast>(out, w_.norm, eps_);  // [N or 1, hidden]
    return be.template linear<f32>(hf, w_.head(), exact);                            // [N or 1, vocab], f32
  }

 private:
  [[nodiscard]] static index_t checked_chunk(index_t chunk) {
    PRECIS_CHECK(chunk >= 1, config_error, "[gpt_oss] prefill_chunk must be ≥ 1, got ", chunk);
    return chunk;
  }

  GptOssConfig cfg_;
  GptOssWeights<P, B> w_;
  InvFreq inv_freq_;  // [D/2] YaRN, f32, with the attention factor mscale
  Scalar<f32> eps_;
  std::vector<AttentionConfig> attn_;  // per layer: the window of that layer
  LayerExpertSelector selector_;  // the user's selection hook; empty = the model's own ranking
};

// ---------------------------------------------------------------------------------------------
// load_model's entry (runtime/load_model.hpp picks the backend)
// ---------------------------------------------------------------------------------------------

namespace detail {
template <PrecisionPolicy P, backends::Backend B>
[[nodiscard]] std::unique_ptr<CausalLM> make_gpt_oss(ModelFiles& files, const GptOssConfig& cfg,
                                                     const GptOssTensorNames& names, const LoadOptions& options,
                                                     precision p, B backend) {
  GptOss<P, B> model = GptOss<P, B>::load(std::move(backend), files.weights, cfg, names, options);
  ModelInfo info;
  fill_common_info(info, "gpt_oss", cfg, model, files.weights, options, p);
  info.n_experts = cfg.num_experts;
  info.n_experts_per_token = cfg.num_experts_per_tok;
  info.bytes_copied = model.weights().bytes_copied;
  record_kv_cache(info, model.cache());  // the page pool of the full layers (+ a ring per sequence for sliding layers)
  return std::make_unique<CausalLMFor<GptOss<P, B>>>(std::move(model), std::move(info));
}
}  // namespace detail

/// Loads a gpt-oss from an HF checkpoint (config.json + safetensors, MXFP4 experts) or a GGUF
/// file of architecture `gpt-oss`, under the f32 or bf16 policy, onto `backend`.
template <backends::Backend B>
[[nodiscard]] std::unique_ptr<CausalLM> load_gpt_oss(ModelFiles& files, precision p, const LoadOptions& options,
                                                     B backend) {
  GptOssConfig cfg;
  GptOssTensorNames names;
  if (files.weights.format() == weight_format::gguf) {
    cfg = GptOssConfig::from_gguf(*files.weights.gguf(), files.weights.path().string());
    names = GptOssTensorNames::gguf_names();
  } else {
    if (!files.config)
      fail<config_error>("[gpt_oss] '", files.weights.path().string(), "' has no config.json to read the model's shape from");
    cfg = GptOssConfig::from_hf(*files.config);
    names = GptOssTensorNames::hf();
  }
  if (p == precision::f32) return detail::make_gpt_oss<f32_policy>(files, cfg, names, options, p, std::move(backend));
  return detail::make_gpt_oss<bf16_policy>(files, cfg, names, options, p, std::move(backend));
}

}  // namespace precis::models
