// precis/models/model_config.hpp — reading a model's hyper-parameters: HF `config.json` fields
// and the RoPE description (RopeSpec) that model headers turn into nn/rope.hpp's types.
//
// Every value a model reads goes through HfConfig (or, for GGUF files, models/gguf_config.hpp),
// so a missing key, a key of the wrong JSON type or an out-of-range value is a config_error that
// names the key *as written in the file* (with the nesting prefix, e.g.
// 'thinker_config.text_config.num_key_value_heads') and the file. Values are never defaulted
// silently: a default is an argument at the call site, where a reader of the model sees it.
//
// Nesting. Qwen3-Omni's config.json holds the text model under `thinker_config.text_config`
// (HF configuration_qwen3_omni_moe.py: Qwen3OmniMoeConfig → thinker_config → text_config);
// multimodal wrappers such as Qwen3-VL hold it under `text_config`. HfConfig::from_json unwraps
// those, keeping the top-level `model_type` / `architectures` for choosing the model.
//
// RoPE, two spellings (model-semantics.md §1a, §1c, §1d):
//   transformers 4.x   top-level `rope_theta` and `rope_scaling` = null or
//                      {"rope_type" | "type": "linear" | "yarn" | "llama3" | "default" | "mrope", ...}
//   transformers 5.x   `rope_parameters` = {"rope_type": ..., "rope_theta": ..., ...}
// A file carrying both a top-level `rope_theta` and `rope_parameters.rope_theta`, or both
// `rope_scaling` and `rope_parameters` (transformers 5 saves both), must have them agree key for
// key (neither silently wins, the rule of dtype-bugs E30 for `torch_dtype`/`dtype`). Partial
// rotary (`partial_rotary_factor`, top-level or inside `rope_parameters`) rotates the first
// int(head_dim · factor) features. MRoPE is recognised by `mrope_section` (interleaved when
// `interleaved` or `mrope_interleaved` is true — Qwen3-VL/Omni — chunked otherwise — Qwen2-VL).
// Scaling types other than default/linear/yarn/llama3 (dynamic NTK, longrope, …), and YaRN's
// DeepSeek-only overrides (`mscale`, `mscale_all_dim`, `attention_factor`), are rejected by name:
// running a model with a RoPE it does not have would produce plausible garbage.
//
// GGUF files carry the same facts as `<arch>.*` metadata keys (gguf.md "Standardized key-value
// pairs"): GgufConfig reads them with the same error discipline, naming the full key and file.
#pragma once

#include <cmath>        // std::floor, std::isfinite
#include <cstdint>      // std::int64_t
#include <filesystem>   // std::filesystem::path
#include <limits>       // std::numeric_limits
#include <optional>     // std::optional
#include <sstream>      // std::ostringstream
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <type_traits>  // std::is_same_v
#include <utility>      // std::move
#include <variant>      // std::variant, std::visit
#include <vector>       // std::vector

#include <nlohmann/json.hpp>  // nlohmann::json

#include <precis/core/config.hpp>    // precis::index_t
#include <precis/core/error.hpp>     // precis::config_error, fail
#include <precis/io/checkpoint.hpp>  // io::detail::read_json_file
#include <precis/io/gguf.hpp>        // io::GgufFile
#include <precis/io/json.hpp>        // io::json_excerpt
#include <precis/nn/rope.hpp>        // InvFreq, rope_scaling::*, mrope::*, rope_layout, yarn_bounds

namespace precis::models {

// ---------------------------------------------------------------------------------------------
// HfConfig: one config.json, possibly nested
// ---------------------------------------------------------------------------------------------

/// Bounds on sizes read from a config: every size at most max_config_size (2^26: the largest
/// real vocabularies are ~2^18, contexts ~2^23), layer counts at most max_layers (the deepest
/// released decoders have ~128).
inline constexpr index_t max_config_size = index_t{1} << 26;
inline constexpr index_t max_layers = 4096;

class HfConfig {
 public:
  /// Parses `root` (the whole config.json) read from `source`. The text-model section is
  /// `thinker_config.text_config` (Qwen3-Omni) or `text_config` when present, else the root.
  [[nodiscard]] static HfConfig from_json(nlohmann::json root, std::string source) {
    if (!root.is_object()) fail<config_error>("[config] '", source, "': config.json must be a JSON object");
    HfConfig c;
    c.root_ = std::move(root);
    c.source_ = std::move(source);
    const nlohmann::json* text = &c.root_;
    if (const auto th = c.root_.find("thinker_config"); th != c.root_.end() && th->is_object()) {
      const auto tc = th->find("text_config");
      if (tc == th->end() || !tc->is_object())
        fail<config_error>("[config] '", c.source_, "': 'thinker_config' has no 'text_config' object");
      text = &*tc;
      c.prefix_ = "thinker_config.text_config.";
    } else if (const auto tc2 = c.root_.find("text_config"); tc2 != c.root_.end() && tc2->is_object()) {
      text = &*tc2;
      c.prefix_ = "text_config.";
    }
    c.text_ = *text;
    return c;
  }

