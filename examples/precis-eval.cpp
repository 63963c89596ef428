// precis-eval — perplexity of a model over a text file, with llama.cpp's `llama-perplexity` method
// (generate/perplexity.hpp), so the two can be compared on the same file and context size:
//
//   precis-eval -f LICENSE -c 256                         # the default model (SmolLM2-135M-Instruct)
//   precis-eval -m model.gguf -f wiki.test.raw -c 512 --chunks 20 -o reports/wiki
//
// The text is tokenized whole (BOS when the vocabulary asks for it, no special-token parsing),
// cut into windows of -c tokens every --stride tokens (default: -c, non-overlapping), and each
// window is evaluated from an empty cache; only the second half of each window is scored.
// Progress (window i/N, running perplexity, tokens/s) goes to stderr; at the end a JSON and a
// Markdown report are written (PREFIX.json, PREFIX.md) with the model, its format, the precision,
// tokens evaluated, the perplexity, tokens/s and the date.
// Exit status: 0 success, 1 the model, the text or the evaluation failed (message on stderr),
// 2 bad usage.
#include <algorithm>     // std::min
#include <chrono>        // std::chrono::system_clock
#include <cstdint>       // std::uint64_t
#include <cstdio>        // std::fprintf
#include <cstdlib>       // std::exit
#include <ctime>         // std::gmtime, std::strftime
#include <exception>     // std::exception
#include <filesystem>    // std::filesystem
#include <fstream>       // std::ifstream, std::ofstream
#include <limits>        // std::numeric_limits
#include <optional>      // std::optional
#include <sstream>       // std::ostringstream
#include <string>        // std::string
#include <string_view>   // std::string_view
#include <system_error>  // std::errc
#include <vector>        // std::vector


#include <nlohmann/json.hpp>  // nlohmann::json

#include <precis/core/error.hpp>              // precis::error
#include <precis/generate/cli.hpp>            // usage_error, parse_in
#include <precis/generate/default_model.hpp>  // model_path_or_default
#include <precis/generate/user_text.hpp>  // read_text_file, check_user_text
#include <precis/generate/loading.hpp>        // load_with_progress, tokenizer_for, peak_memory_bytes
#include <precis/generate/perplexity.hpp>     // perplexity
#include <precis/models/causal_lm.hpp>        // precision, parse_precision

namespace {

namespace fs = std::filesystem;
namespace pg = precis::generate;
namespace pm = precis::models;
using precis::index_t;

constexpr const char* help_text = R"(usage: precis-eval -f TEXT_FILE [options]

Perplexity of a causal language model over a text file (llama-perplexity's method: windows of
-c tokens, each evaluated from an empty cache, the second half of each window scored).

