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
// Precision: `Llama<Policy>` computes in `Policy::activation` (f32 or bf16). Weights stay in
// their stored format (models/any_weight.hpp: f32/bf16/f16 storage or ggml blocks), read by the
// matmul kernels and accumulated in f32. RMSNorm gains and biases are typed by their roles
// (role::norm_weight, role::bias → the activation dtype): a bf16 gain under the f32 policy goes
// through the named, exact `widen<bf16, f32>`; an f32 gain under the bf16 policy through the
// named `narrow<f32, bf16>` — what running an f32 checkpoint in bf16 means (HF's
// `torch_dtype=bfloat16` rounds every parameter the same way) — and every conversion is listed
// in the ConversionReport that info() prints. Logits are computed with an f32 output (the
// declared-f32 GEMM), whatever the activation dtype.
//
// State: one PagedKvCache<Act> shared by every sequence (nn/kv_cache.hpp): prefill and decode
// append to the same pages, and decode_batch() runs several sequences' next tokens as one
// stacked [B, hidden] matrix through every projection, with attention per sequence
// (backends/cpu/attention.hpp's batched decode). Positions are checked against the context the
// cache was sized for, token ids against the vocabulary, before anything is computed.
#pragma once

#include <concepts>     // std::same_as
#include <cstdint>      // std::int64_t
#include <optional>     // std::optional
#include <span>         // std::span
#include <string>       // std::string, std::to_string
#include <utility>      // std::move
#include <vector>       // std::vector

#include <precis/backends/cpu/activation.hpp>  // backends::cpu::glu
#include <precis/backends/cpu/attention.hpp>   // backends::cpu::attention_prefill, attention_decode
#include <precis/backends/cpu/rmsnorm.hpp>     // backends::cpu::rms_norm
#include <precis/backends/cpu/rope.hpp>        // backends::cpu::apply_rope_inplace
#include <precis/core/error.hpp>               // config_error, range_error, shape_error
#include <precis/core/precision_policy.hpp>    // PrecisionPolicy, role::*
#include <precis/core/scalar.hpp>              // Scalar<f32>
#include <precis/core/tensor.hpp>              // Tensor
#include <precis/io/conversion.hpp>            // ConversionReport, widen, narrow
#include <precis/io/load.hpp>                  // io::load_role, io::Loaded
#include <precis/models/any_weight.hpp>        // AnyWeight, linear, embed_rows
#include <precis/models/causal_lm.hpp>         // CausalLM, CausalLMFor, ModelFiles, ModelInfo
#include <precis/models/model_config.hpp>      // HfConfig, RopeSpec, rope_from_hf
#include <precis/models/model_loading.hpp>     // LoadOptions, load_role_weight, check_layer_count
#include <precis/models/weight_source.hpp>     // WeightSource, ExpectedShape
#include <precis/nn/activation.hpp>            // SiluGate
#include <precis/nn/attention.hpp>             // AttentionConfig
#include <precis/nn/kv_cache.hpp>              // PagedKvCache, KvSeqId, KvLayerPlan
#include <precis/nn/norm.hpp>                  // NormThenCast
#include <precis/nn/rope.hpp>                  // InvFreq, RopeTable, rope_layout
#include <precis/ops/elementwise.hpp>          // precis::add

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
    c.num_hidden_layers = cfg.positive("num_hidden_layers");
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
    c.num_hidden_layers = g.positive("block_count");
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

/// The tensors of one decoder layer (HF names; shapes [rows, cols], D = head_dim).
template <PrecisionPolicy P>
struct LlamaLayerWeights {
  using norm_t = role_dtype_t<role::norm_weight, P>;
  using bias_t = role_dtype_t<role::bias, P>;