  /// Reads and parses `path` (a config.json file).
  [[nodiscard]] static HfConfig open(const std::filesystem::path& path) {
    return from_json(io::detail::read_json_file(path, "config"), path.string());
  }

  /// The text-model section (the root unless nested).
  [[nodiscard]] const nlohmann::json& json() const noexcept { return text_; }
  /// The whole file.
  [[nodiscard]] const nlohmann::json& root() const noexcept { return root_; }
  /// The file the config came from (for messages).
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  /// "thinker_config.text_config." for Qwen3-Omni, "" for a flat config.
  [[nodiscard]] const std::string& prefix() const noexcept { return prefix_; }

  /// "'num_key_value_heads' in 'dir/config.json'" — how messages name a key.
  [[nodiscard]] std::string where(std::string_view key) const {
    return "'" + prefix_ + std::string(key) + "' in '" + source_ + "'";
  }

  /// The top-level `model_type` ("" when absent).
  [[nodiscard]] std::string model_type() const {
    const auto it = root_.find("model_type");
    return it != root_.end() && it->is_string() ? it->get<std::string>() : std::string();
  }
  /// The top-level `architectures` list (empty when absent).
  [[nodiscard]] std::vector<std::string> architectures() const {
    std::vector<std::string> r;
    const auto it = root_.find("architectures");
    if (it != root_.end() && it->is_array())
      for (const auto& a : *it)
        if (a.is_string()) r.push_back(a.get<std::string>());
    return r;
  }

  /// The key is present in the text section and not null.
  [[nodiscard]] bool has(std::string_view key) const {
    const auto it = text_.find(std::string(key));
    return it != text_.end() && !it->is_null();
  }

  /// A required value; config_error naming the key when missing, null or of the wrong type.
  template <class T>
  [[nodiscard]] T get(std::string_view key) const {
    const auto it = text_.find(std::string(key));
    if (it == text_.end() || it->is_null()) fail<config_error>("[config] missing required key ", where(key));
    return convert<T>(*it, key);
  }

  /// The value, or nullopt when absent or null; config_error when of the wrong type.
  template <class T>
  [[nodiscard]] std::optional<T> find(std::string_view key) const {
    const auto it = text_.find(std::string(key));
    if (it == text_.end() || it->is_null()) return std::nullopt;
    return convert<T>(*it, key);
  }

  /// The value, or `fallback` when absent or null (the default is visible at the call site).
  template <class T>
  [[nodiscard]] T get_or(std::string_view key, T fallback) const {
    auto v = find<T>(key);
    return v ? std::move(*v) : std::move(fallback);
  }

  /// A required integer ≥ 1 (layer counts, sizes, head counts).
  [[nodiscard]] index_t positive(std::string_view key, index_t max = max_config_size) const {
    const auto v = get<index_t>(key);
    if (v < 1) fail<config_error>("[config] ", where(key), " must be ≥ 1, got ", v);
    // Sizes size allocations and loops before any tensor is read: a bound first (sweep: a
    // block_count of 10^12 ended in std::bad_alloc).
    if (v > max)
      fail<config_error>("[config] ", where(key), " = ", v, " is implausibly large (at most ", max,
                         " is accepted; no released model comes near)");
    return v;
  }