  -m, --model PATH     GGUF file or HF directory (default: SmolLM2-135M-Instruct Q4_1 in the
                       precis cache; `bash scripts/fetch_model.sh` fetches it)
  -f, --file PATH      the text to evaluate (UTF-8), required
  -c, --ctx-size N     window length in tokens (default 512; at most the model's context)
      --stride N       tokens between window starts (default: -c, non-overlapping windows); with
                       N < c/2 every token after the first half-window is scored once
      --chunks N       evaluate at most N windows (default: all that fit)
      --precision P    f32 | bf16 (default f32)
      --act-quant Q    none | q8: activations × block-quantized weights exact (none, default) or
                       quantized to 8-bit blocks as llama.cpp does (q8)
      -ctk, --cache-type-k T  f32 | f16 | bf16 | q8_0 | q4_0: how the KV cache stores keys (default: the
                              --precision dtype; q8_0/q4_0 are ggml blocks of 32, CPU only)
      -ctv, --cache-type-v T  the same for values
      --device D       cpu | cuda (default cpu; cuda needs a build with the precis::cuda component and an NVIDIA GPU)
  -t, --threads N      CPU threads (default: all cores)
  -o, --output PREFIX  write PREFIX.json and PREFIX.md (default: precis-eval)
  -h, --help           this text
)";

struct Args {
  std::optional<std::string> model;
  std::string file;
  index_t n_ctx = 512;
  index_t stride = 0;
  index_t chunks = 0;
  pm::precision precision = pm::precision::f32;
  pm::activation_quantization act_quant = pm::activation_quantization::none;
  precis::KvCacheTypes cache_types;  // -ctk / -ctv (unset: the compute dtype)
  std::string device = "cpu";
  int threads = 0;
  std::string output = "precis-eval";
};

using pg::parse_in;
using pg::usage_error;  // a usage error: what was wrong, exit status 2

Args parse_args(int argc, char** argv) {
  Args a;
  bool have_file = false;
  constexpr index_t big = index_t{1} << 30;
  for (int i = 1; i < argc; ++i) {
    const std::string_view opt = argv[i];
    const auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw usage_error{std::string(opt) + " needs a value"};
      return argv[++i];
    };
    if (opt == "-h" || opt == "--help") {
      std::fputs(help_text, stdout);
      std::exit(0);
    } else if (opt == "-m" || opt == "--model") {
      a.model = std::string(value());
    } else if (opt == "-f" || opt == "--file") {
      a.file = std::string(value());
      have_file = true;
    } else if (opt == "-c" || opt == "--ctx-size") {
      a.n_ctx = parse_in<index_t>(opt, value(), 4, big, ">= 4");
    } else if (opt == "--stride") {
      a.stride = parse_in<index_t>(opt, value(), 1, big, ">= 1 and <= -c");
    } else if (opt == "--chunks") {
      a.chunks = parse_in<index_t>(opt, value(), 1, big, ">= 1");
    } else if (opt == "--precision") {
      a.precision = pg::parse_precision_flag(value());
    } else if (opt == "--act-quant") {
      a.act_quant = pg::parse_act_quant_flag(value());
    } else if (opt == "-ctk" || opt == "--cache-type-k") {
      a.cache_types.k = pg::parse_cache_type_flag(opt, value());
    } else if (opt == "-ctv" || opt == "--cache-type-v") {
      a.cache_types.v = pg::parse_cache_type_flag(opt, value());
    } else if (opt == "--device") {
      a.device = pg::parse_device_flag(value());
    } else if (opt == "-t" || opt == "--threads") {
      a.threads = parse_in<int>(opt, value(), 1, 4096, "1..4096");
    } else if (opt == "-o" || opt == "--output") {
      a.output = std::string(value());
      if (a.output.empty()) throw usage_error{"--output needs a non-empty prefix"};
    } else {
      throw usage_error{"unknown option '" + std::string(opt) + "' (see --help)"};
    }
  }
  if (!have_file) throw usage_error{"no text: give -f TEXT_FILE"};
  if (a.stride > a.n_ctx)
    throw usage_error{"--stride " + std::to_string(a.stride) + " is larger than -c " + std::to_string(a.n_ctx)};
  return a;
}

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char s[32];
  std::strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return s;
}

void write_file(const fs::path& path, const std::string& text) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) precis::fail<precis::io_error>("cannot write the report '", path.string(), "'");
}

