// precis/generate/generator.hpp — text generation: tokenize, prefill, decode with the KV cache,
// sample, stop, stream.
//
//   auto lm = models::load_model(path, models::precision::f32, {});
//   const auto tok = text::Tokenizer::from_gguf(path);
//   generate::Generator gen(*lm, tok);
//   generate::GenerateOptions opt;
//   opt.max_new_tokens = 64;
//   opt.sampling.temperature = 0;                                          // greedy
//   const generate::GenerationResult r =
//       gen.generate("Once upon a time", opt, [](std::string_view piece) { std::cout << piece << std::flush; });
//
// One generation:
//   1. encode the prompt (BOS as the vocabulary asks). A string prompt is text: "<|im_start|>" in
//      it stays text unless `parse_special` is set (off by default — a prompt from a user never
//      becomes control tokens). A chat prompt from chat_format.hpp is a text::MarkedText: the
//      template's markup becomes control tokens and the messages stay text;
//   2. check that it fits: prompt < the context the model was loaded with, else a range_error
//      saying both numbers (never a silent truncation);
//   3. prefill the prompt in chunks of `prefill_chunk` tokens (the KV cache keeps their K/V;
//      chunking bounds the [chunk, hidden/ffn] activation buffers of long prompts, as llama.cpp's
//      ubatch does), computing logits for the prompt's last position only
//      (CausalLM::forward_last), and sample the first token from them;
//   4. decode one token at a time until an end-of-generation token (the tokenizer's EOS / EOT /
//      <|im_end|> / <|return|> set), a stop string, `max_new_tokens`, or the end of the context
//      (the next token would have no position left).
// Streaming: text is emitted as soon as it is complete UTF-8 (text::StreamDecoder) and cannot be
// the beginning of a stop string; what a stop string matched, and an end-of-generation token's
// own text, are never emitted.
//
// Several prompts (generate_batch) are prefilled one by one, then decoded together — each step
// one CausalLM::decode_batch over the sequences still running, so each weight matrix is read
// once per step for all of them. Each prompt samples with its own SamplerChain seeded with
// `sampling.seed`, so a prompt's output does not depend on the other prompts in the batch. The
// model must have been loaded with LoadOptions::max_sequences ≥ the number of prompts.
#pragma once

#include <algorithm>    // std::min, std::max
#include <cmath>        // std::isnan
#include <limits>       // std::numeric_limits
#include <chrono>       // std::chrono::steady_clock
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int64_t, std::int32_t
#include <functional>   // std::function
#include <optional>     // std::optional
#include <span>         // std::span
#include <string>       // std::string
#include <string_view>  // std::string_view
#include <utility>      // std::move
#include <vector>       // std::vector

#include <precis/core/error.hpp>           // precis::range_error, config_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>          // precis::Tensor
#include <precis/models/causal_lm.hpp>     // precis::models::CausalLM, SequenceId
#include <precis/nn/sampling.hpp>          // precis::sampling::SamplerChain, SamplerParams
#include <precis/text/stream_decoder.hpp>  // precis::text::StreamDecoder
#include <precis/text/tokenizer.hpp>       // precis::text::Tokenizer, token_id

namespace precis::generate {

struct GenerateOptions {
  int max_new_tokens = 128;                 ///< token budget (≥ 0)
  sampling::SamplerParams sampling{};       ///< temperature 0 = greedy; see nn/sampling.hpp
  std::vector<std::string> stop_strings{};  ///< generation ends before the first match
  bool stop_at_end_of_generation = true;    ///< EOS / EOT tokens end the generation
  bool add_bos = true;                      ///< honoured only if the vocabulary asks for BOS
  bool parse_special = false;               ///< control tokens spelled in a string prompt become tokens
  index_t prefill_chunk = 512;              ///< prompt tokens per prefill forward (≥ 1)
};

enum class StopReason { end_of_generation, stop_string, max_tokens, context_full };

[[nodiscard]] constexpr std::string_view to_string(StopReason r) noexcept {
  switch (r) {
    case StopReason::end_of_generation: return "end of generation token";
    case StopReason::stop_string: return "stop string";
    case StopReason::max_tokens: return "token budget";
    case StopReason::context_full: return "context full";
  }
  return "?";
}

/// One prompt's generation.
struct GenerationResult {
  std::vector<text::token_id> prompt_tokens;
  std::vector<text::token_id> tokens;  ///< generated, including a final end-of-generation token
  std::string text;                    ///< generated text, without the stop string or EOG token that ended it
  StopReason reason = StopReason::max_tokens;
  double prefill_seconds = 0;          ///< this prompt's prefill and first sample (tokenization excluded)
  double decode_seconds = 0;           ///< wall time of the decode steps this prompt took part in
};

/// Totals over one generate_batch call (what a tool reports as prompt / generation speed).
struct BatchStats {
  std::size_t prompt_tokens = 0;     ///< over every prompt
  std::size_t generated_tokens = 0;  ///< over every prompt, end-of-generation tokens included
  std::size_t decoded_tokens = 0;    ///< generated by decode steps (the first token of each prompt comes from its prefill)
  index_t decode_steps = 0;          ///< decode_batch calls
  double prefill_seconds = 0;        ///< every prefill, one after the other
  double decode_seconds = 0;         ///< every decode step