  /// Converts one JSON value, naming `key` (which may be a dotted sub-key) in errors.
  template <class T>
  [[nodiscard]] T convert(const nlohmann::json& v, std::string_view key) const {
    if constexpr (std::is_same_v<T, index_t>) {
      // JSON writers sometimes emit 4.0 for 4: accept integral floats, nothing else.
      if (v.is_number_integer()) return v.get<index_t>();
      if (v.is_number_float()) {
        const double d = v.get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9.0e15) return static_cast<index_t>(d);
      }
      fail<config_error>("[config] ", where(key), " must be an integer, got ", io::json_excerpt(v));
    } else if constexpr (std::is_same_v<T, double>) {
      if (!v.is_number()) fail<config_error>("[config] ", where(key), " must be a number, got ", io::json_excerpt(v));
      const double d = v.get<double>();
      if (!std::isfinite(d)) fail<config_error>("[config] ", where(key), " must be finite, got ", io::json_excerpt(v));
      return d;
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) fail<config_error>("[config] ", where(key), " must be true or false, got ", io::json_excerpt(v));
      return v.get<bool>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) fail<config_error>("[config] ", where(key), " must be a string, got ", io::json_excerpt(v));
      return v.get<std::string>();
    } else if constexpr (std::is_same_v<T, std::vector<index_t>>) {
      if (!v.is_array()) fail<config_error>("[config] ", where(key), " must be an array of integers, got ", io::json_excerpt(v));
      std::vector<index_t> r;
      for (std::size_t i = 0; i < v.size(); ++i)
        r.push_back(convert<index_t>(v[i], std::string(key) + "[" + std::to_string(i) + "]"));
      return r;
    } else if constexpr (std::is_same_v<T, nlohmann::json>) {
      return v;
    } else {
      static_assert(sizeof(T) == 0, "HfConfig::convert: unsupported value type");
    }
  }

 private:
  HfConfig() = default;

  nlohmann::json root_;
  nlohmann::json text_;
  std::string source_;
  std::string prefix_;
};

// ---------------------------------------------------------------------------------------------
// RopeSpec
// ---------------------------------------------------------------------------------------------

/// One of nn/rope.hpp's scaling policies, chosen at load time.
using RopeScaling = std::variant<rope_scaling::none, rope_scaling::linear, rope_scaling::yarn, rope_scaling::llama3>;

/// One of nn/rope.hpp's MRoPE slot maps.
using MropeSpec = std::variant<mrope::chunked, mrope::interleaved>;

/// Everything a model needs to build its RoPE tables.
struct RopeSpec {
  double theta = 10000.0;                          ///< base (`rope_theta`, GGUF `<arch>.rope.freq_base`)
  RopeScaling scaling = rope_scaling::none{};      ///< frequency scaling policy
  index_t rotary_dim = 0;                          ///< rotated features per head (≤ head_dim)
  rope_layout layout = rope_layout::half_split;    ///< feature pairing (adjacent pairs: GGUF `llama`)
  std::optional<MropeSpec> mrope;                  ///< 3-D positions (Qwen2-VL / Qwen3-Omni)
  std::string source;                              ///< where it was read, for messages and info()

  /// The f32 inverse frequencies of this spec (nn/rope.hpp computes them in double, narrows once).
  [[nodiscard]] InvFreq inv_freq() const {
    return std::visit([&](const auto& s) { return InvFreq::make(theta, rotary_dim, s); }, scaling);
  }

  /// "theta 10000, default, rotary_dim 64 of 64, half_split" — for info() and messages.
  [[nodiscard]] std::string describe() const {
    std::ostringstream os;
    os << "theta " << theta << ", " << std::visit([](const auto& s) { return std::string(s.name); }, scaling);
    std::visit(
        [&](const auto& s) {
          using S = std::decay_t<decltype(s)>;
          if constexpr (std::is_same_v<S, rope_scaling::linear>) os << " (factor " << s.factor << ")";
          if constexpr (std::is_same_v<S, rope_scaling::yarn>)
            os << " (factor " << s.factor << ", beta_fast " << s.beta_fast << ", beta_slow " << s.beta_slow
               << ", original_max_position " << s.original_max_position << ", "
               << (s.bounds == yarn_bounds::exact ? "truncate false" : "truncate true") << ")";
          if constexpr (std::is_same_v<S, rope_scaling::llama3>)
            os << " (factor " << s.factor << ", low_freq_factor " << s.low_freq_factor << ", high_freq_factor "
               << s.high_freq_factor << ", original_max_position " << s.original_max_position << ")";
        },
        scaling);
    os << ", rotary_dim " << rotary_dim << ", " << (layout == rope_layout::half_split ? "half_split" : "adjacent pairs");
    if (mrope)
      std::visit(
          [&](const auto& m) {
            os << ", mrope " << m.name << " [" << m.section[0] << ", " << m.section[1] << ", " << m.section[2] << "]";
          },
          *mrope);
    return os.str();
  }
};

