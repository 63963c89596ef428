// precis/models/llama.hpp — the Llama decoder (Llama 2/3, SmolLM2, TinyStories' stories260K):
// LlamaConfig, LlamaWeights, Llama<Policy>::forward. Reads top to bottom like llama2.c's
// forward(): embed → per layer {RMSNorm → q/k/v → RoPE → KV cache → attention → o_proj →
// residual → RMSNorm → SiLU-gated MLP → residual} → final RMSNorm → lm_head → f32 logits.
//
// Semantics (HF transformers models/llama/modeling_llama.py; model-semantics.md §1d):
//   RMSNorm      y = w · round_Act(x · rsqrt(mean(x²) + eps)) — Llama casts *before* the weight
//                multiply (NormThenCast), variance in f32 (role::norm_accumulator).
//   attention    q = x·Wqᵀ (+b), k, v likewise (GQA: num_key_value_heads ≤ num_attention_heads),
//                RoPE on q and k, softmax((q·kᵀ)·head_dim^-½ + causal mask) in f32, o = p·v.
//   MLP          down(silu(gate(x)) · up(x)).
//   lm_head      `lm_head.weight`, or the embedding table when the checkpoint has none
//                (`tie_word_embeddings`, SmolLM2; GGUF: no `output.weight`).
//   RoPE layout  HF checkpoints rotate halves (rotate_half on q/k as trained). llama.cpp's
//                converter permutes the rows of Wq and Wk of arch `llama` so that each head's
//                pair (i, i + d/2) becomes the adjacent pair (2i, 2i + 1), and applies "normal"
//                RoPE on adjacent pairs; q·k is unchanged. So a GGUF `llama` file is run with
//                rope_layout::interleaved and an HF file with rope_layout::half_split — the
//                layout is part of RopeSpec, chosen by where the weights came from.
//
// Precision: `Llama<Policy, Backend>` computes in `Policy::activation` (f32 or bf16) with the ops of
// `Backend` (backends/backend.hpp; the model names no kernel). Weights stay in their stored format
// (weights/any_weight.hpp: f32/bf16/f16 storage or ggml blocks), read by the backend's matmul and
// accumulated in f32. RMSNorm gains and biases are typed by their roles
// (role::norm_weight, role::bias → the activation dtype): a bf16 gain under the f32 policy goes
// through the named, exact `widen<bf16, f32>`; an f32 gain under the bf16 policy through the
// named `narrow<f32, bf16>` — what running an f32 checkpoint in bf16 means (HF's
// `torch_dtype=bfloat16` rounds every parameter the same way) — and every conversion is listed
// in the ConversionReport that info() prints. Logits are computed with an f32 output (the
// declared-f32 GEMM), whatever the activation dtype.
//
// State: one paged KV cache in the backend's memory, shared by every sequence (models/decoder.hpp,
// nn/kv_index.hpp): prefill and decode append to the same pages, and decode_batch() runs several
// sequences' next tokens as one stacked [B, hidden] matrix through every projection, with
// attention per sequence (the backend's batched decode attention). Positions are checked against the context the
// cache was sized for, token ids against the vocabulary, before anything is computed.
#pragma once

#include <concepts>     // std::same_as
#include <cstdint>      // std::int64_t
#include <optional>     // std::optional
#include <span>         // std::span
#include <string>       // std::string, std::to_string
#include <utility>      // std::move
#include <vector>       // std::vector

