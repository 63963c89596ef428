// tests/unit/models/test_llama_support.hpp — small random Llama checkpoints written by the tests
// (config.json + model.safetensors through the io writer), and a float64 scalar reference forward
// pass over the same values (HF modeling_llama.py semantics, model-semantics.md §1d).
//
// Every value is random and non-zero and is rounded to its stored dtype *before* the reference
// sees it, so the reference computes with exactly the stored weights.
#pragma once

#include <catch2/catch.hpp>  // REQUIRE

#include <cmath>       // std::sqrt, std::exp, std::cos, std::sin, std::pow
#include <cstddef>     // std::byte
#include <cstdint>     // std::int64_t
#include <cstring>     // std::memcpy
#include <filesystem>  // std::filesystem::path
#include <map>         // std::map
#include <random>      // std::mt19937
#include <string>      // std::string
#include <vector>      // std::vector

#include <nlohmann/json.hpp>  // nlohmann::json

#include <precis/core/dtype.hpp>             // dtype_code, storage_t
#include <precis/io/safetensors_writer.hpp>  // io::SafetensorsWriter

#include "unit/io/io_test_support.hpp"  // TempDir, write_text

namespace precis::test {

/// The shape of a test Llama.
struct LlamaSpec {
  index_t vocab = 96, hidden = 32, ffn = 48, layers = 2, heads = 4, kv_heads = 2, head_dim = 8, max_pos = 64;
  double theta = 10000.0, eps = 1e-5;
  bool tied = true;
  dtype_code stored = dtype_code::f32;  // dtype of every tensor in the file
};

/// One tensor of the test checkpoint: values already rounded to `stored`.
struct RawTensor {
  std::vector<index_t> shape;
  std::vector<double> values;
  dtype_code stored = dtype_code::f32;
};

/// A test checkpoint in memory: config.json and the tensors, editable before writing.
struct LlamaCheckpoint {
  LlamaSpec spec;
  nlohmann::json config;
  std::map<std::string, RawTensor> tensors;

  [[nodiscard]] const std::vector<double>& at(const std::string& name) const { return tensors.at(name).values; }

  /// Writes config.json and model.safetensors into `dir`.
  void write(const std::filesystem::path& dir) const {
    write_text(dir / "config.json", config.dump(2));
    io::SafetensorsWriter w;
    for (const auto& [name, t] : tensors) {
      std::vector<std::byte> bytes;
      for (const double v : t.values) append_value(bytes, t.stored, v);
      w.add_raw(name, t.stored, t.shape, bytes);
    }
    w.write(dir / "model.safetensors");
  }

  /// Writes config.json, two shards and model.safetensors.index.json (HF's sharded layout):
  /// tensors alternate between the shards.
  void write_sharded(const std::filesystem::path& dir) const {
    write_text(dir / "config.json", config.dump(2));
    io::SafetensorsWriter w[2];
    nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
    int i = 0;
    for (const auto& [name, t] : tensors) {
      std::vector<std::byte> bytes;
      for (const double v : t.values) append_value(bytes, t.stored, v);
      w[i % 2].add_raw(name, t.stored, t.shape, bytes);
      index["weight_map"][name] = i % 2 == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
      ++i;
    }
    w[0].write(dir / "model-00001-of-00002.safetensors");
    w[1].write(dir / "model-00002-of-00002.safetensors");
    write_text(dir / "model.safetensors.index.json", index.dump(2));
  }

  static void append_value(std::vector<std::byte>& out, dtype_code dt, double v) {
    const auto put = [&](const auto& s) {
      const auto* p = reinterpret_cast<const std::byte*>(&s);
      out.insert(out.end(), p, p + sizeof(s));
    };
    switch (dt) {
      case dtype_code::f32: put(static_cast<float>(v)); break;
      case dtype_code::bf16: put(storage_t<bf16>(static_cast<float>(v))); break;
      case dtype_code::f16: put(storage_t<f16>(static_cast<float>(v))); break;
      case dtype_code::f64: put(v); break;
      case dtype_code::i32: put(static_cast<std::int32_t>(v)); break;
      default: FAIL("append_value: unsupported dtype");
    }
  }