namespace detail {

/// Reads one field of a RoPE parameter object (`rope_scaling` or `rope_parameters`).
class RopeFields {
 public:
  RopeFields(const HfConfig& cfg, const nlohmann::json& obj, std::string key) : cfg_(cfg), obj_(obj), key_(std::move(key)) {}

  [[nodiscard]] bool has(std::string_view k) const {
    const auto it = obj_.find(std::string(k));
    return it != obj_.end() && !it->is_null();
  }
  template <class T>
  [[nodiscard]] std::optional<T> find(std::string_view k) const {
    const auto it = obj_.find(std::string(k));
    if (it == obj_.end() || it->is_null()) return std::nullopt;
    return cfg_.convert<T>(*it, key_ + "." + std::string(k));
  }
  template <class T>
  [[nodiscard]] T get(std::string_view k) const {
    auto v = find<T>(k);
    if (!v) fail<config_error>("[config] missing required key ", cfg_.where(key_ + "." + std::string(k)));
    return *v;
  }
  template <class T>
  [[nodiscard]] T get_or(std::string_view k, T fallback) const {
    auto v = find<T>(k);
    return v ? *v : fallback;
  }
  [[nodiscard]] std::string where(std::string_view k) const { return cfg_.where(key_ + "." + std::string(k)); }
  [[nodiscard]] const std::string& key() const noexcept { return key_; }

 private:
  const HfConfig& cfg_;
  const nlohmann::json& obj_;
  std::string key_;
};

inline void require_positive(double v, const std::string& where) {
  if (!(v > 0.0)) fail<config_error>("[config] ", where, " must be > 0, got ", v);
}

}  // namespace detail