  io::Loaded<norm_t, 1> input_layernorm;           // [hidden]
  AnyWeight q_proj;                                // [H·D, hidden]
  AnyWeight k_proj;                                // [Hkv·D, hidden]
  AnyWeight v_proj;                                // [Hkv·D, hidden]
  AnyWeight o_proj;                                // [hidden, H·D]
  std::optional<io::Loaded<bias_t, 1>> q_bias;     // [H·D]    (attention_bias)
  std::optional<io::Loaded<bias_t, 1>> k_bias;     // [Hkv·D]
  std::optional<io::Loaded<bias_t, 1>> v_bias;     // [Hkv·D]
  std::optional<io::Loaded<bias_t, 1>> o_bias;     // [hidden]
  io::Loaded<norm_t, 1> post_attention_layernorm;  // [hidden]
  AnyWeight gate_proj;                             // [ffn, hidden]
  AnyWeight up_proj;                               // [ffn, hidden]
  AnyWeight down_proj;                             // [hidden, ffn]
  std::optional<io::Loaded<bias_t, 1>> gate_bias;  // [ffn]    (mlp_bias)
  std::optional<io::Loaded<bias_t, 1>> up_bias;    // [ffn]
  std::optional<io::Loaded<bias_t, 1>> down_bias;  // [hidden]
};

template <PrecisionPolicy P>
struct LlamaWeights {
  using norm_t = role_dtype_t<role::norm_weight, P>;

  AnyWeight embed_tokens;                         // [vocab, hidden]
  std::vector<LlamaLayerWeights<P>> layers;       // [num_hidden_layers]
  io::Loaded<norm_t, 1> norm;                     // [hidden]
  AnyWeight lm_head;                              // [vocab, hidden] (= embed_tokens when tied)
  bool tied = false;
  io::ConversionReport conversions;               // every named conversion the load performed

  /// Loads and checks every tensor against `c` (shapes, dtypes) from `w`, named by `names`.
  [[nodiscard]] static LlamaWeights load(WeightSource& w, const LlamaConfig& c, const LlamaTensorNames& names) {
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

    io::ConversionReport report;
    const auto weight = [&](const std::string& name, index_t rows, index_t cols, const std::string& why) {
      return AnyWeight::from(w.tensor(name, {{rows, cols}, why}));
    };
    const auto norm = [&](const std::string& name) {
      return load_role_tensor<role::norm_weight, P>(w.tensor(name, {{hidden}, hid}), report);
    };
    const auto bias = [&](bool present, const std::string& name, index_t n, const std::string& why)
        -> std::optional<io::Loaded<role_dtype_t<role::bias, P>, 1>> {
      if (!present) return std::nullopt;
      return load_role_tensor<role::bias, P>(w.tensor(name, {{n}, why}), report);
    };

    AnyWeight embed = weight(names.embed, vocab, hidden, vocab_why + ", " + hid);
    std::vector<LlamaLayerWeights<P>> layers;
    layers.reserve(static_cast<std::size_t>(c.num_hidden_layers));
    for (index_t l = 0; l < c.num_hidden_layers; ++l) {
      const auto n = [&](const std::string& part, const char* suffix = ".weight") { return names.layer(l, part, suffix); };
      layers.push_back(LlamaLayerWeights<P>{
          norm(n(names.input_norm)),
          weight(n(names.q), q_rows, hidden, q_why + ", " + hid),
          weight(n(names.k), kv_rows, hidden, kv_why + ", " + hid),
          weight(n(names.v), kv_rows, hidden, kv_why + ", " + hid),
          weight(n(names.o), hidden, q_rows, hid + ", " + q_why),
          bias(c.attention_bias, n(names.q, ".bias"), q_rows, q_why),
          bias(c.attention_bias, n(names.k, ".bias"), kv_rows, kv_why),
          bias(c.attention_bias, n(names.v, ".bias"), kv_rows, kv_why),
          bias(c.attention_bias, n(names.o, ".bias"), hidden, hid),
          norm(n(names.post_norm)),
          weight(n(names.gate), ffn, hidden, ffn_why + ", " + hid),
          weight(n(names.up), ffn, hidden, ffn_why + ", " + hid),
          weight(n(names.down), hidden, ffn, hid + ", " + ffn_why),
          bias(c.mlp_bias, n(names.gate, ".bias"), ffn, ffn_why),
          bias(c.mlp_bias, n(names.up, ".bias"), ffn, ffn_why),
          bias(c.mlp_bias, n(names.down, ".bias"), hidden, hid),
      });
    }
    io::Loaded<norm_t, 1> final_norm = norm(names.final_norm);

    // The head: its own tensor, or the embedding table (tied). A config that says "not tied"
    // while a safetensors file has no head is inconsistent. One that says "tied" while the file
    // also holds a head is what HF ties anyway (the stored head is ignored): it shows up in
    // unused(). GGUF has no tie flag: llama.cpp uses token_embd when output.weight is absent.
    OutputHead head = output_head(w, "llama", c.source, c.tie_word_embeddings, names.lm_head, embed,
                                  [&] { return weight(names.lm_head, vocab, hidden, vocab_why + ", " + hid); });
    check_layer_count(w, names.layer_prefix, c.num_hidden_layers, k.layers, c.source);
    return LlamaWeights{std::move(embed), std::move(layers), std::move(final_norm), std::move(head.weight),
                        head.tied, std::move(report)};
  }
};

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// The KV cache stores the activation dtype (a quantized KV store is not wired into Llama).
template <class P>
concept llama_kv_store_is_activation = std::same_as<typename P::kv_store, typename P::activation>;

