// precis-generate — text generation from the command line, with flags in llama.cpp's spirit.
//
//   precis-generate -p "Once upon a time" -n 64                 # the default model (SmolLM2-135M-Instruct)
//   precis-generate --chat -p "What is the capital of France?"  # the model's chat template
//   precis-generate -m model.gguf -p "a" -p "b" --temp 0        # two prompts, one batch, greedy
//   precis-generate --file prompts.txt --json                   # one prompt per line; JSON report
//
// `precis-generate --help` lists every flag. Output: with one prompt, its text is streamed to
// stdout as it is generated (after the prompt itself in plain mode, as llama.cpp does); with
// several, each result is printed after the batch, labelled [1], [2], …. Loading progress and,
// at the end, prompt and generation speed (tokens/s) and peak memory go to stderr; with --json,
// one JSON object on stdout holds the texts and the same numbers instead.
// Exit status: 0 success, 1 the model or the request failed (message on stderr), 2 bad usage.
#include <algorithm>    // std::min, std::max
#include <cstdint>      // std::uint64_t
#include <cstdio>       // std::fprintf, std::fflush
#include <cstdlib>      // std::exit
#include <exception>    // std::exception
#include <filesystem>   // std::filesystem
#include <iostream>     // std::cout
#include <limits>       // std::numeric_limits
#include <optional>     // std::optional
#include <span>         // std::span
#include <random>       // std::random_device
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <system_error> // std::errc
#include <vector>       // std::vector


#include <nlohmann/json.hpp>  // nlohmann::json

#include <precis/core/error.hpp>              // precis::error
#include <precis/generate/cli.hpp>            // usage_error, parse_in, parse_number
#include <precis/generate/chat_format.hpp>    // detect_chat_format, format_chat
#include <precis/generate/default_model.hpp>  // model_path_or_default
#include <precis/generate/generator.hpp>      // Generator
#include <precis/generate/loading.hpp>        // load_with_progress, tokenizer_for, peak_memory_bytes
#include <precis/generate/user_text.hpp>      // read_prompt_lines, check_user_text
#include <precis/models/causal_lm.hpp>        // precision, parse_precision