/// The RoPE of an HF config, for heads of `head_dim` features. `default_theta` is the model
/// class's default when the file names no base (HF LlamaConfig: 10000.0); `max_position` is
/// `max_position_embeddings`, YaRN's fallback for `original_max_position_embeddings`.
[[nodiscard]] inline RopeSpec rope_from_hf(const HfConfig& cfg, index_t head_dim, double default_theta,
                                           index_t max_position) {
  RopeSpec spec;
  spec.layout = rope_layout::half_split;  // HF checkpoints: rotate_half (model-semantics §1d)

  const nlohmann::json empty = nlohmann::json::object();
  const bool v5 = cfg.has("rope_parameters");
  const bool v4 = cfg.has("rope_scaling");
  // Both spellings present (transformers 5 writes `rope_parameters` and keeps the legacy
  // `rope_scaling` in saved configs, e.g. gpt-oss and Qwen3-Omni): every key of rope_scaling must
  // say what rope_parameters says (`type` is the legacy name of `rope_type`); then neither wins
  // silently, they are one description.
  if (v5 && v4) {
    const nlohmann::json& a = cfg.json().at("rope_parameters");
    const nlohmann::json& b = cfg.json().at("rope_scaling");
    if (!a.is_object() || !b.is_object())
      fail<config_error>("[config] both ", cfg.where("rope_parameters"), " and ", cfg.where("rope_scaling"),
                         " are set and one of them is not an object");
    for (const auto& [bk, bv] : b.items()) {
      const std::string ak = (bk == "type" && !b.contains("rope_type")) ? "rope_type" : bk;
      if (bk == "type" && b.contains("rope_type")) {
        if (bv != b.at("rope_type"))
          fail<config_error>("[config] ", cfg.where("rope_scaling.type"), " and ", cfg.where("rope_scaling.rope_type"),
                             " disagree");
        continue;
      }
      const auto it = a.find(ak);
      if (it == a.end() || *it != bv)
        fail<config_error>("[config] ", cfg.where("rope_scaling." + bk), " = ", io::json_excerpt(bv), " but ",
                           cfg.where("rope_parameters." + ak), " = ", it == a.end() ? std::string("(absent)") : io::json_excerpt(*it),
                           "; both RoPE descriptions are set and they disagree");
    }
  }
  std::string key = v5 ? "rope_parameters" : "rope_scaling";
  const nlohmann::json& obj = v5 ? cfg.json().at("rope_parameters") : (v4 ? cfg.json().at("rope_scaling") : empty);
  if (!obj.is_object()) fail<config_error>("[config] ", cfg.where(key), " must be an object, got ", io::json_excerpt(obj));
  // transformers 5 may key rope_parameters by layer type ({"full_attention": {...}, ...}).
  if (v5 && !obj.contains("rope_type") && !obj.contains("rope_theta") && !obj.empty() && obj.begin()->is_object())
    fail<config_error>("[config] ", cfg.where(key),
                       " holds per-layer-type RoPE parameters; this model takes one RoPE for every layer");
  const detail::RopeFields f(cfg, obj, key);

  // --- base -----------------------------------------------------------------------------------
  const std::optional<double> top_theta = cfg.find<double>("rope_theta");
  const std::optional<double> inner_theta = f.find<double>("rope_theta");
  if (top_theta && inner_theta && *top_theta != *inner_theta)
    fail<config_error>("[config] ", cfg.where("rope_theta"), " = ", *top_theta, " and ", f.where("rope_theta"), " = ",
                       *inner_theta, " disagree");
  spec.theta = inner_theta ? *inner_theta : (top_theta ? *top_theta : default_theta);
  if (!(spec.theta > 1.0))
    fail<config_error>("[config] ", inner_theta ? f.where("rope_theta") : cfg.where("rope_theta"),
                       " must be > 1, got ", spec.theta);

  // --- partial rotary -------------------------------------------------------------------------
  const std::optional<double> top_prf = cfg.find<double>("partial_rotary_factor");
  const std::optional<double> inner_prf = f.find<double>("partial_rotary_factor");
  if (top_prf && inner_prf && *top_prf != *inner_prf)
    fail<config_error>("[config] ", cfg.where("partial_rotary_factor"), " and ", f.where("partial_rotary_factor"),
                       " disagree");
  const double prf = inner_prf ? *inner_prf : top_prf.value_or(1.0);
  if (!(prf > 0.0 && prf <= 1.0))
    fail<config_error>("[config] ", inner_prf ? f.where("partial_rotary_factor") : cfg.where("partial_rotary_factor"),
                       " must be in (0, 1], got ", prf);
  // HF: dim = int(head_dim * partial_rotary_factor)
  spec.rotary_dim = static_cast<index_t>(static_cast<double>(head_dim) * prf);
  if (spec.rotary_dim < 2 || spec.rotary_dim % 2 != 0)
    fail<config_error>("[config] rotary dimension int(head_dim ", head_dim, " × partial_rotary_factor ", prf,
                       ") = ", spec.rotary_dim, " must be even and ≥ 2 (", cfg.source(), ")");

  // --- scaling type -----------------------------------------------------------------------------
  std::string type = "default";
  if (const auto t = f.find<std::string>("rope_type")) type = *t;
  else if (const auto t2 = f.find<std::string>("type")) type = *t2;
  const std::string type_where = f.has("rope_type") ? f.where("rope_type") : f.where("type");

  if (f.has("mrope_section") || type == "mrope") {
    const auto sec = f.get<std::vector<index_t>>("mrope_section");
    if (sec.size() != 3)
      fail<config_error>("[config] ", f.where("mrope_section"), " must have 3 entries (t, h, w), got ", sec.size());
    const bool interleaved = f.get_or<bool>("interleaved", false) || f.get_or<bool>("mrope_interleaved", false);
    if (interleaved) spec.mrope = mrope::interleaved{{sec[0], sec[1], sec[2]}};
    else spec.mrope = mrope::chunked{{sec[0], sec[1], sec[2]}};
    if (sec[0] + sec[1] + sec[2] != spec.rotary_dim / 2)
      fail<config_error>("[config] ", f.where("mrope_section"), " sums to ", sec[0] + sec[1] + sec[2],
                         ", expected rotary_dim / 2 = ", spec.rotary_dim / 2);
    if (type == "mrope") type = "default";  // Qwen2-VL spells plain MRoPE as type "mrope"
  }

  for (const char* unsupported : {"mscale", "mscale_all_dim", "attention_factor"})
    if (f.has(unsupported))
      fail<config_error>("[config] ", f.where(unsupported), " is set; precis' RoPE implements YaRN as HF/OpenAI "
                         "gpt-oss do, without DeepSeek's mscale overrides, so this model cannot be run faithfully");

  if (type == "default") {
    spec.scaling = rope_scaling::none{};
  } else if (type == "linear") {
    rope_scaling::linear s;
    s.factor = f.get<double>("factor");
    detail::require_positive(s.factor, f.where("factor"));
    spec.scaling = s;
  } else if (type == "yarn") {
    rope_scaling::yarn s;
    s.factor = f.get<double>("factor");
    s.beta_fast = f.get_or<double>("beta_fast", 32.0);  // HF _compute_yarn_parameters defaults
    s.beta_slow = f.get_or<double>("beta_slow", 1.0);
    // HF: `original_max_position_embeddings` of the RoPE block, else max_position_embeddings.
    const auto orig = f.find<double>("original_max_position_embeddings");
    s.original_max_position = orig ? *orig : static_cast<double>(max_position);
    s.bounds = f.get_or<bool>("truncate", true) ? yarn_bounds::rounded : yarn_bounds::exact;
    if (!(s.factor >= 1.0)) fail<config_error>("[config] ", f.where("factor"), " must be ≥ 1 for yarn, got ", s.factor);
    if (!(s.beta_fast > s.beta_slow && s.beta_slow > 0.0))
      fail<config_error>("[config] ", f.where("beta_fast"), " (", s.beta_fast, ") must exceed ", f.where("beta_slow"),
                         " (", s.beta_slow, ") > 0");
    detail::require_positive(s.original_max_position, f.where("original_max_position_embeddings"));
    spec.scaling = s;
  } else if (type == "llama3") {
    rope_scaling::llama3 s;
    s.factor = f.get<double>("factor");
    s.low_freq_factor = f.get<double>("low_freq_factor");
    s.high_freq_factor = f.get<double>("high_freq_factor");
    s.original_max_position = static_cast<double>(f.get<index_t>("original_max_position_embeddings"));
    detail::require_positive(s.factor, f.where("factor"));
    detail::require_positive(s.low_freq_factor, f.where("low_freq_factor"));
    if (!(s.high_freq_factor > s.low_freq_factor))
      fail<config_error>("[config] ", f.where("high_freq_factor"), " (", s.high_freq_factor, ") must exceed ",
                         f.where("low_freq_factor"), " (", s.low_freq_factor, ")");
    detail::require_positive(s.original_max_position, f.where("original_max_position_embeddings"));
    spec.scaling = s;
  } else {
    fail<config_error>("[config] ", type_where, " is \"", type,
                       "\"; supported RoPE types: \"default\", \"linear\", \"yarn\", \"llama3\" (and mrope_section "
                       "for MRoPE)");
  }
  spec.source = v5 ? cfg.where("rope_parameters") : (v4 ? cfg.where("rope_scaling") : cfg.where("rope_theta"));
  return spec;
}

