// precis/generate/loading.hpp — what a generation tool does before it generates: find the
// tokenizer that belongs to a model path, read the model's declared context length without
// loading it, load the model with a progress report, and measure peak memory.
//
//   const text::Tokenizer tok = tokenizer_for(path);              // GGUF metadata or tokenizer.json
//   const index_t ctx = std::min<index_t>(4096, declared_context_length(path));
//   auto lm = load_with_progress(path, precision::f32, opts, [](const LoadProgress& p) { ... });
//
// Progress: load_model() itself reports nothing, and a model's weights are memory-mapped, so the
// real cost of a cold load is reading the files from disk as the first forward touches them.
// load_with_progress reads every weight file once, sequentially, before load_model (the bytes
// land in the page cache, which the mapping then shares — nothing is held twice), and reports
// the fraction read; then load_model builds the model from warm pages. The reported percentage
// is therefore bytes of weights read, the part of loading that scales with the model's size.
// That read is skipped (Preread::when_it_fits, the default) when the files exceed half the memory
// the system reports available: a 17 GiB MoE file on a 24 GiB machine is mapped lazily and its
// pages come in as the experts are first used, instead of a full read at load that would evict
// itself (llama.cpp's default, MAP_POPULATE, reads everything; Preread::always does the same). On
// a device backend (--device cuda) a second percentage follows: the bytes uploaded to the device
// (LoadOptions::on_upload).
#pragma once

#include <algorithm>    // std::sort, std::min
#include <chrono>       // std::chrono::steady_clock
#include <cstdio>       // std::fprintf, stderr
#include <cstdint>      // std::uint64_t
#include <filesystem>   // std::filesystem
#include <fstream>      // std::ifstream
#include <functional>   // std::function
#include <memory>       // std::unique_ptr
#include <string>       // std::string
#include <utility>      // std::move
#include <vector>       // std::vector

#include <sys/resource.h>  // getrusage, RUSAGE_SELF
#include <unistd.h>        // isatty, STDERR_FILENO

#include <precis/core/error.hpp>            // io_error, config_error, fail
#include <precis/io/gguf.hpp>               // io::GgufFile
#include <precis/models/causal_lm.hpp>      // CausalLM, precision
#include <precis/runtime/load_model.hpp>     // load_model
#include <precis/models/model_config.hpp>   // HfConfig, GgufConfig
#include <precis/models/model_loading.hpp>  // LoadOptions
#include <precis/models/weight_source.hpp>  // model_path_format
#include <precis/text/tokenizer.hpp>        // text::Tokenizer

namespace precis::generate {

namespace detail {
/// GGUF by its magic bytes; anything that is not a model path is an io_error (model_path_format).
[[nodiscard]] inline bool is_gguf(const std::filesystem::path& p) {
  return models::model_path_format(p) == models::weight_format::gguf;
}
/// The directory of an HF checkpoint given as the directory or as one of its .safetensors files.
[[nodiscard]] inline std::filesystem::path hf_dir(const std::filesystem::path& p) {
  return std::filesystem::is_directory(p) ? p : p.parent_path();
}
}  // namespace detail

/// The tokenizer of the model at `path`: a GGUF file's tokenizer.ggml.* metadata, or an HF
/// checkpoint's tokenizer.json (io_error naming the path when neither exists).
[[nodiscard]] inline text::Tokenizer tokenizer_for(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) fail<io_error>("[model] '", path.string(), "' does not exist");
  if (detail::is_gguf(path)) return text::Tokenizer::from_gguf(path);
  const fs::path dir = detail::hf_dir(path);
  if (!fs::exists(dir / "tokenizer.json"))
    fail<io_error>("[model] '", path.string(), "' has no tokenizer: expected '", (dir / "tokenizer.json").string(),
                   "' (an HF checkpoint directory) or a .gguf file with tokenizer metadata");
  return text::Tokenizer::from_hf(dir);
}

/// The context length the model at `path` declares (GGUF `<arch>.context_length`, config.json
/// `max_position_embeddings`), read without loading the weights.
[[nodiscard]] inline index_t declared_context_length(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) fail<io_error>("[model] '", path.string(), "' does not exist");
  if (detail::is_gguf(path)) {
    const io::GgufFile f = io::GgufFile::open(path);
    return models::GgufConfig(f, path.string()).positive("context_length");
  }
  const fs::path config = detail::hf_dir(path) / "config.json";
  if (!fs::exists(config))
    fail<io_error>("[model] '", path.string(), "' has no config.json ('", config.string(), "')");
  return models::HfConfig::open(config).positive("max_position_embeddings");
}

/// The weight files of the model at `path`, in name order.
[[nodiscard]] inline std::vector<std::filesystem::path> weight_files(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  if (!fs::is_directory(path)) {
    files.push_back(path);
    return files;
  }
  for (const fs::directory_entry& e : fs::directory_iterator(path))
    if (e.is_regular_file() && (e.path().extension() == ".safetensors" || e.path().extension() == ".gguf"))
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

struct LoadProgress {
  enum class Stage { reading, building, uploading, done } stage = Stage::reading;
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_total = 0;
  double seconds = 0;  ///< since the load began
  bool lazy = false;   ///< the files were not read first (Preread): pages come in on first use
  [[nodiscard]] double fraction() const noexcept {
    return bytes_total > 0 ? static_cast<double>(bytes_read) / static_cast<double>(bytes_total) : 1.0;
  }
};

/// Whether load_with_progress reads the weight files before mapping them (header comment).
enum class Preread {
  when_it_fits,  ///< when they take at most half of the memory available (default)
  always,        ///< always (what llama.cpp's MAP_POPULATE does)
  never,         ///< never: pages come in as the first passes touch them
};

/// Bytes of memory the system reports available (MemAvailable), 0 when unknown.
[[nodiscard]] inline std::uint64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024u;
  return 0;
}