template <PrecisionPolicy P>
  requires llama_kv_store_is_activation<P>
class Llama {
 public:
  using policy = P;
  using act = typename P::activation;  // f32 or bf16: what every hidden state is

  /// Loads the weights named by `names` from `w` for `config`; sizes the KV cache for
  /// `options.max_sequences` sequences of `options.max_context` positions.
  [[nodiscard]] static Llama load(WeightSource& w, const LlamaConfig& config, const LlamaTensorNames& names,
                                  const LoadOptions& options) {
    return Llama(config, LlamaWeights<P>::load(w, config, names), options);
  }

  Llama(LlamaConfig config, LlamaWeights<P> weights, const LoadOptions& options)
      : cfg_(std::move(config)),
        w_(std::move(weights)),
        inv_freq_(cfg_.rope.inv_freq()),
        eps_(Scalar<f32>::from(cfg_.rms_norm_eps)),
        attn_{.n_heads = cfg_.num_attention_heads, .n_kv_heads = cfg_.num_key_value_heads, .head_dim = cfg_.head_dim},
        context_(context_for(options, cfg_.max_position_embeddings, cfg_.source)),
        aq_(options.quantize_activations),
        cache_(KvLayerPlan(full_attention_layers{}, cfg_.num_hidden_layers),
               kv_size_for(options, context_, cfg_.num_key_value_heads, cfg_.head_dim)) {}

