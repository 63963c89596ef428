// precis/io/checkpoint.hpp — a model checkpoint: one safetensors file, or an HF directory.
//
// `Checkpoint::open(path)` accepts
//   - a `.safetensors` file;
//   - a directory with `model.safetensors`;
//   - a directory with a sharded `model.safetensors.index.json` ({"metadata": {...},
//     "weight_map": {tensor: shard file}}, model-semantics.md §1e — an HF convention, not part
//     of the safetensors format).
// A sharded index is cross-checked before any tensor is handed out: every shard it names exists
// and is a valid safetensors file, every indexed tensor is in the shard the index names, no
// tensor is stored in two shards, and no shard holds a tensor the index does not list. A lookup
// of a missing tensor names the tensor and the files searched.
//
// The directory's `config.json`, if present, is parsed once; `config_dtype()` turns its
// `torch_dtype` / `dtype` string into a dtype_code (dtype-bugs E7, E30: the string is parsed into
// an enum once, at load, and compared with the compiled policy — see io/checkpoint_dtype.hpp).
#pragma once

#include <cstddef>      // std::size_t
#include <filesystem>   // std::filesystem::path, exists, is_directory
#include <fstream>      // std::ifstream
#include <functional>   // std::less
#include <iterator>     // std::istreambuf_iterator
#include <map>          // std::map
#include <optional>     // std::optional
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include <nlohmann/json.hpp>  // nlohmann::json (index and config files)

#include <precis/core/dtype.hpp>       // precis::dtype_code
#include <precis/core/error.hpp>       // format_error, config_error, io_error
#include <precis/io/any_tensor.hpp>    // precis::io::AnyTensor
#include <precis/io/json.hpp>          // precis::io::read_json_file (bounded)
#include <precis/io/safetensors.hpp>   // precis::io::SafetensorsFile

namespace precis::io {

// ---------------------------------------------------------------------------------------------
// config.json dtype
// ---------------------------------------------------------------------------------------------

/// What config.json says about the checkpoint dtype.
enum class config_dtype_kind {
  missing,    // no key, or null
  automatic,  // "auto": resolve from the tensor headers
  explicit_,  // a named dtype
};

struct ConfigDtype {
  config_dtype_kind kind = config_dtype_kind::missing;
  std::optional<dtype_code> dtype;  // set iff kind == explicit_
  std::string key;                  // "torch_dtype" or "dtype"; empty when missing
  std::string value;                // the string as written ("bfloat16")