/// load_model(path, p, options), reading the weight files first (per `preread`) and reporting
/// progress (see the header comment). `on_progress` is called about every 1% of the bytes read,
/// once when the model is being built, and once when it is done.
[[nodiscard]] inline std::unique_ptr<models::CausalLM> load_with_progress(
    const std::filesystem::path& path, models::precision p, const models::LoadOptions& options,
    const std::function<void(const LoadProgress&)>& on_progress = {}, Preread preread = Preread::when_it_fits) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) fail<io_error>("[model] '", path.string(), "' does not exist");
  const auto t0 = std::chrono::steady_clock::now();
  LoadProgress pr;
  const auto report = [&](LoadProgress::Stage s) {
    pr.stage = s;
    pr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_progress) on_progress(pr);
  };
  const std::vector<fs::path> files = weight_files(path);
  for (const fs::path& f : files) pr.bytes_total += static_cast<std::uint64_t>(fs::file_size(f));
  const std::uint64_t avail = available_memory_bytes();
  const bool read_first = preread == Preread::always ||
                          (preread == Preread::when_it_fits && (avail == 0 || pr.bytes_total <= avail / 2));
  pr.lazy = !read_first;
  std::vector<char> buf(read_first ? std::size_t{8} << 20 : 0);
  std::uint64_t next_report = 0;
  for (const fs::path& f : read_first ? files : std::vector<fs::path>{}) {
    std::ifstream in(f, std::ios::binary);
    if (!in) fail<io_error>("[model] cannot open '", f.string(), "' for reading");
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      pr.bytes_read += static_cast<std::uint64_t>(in.gcount());
      if (pr.bytes_read >= next_report) {
        report(LoadProgress::Stage::reading);
        next_report = pr.bytes_read + pr.bytes_total / 100 + 1;
      }
    }
    if (!in.eof()) fail<io_error>("[model] reading '", f.string(), "' failed after ", pr.bytes_read, " bytes");
  }
  report(LoadProgress::Stage::building);
  models::LoadOptions o = options;
  if (on_progress && !o.on_upload)  // a device backend: the bytes reaching the device
    o.on_upload = [&](std::size_t done, std::size_t total) {
      pr.bytes_read = done;
      pr.bytes_total = total;
      report(LoadProgress::Stage::uploading);
    };
  std::unique_ptr<models::CausalLM> lm = models::load_model(path, p, o);
  report(LoadProgress::Stage::done);
  return lm;
}

/// The progress lines precis' tools print on stderr while loading `name`: a terminal gets one
/// line rewritten in place, a log (stderr not a terminal) a line every 25% of the bytes.
[[nodiscard]] inline std::function<void(const LoadProgress&)> stderr_load_progress(std::string name) {
  const bool tty = isatty(STDERR_FILENO) != 0;
  return [name = std::move(name), tty, last_pct = -1](const LoadProgress& p) mutable {
    using S = LoadProgress::Stage;
    if (p.stage == S::reading) {
      const int pct = static_cast<int>(p.fraction() * 100.0);
      if (tty && pct != last_pct)
        std::fprintf(stderr, "\rloading %s: reading weights %3d%%", name.c_str(), pct);
      else if (!tty && pct / 25 != last_pct / 25)
        std::fprintf(stderr, "loading %s: reading weights %d%%\n", name.c_str(), pct);
      last_pct = pct;
    } else if (p.stage == S::uploading) {
      const int pct = static_cast<int>(p.fraction() * 100.0);
      if (tty)
        std::fprintf(stderr, "\rloading %s: uploading weights to the device %3d%%", name.c_str(), pct);
      else if (pct / 25 != last_pct / 25 || last_pct > 100)
        std::fprintf(stderr, "loading %s: uploading weights to the device %d%%\n", name.c_str(), pct);
      last_pct = pct;
    } else if (p.stage == S::building) {
      last_pct = 101;  // the upload's percentages start again
      if (p.lazy)
        std::fprintf(stderr, "%sloading %s: mapping %.2f GiB without reading it first (pages load on first use)\n",
                     tty ? "\r" : "", name.c_str(), static_cast<double>(p.bytes_total) / (1024.0 * 1024.0 * 1024.0));
      std::fprintf(stderr, tty ? "\rloading %s: building the model    " : "loading %s: building the model\n",
                   name.c_str());
    } else {
      std::fprintf(stderr, "%sloading %s: done in %.2f s          \n", tty ? "\r" : "", name.c_str(), p.seconds);
    }
    std::fflush(stderr);
  };
}

/// The process's peak resident memory so far, in bytes (getrusage ru_maxrss, KiB on Linux).
[[nodiscard]] inline std::uint64_t peak_memory_bytes() noexcept {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return static_cast<std::uint64_t>(u.ru_maxrss) * 1024u;
}

}  // namespace precis::generate