  [[nodiscard]] const LlamaConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] const LlamaWeights<P>& weights() const noexcept { return w_; }
  [[nodiscard]] const PagedKvCache<act>& cache() const noexcept { return cache_; }
  /// Positions one sequence may hold (≤ the model's context length).
  [[nodiscard]] index_t context_length() const noexcept { return context_; }

  [[nodiscard]] KvSeqId new_sequence() { return cache_.add_sequence(); }
  void release(KvSeqId seq) { cache_.remove_sequence(seq); }
  /// Tokens cached for `seq` (the position of its next token).
  [[nodiscard]] index_t length(KvSeqId seq) const { return cache_.length(seq, 0); }

  /// Runs `tokens` [T] of `seq` at positions length(seq) .. length(seq) + T − 1, appending their
  /// K/V to the cache: a prefill (T > 1) or one decode step (T = 1). Returns logits [T, vocab].
  /// With `rows = logits_rows::last` only the last token's logits are computed: [1, vocab].
  [[nodiscard]] Tensor<f32, 2> forward(KvSeqId seq, std::span<const std::int64_t> tokens,
                                       logits_rows rows = logits_rows::all) {
    const auto n = static_cast<index_t>(tokens.size());
    const index_t start = length(seq);
    check_context(start, n, seq);
    Tensor<i64, 1> positions({n});  // [T]
    for (index_t t = 0; t < n; ++t) positions(t) = start + t;
    return run(std::span<const KvSeqId>(&seq, 1), tokens, positions, rows);
  }

  /// One decode step for several sequences: token b of `tokens` [B] continues seqs[b]. The B rows
  /// go through every projection as one matrix; attention reads each sequence's own cache.
  /// Returns logits [B, vocab], row b for seqs[b].
  [[nodiscard]] Tensor<f32, 2> decode_batch(std::span<const KvSeqId> seqs, std::span<const std::int64_t> tokens) {
    const auto b = static_cast<index_t>(seqs.size());
    PRECIS_CHECK(tokens.size() == seqs.size(), shape_error, "[llama::decode_batch] ", tokens.size(), " tokens for ", b,
                 " sequences (one token each)");
    Tensor<i64, 1> positions({b});  // [B]
    for (index_t i = 0; i < b; ++i) {
      for (index_t j = 0; j < i; ++j)
        PRECIS_CHECK(!(seqs[static_cast<std::size_t>(i)] == seqs[static_cast<std::size_t>(j)]), config_error,
                     "[llama::decode_batch] sequence (slot ", seqs[static_cast<std::size_t>(i)].slot,
                     ") appears twice in one batch");
      positions(i) = length(seqs[static_cast<std::size_t>(i)]);
      check_context(positions(i), 1, seqs[static_cast<std::size_t>(i)]);
    }
    return run(seqs, tokens, positions, logits_rows::all);
  }

 private:
  /// The forward pass over N token rows: either one sequence with N tokens, or N sequences with
  /// one token each (seqs.size() == N). positions [N] are the rows' absolute positions.
  [[nodiscard]] Tensor<f32, 2> run(std::span<const KvSeqId> seqs, std::span<const std::int64_t> tokens,
                                   const Tensor<i64, 1>& positions, logits_rows rows) {
    namespace kern = backends::cpu;
    const index_t n = positions.extent(0), H = cfg_.num_attention_heads, Hkv = cfg_.num_key_value_heads,
                  D = cfg_.head_dim;
    const RopeTable<f32> rope = RopeTable<f32>::from_positions(positions, inv_freq_);  // [N, rd/2]

    Tensor<act, 2> x = embed_rows<act>(w_.embed_tokens, tokens);                                    // [N, hidden]
    for (index_t l = 0; l < cfg_.num_hidden_layers; ++l) {
      const LlamaLayerWeights<P>& L = w_.layers[static_cast<std::size_t>(l)];

      // --- self-attention -----------------------------------------------------------------------
      const Tensor<act, 2> h = kern::rms_norm<NormThenCast>(x, L.input_layernorm, eps_);            // [N, hidden]
      Tensor<act, 2> q = linear(h, L.q_proj, L.q_bias, aq_);                                        // [N, H·D]
      Tensor<act, 2> k = linear(h, L.k_proj, L.k_bias, aq_);                                        // [N, Hkv·D]
      const Tensor<act, 2> v = linear(h, L.v_proj, L.v_bias, aq_);                                  // [N, Hkv·D]
      const TensorView<act, 3> q3 = q.view().template reshape<3>({n, H, D});                        // [N, H, D]
      const TensorView<act, 3> k3 = k.view().template reshape<3>({n, Hkv, D});                      // [N, Hkv, D]
      const TensorView<const act, 3> v3 = v.cview().template reshape<3>({n, Hkv, D});               // [N, Hkv, D]
      rotate(q3, rope);
      rotate(k3, rope);
      const Tensor<act, 3> o3 = attend(l, seqs, q3, k3, v3);                                        // [N, H, D]
      const TensorView<const act, 2> o2 = o3.cview().template reshape<2>({n, H * D});              // [N, H·D]
      const Tensor<act, 2> o = linear(o2, L.o_proj, L.o_bias, aq_);                                 // [N, hidden]
      x = add(x, o);                                                                                // residual

      // --- MLP --------------------------------------------------------------------------------
      const Tensor<act, 2> h2 = kern::rms_norm<NormThenCast>(x, L.post_attention_layernorm, eps_);  // [N, hidden]
      const Tensor<act, 2> gate = linear(h2, L.gate_proj, L.gate_bias, aq_);                        // [N, ffn]
      const Tensor<act, 2> up = linear(h2, L.up_proj, L.up_bias, aq_);                              // [N, ffn]
      const Tensor<act, 2> m = kern::glu(SiluGate{}, gate, up);                                     // [N, ffn]
      x = add(x, linear(m, L.down_proj, L.down_bias, aq_));                                         // [N, hidden]
    }
    const TensorView<const act, 2> out = x.cview().slice(0, rows == logits_rows::last ? n - 1 : 0, n);  // [N or 1, hidden]
    const Tensor<act, 2> h = kern::rms_norm<NormThenCast>(out, w_.norm, eps_);                      // [N or 1, hidden]
    return linear<f32>(h, w_.lm_head, aq_);                                                         // [N or 1, vocab]
  }

  /// RoPE in place on q or k [N, heads, D], in the layout the weights were written for.
  void rotate(const TensorView<act, 3>& x, const RopeTable<f32>& table) const {
    if (cfg_.rope.layout == rope_layout::interleaved) backends::cpu::apply_rope_inplace<rope_layout::interleaved>(x, table);
    else backends::cpu::apply_rope_inplace<rope_layout::half_split>(x, table);
  }

  /// Appends k, v to the cache of layer `l` and attends: one sequence (prefill or one step), or
  /// one token for each of several sequences (batched decode).
  [[nodiscard]] Tensor<act, 3> attend(index_t l, std::span<const KvSeqId> seqs, const TensorView<act, 3>& q,
                                      const TensorView<act, 3>& k, const TensorView<const act, 3>& v) {
    namespace kern = backends::cpu;
    if (seqs.size() == 1) {
      cache_.append(seqs[0], l, k, v);
      return kern::attention_prefill(q, cache_.sequence(seqs[0], l), attn_);
    }
    std::vector<KvSequenceView<act>> views;
    views.reserve(seqs.size());
    for (std::size_t b = 0; b < seqs.size(); ++b) {
      const auto i = static_cast<index_t>(b);
      cache_.append(seqs[b], l, k.slice(0, i, i + 1), v.slice(0, i, i + 1));
      views.push_back(cache_.sequence(seqs[b], l));
    }
    return kern::attention_decode(q, views, attn_);
  }

  void check_context(index_t start, index_t n, KvSeqId seq) const {
    PRECIS_CHECK(n > 0, shape_error, "[llama] no tokens to run for sequence (slot ", seq.slot, ")");
    PRECIS_CHECK(start + n <= context_, range_error, "[llama] sequence (slot ", seq.slot, "): ", start,
                 " cached + ", n, " new tokens exceed the context length ", context_, " (max_position_embeddings ",
                 cfg_.max_position_embeddings, " of '", cfg_.source, "', or the smaller max_context the model was "
                 "loaded with)");
  }

  LlamaConfig cfg_;
  LlamaWeights<P> w_;
  InvFreq inv_freq_;      // [rotary_dim/2], f32 (role::rope_table)
  Scalar<f32> eps_;
  AttentionConfig attn_;
  index_t context_;
  activation_quantization aq_;  // how activations meet block-quantized weights (LoadOptions)
  PagedKvCache<act> cache_;
};