// ---------------------------------------------------------------------------------------------
// GGUF: `<arch>.*` metadata
// ---------------------------------------------------------------------------------------------

/// The `<arch>.*` keys of a GGUF file (gguf.md), with errors naming the full key and the file.
class GgufConfig {
 public:
  GgufConfig(const io::GgufFile& file, std::string source)
      : file_(file), source_(std::move(source)), arch_(file.architecture()) {}

  [[nodiscard]] const std::string& architecture() const noexcept { return arch_; }
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  [[nodiscard]] const io::GgufFile& file() const noexcept { return file_; }
  /// "llama.block_count" for suffix "block_count".
  [[nodiscard]] std::string key(std::string_view suffix) const { return arch_ + "." + std::string(suffix); }
  /// "'llama.block_count' in 'model.gguf'".
  [[nodiscard]] std::string where(std::string_view suffix) const { return "'" + key(suffix) + "' in '" + source_ + "'"; }
  [[nodiscard]] bool has(std::string_view suffix) const { return file_.has(key(suffix)); }

  /// A required `<arch>.suffix` value (T: index_t, double, std::string, bool).
  template <class T>
  [[nodiscard]] T get(std::string_view suffix) const {
    if (!has(suffix)) fail<config_error>("[config] missing required key ", where(suffix));
    return read<T>(suffix);
  }
  template <class T>
  [[nodiscard]] std::optional<T> find(std::string_view suffix) const {
    if (!has(suffix)) return std::nullopt;
    return read<T>(suffix);
  }
  template <class T>
  [[nodiscard]] T get_or(std::string_view suffix, T fallback) const {
    auto v = find<T>(suffix);
    return v ? std::move(*v) : std::move(fallback);
  }
  /// A required integer ≥ 1.
  [[nodiscard]] index_t positive(std::string_view suffix, index_t max = max_config_size) const {
    const auto v = get<index_t>(suffix);
    if (v < 1) fail<config_error>("[config] ", where(suffix), " must be ≥ 1, got ", v);
    // Sizes size allocations and loops before any tensor is read: a bound first (sweep: a
    // block_count of 10^12 ended in std::bad_alloc).
    if (v > max)
      fail<config_error>("[config] ", where(suffix), " = ", v, " is implausibly large (at most ", max,
                         " is accepted; no released model comes near)");
    return v;
  }