  [[nodiscard]] double prompt_tokens_per_second() const noexcept {
    return prefill_seconds > 0 ? static_cast<double>(prompt_tokens) / prefill_seconds : 0.0;
  }
  [[nodiscard]] double generated_tokens_per_second() const noexcept {
    return decode_seconds > 0 ? static_cast<double>(decoded_tokens) / decode_seconds : 0.0;
  }
};

struct BatchResult {
  std::vector<GenerationResult> results;  ///< one per prompt, in prompt order
  BatchStats stats;
};

/// Called with each piece of generated text as it becomes final: (prompt index, text).
using TextSink = std::function<void(std::size_t, std::string_view)>;

/// The streaming state of one sequence: decoded text, how much of it was emitted, and the stop
/// strings. Text that could still turn into a stop string is held back; once a stop string
/// occurs, the text is cut where it begins.
class StopScanner {
 public:
  /// An empty stop string is a config_error.
  explicit StopScanner(std::vector<std::string> stops) : stops_(std::move(stops)) {
    for (const std::string& s : stops_) {
      PRECIS_CHECK(!s.empty(), config_error, "[generate] stop strings must not be empty");
      longest_ = std::max(longest_, s.size());
    }
  }

  /// Appends decoded text; returns true when a stop string now occurs (the text is cut before
  /// the earliest one). Nothing may be appended after that.
  bool append(std::string_view piece) {
    PRECIS_CHECK(!stopped_, config_error, "[StopScanner] text appended after a stop string matched");
    text_ += piece;
    if (stops_.empty() || piece.empty()) return false;
    // A new match must end inside the new piece (an older one would have been found before).
    const std::size_t back = piece.size() + longest_ - 1;
    const std::size_t from = text_.size() > back ? text_.size() - back : 0;
    std::size_t cut = std::string::npos;
    for (const std::string& s : stops_) cut = std::min(cut, text_.find(s, from));
    if (cut == std::string::npos) return false;
    text_.resize(cut);
    stopped_ = true;
    return true;
  }

  /// The text that became final since the last call: everything except a tail that is a proper
  /// prefix of a stop string (all of it when `finished` or once a stop string matched).
  [[nodiscard]] std::string_view take_final(bool finished) {
    std::size_t hold = 0;
    if (!finished && !stopped_) {
      for (const std::string& s : stops_) {
        // The longest k < |s| with text's last k bytes == s's first k bytes.
        for (std::size_t k = std::min(s.size() - 1, text_.size()); k > hold; --k) {
          if (std::string_view(text_).substr(text_.size() - k) == std::string_view(s).substr(0, k)) {
            hold = k;
            break;
          }
        }
      }
    }
    // An emitted byte is never part of a later match: it was emitted only when no stop string
    // could start at or before it (the hold above), so `end` never moves backwards.
    const std::size_t end = std::max(emitted_, text_.size() - hold);
    const std::string_view out = std::string_view(text_).substr(emitted_, end - emitted_);
    emitted_ = end;
    return out;
  }

  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  [[nodiscard]] bool stopped() const noexcept { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::size_t longest_ = 0;
  std::string text_;
  std::size_t emitted_ = 0;
  bool stopped_ = false;
};

namespace detail {
[[nodiscard]] inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace detail

class Generator {
 public:
  /// `lm` and `tok` must outlive the generator. The tokenizer must fit the model: every id it
  /// produces must be a row of the model's embedding (config_error otherwise).
  Generator(models::CausalLM& lm, const text::Tokenizer& tok) : lm_(&lm), tok_(&tok) {
    const auto model_vocab = static_cast<std::size_t>(lm.info().vocab_size);
    PRECIS_CHECK(tok.vocab_size() <= model_vocab, config_error, "[generate] the tokenizer has ", tok.vocab_size(),
                 " tokens but the model's vocabulary (embedding rows) has only ", model_vocab);
  }