int run(const Args& a) {
  const fs::path model = pg::model_path_or_default(a.model);
  // Bounded and checked (generate/user_text.hpp): a regular file of UTF-8 text, no NUL bytes.
  const std::string text = pg::read_text_file(a.file, "the text file");
  pg::check_user_text(text, "the text file '" + a.file + "'");

  const precis::text::Tokenizer tok = pg::tokenizer_for(model);
  // As llama-perplexity: BOS when the vocabulary adds one (it then also starts every window),
  // control-token text in the file is plain text.
  const std::vector<precis::text::token_id> ids = tok.encode(text, {.add_bos = true, .parse_special = false});
  pg::PerplexityOptions opt;
  opt.n_ctx = a.n_ctx;
  opt.stride = a.stride;
  opt.max_windows = a.chunks;
  if (tok.vocab().add_bos) opt.bos = tok.bos();
  const index_t n_windows = pg::perplexity_windows(ids.size(), opt);
  if (n_windows == 0)
    precis::fail<precis::range_error>("'", a.file, "' is ", ids.size(), " tokens, shorter than one window of ",
                                      a.n_ctx, " tokens; use a longer text or a smaller -c");
  const index_t declared = pg::declared_context_length(model);
  if (a.n_ctx > declared)
    precis::fail<precis::config_error>("-c ", a.n_ctx, " exceeds the model's context length ", declared, " ('",
                                       model.string(), "')");

  pm::LoadOptions lo;
  lo.max_context = a.n_ctx;
  lo.max_sequences = 1;
  lo.n_threads = a.threads;
  lo.backend = a.device == "cuda" ? pm::backend_kind::cuda : pm::backend_kind::cpu;
  lo.quantize_activations = a.act_quant;
  lo.cache_types = a.cache_types;
  double load_seconds = 0;
  const auto print_progress = pg::stderr_load_progress(model.filename().string());
  const auto lm = pg::load_with_progress(model, a.precision, lo, [&](const pg::LoadProgress& p) {
    print_progress(p);
    if (p.stage == pg::LoadProgress::Stage::done) load_seconds = p.seconds;
  });
  const pm::ModelInfo& info = lm->info();
  std::fprintf(stderr, "evaluating %zu tokens of '%s': %lld window(s) of %lld tokens, stride %lld\n", ids.size(),
               a.file.c_str(), static_cast<long long>(n_windows), static_cast<long long>(a.n_ctx),
               static_cast<long long>(a.stride == 0 ? a.n_ctx : a.stride));

  const pg::PerplexityResult r = pg::perplexity(*lm, ids, opt, [&](const pg::PerplexityProgress& p) {
    std::fprintf(stderr, "[%lld/%lld] perplexity %.4f, %.1f tokens/s\n", static_cast<long long>(p.window),
                 static_cast<long long>(p.n_windows), p.perplexity(), p.tokens_per_second());
    std::fflush(stderr);
  });
  const pg::PerplexityProgress& t = r.total;
  const std::uint64_t peak = pg::peak_memory_bytes();
  const std::string date = utc_now();

  nlohmann::json j;
  j["model"] = model.string();
  j["architecture"] = info.architecture;
  j["format"] = std::string(pm::to_string(info.format));
  j["weight_formats"] = info.weight_formats;
  j["precision"] = std::string(pm::to_string(a.precision));
  j["activation_quantization"] = std::string(pm::to_string(a.act_quant));
  j["cache_type_k"] = std::string(precis::to_string(info.kv_format.k));
  j["cache_type_v"] = std::string(precis::to_string(info.kv_format.v));
  j["kv_bytes_per_token"] = info.kv_bytes_per_token;
  j["device"] = a.device;
  j["threads"] = a.threads;
  j["text_file"] = a.file;
  j["text_tokens"] = ids.size();
  j["n_ctx"] = a.n_ctx;
  j["stride"] = a.stride == 0 ? a.n_ctx : a.stride;
  j["windows"] = t.window;
  j["tokens_evaluated"] = t.tokens_evaluated;
  j["tokens_scored"] = t.tokens_scored;
  j["perplexity"] = t.perplexity();
  j["running_perplexity"] = r.running;
  j["seconds"] = t.seconds;
  j["tokens_per_second"] = t.tokens_per_second();
  j["load_seconds"] = load_seconds;
  j["peak_memory_bytes"] = peak;
  j["date"] = date;
  j["method"] = "llama-perplexity: windows of n_ctx tokens every stride tokens, each from an empty cache; "
                "positions n_ctx/2 .. n_ctx-2 scored";

  std::ostringstream md;
  char ppl[32], tps[32], mem[32];
  std::snprintf(ppl, sizeof ppl, "%.4f", t.perplexity());
  std::snprintf(tps, sizeof tps, "%.1f", t.tokens_per_second());
  std::snprintf(mem, sizeof mem, "%.1f MiB", static_cast<double>(peak) / (1024.0 * 1024.0));
  md << "# precis-eval report\n\n"
     << "| | |\n|---|---|\n"
     << "| model | `" << model.string() << "` (" << info.architecture << ") |\n"
     << "| format | " << pm::to_string(info.format) << " |\n"
     << "| precision | " << pm::to_string(a.precision) << " activations; KV cache " << info.kv_format.describe()
     << " (" << info.kv_bytes_per_token << " bytes per token); activation quantization "
     << pm::to_string(a.act_quant) << " |\n"
     << "| text | `" << a.file << "` (" << ids.size() << " tokens) |\n"
     << "| window | " << a.n_ctx << " tokens, stride " << (a.stride == 0 ? a.n_ctx : a.stride) << ", " << t.window
     << " window(s) |\n"
     << "| tokens evaluated | " << t.tokens_evaluated << " (" << t.tokens_scored << " scored) |\n"
     << "| **perplexity** | **" << ppl << "** |\n"
     << "| speed | " << tps << " tokens/s |\n"
     << "| peak memory | " << mem << " |\n"
     << "| date | " << date << " |\n\n"
     << "Method: llama-perplexity's — each window is evaluated from an empty cache and only its second half is "
        "scored.\n\nRunning perplexity after each window:\n\n| window | perplexity |\n|---|---|\n";
  for (std::size_t i = 0; i < r.running.size(); ++i) {
    char v[32];
    std::snprintf(v, sizeof v, "%.4f", r.running[i]);
    md << "| " << i + 1 << " | " << v << " |\n";
  }
  write_file(a.output + ".json", j.dump(2) + "\n");
  write_file(a.output + ".md", md.str());

  std::fprintf(stderr, "\nperplexity %s over %zu scored tokens (%zu evaluated), %s tokens/s, peak memory %s\n",
               ppl, t.tokens_scored, t.tokens_evaluated, tps, mem);
  std::fprintf(stderr, "wrote %s.json and %s.md\n", a.output.c_str(), a.output.c_str());
  std::printf("%s\n", ppl);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return pg::run_tool("precis-eval", [&] {
    return run(parse_args(argc, argv));
  });
}