  /// `v` rounded to what `dt` stores.
  [[nodiscard]] static double round_to_stored(dtype_code dt, double v) {
    switch (dt) {
      case dtype_code::bf16: return static_cast<double>(static_cast<float>(storage_t<bf16>(static_cast<float>(v))));
      case dtype_code::f16: return static_cast<double>(static_cast<float>(storage_t<f16>(static_cast<float>(v))));
      case dtype_code::f64: return v;
      default: return static_cast<double>(static_cast<float>(v));
    }
  }
};

/// A random Llama checkpoint of `spec` (HF names, GQA, optional untied head).
[[nodiscard]] inline LlamaCheckpoint random_llama(const LlamaSpec& spec, unsigned seed) {
  LlamaCheckpoint c;
  c.spec = spec;
  c.config = {{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"vocab_size", spec.vocab},
              {"hidden_size", spec.hidden},
              {"intermediate_size", spec.ffn},
              {"num_hidden_layers", spec.layers},
              {"num_attention_heads", spec.heads},
              {"num_key_value_heads", spec.kv_heads},
              {"head_dim", spec.head_dim},
              {"hidden_act", "silu"},
              {"max_position_embeddings", spec.max_pos},
              {"rms_norm_eps", spec.eps},
              {"rope_theta", spec.theta},
              {"rope_scaling", nullptr},
              {"tie_word_embeddings", spec.tied},
              {"torch_dtype", spec.stored == dtype_code::bf16 ? "bfloat16" : "float32"}};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> mag(0.05, 0.5);
  std::bernoulli_distribution neg(0.5);
  const auto add = [&](const std::string& name, std::vector<index_t> shape, double scale, double offset = 0.0) {
    RawTensor t;
    t.shape = std::move(shape);
    t.stored = spec.stored;
    index_t n = 1;
    for (const index_t e : t.shape) n *= e;
    for (index_t i = 0; i < n; ++i) {
      const double v = offset + scale * (neg(rng) ? -mag(rng) : mag(rng));
      t.values.push_back(LlamaCheckpoint::round_to_stored(spec.stored, v));
    }
    c.tensors[name] = std::move(t);
  };
  const index_t q = spec.heads * spec.head_dim, kv = spec.kv_heads * spec.head_dim;
  add("model.embed_tokens.weight", {spec.vocab, spec.hidden}, 2.0);
  for (index_t l = 0; l < spec.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {spec.hidden}, 0.5, 1.0);
    add(p + "self_attn.q_proj.weight", {q, spec.hidden}, 1.0);
    add(p + "self_attn.k_proj.weight", {kv, spec.hidden}, 1.0);
    add(p + "self_attn.v_proj.weight", {kv, spec.hidden}, 1.0);
    add(p + "self_attn.o_proj.weight", {spec.hidden, q}, 0.5);
    add(p + "post_attention_layernorm.weight", {spec.hidden}, 0.5, 1.0);
    add(p + "mlp.gate_proj.weight", {spec.ffn, spec.hidden}, 1.0);
    add(p + "mlp.up_proj.weight", {spec.ffn, spec.hidden}, 1.0);
    add(p + "mlp.down_proj.weight", {spec.hidden, spec.ffn}, 0.5);
  }
  add("model.norm.weight", {spec.hidden}, 0.5, 1.0);
  if (!spec.tied) add("lm_head.weight", {spec.vocab, spec.hidden}, 1.0);
  return c;
}