  /// Tokenizes `prompt` as generate() does.
  [[nodiscard]] std::vector<text::token_id> tokenize(std::string_view prompt, const GenerateOptions& opt) const {
    return tok_->encode(prompt, {.add_bos = opt.add_bos, .parse_special = opt.parse_special});
  }

  /// Tokenizes a chat prompt: control tokens only where its markup spells them.
  [[nodiscard]] std::vector<text::token_id> tokenize(const text::MarkedText& prompt, const GenerateOptions& opt) const {
    return tok_->encode(prompt, {.add_bos = opt.add_bos});
  }

  /// One chat prompt (generate::format_chat); `on_text` receives the text as it is generated.
  [[nodiscard]] GenerationResult generate(const text::MarkedText& prompt, const GenerateOptions& opt,
                                          const std::function<void(std::string_view)>& on_text = {}) {
    return generate_one(tokenize(prompt, opt), opt, on_text);
  }

  /// Chat prompts, decoded together.
  [[nodiscard]] BatchResult generate_batch(std::span<const text::MarkedText> prompts, const GenerateOptions& opt,
                                           const TextSink& on_text = {}) {
    return generate_batch_tokens(tokenize_all(prompts, opt), opt, on_text);
  }

  /// One prompt; `on_text` receives the text as it is generated.
  [[nodiscard]] GenerationResult generate(std::string_view prompt, const GenerateOptions& opt,
                                          const std::function<void(std::string_view)>& on_text = {}) {
    return generate_one(tokenize(prompt, opt), opt, on_text);
  }

  /// A continuation for each prompt; the sequences decode together.
  [[nodiscard]] BatchResult generate_batch(std::span<const std::string> prompts, const GenerateOptions& opt,
                                           const TextSink& on_text = {}) {
    return generate_batch_tokens(tokenize_all(prompts, opt), opt, on_text);
  }

  /// As generate_batch, from prompts already tokenized (exactly these ids are fed; `add_bos`
  /// and `parse_special` are not used).
  [[nodiscard]] BatchResult generate_batch_tokens(std::span<const std::vector<text::token_id>> prompts,
                                                  const GenerateOptions& opt, const TextSink& on_text = {}) {
    check_request(prompts, opt);
    const index_t context = lm_->info().context_length;
    const std::size_t n = prompts.size();
    BatchResult batch;
    batch.results.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      batch.results[i].prompt_tokens = prompts[i];
      batch.stats.prompt_tokens += prompts[i].size();
    }

    std::vector<Running> run;
    run.reserve(n);
    // Sequences are released however generation ends, errors included (the model's slots are
    // finite: a leaked one would make the next request fail).
    struct Release {
      models::CausalLM* lm;
      std::vector<Running>* run;
      ~Release() {
        for (Running& r : *run) lm->release(r.seq);
      }
    } release{lm_, &run};

    // Prefill each prompt; its last row gives the first token.
    std::vector<std::int64_t> next(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      GenerationResult& res = batch.results[i];
      // Build everything that can throw before taking a sequence slot.
      Running fresh{models::SequenceId{}, sampling::SamplerChain(opt.sampling), text::StreamDecoder(*tok_),
                    StopScanner(opt.stop_strings), {}, false};
      fresh.history.assign(res.prompt_tokens.begin(), res.prompt_tokens.end());
      fresh.seq = lm_->new_sequence();
      run.push_back(std::move(fresh));
      Running& r = run.back();
      const auto t0 = std::chrono::steady_clock::now();
      if (opt.max_new_tokens == 0) {
        prefill(r.seq, res.prompt_tokens, opt.prefill_chunk, nullptr);
        res.reason = StopReason::max_tokens;
        r.done = true;
      } else {
        const sampling::SampleOutcome o = prefill(r.seq, res.prompt_tokens, opt.prefill_chunk, &r);
        next[i] = accept(i, r, res, opt, o, on_text, context);
      }
      res.prefill_seconds = detail::seconds_since(t0);
      batch.stats.prefill_seconds += res.prefill_seconds;
    }