#include <precis/backends/backend.hpp>        // backends::Backend, tensor_of, weight_of, param_of
#include <precis/core/error.hpp>               // config_error, range_error, shape_error
#include <precis/core/precision_policy.hpp>    // PrecisionPolicy, role::*
#include <precis/core/scalar.hpp>              // Scalar<f32>
#include <precis/core/tensor.hpp>              // Tensor
#include <precis/io/conversion.hpp>            // ConversionReport, widen, narrow
#include <precis/io/load.hpp>                  // io::load_role, io::Loaded
#include <precis/models/causal_lm.hpp>         // CausalLM, CausalLMFor, ModelFiles, ModelInfo
#include <precis/models/decoder.hpp>           // Decoder
#include <precis/models/model_config.hpp>      // HfConfig, RopeSpec, rope_from_hf
#include <precis/models/model_loading.hpp>     // LoadOptions, check_layer_count, ties_output_head
#include <precis/models/weight_loader.hpp>     // WeightLoader
#include <precis/models/weight_source.hpp>     // WeightSource, ExpectedShape
#include <precis/nn/activation.hpp>            // SiluGate
#include <precis/nn/attention.hpp>             // AttentionConfig
#include <precis/nn/kv_index.hpp>              // KvSeqId, KvLayerPlan
#include <precis/weights/any_weight.hpp>       // AnyWeight, activation_quantization
#include <precis/nn/norm.hpp>                  // NormThenCast
#include <precis/nn/rope.hpp>                  // InvFreq, RopeTable, rope_layout

namespace precis::models {

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/// Llama hyper-parameters, from config.json (HF) or `llama.*` GGUF metadata. The `key_*` strings
/// are the names the file uses, so shape errors cite the keys the user can check.
struct LlamaConfig {
  index_t vocab_size = 0;
  index_t hidden_size = 0;
  index_t intermediate_size = 0;
  index_t num_hidden_layers = 0;
  index_t num_attention_heads = 0;
  index_t num_key_value_heads = 0;
  index_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  index_t max_position_embeddings = 0;  ///< the context length
  bool attention_bias = false;          ///< q/k/v/o biases (HF `attention_bias`)
  bool mlp_bias = false;                ///< gate/up/down biases (HF `mlp_bias`)
  bool tie_word_embeddings = false;     ///< no lm_head: the embedding table is the head
  RopeSpec rope;

  std::string source;  ///< config.json or the .gguf file
  struct Keys {
    std::string vocab = "vocab_size", hidden = "hidden_size", ffn = "intermediate_size",
                layers = "num_hidden_layers", heads = "num_attention_heads", kv_heads = "num_key_value_heads",
                head_dim = "head_dim";
  } keys;

  /// From an HF config.json (LlamaConfig fields; HF defaults where HF has them).
  [[nodiscard]] static LlamaConfig from_hf(const HfConfig& cfg) {
    LlamaConfig c;
    c.source = cfg.source();
    c.vocab_size = cfg.positive("vocab_size");
    c.hidden_size = cfg.positive("hidden_size");
    c.intermediate_size = cfg.positive("intermediate_size");
    c.num_hidden_layers = cfg.positive("num_hidden_layers", max_layers);
    c.num_attention_heads = cfg.positive("num_attention_heads");
    // HF LlamaConfig: num_key_value_heads defaults to num_attention_heads (no GQA).
    c.num_key_value_heads = cfg.has("num_key_value_heads") ? cfg.positive("num_key_value_heads") : c.num_attention_heads;
    // HF: head_dim defaults to hidden_size // num_attention_heads.
    if (cfg.has("head_dim")) {
      c.head_dim = cfg.positive("head_dim");
    } else {
      if (c.hidden_size % c.num_attention_heads != 0)
        fail<config_error>("[llama] ", cfg.where("hidden_size"), " = ", c.hidden_size,
                           " is not a multiple of num_attention_heads = ", c.num_attention_heads,
                           " and there is no head_dim");
      c.head_dim = c.hidden_size / c.num_attention_heads;
      c.keys.head_dim = "head_dim=hidden_size/num_attention_heads";
    }
    c.rms_norm_eps = cfg.get_or<double>("rms_norm_eps", 1e-6);
    if (!(c.rms_norm_eps > 0.0 && c.rms_norm_eps < 1.0))
      fail<config_error>("[llama] ", cfg.where("rms_norm_eps"), " must be in (0, 1), got ", c.rms_norm_eps);
    c.max_position_embeddings = cfg.has("max_position_embeddings") ? cfg.positive("max_position_embeddings") : 2048;
    c.attention_bias = cfg.get_or<bool>("attention_bias", false);
    c.mlp_bias = cfg.get_or<bool>("mlp_bias", false);
    c.tie_word_embeddings = cfg.get_or<bool>("tie_word_embeddings", false);
    const std::string act = cfg.get_or<std::string>("hidden_act", "silu");
    if (act != "silu")
      fail<config_error>("[llama] ", cfg.where("hidden_act"), " is \"", act, "\"; the Llama MLP is SiLU-gated (\"silu\")");
    c.rope = rope_from_hf(cfg, c.head_dim, 10000.0, c.max_position_embeddings);
    c.check(cfg.source());
    return c;
  }