  /// `torch_dtype "bfloat16"`, `"auto"` or `no torch_dtype/dtype key` — for messages.
  [[nodiscard]] std::string describe() const {
    if (kind == config_dtype_kind::missing) return "no torch_dtype/dtype key";
    return key + " \"" + value + "\"";
  }
};

namespace detail {
[[nodiscard]] inline ConfigDtype parse_one_config_dtype(const nlohmann::json& config, const std::string& key,
                                                        std::string_view source) {
  ConfigDtype r;
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return r;
  if (!it->is_string())
    fail<config_error>("[config] '", source, "': \"", key, "\" must be a string, got ", it->dump());
  r.key = key;
  r.value = it->get<std::string>();
  // Accepted spellings: transformers serialises torch dtypes without the "torch." prefix.
  if (r.value == "auto") {
    r.kind = config_dtype_kind::automatic;
    return r;
  }
  r.kind = config_dtype_kind::explicit_;
  if (r.value == "float32") r.dtype = dtype_code::f32;
  else if (r.value == "bfloat16") r.dtype = dtype_code::bf16;
  else if (r.value == "float16") r.dtype = dtype_code::f16;
  else if (r.value == "float64") r.dtype = dtype_code::f64;
  else
    fail<config_error>("[config] '", source, "': \"", key, "\" is \"", r.value,
                       "\"; expected one of \"float32\", \"bfloat16\", \"float16\", \"float64\", \"auto\"");
  return r;
}
}  // namespace detail

/// Parses `torch_dtype` (transformers ≤ 4.x) and `dtype` (transformers 5). If both are present
/// they must agree (transformers#40808: one silently overwrote the other, dtype-bugs E30).
[[nodiscard]] inline ConfigDtype parse_config_dtype(const nlohmann::json& config, std::string_view source) {
  if (!config.is_object()) fail<config_error>("[config] '", source, "': config.json must be a JSON object");
  ConfigDtype a = detail::parse_one_config_dtype(config, "torch_dtype", source);
  ConfigDtype b = detail::parse_one_config_dtype(config, "dtype", source);
  if (a.kind != config_dtype_kind::missing && b.kind != config_dtype_kind::missing &&
      (a.kind != b.kind || a.dtype != b.dtype))
    fail<config_error>("[config] '", source, "': ", a.describe(), " and ", b.describe(),
                       " disagree (dtype-bugs E30: neither may silently win)");
  return a.kind != config_dtype_kind::missing ? a : b;
}

namespace detail {
/// config.json / the shard index, bounded (io/json.hpp).
[[nodiscard]] inline nlohmann::json read_json_file(const std::filesystem::path& path, std::string_view what) {
  return io::read_json_file(path, what);
}
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Checkpoint
// ---------------------------------------------------------------------------------------------

class Checkpoint {
 public:
  static constexpr std::string_view single_file_name = "model.safetensors";
  static constexpr std::string_view index_file_name = "model.safetensors.index.json";
  static constexpr std::string_view config_file_name = "config.json";

  [[nodiscard]] static Checkpoint open(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    Checkpoint c;
    c.path_ = path;
    if (!fs::exists(path)) fail<io_error>("[checkpoint] '", path.string(), "' does not exist");
    if (!fs::is_directory(path)) {
      c.add_file(SafetensorsFile::open(path));
      return c;
    }
    const fs::path single = path / single_file_name;
    const fs::path index = path / index_file_name;
    const bool has_single = fs::exists(single), has_index = fs::exists(index);
    if (has_single && has_index)
      fail<format_error>("[checkpoint] '", path.string(), "' has both ", single_file_name, " and ", index_file_name,
                         "; which one holds the weights is ambiguous");
    if (has_single) c.add_file(SafetensorsFile::open(single));
    else if (has_index) c.open_sharded(index);
    else
      fail<format_error>("[checkpoint] '", path.string(), "' has neither ", single_file_name, " nor ",
                         index_file_name);
    const fs::path config = path / config_file_name;
    if (fs::exists(config)) {
      c.config_ = detail::read_json_file(config, "config");
      c.config_path_ = config.string();
    }
    return c;
  }

  /// The path given to open().
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// The safetensors files (one, or every shard).
  [[nodiscard]] const std::vector<SafetensorsFile>& files() const noexcept { return files_; }

  [[nodiscard]] bool contains(std::string_view name) const { return where_.find(name) != where_.end(); }
  [[nodiscard]] std::size_t size() const noexcept { return where_.size(); }
  /// All tensor names, sorted.
  [[nodiscard]] std::vector<std::string> tensor_names() const {
    std::vector<std::string> r;
    r.reserve(where_.size());
    for (const auto& kv : where_) r.push_back(kv.first);
    return r;
  }
  /// The tensor called `name`; format_error naming it and the files searched if absent.
  [[nodiscard]] AnyTensor tensor(std::string_view name) const {
    const auto it = where_.find(name);
    if (it == where_.end()) {
      std::string searched;
      for (const auto& f : files_) searched += (searched.empty() ? "'" : ", '") + f.source_name() + "'";
      fail<format_error>("[checkpoint] no tensor named '", name, "' in checkpoint '", path_.string(),
                         "' (searched ", searched, ")");
    }
    return files_[it->second].tensor(name);
  }
  /// Every tensor, file by file in storage order.
  [[nodiscard]] std::vector<AnyTensor> tensors() const {
    std::vector<AnyTensor> r;
    for (const auto& f : files_)
      for (auto& t : f.tensors()) r.push_back(std::move(t));
    return r;
  }

