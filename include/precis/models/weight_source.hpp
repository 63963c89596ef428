// precis/models/weight_source.hpp — one interface over the files a model's weights come from:
// an HF safetensors checkpoint (io::Checkpoint: single file or shards) or a GGUF file
// (io::GgufFile), with the checks every model loader needs.
//
//   WeightSource w = WeightSource::open(path);                      // directory, .safetensors or .gguf
//   io::AnyTensor t = w.tensor("model.layers.3.self_attn.k_proj.weight",
//                              {{32, 64}, "num_key_value_heads=2 × head_dim=16, hidden_size=64"});
//
// A fetch with an expected shape is where a config that disagrees with the tensors is caught:
//   [llama] tensor 'model.layers.3.self_attn.k_proj.weight' ('dir/model.safetensors'): shape [64, 64],
//   expected [32, 64] from num_key_value_heads=2 × head_dim=16, hidden_size=64 (dir/config.json)
// A missing tensor names itself and the files searched; tensors the model never asked for are
// listed by unused() (a warning for the caller to print), and the loader turns unused tensors
// that prove the config wrong (a layer index ≥ num_hidden_layers) into errors.
//
// GGUF shapes arrive already in row-major order (io::GgufFile reverses ggml's ne[] order,
// model-semantics §1d), so expected shapes are written the same way for both formats.
//
// Nothing here copies tensor data: AnyTensor bytes point into the memory mappings, which stay
// alive as long as any tensor refers to them. `contains_address` tells whether a pointer lies
// inside one of the mapped files (the zero-copy test).
#pragma once

#include <cstddef>      // std::byte, std::size_t
#include <filesystem>   // std::filesystem::path, file_size, is_directory
#include <fstream>      // std::ifstream
#include <functional>   // std::less
#include <memory>       // std::shared_ptr, std::make_shared
#include <optional>     // std::optional
#include <set>          // std::set
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <system_error> // std::error_code
#include <utility>      // std::move
#include <variant>      // std::variant
#include <vector>       // std::vector

#include <precis/core/config.hpp>     // precis::index_t
#include <precis/core/error.hpp>      // format_error, shape_error, io_error
#include <precis/io/any_tensor.hpp>   // io::AnyTensor, io::shape_string
#include <precis/io/checkpoint.hpp>   // io::Checkpoint
#include <precis/io/gguf.hpp>         // io::GgufFile

namespace precis::models {

/// Which file format the weights are in.
enum class weight_format {
  safetensors,  ///< HF checkpoint: config.json + one or more .safetensors files
  gguf,         ///< one GGUF v3 file (metadata + tensors)
};

[[nodiscard]] constexpr std::string_view to_string(weight_format f) noexcept {
  return f == weight_format::safetensors ? "safetensors" : "gguf";
}

/// What the model path `path` is: a GGUF file (its first bytes are "GGUF", whatever its name), an
/// HF checkpoint (a directory with config.json, or a .safetensors file in one). Anything else is
/// an io_error that says what the path is and what a model path looks like — not "no tokenizer"
/// or a missing key later (robustness sweep: a text file given as -m).
[[nodiscard]] inline weight_format model_path_format(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail<io_error>("[model] '", path.string(), "' does not exist");
  constexpr std::string_view looks_like =
      "a model is a .gguf file or an HF checkpoint directory (config.json, tokenizer.json, *.safetensors)";
  if (fs::is_directory(st)) {
    if (!fs::exists(path / "config.json"))
      fail<config_error>("[model] '", path.string(), "' is a directory with no config.json, not an HF checkpoint; ",
                         looks_like);
    return weight_format::safetensors;
  }
  if (!fs::is_regular_file(st))
    fail<io_error>("[model] '", path.string(), "' is not a regular file or directory; ", looks_like);
  char magic[4] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail<io_error>("[model] cannot open '", path.string(), "'");
    in.read(magic, 4);
  }
  if (std::string_view(magic, 4) == "GGUF") return weight_format::gguf;
  if (path.extension() == ".gguf")
    fail<format_error>("[model] '", path.string(), "' is named .gguf but does not start with the GGUF magic bytes");
  if (path.extension() == ".safetensors") return weight_format::safetensors;
  fail<io_error>("[model] '", path.string(), "' is neither a GGUF file (no 'GGUF' magic) nor a .safetensors file; ",
                 looks_like);
}

/// The shape a model expects for a tensor, and the config values it follows from (the text after
/// "from" in the error message).
struct ExpectedShape {
  std::vector<index_t> shape;
  std::string why;
};

class WeightSource {
 public:
  /// A directory (HF checkpoint), a `.safetensors` file, or a `.gguf` file.
  [[nodiscard]] static WeightSource open(const std::filesystem::path& path) {
    if (model_path_format(path) == weight_format::gguf) return WeightSource(io::GgufFile::open(path), path);
    return WeightSource(io::Checkpoint::open(path), path);
  }
  explicit WeightSource(io::Checkpoint ckpt, std::filesystem::path path = {})
      : path_(path.empty() ? ckpt.path() : std::move(path)), file_(std::move(ckpt)) {
    if (std::filesystem::is_directory(path_)) config_path_ = (path_ / "config.json").string();
  }
  explicit WeightSource(io::GgufFile gguf, std::filesystem::path path)
      : path_(std::move(path)), config_path_(path_.string()), file_(std::move(gguf)) {}

