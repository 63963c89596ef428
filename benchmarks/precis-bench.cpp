// precis-bench — end-to-end model speed in llama-bench's terms, with the rooflines beside it.
//
//   precis-bench -m model.gguf                          # pp512 and tg128, 5 repetitions
//   precis-bench -m model.gguf -p 128 -n 64 -t 2 -r 3   # llama-bench -p 128 -n 64 -t 2 -r 3
//   precis-bench -m model.gguf -n 64 -d 0,4096          # generation after 0 and 4096 tokens of context
//   precis-bench -m model.gguf -n 32 -b 1,4 -o json     # 1 and 4 sequences decoding together, JSON
//
// Tests, as llama-bench runs them: `ppN` prefills N tokens (one forward pass, logits of the last
// position only) into an empty sequence, or after `-d D` tokens of context; `tgN` decodes N tokens
// one step at a time (each step one decode_batch over `-b B` sequences) after D tokens of context.
// Tokens are random ids (seeded, the same in every run), as llama-bench's are. Each test runs
// once untimed (warm-up: page faults of the mapping, the CPU backend's first-touch buffers), then
// `-r R` timed repetitions; the table shows mean ± standard deviation of tokens/s over them.
//
// The rooflines. Weight bytes read per decoded token: every tensor the model streams per step
// (for an MoE layer: the router and top-k of E experts, k/E of the expert stacks; the embedding
// table only when it is also the output projection, tied — otherwise one row) from the file's
// tensor list, plus the KV cache a step reads (depth + half the generated tokens, per sequence,
// at the loaded cache's bytes per position). For tg, bytes/step × steps/s against this machine's
// streaming read bandwidth (benchmarks/roofline.hpp, measured on the same threads in a child
// process, so that its 1 GiB buffer stays out of the peak memory) is the fraction of the memory
// roofline reached; for pp, 2 × active parameters × tokens/s against the measured f32 FMA peak is
// the fraction of the compute roofline (attention's FLOPs not counted). With -b B > 1 an MoE step
// reads the union of the B tokens' experts, so the tg figure counts the b = 1 weight bytes and is
// labelled as such. Peak resident memory (getrusage) is printed at the end: a memory-mapped
// model's pages count once they are touched.
//
// Output: a Markdown table on stdout (default) or one JSON object (-o json); a progress line per
// run on stderr. Exit status: 0 success, 1 the model or a run failed, 2 bad usage.
#include <algorithm>    // std::max, std::min
#include <chrono>       // std::chrono::steady_clock
#include <cmath>        // std::sqrt
#include <cstdint>      // std::int64_t, std::uint64_t
#include <cstdio>       // std::fprintf, std::snprintf
#include <cstdlib>      // std::exit
#include <exception>    // std::exception
#include <filesystem>   // std::filesystem
#include <iostream>     // std::cout
#include <optional>     // std::optional
#include <random>       // std::mt19937_64
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::pair
#include <vector>       // std::vector

#include <nlohmann/json.hpp>            // nlohmann::json
#include <oneapi/tbb/info.h>            // tbb::info::default_concurrency
#include <oneapi/tbb/task_arena.h>      // tbb::task_arena
#include <sys/wait.h>                   // waitpid
#include <unistd.h>                     // fork, pipe, read, write, _exit

#include <precis/core/error.hpp>              // precis::error
#include <precis/generate/cli.hpp>            // usage_error, parse_in
#include <precis/generate/default_model.hpp>  // model_path_or_default
#include <precis/generate/loading.hpp>        // load_with_progress, peak_memory_bytes
#include <precis/models/causal_lm.hpp>        // CausalLM, precision
#include <precis/models/weight_source.hpp>    // WeightSource (the tensor list)

#include "roofline.hpp"  // read_bandwidth, fma_peak

namespace {

namespace fs = std::filesystem;
namespace pg = precis::generate;
namespace pm = precis::models;
using precis::index_t;
using Clock = std::chrono::steady_clock;

constexpr const char* help_text = R"(usage: precis-bench [options]

Measures prompt processing (pp) and generation (tg) speed of a model, as llama-bench does, with the
memory and compute rooflines of this machine beside each figure.