/// Float64 forward pass of a checkpoint over `tokens` at positions 0..T−1 → logits [T·vocab].
[[nodiscard]] inline std::vector<double> reference_llama(const LlamaCheckpoint& c, const std::vector<std::int64_t>& tokens) {
  const LlamaSpec& s = c.spec;
  const auto T = static_cast<index_t>(tokens.size());
  const index_t H = s.hidden, D = s.head_dim, NH = s.heads, NKV = s.kv_heads, F = s.ffn;
  const auto matvec = [](const std::vector<double>& w, index_t rows, index_t cols, const double* x, double* y) {
    for (index_t r = 0; r < rows; ++r) {
      double acc = 0;
      for (index_t k = 0; k < cols; ++k) acc += w[static_cast<std::size_t>(r * cols + k)] * x[k];
      y[r] = acc;
    }
  };
  const auto rms = [&](const std::vector<double>& w, const double* x, double* y) {
    double ss = 0;
    for (index_t i = 0; i < H; ++i) ss += x[i] * x[i];
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(H) + s.eps);
    for (index_t i = 0; i < H; ++i) y[i] = w[static_cast<std::size_t>(i)] * (x[i] * r);
  };
  const auto rope = [&](double* v, index_t pos) {  // half-split, one head of D
    for (index_t i = 0; i < D / 2; ++i) {
      const double inv = std::pow(s.theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
      const double a = static_cast<double>(pos) * inv, cs = std::cos(a), sn = std::sin(a);
      const double x1 = v[i], x2 = v[i + D / 2];
      v[i] = x1 * cs - x2 * sn;
      v[i + D / 2] = x2 * cs + x1 * sn;
    }
  };
  std::vector<double> x(static_cast<std::size_t>(T * H));
  const auto& emb = c.at("model.embed_tokens.weight");
  for (index_t t = 0; t < T; ++t)
    for (index_t i = 0; i < H; ++i)
      x[static_cast<std::size_t>(t * H + i)] = emb[static_cast<std::size_t>(tokens[static_cast<std::size_t>(t)] * H + i)];
  std::vector<double> h(static_cast<std::size_t>(H)), q(static_cast<std::size_t>(T * NH * D)),
      k(static_cast<std::size_t>(T * NKV * D)), v(static_cast<std::size_t>(T * NKV * D)),
      o(static_cast<std::size_t>(NH * D)), g(static_cast<std::size_t>(F)), u(static_cast<std::size_t>(F)),
      y(static_cast<std::size_t>(H));
  for (index_t l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (index_t t = 0; t < T; ++t) {
      rms(c.at(p + "input_layernorm.weight"), &x[static_cast<std::size_t>(t * H)], h.data());
      matvec(c.at(p + "self_attn.q_proj.weight"), NH * D, H, h.data(), &q[static_cast<std::size_t>(t * NH * D)]);
      matvec(c.at(p + "self_attn.k_proj.weight"), NKV * D, H, h.data(), &k[static_cast<std::size_t>(t * NKV * D)]);
      matvec(c.at(p + "self_attn.v_proj.weight"), NKV * D, H, h.data(), &v[static_cast<std::size_t>(t * NKV * D)]);
      for (index_t hd = 0; hd < NH; ++hd) rope(&q[static_cast<std::size_t>((t * NH + hd) * D)], t);
      for (index_t hd = 0; hd < NKV; ++hd) rope(&k[static_cast<std::size_t>((t * NKV + hd) * D)], t);
    }
    for (index_t t = 0; t < T; ++t) {
      for (index_t hd = 0; hd < NH; ++hd) {
        const index_t kh = hd / (NH / NKV);
        const double* qv = &q[static_cast<std::size_t>((t * NH + hd) * D)];
        std::vector<double> sc(static_cast<std::size_t>(t + 1));
        double m = -1e300;
        for (index_t j = 0; j <= t; ++j) {
          double d = 0;
          for (index_t e = 0; e < D; ++e) d += qv[e] * k[static_cast<std::size_t>((j * NKV + kh) * D + e)];
          sc[static_cast<std::size_t>(j)] = d / std::sqrt(static_cast<double>(D));
          m = std::max(m, sc[static_cast<std::size_t>(j)]);
        }
        double z = 0;
        for (auto& e : sc) z += (e = std::exp(e - m));
        for (index_t e = 0; e < D; ++e) {
          double acc = 0;
          for (index_t j = 0; j <= t; ++j)
            acc += sc[static_cast<std::size_t>(j)] * v[static_cast<std::size_t>((j * NKV + kh) * D + e)];
          o[static_cast<std::size_t>(hd * D + e)] = acc / z;
        }
      }
      matvec(c.at(p + "self_attn.o_proj.weight"), H, NH * D, o.data(), y.data());
      for (index_t i = 0; i < H; ++i) x[static_cast<std::size_t>(t * H + i)] += y[static_cast<std::size_t>(i)];
    }
    for (index_t t = 0; t < T; ++t) {
      rms(c.at(p + "post_attention_layernorm.weight"), &x[static_cast<std::size_t>(t * H)], h.data());
      matvec(c.at(p + "mlp.gate_proj.weight"), F, H, h.data(), g.data());
      matvec(c.at(p + "mlp.up_proj.weight"), F, H, h.data(), u.data());
      for (index_t i = 0; i < F; ++i) {
        const double gi = g[static_cast<std::size_t>(i)];
        g[static_cast<std::size_t>(i)] = gi / (1.0 + std::exp(-gi)) * u[static_cast<std::size_t>(i)];
      }
      matvec(c.at(p + "mlp.down_proj.weight"), H, F, g.data(), y.data());
      for (index_t i = 0; i < H; ++i) x[static_cast<std::size_t>(t * H + i)] += y[static_cast<std::size_t>(i)];
    }
  }
  const auto& head = c.at(s.tied ? "model.embed_tokens.weight" : "lm_head.weight");
  std::vector<double> logits(static_cast<std::size_t>(T * s.vocab));
  for (index_t t = 0; t < T; ++t) {
    rms(c.at("model.norm.weight"), &x[static_cast<std::size_t>(t * H)], h.data());
    matvec(head, s.vocab, H, h.data(), &logits[static_cast<std::size_t>(t * s.vocab)]);
  }
  return logits;
}

/// ‖a − b‖₂ / ‖b‖₂.
[[nodiscard]] inline double rel_l2(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace precis::test