    // Decode the running sequences together, one token each per step.
    std::vector<models::SequenceId> seqs;
    std::vector<std::int64_t> toks;
    std::vector<std::size_t> who;
    std::vector<sampling::SampleRequest> reqs;
    for (;;) {
      seqs.clear();
      toks.clear();
      who.clear();
      for (std::size_t i = 0; i < n; ++i) {
        if (run[i].done) continue;
        seqs.push_back(run[i].seq);
        toks.push_back(next[i]);
        who.push_back(i);
      }
      if (seqs.empty()) break;
      const auto t0 = std::chrono::steady_clock::now();
      reqs.clear();
      for (const std::size_t i : who) reqs.push_back(request(run[i]));
      // The backend samples each row where the logits are: B token ids come back.
      const std::vector<sampling::SampleOutcome> sampled = lm_->decode_batch_sampled(seqs, toks, reqs);
      for (std::size_t b = 0; b < who.size(); ++b) {
        const std::size_t i = who[b];
        next[i] = accept(i, run[i], batch.results[i], opt, sampled[b], on_text, context);
      }
      const double dt = detail::seconds_since(t0);
      for (const std::size_t i : who) batch.results[i].decode_seconds += dt;
      batch.stats.decode_seconds += dt;
      batch.stats.decoded_tokens += who.size();
      ++batch.stats.decode_steps;
    }
    for (const GenerationResult& r : batch.results) batch.stats.generated_tokens += r.tokens.size();
    return batch;
  }

 private:
  struct Running {
    models::SequenceId seq;
    sampling::SamplerChain sampler;
    text::StreamDecoder decoder;
    StopScanner stops;
    std::vector<std::int32_t> history;  // prompt + generated, for the penalties
    bool done = false;
  };

  void check_request(std::span<const std::vector<text::token_id>> prompts, const GenerateOptions& opt) const {
    const models::ModelInfo& info = lm_->info();
    PRECIS_CHECK(!prompts.empty(), config_error, "[generate] no prompt given");
    PRECIS_CHECK(opt.max_new_tokens >= 0, config_error, "[generate] max_new_tokens is ", opt.max_new_tokens,
                 "; it must be >= 0");
    PRECIS_CHECK(opt.prefill_chunk >= 1, config_error, "[generate] prefill_chunk is ", opt.prefill_chunk,
                 "; it must be >= 1");
    PRECIS_CHECK(static_cast<index_t>(prompts.size()) <= info.max_sequences, config_error, "[generate] ",
                 prompts.size(), " prompts in one batch, but the model was loaded for ", info.max_sequences,
                 " sequence(s) at once; load it with LoadOptions::max_sequences >= ", prompts.size());
    const sampling::SamplerChain validate(opt.sampling);  // config_error naming a bad option, before any work
    (void)validate;
    const StopScanner validate_stops(opt.stop_strings);
    (void)validate_stops;
    const index_t context = info.context_length;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const auto len = static_cast<index_t>(prompts[i].size());
      PRECIS_CHECK(len > 0, config_error, "[generate] prompt ", i + 1, " is empty after tokenization (and the "
                   "vocabulary adds no BOS); give at least one token of prompt");
      PRECIS_CHECK(len < context, range_error, "[generate] prompt ", i + 1, " is ", len, " tokens, but the context "
                   "holds ", context, " positions, prompt and generated tokens together (model: ",
                   info.model_context_length, "); shorten the prompt or use a longer context");
      for (std::size_t k = 0; k < prompts[i].size(); ++k)
        PRECIS_CHECK(prompts[i][k] >= 0 && prompts[i][k] < info.vocab_size, range_error, "[generate] prompt ", i + 1,
                     ": token ", k, " is id ", prompts[i][k], ", outside the model's vocabulary [0, ",
                     info.vocab_size, ")");
    }
  }