  -m, --model PATH        GGUF file or HF directory (default: the precis default model)
  -p, --n-prompt N[,N..]  prompt lengths to test (default 512; 0 = no pp test)
  -n, --n-gen N[,N..]     generated tokens to test (default 128; 0 = no tg test)
  -d, --n-depth N[,N..]   tokens of context before each test (default 0)
  -b, --batch N[,N..]     sequences decoding together in tg tests (default 1)
  -t, --threads N         CPU threads (default: all cores)
  -r, --repetitions N     timed runs per test (default 5), after one untimed warm-up run
      --precision P       f32 | bf16 (default f32)
      --act-quant Q       none | q8 (default none; q8 = llama.cpp's activation rounding)
      -ctk, --cache-type-k T  f32 | f16 | bf16 | q8_0 | q4_0: how the KV cache stores keys (default: the
                              --precision dtype; q8_0/q4_0 are ggml blocks of 32, CPU only)
      -ctv, --cache-type-v T  the same for values
      --device D          cpu | cuda (default cpu)
      --seed S            seed of the random token ids (default 42)
      --preread P         auto | on | off: read the weight files before mapping them (default on,
                          as llama.cpp's mmap populates; auto: when they fit in half the free memory)
  -o, --output F          md | json (default md)
  -h, --help              this text
)";

struct Args {
  std::optional<std::string> model;
  std::vector<int> n_prompt{512}, n_gen{128}, depth{0}, batch{1};
  int threads = 0, reps = 5;
  pm::precision precision = pm::precision::f32;
  pm::activation_quantization act_quant = pm::activation_quantization::none;
  precis::KvCacheTypes cache_types;  // -ctk / -ctv (unset: the compute dtype)
  std::string device = "cpu", output = "md";
  std::uint64_t seed = 42;
  pg::Preread preread = pg::Preread::always;
};

using pg::usage_error;

std::vector<int> parse_list(std::string_view flag, std::string_view v, int lo, int hi) {
  std::vector<int> out;
  std::size_t start = 0;
  while (start <= v.size()) {
    const std::size_t comma = v.find(',', start);
    const std::string_view item = v.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    out.push_back(pg::parse_in<int>(flag, item, lo, hi, std::to_string(lo) + ".." + std::to_string(hi)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (out.size() > 64) throw usage_error{std::string(flag) + " lists more than 64 values"};
  return out;
}

Args parse_args(int argc, char** argv) {
  Args a;
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
    } else if (opt == "-p" || opt == "--n-prompt") {
      a.n_prompt = parse_list(opt, value(), 0, 1 << 20);
    } else if (opt == "-n" || opt == "--n-gen") {
      a.n_gen = parse_list(opt, value(), 0, 1 << 20);
    } else if (opt == "-d" || opt == "--n-depth") {
      a.depth = parse_list(opt, value(), 0, 1 << 24);
    } else if (opt == "-b" || opt == "--batch") {
      a.batch = parse_list(opt, value(), 1, 256);
    } else if (opt == "-t" || opt == "--threads") {
      a.threads = pg::parse_in<int>(opt, value(), 1, 4096, "1..4096");
    } else if (opt == "-r" || opt == "--repetitions") {
      a.reps = pg::parse_in<int>(opt, value(), 1, 1000, "1..1000");
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
    } else if (opt == "--seed") {
      a.seed = pg::parse_number<std::uint64_t>(opt, value());
    } else if (opt == "--preread") {
      const std::string_view v = value();
      if (v == "auto") a.preread = pg::Preread::when_it_fits;
      else if (v == "on") a.preread = pg::Preread::always;
      else if (v == "off") a.preread = pg::Preread::never;
      else throw usage_error{"--preread must be auto, on or off, got '" + std::string(v) + "'"};
    } else if (opt == "-o" || opt == "--output") {
      a.output = std::string(value());
      if (a.output != "md" && a.output != "json") throw usage_error{"-o must be md or json, got '" + a.output + "'"};
    } else {
      throw usage_error{"unknown option '" + std::string(opt) + "' (see --help)"};
    }
  }
  return a;
}

/// What one decoded token streams and computes, from the checkpoint's tensor list.
struct Traffic {
  double bytes_per_token = 0;    // weight bytes read per decode step (b = 1)
  double active_params = 0;      // parameters one token multiplies with (embedding row excluded)
  double file_bytes = 0, params = 0;
};

[[nodiscard]] bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// Expert tensors (GGUF `ffn_*_exps`, HF `.experts.`) are read k/E per token; the embedding
/// table is a gather of one row unless the output projection is tied to it.
Traffic traffic(const fs::path& model, const pm::ModelInfo& info) {
  Traffic t;
  const double expert_share =
      info.n_experts > 0 ? static_cast<double>(info.n_experts_per_token) / static_cast<double>(info.n_experts) : 1.0;
  const pm::WeightSource src = pm::WeightSource::open(model);
  const std::vector<std::string> names = src.names();
  bool has_output = false;
  for (const std::string& n : names) has_output = has_output || n == "output.weight" || ends_with(n, "lm_head.weight");
  for (const std::string& n : names) {
    const precis::io::AnyTensor x = src.peek(n);
    double elems = 1;
    for (const index_t d : x.shape()) elems *= static_cast<double>(d);
    const auto bytes = static_cast<double>(x.bytes().size());
    t.file_bytes += bytes;
    t.params += elems;
    const bool expert = n.find("_exps.") != std::string::npos || n.find(".experts.") != std::string::npos;
    const bool embed = n == "token_embd.weight" || ends_with(n, "embed_tokens.weight");
    if (embed && has_output) {  // a gather of one row
      t.bytes_per_token += bytes / std::max(1.0, static_cast<double>(x.shape().front()));
      continue;
    }
    const double share = expert ? expert_share : 1.0;
    t.bytes_per_token += bytes * share;
    t.active_params += elems * share;
  }
  return t;
}

struct Test {
  std::string name;  // "pp512", "tg128"
  bool prompt = false;
  int n = 0, depth = 0, batch = 1;
  std::vector<double> tps;  // tokens/s of each timed run
  [[nodiscard]] double mean() const {
    double s = 0;
    for (double v : tps) s += v;
    return tps.empty() ? 0 : s / static_cast<double>(tps.size());
  }
  [[nodiscard]] double stddev() const {
    if (tps.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double v : tps) s += (v - m) * (v - m);
    return std::sqrt(s / static_cast<double>(tps.size() - 1));
  }
};

/// `n` random token ids in [0, vocab).
std::vector<std::int64_t> random_tokens(std::mt19937_64& rng, int n, index_t vocab) {
  std::uniform_int_distribution<std::int64_t> pick(0, vocab - 1);
  std::vector<std::int64_t> t(static_cast<std::size_t>(n));
  for (auto& v : t) v = pick(rng);
  return t;
}

/// One run of `t`: the context, then the timed part. Returns tokens/s of the timed part.
double run_once(pm::CausalLM& lm, const Test& t, std::mt19937_64& rng, index_t vocab) {
  std::vector<pm::SequenceId> seqs;
  for (int b = 0; b < (t.prompt ? 1 : t.batch); ++b) seqs.push_back(lm.new_sequence());
  for (const pm::SequenceId s : seqs)
    if (t.depth > 0) (void)lm.forward_last(s, random_tokens(rng, t.depth, vocab));
  double seconds = 0;
  if (t.prompt) {
    const std::vector<std::int64_t> toks = random_tokens(rng, t.n, vocab);
    const auto t0 = Clock::now();
    (void)lm.forward_last(seqs[0], toks);
    seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  } else {
    std::vector<std::vector<std::int64_t>> steps;
    for (int i = 0; i < t.n; ++i) steps.push_back(random_tokens(rng, t.batch, vocab));
    const auto t0 = Clock::now();
    for (int i = 0; i < t.n; ++i) (void)lm.decode_batch(seqs, steps[static_cast<std::size_t>(i)]);
    seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  for (const pm::SequenceId s : seqs) lm.release(s);
  const double tokens = t.prompt ? t.n : static_cast<double>(t.n) * t.batch;
  return tokens / std::max(seconds, 1e-9);
}

std::string fixed(double v, int digits) {
  char s[64];
  std::snprintf(s, sizeof s, "%.*f", digits, v);
  return s;
}

/// Read bandwidth and FMA peak (benchmarks/roofline.hpp) on `threads` threads, measured in a
/// forked child so that its buffer stays out of this process's peak resident memory. Zeros (and
/// no roofline column) if the child fails.
std::pair<double, double> measure_ceilings(int threads) {
  int fd[2];
  if (pipe(fd) != 0) return {0, 0};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    double v[2] = {0, 0};
    tbb::task_arena arena(threads);
    arena.execute([&] {
      v[0] = precis::bench::read_bandwidth();
      v[1] = precis::bench::fma_peak();
    });
    const ssize_t n = write(fd[1], v, sizeof v);
    _exit(n == static_cast<ssize_t>(sizeof v) ? 0 : 1);
  }
  close(fd[1]);
  double v[2] = {0, 0};
  if (pid < 0 || read(fd[0], v, sizeof v) != static_cast<ssize_t>(sizeof v)) v[0] = v[1] = 0;
  close(fd[0]);
  if (pid > 0) waitpid(pid, nullptr, 0);
  return {v[0], v[1]};
}

int run(const Args& a) {
  const fs::path model = pg::model_path_or_default(a.model);
  std::vector<Test> tests;
  for (const int d : a.depth) {
    for (const int p : a.n_prompt)
      if (p > 0) tests.push_back({"pp" + std::to_string(p), true, p, d, 1, {}});
    for (const int n : a.n_gen)
      if (n > 0)
        for (const int b : a.batch) tests.push_back({"tg" + std::to_string(n), false, n, d, b, {}});
  }
  if (tests.empty()) throw usage_error{"nothing to run: every -p and -n value is 0"};
  int need = 1, seqs = 1;
  for (const Test& t : tests) {
    need = std::max(need, t.depth + t.n);
    if (!t.prompt) seqs = std::max(seqs, t.batch);
  }
  const index_t declared = pg::declared_context_length(model);
  if (need > declared)
    precis::fail<precis::config_error>("a test needs ", need, " positions (depth + tokens), the model's context is ",
                                       declared, " ('", model.string(), "')");

  // The ceilings, on the threads the model's kernels will use, measured in a child process before
  // the model is loaded: the 1 GiB read buffer must not count in this process's peak memory.
  const int threads = a.threads > 0 ? a.threads : tbb::info::default_concurrency();
  double read_bw = 0, fma = 0;
  if (a.device == "cpu") {
    std::fprintf(stderr, "precis-bench: measuring the read bandwidth and FMA peak on %d thread(s)\n", threads);
    const auto [bw, peak] = measure_ceilings(threads);
    read_bw = bw;
    fma = peak;
  }

  pm::LoadOptions lo;
  lo.max_context = need;
  lo.max_sequences = seqs;
  lo.n_threads = a.threads;
  lo.backend = a.device == "cuda" ? pm::backend_kind::cuda : pm::backend_kind::cpu;
  lo.quantize_activations = a.act_quant;
  lo.cache_types = a.cache_types;
  double load_seconds = 0;
  const auto progress = pg::stderr_load_progress(model.filename().string());
  const auto lm = pg::load_with_progress(model, a.precision, lo, [&](const pg::LoadProgress& p) {
    progress(p);
    if (p.stage == pg::LoadProgress::Stage::done) load_seconds = p.seconds;
  }, a.preread);
  const pm::ModelInfo& info = lm->info();
  const std::uint64_t peak_after_load = pg::peak_memory_bytes();
  const Traffic tr = traffic(model, info);

  std::mt19937_64 rng(a.seed);
  for (Test& t : tests) {
    for (int r = 0; r <= a.reps; ++r) {
      const double tps = run_once(*lm, t, rng, info.vocab_size);
      if (r > 0) t.tps.push_back(tps);
      std::fprintf(stderr, "precis-bench: %s%s%s %s %d/%d: %.2f tokens/s\n", t.name.c_str(),
                   t.depth ? (" @ d" + std::to_string(t.depth)).c_str() : "",
                   t.batch > 1 ? (" b" + std::to_string(t.batch)).c_str() : "", r == 0 ? "warm-up" : "run", r, a.reps,
                   tps);
    }
  }
  const std::uint64_t peak = pg::peak_memory_bytes();

  // KV-cache bytes one position holds (all layers, K and V): the loaded cache over its positions.
  // A decode step at context c reads about c of them per sequence (sliding-window layers fewer:
  // an upper bound there).
  const double kv_per_position =
      info.context_length > 0 && info.max_sequences > 0
          ? static_cast<double>(info.kv_cache_bytes) / static_cast<double>(info.context_length * info.max_sequences)
          : 0.0;
  const auto step_bytes = [&](const Test& t) {  // weights + the KV cache read by one decode step
    return tr.bytes_per_token + kv_per_position * (t.depth + t.n / 2.0) * t.batch;
  };
  const auto memory_fraction = [&](const Test& t) {  // tg: bytes per step × steps/s ÷ read bandwidth
    const double steps = t.mean() / t.batch;
    return read_bw > 0 ? step_bytes(t) * steps / read_bw : 0.0;
  };
  const auto compute_fraction = [&](const Test& t) {  // pp: 2 × active params × tokens/s ÷ FMA peak
    return fma > 0 ? 2.0 * tr.active_params * t.mean() / fma : 0.0;
  };
  const std::string backend = a.device == "cuda" ? "CUDA" : "CPU";
  if (a.output == "json") {
    nlohmann::json j;
    j["model"] = model.string();
    j["architecture"] = info.architecture;
    j["file_bytes"] = tr.file_bytes;
    j["parameters"] = tr.params;
    j["active_parameters"] = tr.active_params;
    j["weight_bytes_per_token"] = tr.bytes_per_token;
    j["kv_bytes_per_position"] = kv_per_position;
    j["precision"] = std::string(pm::to_string(a.precision));
    j["activation_quantization"] = std::string(pm::to_string(a.act_quant));
    j["cache_type_k"] = std::string(precis::to_string(info.kv_format.k));
    j["cache_type_v"] = std::string(precis::to_string(info.kv_format.v));
    j["kv_bytes_per_token"] = info.kv_bytes_per_token;
    j["backend"] = backend;
    j["threads"] = threads;
    j["load_seconds"] = load_seconds;
    j["preread"] = a.preread == pg::Preread::always ? "on" : a.preread == pg::Preread::never ? "off" : "auto";
    j["read_bandwidth_bytes_per_second"] = read_bw;
    j["fma_peak_flops"] = fma;
    j["peak_memory_bytes_after_load"] = peak_after_load;
    j["peak_memory_bytes"] = peak;
    j["kv_cache_bytes"] = info.kv_cache_bytes;
    j["tests"] = nlohmann::json::array();
    for (const Test& t : tests)
      j["tests"].push_back({{"test", t.name},
                            {"n", t.n},
                            {"depth", t.depth},
                            {"batch", t.batch},
                            {"tokens_per_second", t.tps},
                            {"mean", t.mean()},
                            {"stddev", t.stddev()},
                            {"roofline", t.prompt ? "compute" : "memory"},
                            {"bytes_per_step", t.prompt ? 0.0 : step_bytes(t)},
                            {"roofline_fraction", t.prompt ? compute_fraction(t) : memory_fraction(t)}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "| model | size | params | backend | threads | test | t/s | roofline |\n"
            << "| --- | ---: | ---: | --- | ---: | --- | ---: | ---: |\n";
  for (const Test& t : tests) {
    std::string test = t.name;
    if (t.depth > 0) test += " @ d" + std::to_string(t.depth);
    if (t.batch > 1) test += " ×" + std::to_string(t.batch) + " seq";
    std::string roof = "—";
    if (a.device == "cpu")
      roof = t.prompt ? fixed(100 * compute_fraction(t), 1) + " % FMA"
                      : fixed(100 * memory_fraction(t), 1) + " % BW" + (t.batch > 1 ? " (b=1 weights)" : "");
    std::cout << "| " << info.architecture << " | " << fixed(tr.file_bytes / (1024.0 * 1024.0 * 1024.0), 2) << " GiB | "
              << fixed(tr.params / 1e9, 2) << " B | " << backend << " | " << threads << " | " << test << " | "
              << fixed(t.mean(), 2) << " ± " << fixed(t.stddev(), 2) << " | " << roof << " |\n";
  }
  std::cout << "\nweights read per token " << fixed(tr.bytes_per_token / 1e6, 1) << " MB (" << fixed(tr.active_params / 1e6, 1)
            << " M active parameters); read bandwidth " << fixed(read_bw / 1e9, 1) << " GB/s, FMA peak "
            << fixed(fma / 1e9, 1) << " GFLOP/s; load " << fixed(load_seconds, 2) << " s; peak memory "
            << fixed(static_cast<double>(peak) / (1024.0 * 1024.0), 1) << " MiB (after load "
            << fixed(static_cast<double>(peak_after_load) / (1024.0 * 1024.0), 1) << " MiB; KV cache "
            << fixed(static_cast<double>(info.kv_cache_bytes) / (1024.0 * 1024.0), 1) << " MiB, "
            << info.kv_format.describe() << ", " << info.kv_bytes_per_token << " bytes per context token)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return pg::run_tool("precis-bench", [&] {
    return run(parse_args(argc, argv));
  });
}