  /// config.json, if the checkpoint is a directory that has one.
  [[nodiscard]] const std::optional<nlohmann::json>& config() const noexcept { return config_; }
  /// The checkpoint dtype config.json declares (kind `missing` when there is no config.json).
  [[nodiscard]] ConfigDtype config_dtype() const {
    if (!config_) return {};
    return parse_config_dtype(*config_, config_path_);
  }

 private:
  Checkpoint() = default;

  void add_file(SafetensorsFile f) {
    const std::size_t idx = files_.size();
    for (const auto& e : f.entries()) {
      const auto [it, inserted] = where_.emplace(e.name, idx);
      if (!inserted)
        fail<format_error>("[checkpoint] tensor '", e.name, "' is stored in both '", files_[it->second].source_name(),
                           "' and '", f.source_name(), "'");
    }
    files_.push_back(std::move(f));
  }

  void open_sharded(const std::filesystem::path& index_path) {
    const std::string index_name = index_path.string();
    const nlohmann::json index = detail::read_json_file(index_path, "checkpoint");
    if (!index.is_object()) fail<format_error>("[checkpoint] '", index_name, "' must be a JSON object");
    const auto wm = index.find("weight_map");
    if (wm == index.end() || !wm->is_object())
      fail<format_error>("[checkpoint] '", index_name, "' has no \"weight_map\" object");

    // tensor → shard file name, as the index claims
    std::map<std::string, std::string, std::less<>> claimed;
    std::map<std::string, std::size_t, std::less<>> shard_index;  // shard name → position in files_
    for (const auto& [tensor, shard] : wm->items()) {
      if (!shard.is_string())
        fail<format_error>("[checkpoint] '", index_name, "': weight_map entry '", tensor, "' must be a file name, got ",
                           io::json_excerpt(shard));
      const auto& file = shard.get_ref<const std::string&>();
      // Shards are files beside the index: no directories, no "..", nothing absolute.
      if (file.empty() || file.find('/') != std::string::npos || file.find('\\') != std::string::npos ||
          file == "." || file == "..")
        fail<format_error>("[checkpoint] '", index_name, "': weight_map entry '", tensor, "' names '", file,
                           "', which is not a file name in the checkpoint directory");
      claimed.emplace(tensor, file);
      if (shard_index.find(file) == shard_index.end()) {
        const auto shard_path = index_path.parent_path() / file;
        if (!std::filesystem::is_regular_file(shard_path))
          fail<format_error>("[checkpoint] '", index_name, "': weight_map entry '", tensor, "' points to shard '", file,
                             "', which does not exist");
        shard_index.emplace(file, files_.size());
        add_file(SafetensorsFile::open(shard_path));  // rejects a tensor stored in two shards
      }
    }
    for (const auto& [tensor, file] : claimed) {
      const auto it = where_.find(tensor);
      const SafetensorsFile& expected = files_[shard_index.find(file)->second];
      if (it == where_.end())
        fail<format_error>("[checkpoint] '", index_name, "': tensor '", tensor, "' is indexed in shard '", file,
                           "', but '", expected.source_name(), "' has no such tensor");
      if (&files_[it->second] != &expected)
        fail<format_error>("[checkpoint] '", index_name, "': tensor '", tensor, "' is indexed in shard '", file,
                           "', but it is stored in '", files_[it->second].source_name(), "'");
    }
    for (const auto& [tensor, idx] : where_)
      if (claimed.find(tensor) == claimed.end())
        fail<format_error>("[checkpoint] '", index_name, "': shard '", files_[idx].source_name(),
                           "' holds tensor '", tensor, "', which the weight_map does not list");
  }

  std::filesystem::path path_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, std::size_t, std::less<>> where_;  // tensor name → index into files_
  std::optional<nlohmann::json> config_;
  std::string config_path_;
};

}  // namespace precis::io