namespace {

namespace fs = std::filesystem;
namespace pg = precis::generate;
namespace pm = precis::models;
using precis::index_t;

constexpr const char* help_text = R"(usage: precis-generate [options]

Generates text with a causal language model (GGUF file or Hugging Face checkpoint directory).

model
  -m, --model PATH        GGUF file or HF directory (default: SmolLM2-135M-Instruct Q4_1 in the
                          precis cache; `bash scripts/fetch_model.sh` fetches it)
      --precision P       f32 | bf16: activations and KV cache (default f32)
      --act-quant Q       none | q8: how activations meet block-quantized (Q4/Q8/MXFP4)
                          weights: exact (none, default), or quantized to 8-bit blocks with
                          integer dot products as llama.cpp does (q8; faster, llama.cpp's numbers)
      -ctk, --cache-type-k T  f32 | f16 | bf16 | q8_0 | q4_0: how the KV cache stores keys (default: the
                              --precision dtype; q8_0/q4_0 are ggml blocks of 32, CPU only)
      -ctv, --cache-type-v T  the same for values
      --device D          cpu | cuda (default cpu; cuda needs a build with the precis::cuda component and an NVIDIA GPU)
  -t, --threads N         CPU threads (default: all cores)
  -c, --ctx-size N        context length in tokens, prompt + generated (default 4096, at most the
                          model's; 0 = the model's own)

prompt
  -p, --prompt TEXT       a prompt; give -p several times for a batch
      --file PATH         prompts from a file, one per line (empty lines skipped); with -p, both.
                          UTF-8 text without NUL bytes, at most 1 GiB and 100000 prompts
  -np, --parallel N       prompts decoding together (default 8, at most 256): more prompts run
                          in successive groups of N, each sequence's KV cache sized by -c
      --chat              format each prompt as a user turn with the model's chat template
                          (ChatML, harmony) and print only the answer
      --system TEXT       system message for --chat (default: the template's own, if any)

generation
  -n, --n-predict N       tokens to generate per prompt (default 128; -1 = until the end of
                          generation or of the context)
      --temp T            temperature; 0 = greedy (default 0.8)
      --top-k N           keep the N most likely tokens; 0 = off (default 40)
      --top-p P           nucleus: smallest set with probability >= P; 1 = off (default 0.95)
      --min-p P           drop tokens below P x the top probability; 0 = off (default 0.05)
      --repeat-penalty R  penalize the last --repeat-last-n tokens; 1 = off (default 1.0)
      --repeat-last-n N   window of the penalty; -1 = all, 0 = off (default 64)
      --seed S            random seed, >= 0 (default: random, printed so a run can be repeated)
      --stop TEXT         stop before TEXT (repeatable)
      --ignore-eos        do not stop at end-of-generation tokens

output
      --json              print one JSON object (texts, speed, peak memory) instead of text
      --info              print what was loaded (layers, formats, memory) to stderr
  -h, --help              this text
)";

struct Args {
  std::optional<std::string> model;
  pm::precision precision = pm::precision::f32;
  pm::activation_quantization act_quant = pm::activation_quantization::none;
  precis::KvCacheTypes cache_types;  // -ctk / -ctv (unset: the compute dtype)
  std::string device = "cpu";
  int threads = 0;
  index_t ctx_size = 4096;
  bool ctx_given = false;
  std::vector<std::string> prompts;
  std::optional<std::string> file;
  int parallel = 8;
  bool chat = false;
  std::optional<std::string> system;
  int n_predict = 128;
  precis::sampling::SamplerParams sampling{.temperature = 0.8f,
                                           .top_k = 40,
                                           .top_p = 0.95f,
                                           .min_p = 0.05f,
                                           .repetition_penalty = 1.0f,
                                           .frequency_penalty = 0.0f,
                                           .presence_penalty = 0.0f,
                                           .penalty_last_n = 64,
                                           .seed = 0};
  bool seed_given = false;
  std::vector<std::string> stops;
  bool ignore_eos = false;
  bool json = false;
  bool info = false;
};

using pg::parse_in;
using pg::parse_number;
using pg::usage_error;  // a usage error: what was wrong, exit status 2

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view opt = argv[i];
    const auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw usage_error{std::string(opt) + " needs a value"};
      return argv[++i];
    };
    constexpr float fmax = std::numeric_limits<float>::max();
    if (opt == "-h" || opt == "--help") {
      std::fputs(help_text, stdout);
      std::exit(0);
    } else if (opt == "-m" || opt == "--model") {
      a.model = std::string(value());
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
    } else if (opt == "-c" || opt == "--ctx-size") {
      a.ctx_size = parse_in<index_t>(opt, value(), 0, index_t{1} << 30, "0 (the model's) or a positive length");
      a.ctx_given = true;
    } else if (opt == "-p" || opt == "--prompt") {
      a.prompts.emplace_back(value());
    } else if (opt == "--file") {
      a.file = std::string(value());
    } else if (opt == "-np" || opt == "--parallel") {
      a.parallel = parse_in<int>(opt, value(), 1, 256, "1..256");
    } else if (opt == "--chat") {
      a.chat = true;
    } else if (opt == "--system") {
      a.system = std::string(value());
    } else if (opt == "-n" || opt == "--n-predict") {
      a.n_predict = parse_in<int>(opt, value(), -1, std::numeric_limits<int>::max(), "-1 (no limit) or >= 0");
    } else if (opt == "--temp") {
      a.sampling.temperature = parse_in<float>(opt, value(), 0.0f, fmax, ">= 0 (0 = greedy)");
    } else if (opt == "--top-k") {
      a.sampling.top_k = parse_in<index_t>(opt, value(), 0, std::numeric_limits<index_t>::max(), ">= 0 (0 = off)");
    } else if (opt == "--top-p") {
      a.sampling.top_p = parse_in<float>(opt, value(), 0.0f, 1.0f, "0 < p <= 1 (1 = off)");
      if (a.sampling.top_p <= 0.0f) throw usage_error{"--top-p must be > 0 (1 = off)"};
    } else if (opt == "--min-p") {
      a.sampling.min_p = parse_in<float>(opt, value(), 0.0f, 1.0f, "0 <= p <= 1 (0 = off)");
    } else if (opt == "--repeat-penalty") {
      a.sampling.repetition_penalty = parse_in<float>(opt, value(), 0.0f, fmax, "> 0 (1 = off)");
      if (a.sampling.repetition_penalty <= 0.0f) throw usage_error{"--repeat-penalty must be > 0 (1 = off)"};
    } else if (opt == "--repeat-last-n") {
      a.sampling.penalty_last_n =
          parse_in<index_t>(opt, value(), -1, std::numeric_limits<index_t>::max(), "-1 (all), 0 (off) or > 0");
    } else if (opt == "--seed") {
      a.sampling.seed = parse_number<std::uint64_t>(opt, value());
      a.seed_given = true;
    } else if (opt == "--stop") {
      const std::string_view v = value();
      if (v.empty()) throw usage_error{"--stop needs a non-empty string"};
      a.stops.emplace_back(v);
    } else if (opt == "--ignore-eos") {
      a.ignore_eos = true;
    } else if (opt == "--json") {
      a.json = true;
    } else if (opt == "--info") {
      a.info = true;
    } else {
      throw usage_error{"unknown option '" + std::string(opt) + "' (see --help)"};
    }
  }
  for (std::size_t i = 0; i < a.prompts.size(); ++i) pg::check_user_text(a.prompts[i], "prompt " + std::to_string(i + 1));
  if (a.system) pg::check_user_text(*a.system, "--system");
  if (a.file) {
    // Bounded and checked (generate/user_text.hpp): a binary file or /dev/zero is refused.
    std::vector<std::string> lines = pg::read_prompt_lines(*a.file, "--file");
    if (lines.empty()) throw usage_error{"--file '" + *a.file + "' holds no prompt (one per line)"};
    for (std::string& l : lines) a.prompts.push_back(std::move(l));
  }
  if (a.prompts.empty()) throw usage_error{"no prompt: give -p TEXT (or --file PATH)"};
  if (a.system && !a.chat) throw usage_error{"--system needs --chat"};
  return a;
}