 private:
  template <class T>
  [[nodiscard]] T read(std::string_view suffix) const {
    const io::GgufValue& v = file_.at(key(suffix));
    if (v.is_array())
      fail<config_error>("[config] ", where(suffix), " is an array (per-layer values); this model takes one value");
    return v.template get<T>();  // format_error / range_error naming the key on a kind mismatch
  }

  const io::GgufFile& file_;
  std::string source_;
  std::string arch_;
};

/// The RoPE of a GGUF file: `<arch>.rope.freq_base` (default 10000, llama.cpp's), the rotated
/// dimension `<arch>.rope.dimension_count` (default head_dim), and `<arch>.rope.scaling.*`
/// (type none | linear | yarn). `layout` is the architecture's pairing (llama: adjacent pairs,
/// model-semantics §1d). Llama-3 frequency factors (`rope_freqs.weight`) are rejected by name.
[[nodiscard]] inline RopeSpec rope_from_gguf(const GgufConfig& g, index_t head_dim, rope_layout layout) {
  RopeSpec spec;
  spec.layout = layout;
  spec.theta = g.get_or<double>("rope.freq_base", 10000.0);
  if (!(spec.theta > 1.0)) fail<config_error>("[config] ", g.where("rope.freq_base"), " must be > 1, got ", spec.theta);
  spec.rotary_dim = g.has("rope.dimension_count") ? g.positive("rope.dimension_count") : head_dim;
  if (spec.rotary_dim % 2 != 0 || spec.rotary_dim > head_dim)
    fail<config_error>("[config] ", g.where("rope.dimension_count"), " = ", spec.rotary_dim,
                       " must be even and ≤ head_dim ", head_dim);
  if (g.file().contains("rope_freqs.weight"))
    fail<config_error>("[config] '", g.source(), "' has 'rope_freqs.weight' (Llama-3 RoPE frequency factors), "
                       "which precis does not apply; running without them would be wrong");
  const std::string type = g.get_or<std::string>("rope.scaling.type", "none");
  if (type == "none") {
    spec.scaling = rope_scaling::none{};
  } else if (type == "linear") {
    rope_scaling::linear s;
    s.factor = g.get<double>("rope.scaling.factor");
    detail::require_positive(s.factor, g.where("rope.scaling.factor"));
    spec.scaling = s;
  } else if (type == "yarn") {
    rope_scaling::yarn s;
    s.factor = g.get<double>("rope.scaling.factor");
    s.original_max_position = static_cast<double>(g.positive("rope.scaling.original_context_length"));
    s.beta_fast = g.get_or<double>("rope.scaling.yarn_beta_fast", 32.0);
    s.beta_slow = g.get_or<double>("rope.scaling.yarn_beta_slow", 1.0);
    s.bounds = yarn_bounds::rounded;  // ggml_rope_yarn_corr_dims always floors/ceils (§1.6)
    if (!(s.factor >= 1.0)) fail<config_error>("[config] ", g.where("rope.scaling.factor"), " must be ≥ 1, got ", s.factor);
    spec.scaling = s;
  } else {
    fail<config_error>("[config] ", g.where("rope.scaling.type"), " is \"", type,
                       "\"; supported: \"none\", \"linear\", \"yarn\"");
  }
  spec.source = "'" + g.key("rope.*") + "' in '" + g.source() + "'";
  return spec;
}

}  // namespace precis::models