// ---------------------------------------------------------------------------------------------
// load_model's entry (models/load_model.hpp)
// ---------------------------------------------------------------------------------------------

namespace detail {
template <PrecisionPolicy P>
[[nodiscard]] std::unique_ptr<CausalLM> make_llama(ModelFiles& files, const LlamaConfig& cfg,
                                                   const LlamaTensorNames& names, const LoadOptions& options,
                                                   precision p) {
  Llama<P> model = Llama<P>::load(files.weights, cfg, names, options);
  ModelInfo info;
  fill_common_info(info, "llama", cfg, model, files.weights, options, p);
  const auto& w = model.weights();
  const auto copied = [&](const AnyWeight& a) { info.bytes_copied += a.is_zero_copy() ? 0 : a.file_bytes().size(); };
  copied(w.embed_tokens);
  if (!w.tied) copied(w.lm_head);
  for (const auto& L : w.layers)
    for (const AnyWeight* a : {&L.q_proj, &L.k_proj, &L.v_proj, &L.o_proj, &L.gate_proj, &L.up_proj, &L.down_proj})
      copied(*a);
  info.kv_cache_bytes = paged_kv_pool_bytes(model.cache(), sizeof(storage_t<typename P::activation>));
  return std::make_unique<CausalLMFor<Llama<P>>>(std::move(model), std::move(info), options.n_threads);
}
}  // namespace detail

/// Loads a Llama from an HF checkpoint (config.json + safetensors) or a GGUF file of
/// architecture `llama`, under the f32 or bf16 policy.
[[nodiscard]] inline std::unique_ptr<CausalLM> load_llama(ModelFiles& files, precision p, const LoadOptions& options) {
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
  if (p == precision::f32) return detail::make_llama<f32_policy>(files, cfg, names, options, p);
  return detail::make_llama<bf16_policy>(files, cfg, names, options, p);
}

}  // namespace precis::models