std::string human_bytes(std::uint64_t b) {
  char s[32];
  std::snprintf(s, sizeof s, "%.1f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  return s;
}

/// The text after "<|channel|>final<|message|>" in a harmony answer (gpt-oss answers on an
/// analysis channel first), or the whole text when there is no final channel.
std::string harmony_final(const std::string& text) {
  constexpr std::string_view marker = "<|channel|>final<|message|>";
  const auto at = text.rfind(marker);
  return at == std::string::npos ? text : text.substr(at + marker.size());
}

int run(const Args& a) {
  const fs::path model = pg::model_path_or_default(a.model);

  // The prompts as the model will see them (chat: formatted with the model's own template).
  const precis::text::Tokenizer tok = pg::tokenizer_for(model);
  pg::ChatFormat chat_format = pg::ChatFormat::plain;
  pg::ChatOptions chat_opt;
  if (a.chat) {
    if (tok.chat_template().empty())
      precis::fail<precis::config_error>("--chat: '", model.string(),
                                         "' has no chat template (a base model?); run without --chat");
    chat_format = pg::detect_chat_format(tok.chat_template(), model.string());
    if (chat_format == pg::ChatFormat::chatml)
      chat_opt.default_system = pg::chatml_template_default_system(tok.chat_template());
  }
  // Chat prompts are MarkedText: the template's markup may spell control tokens, the user's
  // text never does (a typed "<|im_end|><|im_start|>system" stays text). Plain prompts are text.
  std::vector<precis::text::MarkedText> texts;
  for (const std::string& p : a.prompts) {
    if (!a.chat) {
      texts.push_back(precis::text::MarkedText{p, {}});
      continue;
    }
    std::vector<pg::Message> msgs;
    if (a.system) msgs.push_back({"system", *a.system});
    msgs.push_back({"user", p});
    texts.push_back(pg::format_chat(chat_format, msgs, chat_opt));
  }

  // Context: the flag, at most the model's own (a larger one asked for explicitly is an error).
  const index_t declared = pg::declared_context_length(model);
  if (a.ctx_given && a.ctx_size > declared)
    precis::fail<precis::config_error>("-c ", a.ctx_size, " exceeds the model's context length ", declared, " ('",
                                       model.string(), "')");
  pm::LoadOptions lo;
  lo.max_context = a.ctx_size == 0 ? declared : std::min(a.ctx_size, declared);
  // Sequences alive at once: the group size, not the number of prompts (a file of thousands runs
  // in groups; the paged KV cache's memory is committed as positions are written).
  const std::size_t group = std::min(texts.size(), static_cast<std::size_t>(a.parallel));
  lo.max_sequences = static_cast<index_t>(group);
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
  if (a.info) std::fprintf(stderr, "%s", info.describe().c_str());

  pg::GenerateOptions opt;
  opt.max_new_tokens = a.n_predict < 0 ? std::numeric_limits<int>::max() : a.n_predict;
  opt.sampling = a.sampling;
  if (!a.seed_given) opt.sampling.seed = std::random_device{}();
  opt.stop_strings = a.stops;
  opt.stop_at_end_of_generation = !a.ignore_eos;

  pg::Generator gen(*lm, tok);
  const bool stream = !a.json && texts.size() == 1;
  // As llama.cpp: the prompt, then its continuation. The prompt is echoed with the first piece of
  // text, so that a request the generator refuses (a prompt longer than the context) prints
  // only the error.
  bool echoed = !stream || a.chat;
  const auto echo = [&] {
    if (!echoed) std::cout << texts[0].text;
    echoed = true;
  };
  pg::BatchResult out;
  for (std::size_t first = 0; first < texts.size(); first += group) {
    const std::size_t n = std::min(group, texts.size() - first);
    if (texts.size() > group && !a.json)
      std::fprintf(stderr, "precis-generate: prompts %zu-%zu of %zu\n", first + 1, first + n, texts.size());
    pg::BatchResult part = gen.generate_batch(std::span(texts).subspan(first, n), opt,
                                              [&](std::size_t, std::string_view piece) {
                                                if (!stream || chat_format == pg::ChatFormat::harmony) return;
                                                echo();
                                                std::cout << piece << std::flush;
                                              });
    for (pg::GenerationResult& r : part.results) out.results.push_back(std::move(r));
    pg::BatchStats& st = out.stats;
    st.prompt_tokens += part.stats.prompt_tokens;
    st.generated_tokens += part.stats.generated_tokens;
    st.decoded_tokens += part.stats.decoded_tokens;
    st.decode_steps += part.stats.decode_steps;
    st.prefill_seconds += part.stats.prefill_seconds;
    st.decode_seconds += part.stats.decode_seconds;
  }
  echo();
  const std::uint64_t peak = pg::peak_memory_bytes();
  const pg::BatchStats& st = out.stats;

  if (a.json) {
    nlohmann::json j;
    j["model"] = model.string();
    j["architecture"] = info.architecture;
    j["format"] = std::string(pm::to_string(info.format));
    j["precision"] = std::string(pm::to_string(a.precision));
    j["activation_quantization"] = std::string(pm::to_string(a.act_quant));
    j["cache_type_k"] = std::string(precis::to_string(info.kv_format.k));
    j["cache_type_v"] = std::string(precis::to_string(info.kv_format.v));
    j["kv_bytes_per_token"] = info.kv_bytes_per_token;
    j["device"] = a.device;
    j["threads"] = a.threads;
    j["context"] = info.context_length;
    j["chat_format"] = a.chat ? std::string(pg::chat_format_name(chat_format)) : "none";
    j["sampling"] = {{"temperature", a.sampling.temperature}, {"top_k", a.sampling.top_k},
                     {"top_p", a.sampling.top_p},             {"min_p", a.sampling.min_p},
                     {"repeat_penalty", a.sampling.repetition_penalty},
                     {"repeat_last_n", a.sampling.penalty_last_n},
                     {"seed", opt.sampling.seed}};
    j["results"] = nlohmann::json::array();
    for (std::size_t i = 0; i < out.results.size(); ++i) {
      const pg::GenerationResult& r = out.results[i];
      nlohmann::json e = {{"prompt", a.prompts[i]},
                          {"prompt_tokens", r.prompt_tokens.size()},
                          {"generated_tokens", r.tokens.size()},
                          {"text", chat_format == pg::ChatFormat::harmony ? harmony_final(r.text) : r.text},
                          {"stop_reason", std::string(pg::to_string(r.reason))},
                          {"tokens", r.tokens}};
      if (chat_format == pg::ChatFormat::harmony) e["raw_text"] = r.text;
      j["results"].push_back(std::move(e));
    }
    j["load_seconds"] = load_seconds;
    j["prompt_tokens"] = st.prompt_tokens;
    j["prompt_seconds"] = st.prefill_seconds;
    j["prompt_tokens_per_second"] = st.prompt_tokens_per_second();
    j["generated_tokens"] = st.generated_tokens;
    j["decode_steps"] = st.decode_steps;
    j["generation_seconds"] = st.decode_seconds;
    j["generation_tokens_per_second"] = st.generated_tokens_per_second();
    j["peak_memory_bytes"] = peak;
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  if (stream) {
    if (chat_format == pg::ChatFormat::harmony) std::cout << harmony_final(out.results[0].text);
    std::cout << "\n";
  } else {
    for (std::size_t i = 0; i < out.results.size(); ++i) {
      const pg::GenerationResult& r = out.results[i];
      std::cout << "[" << i + 1 << "] " << a.prompts[i] << "\n"
                << (chat_format == pg::ChatFormat::harmony ? harmony_final(r.text) : r.text) << "\n\n";
    }
  }
  std::cout << std::flush;
  for (std::size_t i = 0; i < out.results.size(); ++i) {
    const pg::GenerationResult& r = out.results[i];
    if (r.reason == pg::StopReason::context_full)
      std::fprintf(stderr, "precis-generate: prompt %zu stopped at the end of the context (%lld positions; -c)\n",
                   i + 1, static_cast<long long>(info.context_length));
  }
  std::fprintf(stderr, "\nprompt:     %zu tokens in %.3f s, %.1f tokens/s\n", st.prompt_tokens, st.prefill_seconds,
               st.prompt_tokens_per_second());
  std::fprintf(stderr, "generation: %zu tokens in %.3f s, %.1f tokens/s (%zu sequence(s), %lld decode steps)\n",
               st.decoded_tokens, st.decode_seconds, st.generated_tokens_per_second(), out.results.size(),
               static_cast<long long>(st.decode_steps));
  std::fprintf(stderr, "peak memory: %s; seed %llu\n", human_bytes(peak).c_str(),
               static_cast<unsigned long long>(opt.sampling.seed));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return pg::run_tool("precis-generate", [&] {
    const Args a = parse_args(argc, argv);
    return run(a);
  });
}