  /// From the `llama.*` metadata of a GGUF file (gguf.md "LLaMA"; model-semantics §1d). The
  /// Q/K rows of a `llama` GGUF are permuted for adjacent-pair RoPE, hence rope_layout::interleaved.
  [[nodiscard]] static LlamaConfig from_gguf(const io::GgufFile& file, const std::string& path) {
    const GgufConfig g(file, path);
    if (g.architecture() != "llama")
      fail<config_error>("[llama] '", path, "': general.architecture is \"", g.architecture(), "\", not \"llama\"");
    LlamaConfig c;
    c.source = path;
    c.keys = {g.key("vocab_size"), g.key("embedding_length"), g.key("feed_forward_length"), g.key("block_count"),
              g.key("attention.head_count"), g.key("attention.head_count_kv"), g.key("attention.key_length")};
    c.hidden_size = g.positive("embedding_length");
    c.intermediate_size = g.positive("feed_forward_length");
    c.num_hidden_layers = g.positive("block_count", max_layers);
    c.num_attention_heads = g.positive("attention.head_count");
    c.num_key_value_heads = g.has("attention.head_count_kv") ? g.positive("attention.head_count_kv")
                                                             : c.num_attention_heads;
    if (g.has("attention.key_length")) {
      c.head_dim = g.positive("attention.key_length");
    } else {
      if (c.hidden_size % c.num_attention_heads != 0)
        fail<config_error>("[llama] ", g.where("embedding_length"), " = ", c.hidden_size,
                           " is not a multiple of ", g.key("attention.head_count"), " = ", c.num_attention_heads);
      c.head_dim = c.hidden_size / c.num_attention_heads;
      c.keys.head_dim = "head_dim=" + g.key("embedding_length") + "/" + g.key("attention.head_count");
    }
    if (g.has("attention.value_length") && g.positive("attention.value_length") != c.head_dim)
      fail<config_error>("[llama] ", g.where("attention.value_length"), " differs from the key length ", c.head_dim);
    // The vocabulary: `llama.vocab_size` when present, else the tokenizer's token list, else the
    // embedding table itself (then only the other tensors are checked against it).
    if (g.has("vocab_size")) {
      c.vocab_size = g.positive("vocab_size");
    } else if (file.has("tokenizer.ggml.tokens")) {
      c.vocab_size = static_cast<index_t>(file.at("tokenizer.ggml.tokens").size());
      c.keys.vocab = "tokenizer.ggml.tokens (" + std::to_string(c.vocab_size) + " entries)";
    } else {
      const auto* embd = file.find_tensor("token_embd.weight");
      if (embd == nullptr || embd->shape.size() != 2)
        fail<config_error>("[llama] '", path, "': no vocabulary size (", g.key("vocab_size"),
                           ", tokenizer.ggml.tokens) and no 2-D 'token_embd.weight'");
      c.vocab_size = embd->shape[0];
      c.keys.vocab = "token_embd.weight rows";
    }
    c.rms_norm_eps = g.get<double>("attention.layer_norm_rms_epsilon");
    if (!(c.rms_norm_eps > 0.0 && c.rms_norm_eps < 1.0))
      fail<config_error>("[llama] ", g.where("attention.layer_norm_rms_epsilon"), " must be in (0, 1), got ",
                         c.rms_norm_eps);
    c.max_position_embeddings = g.positive("context_length");
    c.attention_bias = file.contains("blk.0.attn_q.bias");  // llama.cpp: optional tensors
    c.mlp_bias = file.contains("blk.0.ffn_up.bias");
    c.tie_word_embeddings = !file.contains("output.weight");  // llama.cpp falls back to token_embd
    c.rope = rope_from_gguf(g, c.head_dim, rope_layout::interleaved);
    c.check(path);
    return c;
  }

