// precis/io/kv_cache_dtype.hpp — the `--kv-cache-dtype` flag, validated against the checkpoint
// at startup.
//
// The KV-cache dtype is the one dtype a user picks at run time. Two failure modes are on record:
//   - an fp8 cache whose per-layer scales are missing fails (or silently uses scale 1.0) at the
//     first request, not at startup (vllm#11329, #6884, #23832; dtype-bugs E8, §3 load-time
//     test 10);
//   - "float16" on a bf16 model read the bf16 bits back as f16: fluent nonsense, no error
//     (vllm#54338, E9).
// `resolve_kv_cache_dtype(flag, checkpoint)` accepts exactly "auto", "bf16", "f16", "f32" and
// "fp8_e4m3"; for fp8 it requires, for every layer, F32 tensors
//   model.layers.{i}.self_attn.k_scale   model.layers.{i}.self_attn.v_scale
// (the llm-compressor / vLLM checkpoint convention; rank 0 or 1, finite and positive), and
// fails at startup naming every missing or malformed one. "auto" is the checkpoint's own dtype.
// The policy-typed overload also requires the result to be the store type the model was compiled
// with, so a cache can never be read back as a different dtype than it was written in.
#pragma once

#include <array>        // std::array
#include <cmath>        // std::isfinite
#include <cstddef>      // std::size_t
#include <cstring>      // std::memcpy
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include <precis/core/dtype.hpp>             // dtype_code, dtype_traits
#include <precis/core/error.hpp>             // config_error, dtype_error, shape_error, range_error
#include <precis/core/precision_policy.hpp>  // PrecisionPolicy, is_quantized_kv
#include <precis/io/checkpoint.hpp>          // Checkpoint
#include <precis/io/checkpoint_dtype.hpp>    // resolve_checkpoint_dtype
#include <precis/io/safetensors_dtype.hpp>   // stored_dtype_name

namespace precis::io {

/// The resolved KV-cache configuration.
struct KvCacheDtype {
  std::string flag;                   // the flag as given
  dtype_code store;                   // the cache's element dtype
  bool from_checkpoint = false;       // "auto": taken from the checkpoint's weights
  std::vector<std::string> k_scales;  // fp8 only: per-layer scale tensors, layer order
  std::vector<std::string> v_scales;
};

namespace detail {

struct kv_flag_entry {
  std::string_view flag;
  dtype_code code;
};
inline constexpr std::array<kv_flag_entry, 4> kv_flags{{
    {"bf16", dtype_code::bf16},
    {"f16", dtype_code::f16},
    {"f32", dtype_code::f32},
    {"fp8_e4m3", dtype_code::f8_e4m3},
}};

/// Layers = config.json `num_hidden_layers`, else 1 + the largest N in "model.layers.N." names.
[[nodiscard]] inline std::size_t count_layers(const Checkpoint& ckpt) {
  if (ckpt.config()) {
    const auto it = ckpt.config()->find("num_hidden_layers");
    if (it != ckpt.config()->end()) {
      if (!it->is_number_unsigned())
        fail<config_error>("[kv_cache] '", ckpt.path().string(), "': config.json num_hidden_layers must be a "
                           "non-negative integer, got ", it->dump());
      return it->get<std::size_t>();
    }
  }
  constexpr std::string_view prefix = "model.layers.";
  std::size_t layers = 0;
  for (const auto& name : ckpt.tensor_names()) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    std::size_t i = prefix.size(), n = 0;
    bool digits = false;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9' && n < 1'000'000) {
      n = n * 10 + static_cast<std::size_t>(name[i] - '0');
      ++i;
      digits = true;
    }
    if (digits && i < name.size() && name[i] == '.' && n + 1 > layers) layers = n + 1;
  }
  return layers;
}

/// False if the fp8 scale `name` is absent; throws if it exists but is malformed.
[[nodiscard]] inline bool scale_present(const Checkpoint& ckpt, const std::string& name) {
  if (!ckpt.contains(name)) return false;
  const AnyTensor t = ckpt.tensor(name);
  if (t.dtype() != dtype_code::f32)
    fail<dtype_error>("[kv_cache] fp8 scale '", name, "' ('", t.source(), "'): stored dtype ", t.dtype_name(),
                      ", declared f32 (KV scales are pinned to f32)");
  if (t.rank() > 1 || t.numel() < 1)
    fail<shape_error>("[kv_cache] fp8 scale '", name, "' ('", t.source(), "'): shape ", shape_string(t.shape()),
                      ", expected a scalar or a non-empty vector");
  for (index_t i = 0; i < t.numel(); ++i) {
    float v = 0;
    std::memcpy(&v, t.bytes().data() + 4 * i, 4);
    if (!std::isfinite(v) || v <= 0.0f)
      fail<range_error>("[kv_cache] fp8 scale '", name, "' ('", t.source(), "'): value ", v, " at index ", i,
                        " is not a finite positive scale");
  }
  return true;
}