  [[nodiscard]] weight_format format() const noexcept {
    return std::holds_alternative<io::Checkpoint>(file_) ? weight_format::safetensors : weight_format::gguf;
  }
  /// The path given to open().
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// Where the hyper-parameters are read from: config.json, or the GGUF file itself.
  [[nodiscard]] const std::string& config_source() const noexcept { return config_path_; }

  /// The underlying checkpoint (safetensors), or nullptr.
  [[nodiscard]] const io::Checkpoint* checkpoint() const noexcept { return std::get_if<io::Checkpoint>(&file_); }
  /// The underlying GGUF file, or nullptr.
  [[nodiscard]] const io::GgufFile* gguf() const noexcept { return std::get_if<io::GgufFile>(&file_); }

  [[nodiscard]] bool contains(std::string_view name) const {
    return std::visit([&](const auto& f) { return f.contains(name); }, file_);
  }

  /// Every tensor name in the file(s).
  [[nodiscard]] std::vector<std::string> names() const {
    if (const auto* c = checkpoint()) return c->tensor_names();
    return gguf()->tensor_names();
  }

  /// The tensor `name`, marked as used; format_error naming it and the file(s) when absent.
  [[nodiscard]] io::AnyTensor tensor(std::string_view name) {
    if (!contains(name))
      fail<format_error>("[model] ", to_string(format()), " '", path_.string(), "' has no tensor '", name, "'");
    used_.emplace(name);
    return std::visit([&](const auto& f) { return f.tensor(name); }, file_);
  }

  /// The tensor `name` with its shape checked against `expected` (shape_error naming the tensor,
  /// both shapes and the config values the expectation follows from).
  [[nodiscard]] io::AnyTensor tensor(std::string_view name, const ExpectedShape& expected) {
    io::AnyTensor t = tensor(name);
    check_shape(t, expected);
    return t;
  }

  /// As tensor(name, expected), or nullopt when the file has no such tensor (optional weights:
  /// biases, an untied lm_head).
  [[nodiscard]] std::optional<io::AnyTensor> find(std::string_view name, const ExpectedShape& expected) {
    if (!contains(name)) return std::nullopt;
    return tensor(name, expected);
  }

  void check_shape(const io::AnyTensor& t, const ExpectedShape& expected) const {
    if (t.shape() != expected.shape)
      fail<shape_error>("[model] tensor '", t.name(), "' ('", t.source(), "'): shape ", io::shape_string(t.shape()),
                        ", expected ", io::shape_string(expected.shape), " from ", expected.why, " (", config_path_,
                        ")");
  }

  /// The tensor `name` without marking it used (for reports about what was loaded).
  [[nodiscard]] io::AnyTensor peek(std::string_view name) const {
    if (!contains(name))
      fail<format_error>("[model] ", to_string(format()), " '", path_.string(), "' has no tensor '", name, "'");
    return std::visit([&](const auto& f) { return f.tensor(name); }, file_);
  }

  /// Tensors the model fetched, sorted.
  [[nodiscard]] std::vector<std::string> used() const { return {used_.begin(), used_.end()}; }

  /// Tensors in the file(s) that no fetch asked for, sorted.
  [[nodiscard]] std::vector<std::string> unused() const {
    std::vector<std::string> r;
    for (auto& n : names())
      if (used_.find(n) == used_.end()) r.push_back(std::move(n));
    return r;
  }

  /// Bytes of every file mapped (the model's weights are read from these mappings, not copied).
  [[nodiscard]] std::size_t bytes_mapped() const {
    std::size_t n = 0;
    for (const auto& r : regions()) n += r.size();
    return n;
  }

  /// True if [p, p + bytes) lies inside one of the mapped files.
  [[nodiscard]] bool contains_address(const void* p, std::size_t bytes) const {
    const auto* b = static_cast<const std::byte*>(p);
    for (const auto& r : regions())
      if (!r.empty() && b >= r.data() && b + bytes <= r.data() + r.size()) return true;
    return false;
  }

 private:
  /// The tensor-data regions of the mapped files.
  [[nodiscard]] std::vector<std::span<const std::byte>> regions() const {
    std::vector<std::span<const std::byte>> r;
    if (const auto* c = checkpoint()) {
      for (const auto& f : c->files()) r.push_back(f.data());
    } else {
      r.push_back(gguf()->data());
    }
    return r;
  }

  std::filesystem::path path_;
  std::string config_path_;
  std::variant<io::Checkpoint, io::GgufFile> file_;
  std::set<std::string, std::less<>> used_;
};

}  // namespace precis::models