  /// Relations between the values (each one a config_error naming the values).
  void check(const std::string& where) const {
    if (num_attention_heads % num_key_value_heads != 0)
      fail<config_error>("[llama] ", keys.heads, " = ", num_attention_heads, " is not a multiple of ", keys.kv_heads,
                         " = ", num_key_value_heads, " ('", where, "')");
    if (rope.rotary_dim > head_dim)
      fail<config_error>("[llama] rotary dimension ", rope.rotary_dim, " exceeds head_dim ", head_dim, " ('", where,
                         "')");
    if (rope.mrope)
      fail<config_error>("[llama] the config describes MRoPE (", rope.source, "); Llama uses 1-D RoPE");
  }
};

/// How the tensors of a Llama are named in a file format (a named policy per format).
struct LlamaTensorNames {
  std::string embed, final_norm, lm_head;
  std::string layer_prefix;  // "model.layers." / "blk."
  std::string input_norm, q, k, v, o, post_norm, gate, up, down;  // per-layer, without ".weight"

  /// HF transformers LlamaForCausalLM state-dict names.
  [[nodiscard]] static LlamaTensorNames hf() {
    return {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", "model.layers.",
            "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
  }
  /// llama.cpp GGUF names (gguf-py TENSOR_NAMES, model-semantics §1d).
  [[nodiscard]] static LlamaTensorNames gguf() {
    return {"token_embd.weight", "output_norm.weight", "output.weight", "blk.", "attn_norm", "attn_q", "attn_k",
            "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
  }

  [[nodiscard]] std::string layer(index_t l, const std::string& part, const char* suffix = ".weight") const {
    return layer_prefix + std::to_string(l) + "." + part + suffix;
  }
};

// ---------------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------------

/// The tensors of one decoder layer (HF names; shapes [rows, cols], D = head_dim), held in the
/// memory of backend B (uploaded once at load).
template <PrecisionPolicy P, backends::Backend B>
struct LlamaLayerWeights {
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
  param<norm_t> post_attention_layernorm;  // [hidden]
  weight gate_proj;                        // [ffn, hidden]
  weight up_proj;                          // [ffn, hidden]
  weight down_proj;                        // [hidden, ffn]
  std::optional<param<bias_t>> gate_bias;  // [ffn]    (mlp_bias)
  std::optional<param<bias_t>> up_bias;    // [ffn]
  std::optional<param<bias_t>> down_bias;  // [hidden]
};

template <PrecisionPolicy P, backends::Backend B>
struct LlamaWeights {
  using norm_t = role_dtype_t<role::norm_weight, P>;
  using weight = backends::weight_of<B>;

  weight embed_tokens;                            // [vocab, hidden]
  std::vector<LlamaLayerWeights<P, B>> layers;    // [num_hidden_layers]
  backends::param_of<B, norm_t, 1> norm;          // [hidden]
  std::optional<weight> lm_head;                  // [vocab, hidden]; absent when tied to embed_tokens
  io::ConversionReport conversions;               // every named conversion the load performed
  std::size_t bytes_copied = 0;                   // host bytes the load had to copy (misaligned tensors)

  [[nodiscard]] bool tied() const noexcept { return !lm_head.has_value(); }
  /// The output projection: lm_head, or the embedding table itself (one copy, never two).
  [[nodiscard]] const weight& head() const noexcept { return lm_head ? *lm_head : embed_tokens; }

  /// Loads and checks every tensor against `c` (shapes, dtypes) from `w`, named by `names`, and
  /// uploads it to `be`.
  [[nodiscard]] static LlamaWeights load(B& be, WeightSource& w, const LlamaConfig& c, const LlamaTensorNames& names) {
    const auto& k = c.keys;
    const index_t hidden = c.hidden_size, d = c.head_dim, q_rows = c.num_attention_heads * d,
                  kv_rows = c.num_key_value_heads * d, ffn = c.intermediate_size, vocab = c.vocab_size;
    const std::string hid = k.hidden + "=" + std::to_string(hidden);
    const std::string q_why = k.heads + "=" + std::to_string(c.num_attention_heads) + " × " + k.head_dim + "=" +
                              std::to_string(d);
    const std::string kv_why = k.kv_heads + "=" + std::to_string(c.num_key_value_heads) + " × " + k.head_dim + "=" +
                               std::to_string(d);
    const std::string ffn_why = k.ffn + "=" + std::to_string(ffn);
    const std::string vocab_why = k.vocab + "=" + std::to_string(vocab);

    WeightLoader<P, B> ld(be, w);
    // Every norm gain is [hidden]; biases exist where the config says so (attention_bias, mlp_bias).
    const auto norm = [&](const std::string& name) { return ld.template param<role::norm_weight>(name, hidden, hid); };
    const auto bias = [&](bool present, const std::string& name, index_t n, const std::string& why) {
      return ld.template param_if<role::bias>(present, name, n, why);
    };

    const AnyWeight embed_host = ld.host_weight(names.embed, vocab, hidden, vocab_why + ", " + hid);
    std::vector<LlamaLayerWeights<P, B>> layers;
    check_layer_count(w, names.layer_prefix, c.num_hidden_layers, k.layers, c.source);
    layers.reserve(static_cast<std::size_t>(c.num_hidden_layers));
    for (index_t l = 0; l < c.num_hidden_layers; ++l) {
      const auto n = [&](const std::string& part, const char* suffix = ".weight") { return names.layer(l, part, suffix); };
      layers.push_back(LlamaLayerWeights<P, B>{
          norm(n(names.input_norm)),
          ld.weight(n(names.q), q_rows, hidden, q_why + ", " + hid),
          ld.weight(n(names.k), kv_rows, hidden, kv_why + ", " + hid),
          ld.weight(n(names.v), kv_rows, hidden, kv_why + ", " + hid),
          ld.weight(n(names.o), hidden, q_rows, hid + ", " + q_why),
          bias(c.attention_bias, n(names.q, ".bias"), q_rows, q_why),
          bias(c.attention_bias, n(names.k, ".bias"), kv_rows, kv_why),
          bias(c.attention_bias, n(names.v, ".bias"), kv_rows, kv_why),
          bias(c.attention_bias, n(names.o, ".bias"), hidden, hid),
          norm(n(names.post_norm)),
          ld.weight(n(names.gate), ffn, hidden, ffn_why + ", " + hid),
          ld.weight(n(names.up), ffn, hidden, ffn_why + ", " + hid),
          ld.weight(n(names.down), hidden, ffn, hid + ", " + ffn_why),
          bias(c.mlp_bias, n(names.gate, ".bias"), ffn, ffn_why),
          bias(c.mlp_bias, n(names.up, ".bias"), ffn, ffn_why),
          bias(c.mlp_bias, n(names.down, ".bias"), hidden, hid),
      });
    }
    auto final_norm = norm(names.final_norm);

    // The head: its own tensor, or the embedding table (tied). A config that says "not tied"
    // while a safetensors file has no head is inconsistent. One that says "tied" while the file
    // also holds a head is what HF ties anyway (the stored head is ignored): it shows up in
    // unused(). GGUF has no tie flag: llama.cpp uses token_embd when output.weight is absent.
    std::optional<backends::weight_of<B>> head;
    if (!ties_output_head(w, "llama", c.source, c.tie_word_embeddings, names.lm_head))
      head = ld.weight(names.lm_head, vocab, hidden, vocab_why + ", " + hid);
    return LlamaWeights{be.upload(embed_host), std::move(layers), std::move(final_norm), std::move(head),
                        ld.take_report(), ld.bytes_copied()};
  }
};

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// The KV cache stores the activation dtype (a quantized KV store is not wired into Llama).
template <class P>
concept llama_kv_store_is_activation = std::same_as<typename P::kv_store, typename P::activation>;

/// A Llama under precision policy P on backend B. The shared decoder plumbing (sequences, the
/// paged KV cache, context checks, forward / decode_batch) is models/decoder.hpp; this class is
/// the config, the weights and the layer.
template <PrecisionPolicy P, backends::Backend B>
  requires llama_kv_store_is_activation<P>
class Llama : public Decoder<Llama<P, B>, B, typename P::activation> {
  using base = Decoder<Llama<P, B>, B, typename P::activation>;

 public:
  using policy = P;
  using act = typename P::activation;  // f32 or bf16: what every hidden state is
  template <std::size_t R>
  using tensor = backends::tensor_of<B, act, R>;
  template <std::size_t R>
  using view = backends::view_of<B, act, R>;

  /// Loads the weights named by `names` from `w` for `config` onto `backend`; sizes the KV cache
  /// for `options.max_sequences` sequences of `options.max_context` positions.
  [[nodiscard]] static Llama load(B backend, WeightSource& w, const LlamaConfig& config, const LlamaTensorNames& names,
                                  const LoadOptions& options) {
    LlamaWeights<P, B> weights = LlamaWeights<P, B>::load(backend, w, config, names);
    return Llama(std::move(backend), config, std::move(weights), options);
  }

  Llama(B backend, LlamaConfig config, LlamaWeights<P, B> weights, const LoadOptions& options)
      : base(std::move(backend), options,
             {.name = "llama",
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
        aq_(options.quantize_activations) {}

  [[nodiscard]] const LlamaConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] const LlamaWeights<P, B>& weights() const noexcept { return w_; }

  /// The forward pass over N token rows: either one sequence with N tokens, or N sequences with
  /// one token each (seqs.size() == N). positions [N] are the rows' absolute positions
  /// (models/decoder.hpp checked them). Returns f32 logits [N, vocab], or [1, vocab] for
  /// logits_rows::last (only the last row goes through the final norm and lm_head).
  [[nodiscard]] backends::tensor_of<B, f32, 2> run(std::span<const KvSeqId> seqs, std::span<const std::int64_t> tokens,
                                                   const Tensor<i64, 1>& positions, logits_rows rows) {
    B& be = this->backend();
    const index_t n = positions.extent(0), H = cfg_.num_attention_heads, Hkv = cfg_.num_key_value_heads,
                  D = cfg_.head_dim;
    const auto rope = be.upload(RopeTable<f32>::from_positions(positions, inv_freq_));  // [N, rd/2]

    tensor<2> x = be.template embed<act>(w_.embed_tokens, tokens);                                  // [N, hidden]
    for (index_t l = 0; l < cfg_.num_hidden_layers; ++l) {
      const LlamaLayerWeights<P, B>& L = w_.layers[static_cast<std::size_t>(l)];

      // --- self-attention -----------------------------------------------------------------------
      const tensor<2> h = be.template rms_norm<NormThenCast>(x, L.input_layernorm, eps_);           // [N, hidden]
      tensor<2> q = linear(be, h, L.q_proj, L.q_bias);                                              // [N, H·D]
      tensor<2> k = linear(be, h, L.k_proj, L.k_bias);                                              // [N, Hkv·D]
      const tensor<2> v = linear(be, h, L.v_proj, L.v_bias);                                        // [N, Hkv·D]
      const view<3> q3 = q.view().template reshape<3>({n, H, D});                                   // [N, H, D]
      const view<3> k3 = k.view().template reshape<3>({n, Hkv, D});                                 // [N, Hkv, D]
      const auto v3 = v.cview().template reshape<3>({n, Hkv, D});                                   // [N, Hkv, D]
      rotate(be, q3, rope);
      rotate(be, k3, rope);
      const tensor<3> o3 = this->attend(l, seqs, q3, k3, v3, attn_);                                // [N, H, D]
      const tensor<2> o = linear(be, o3.cview().template reshape<2>({n, H * D}), L.o_proj, L.o_bias);  // [N, hidden]
      be.add_inplace(x.view(), o);                                                                  // residual

      // --- MLP --------------------------------------------------------------------------------
      const tensor<2> h2 = be.template rms_norm<NormThenCast>(x, L.post_attention_layernorm, eps_);  // [N, hidden]
      const tensor<2> gate = linear(be, h2, L.gate_proj, L.gate_bias);                              // [N, ffn]
      const tensor<2> up = linear(be, h2, L.up_proj, L.up_bias);                                    // [N, ffn]
      const tensor<2> m = be.glu(SiluGate{}, gate, up);                                             // [N, ffn]
      be.add_inplace(x.view(), linear(be, m, L.down_proj, L.down_bias));                            // [N, hidden]
    }
    const auto out = x.cview().slice(0, rows == logits_rows::last ? n - 1 : 0, n);                  // [N or 1, hidden]
    const tensor<2> h = be.template rms_norm<NormThenCast>(out, w_.norm, eps_);                     // [N or 1, hidden]
    return be.template linear<f32>(h, w_.head(), aq_);                                              // [N or 1, vocab]
  }

 private:
  /// x·Wᵀ (+ b) in the activation dtype, with the load's activation quantization.
  template <class X, class Bias>
  [[nodiscard]] tensor<2> linear(B& be, const X& x, const backends::weight_of<B>& w,
                                 const std::optional<Bias>& bias) const {
    if (bias) return be.linear(x, w, *bias, aq_);
    return be.linear(x, w, aq_);
  }

  /// RoPE in place on q or k [N, heads, D], in the layout the weights were written for.
  void rotate(B& be, const view<3>& x, const typename B::rope_table& table) const {
    if (cfg_.rope.layout == rope_layout::interleaved) be.template rope<rope_layout::interleaved>(x, table);
    else be.template rope<rope_layout::half_split>(x, table);
  }

  LlamaConfig cfg_;
  LlamaWeights<P, B> w_;
  InvFreq inv_freq_;      // [rotary_dim/2], f32 (role::rope_table)
  Scalar<f32> eps_;
  AttentionConfig attn_;
  activation_quantization aq_;  // how activations meet block-quantized weights (LoadOptions)
};

// ---------------------------------------------------------------------------------------------
// load_model's entry (runtime/load_model.hpp picks the backend)
// ---------------------------------------------------------------------------------------------

namespace detail {
template <PrecisionPolicy P, backends::Backend B>
[[nodiscard]] std::unique_ptr<CausalLM> make_llama(ModelFiles& files, const LlamaConfig& cfg,
                                                   const LlamaTensorNames& names, const LoadOptions& options,
                                                   precision p, B backend) {
  Llama<P, B> model = Llama<P, B>::load(std::move(backend), files.weights, cfg, names, options);
  ModelInfo info;
  fill_common_info(info, "llama", cfg, model, files.weights, options, p);
  info.bytes_copied = model.weights().bytes_copied;
  record_kv_cache(info, model.cache());
  return std::make_unique<CausalLMFor<Llama<P, B>>>(std::move(model), std::move(info));
}
}  // namespace detail

/// Loads a Llama from an HF checkpoint (config.json + safetensors) or a GGUF file of
/// architecture `llama`, under the f32 or bf16 policy, onto `backend`.
template <backends::Backend B>
[[nodiscard]] std::unique_ptr<CausalLM> load_llama(ModelFiles& files, precision p, const LoadOptions& options,
                                                   B backend) {
  LlamaConfig cfg;
  LlamaTensorNames names;
  if (files.weights.format() == weight_format::gguf) {
    cfg = LlamaConfig::from_gguf(*files.weights.gguf(), files.weights.path().string());
    names = LlamaTensorNames::gguf();
  } else {
    if (!files.config)
      fail<config_error>("[llama] '", files.weights.path().string(), "' has no config.json to read the model's shape from");
    cfg = LlamaConfig::from_hf(*files.config);
    names = LlamaTensorNames::hf();
  }
  if (p == precision::f32) return detail::make_llama<f32_policy>(files, cfg, names, options, p, std::move(backend));
  return detail::make_llama<bf16_policy>(files, cfg, names, options, p, std::move(backend));
}

}  // namespace precis::models