[[nodiscard]] inline KvCacheDtype resolve_explicit(std::string flag, dtype_code store, const Checkpoint& ckpt) {
  KvCacheDtype r{std::move(flag), store, false, {}, {}};
  if (store != dtype_code::f8_e4m3) return r;

  const std::size_t layers = count_layers(ckpt);
  if (layers == 0)
    fail<config_error>("[kv_cache] --kv-cache-dtype ", r.flag, ": cannot tell how many layers checkpoint '",
                       ckpt.path().string(),
                       "' has (no config.json num_hidden_layers, no model.layers.N.* tensors), so its per-layer "
                       "fp8 scales cannot be checked");
  std::vector<std::string> missing;
  for (std::size_t l = 0; l < layers; ++l) {
    const std::string base = "model.layers." + std::to_string(l) + ".self_attn.";
    for (const char* kind : {"k_scale", "v_scale"}) {
      const std::string name = base + kind;
      if (!scale_present(ckpt, name)) missing.push_back(name);
      else (kind[0] == 'k' ? r.k_scales : r.v_scales).push_back(name);
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (std::size_t i = 0; i < missing.size() && i < 6; ++i) list += (i ? ", '" : "'") + missing[i] + "'";
    if (missing.size() > 6) list += ", and " + std::to_string(missing.size() - 6) + " more";
    std::string searched;
    for (const auto& f : ckpt.files()) searched += (searched.empty() ? "'" : ", '") + f.source_name() + "'";
    fail<config_error>("[kv_cache] --kv-cache-dtype ", r.flag, " needs per-layer F32 k_scale/v_scale tensors for all ",
                       layers, " layers, but ", missing.size(), " are missing: ", list, " (searched ", searched,
                       "); refusing at startup instead of failing at the first request (dtype-bugs E8)");
  }
  return r;
}

}  // namespace detail

/// Validates the flag against the checkpoint. config_error for an unknown flag or missing fp8
/// scales; dtype_error / shape_error / range_error for a scale tensor that exists but is wrong.
[[nodiscard]] inline KvCacheDtype resolve_kv_cache_dtype(std::string_view flag, const Checkpoint& ckpt) {
  if (flag == "auto") {
    const CheckpointDtype d = resolve_checkpoint_dtype(ckpt);
    KvCacheDtype r{std::string(flag), d.stored, true, {}, {}};
    return r;
  }
  for (const auto& e : detail::kv_flags)
    if (e.flag == flag) return detail::resolve_explicit(std::string(flag), e.code, ckpt);
  fail<config_error>("[kv_cache] --kv-cache-dtype \"", flag,
                     "\" is not one of \"auto\", \"bf16\", \"f16\", \"f32\", \"fp8_e4m3\"");
}

namespace detail {
template <class K>
struct kv_store_element {
  using type = K;
};
template <class S, class Q>
struct kv_store_element<quantized_kv<S, Q>> {
  using type = S;
};
}  // namespace detail

/// The element dtype policy `P` stores its KV cache in (the store type of a quantized_kv).
template <PrecisionPolicy P>
using kv_store_dtype_t = typename detail::kv_store_element<typename P::kv_store>::type;

/// As above, and the result must be the KV store dtype policy `P` was compiled with ("auto" means
/// exactly that dtype): a flag that disagrees is a config_error, never a reinterpretation (E9).
template <PrecisionPolicy P>
[[nodiscard]] KvCacheDtype resolve_kv_cache_dtype(std::string_view flag, const Checkpoint& ckpt) {
  using Store = kv_store_dtype_t<P>;
  constexpr dtype_code store = dtype_traits<Store>::code;
  if (flag == "auto") {
    for (const auto& e : detail::kv_flags)
      if (e.code == store) {
        KvCacheDtype r = detail::resolve_explicit(std::string(flag), store, ckpt);
        r.from_checkpoint = false;
        return r;
      }
    fail<config_error>("[kv_cache] the compiled policy stores the KV cache as ", dtype_name<Store>,
                       ", which --kv-cache-dtype cannot name");
  }
  KvCacheDtype r = resolve_kv_cache_dtype(flag, ckpt);
  if (r.store != store)
    fail<config_error>("[kv_cache] --kv-cache-dtype ", flag, " stores the cache as ", to_string(r.store),
                       ", but the model was compiled to store it as ", dtype_name<Store>,
                       " (reading one as the other reinterprets bits, dtype-bugs E9)");
  return r;
}

}  // namespace precis::io