  /// Every prompt (strings or chat prompts) tokenized as tokenize() does.
  template <class Prompt>
  [[nodiscard]] std::vector<std::vector<text::token_id>> tokenize_all(std::span<const Prompt> prompts,
                                                                      const GenerateOptions& opt) const {
    std::vector<std::vector<text::token_id>> ids;
    ids.reserve(prompts.size());
    for (const Prompt& p : prompts) ids.push_back(tokenize(p, opt));
    return ids;
  }

  /// One tokenized prompt as a batch of one, its text streamed to `on_text`.
  [[nodiscard]] GenerationResult generate_one(std::vector<text::token_id> ids, const GenerateOptions& opt,
                                              const std::function<void(std::string_view)>& on_text) {
    const std::vector<std::vector<text::token_id>> batch{std::move(ids)};
    TextSink sink;
    if (on_text) sink = [&](std::size_t, std::string_view s) { on_text(s); };
    return std::move(generate_batch_tokens(batch, opt, sink).results.front());
  }

  /// The sampling request of `r`'s next step (its penalty window and, unless greedy, its draw).
  /// Embedding rows past the tokenizer's vocabulary are padding (Qwen3: 151936 rows for 151669
  /// tokens): never sampled, so generation cannot produce an id the tokenizer cannot decode.
  [[nodiscard]] sampling::SampleRequest request(Running& r) const {
    return r.sampler.request(r.history, static_cast<index_t>(tok_->vocab_size()));
  }

  /// Runs the prompt through the model in chunks; with `r`, samples the first token from the
  /// last chunk's last row (on the backend).
  sampling::SampleOutcome prefill(models::SequenceId seq, const std::vector<text::token_id>& prompt, index_t chunk,
                                  Running* r) {
    const std::vector<std::int64_t> ids(prompt.begin(), prompt.end());
    const auto n = static_cast<index_t>(ids.size());
    for (index_t at = 0;; at += chunk) {
      const index_t len = std::min(chunk, n - at);
      const auto part = std::span(ids).subspan(static_cast<std::size_t>(at), static_cast<std::size_t>(len));
      if (at + len < n || r == nullptr) {
        (void)lm_->forward_last(seq, part);
        if (at + len == n) return {};
      } else {
        return lm_->forward_last_sampled(seq, part, request(*r));
      }
    }
  }

  /// Records the token the backend sampled for prompt `i`, streams its text and decides whether
  /// the sequence stops. Returns the token to feed next.
  std::int64_t accept(std::size_t i, Running& r, GenerationResult& res, const GenerateOptions& opt,
                      const sampling::SampleOutcome& sampled, const TextSink& on_text, index_t context) {
    // A NaN/+inf logit means the weights or an activation are not finite: say where it surfaced
    // (the sampler would only name a token).
    if (sampled.bad_id >= 0)
      fail<numeric_error>("[generate] prompt ", i + 1, ", position ", lm_->length(r.seq),
                          ": the model's logit of token ", sampled.bad_id, " is ", sampled.bad_logit,
                          " — a weight or an activation is not finite (check the checkpoint "
                          "with precis-conform, or run with --precision f32)");
    const std::int32_t t = sampled.token;
    res.tokens.push_back(t);
    r.history.push_back(t);
    bool stop = true;
    if (opt.stop_at_end_of_generation && tok_->is_end_of_generation(t)) {
      // The EOG token's own text (<|im_end|>) is not part of the answer.
      res.reason = StopReason::end_of_generation;
    } else if (r.stops.append(r.decoder.push(t))) {
      res.reason = StopReason::stop_string;
    } else if (static_cast<int>(res.tokens.size()) >= opt.max_new_tokens) {
      res.reason = StopReason::max_tokens;
    } else if (lm_->length(r.seq) >= context) {  // `t` itself would have no position to be fed at
      res.reason = StopReason::context_full;
    } else {
      stop = false;
    }
    // At the end, an unfinished UTF-8 character becomes U+FFFD, as Tokenizer::decode would.
    if (stop && !r.stops.stopped() && r.stops.append(r.decoder.finish())) res.reason = StopReason::stop_string;
    const std::string_view piece = r.stops.take_final(stop);
    if (on_text && !piece.empty()) on_text(i, piece);
    if (stop) {
      res.text = r.stops.text();
      r.done = true;
    }
    return t;
  }

  models::CausalLM* lm_;
  const text::Tokenizer* tok_;
};

}  // namespace precis::generate
