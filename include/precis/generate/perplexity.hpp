// precis/generate/perplexity.hpp — perplexity of a causal LM over a token stream, with a context
// window that slides over the text (the method of llama.cpp's `llama-perplexity`, so the two
// numbers can be compared on the same file and context size).
//
//   const auto ids = tok.encode(text, {.add_bos = true});
//   const PerplexityResult r = perplexity(*lm, ids, {.n_ctx = 512, .bos = tok.bos()}, on_window);
//
// Method (llama.cpp tools/perplexity/perplexity.cpp, `perplexity()`), with window length n_ctx
// and stride S (default S = n_ctx: non-overlapping chunks, exactly llama-perplexity):
//   * window w covers tokens [w·S, w·S + n_ctx); only windows that fit entirely in the text are
//     evaluated (llama.cpp: n_chunk = n_tokens / n_ctx);
//   * each window is evaluated from an empty KV cache (a fresh sequence), in one forward;
//   * when the vocabulary adds BOS, the window's first token is replaced by BOS (llama.cpp does
//     this so that every chunk starts like a document);
//   * the logits at window position j predict token j + 1; only positions j ≥ n_ctx/2 are scored
//     (every scored token has at least n_ctx/2 tokens of context), up to j = n_ctx − 2 — the
//     last position's prediction lies outside the window. With S < n_ctx a target already
//     scored by an earlier window is not scored again, so each token counts at most once;
//   * NLL_t = −log softmax(logits_j)[token_{j+1}], computed in double from the f32 logits;
//     perplexity = exp(Σ NLL / count), reported after every window (llama.cpp prints the same
//     running value per chunk).
#pragma once

#include <algorithm>   // std::max, std::min
#include <chrono>      // std::chrono::steady_clock
#include <cmath>       // std::exp, std::log
#include <cstddef>     // std::size_t
#include <cstdint>     // std::int64_t
#include <functional>  // std::function
#include <optional>    // std::optional
#include <span>        // std::span
#include <vector>      // std::vector

#include <precis/core/error.hpp>        // config_error, range_error, PRECIS_CHECK
#include <precis/core/tensor.hpp>       // Tensor
#include <precis/models/causal_lm.hpp>  // CausalLM
#include <precis/text/vocab.hpp>        // token_id

namespace precis::generate {

struct PerplexityOptions {
  index_t n_ctx = 512;                 ///< window length in tokens (≥ 4)
  index_t stride = 0;                  ///< tokens between window starts; 0: n_ctx (llama-perplexity)
  index_t max_windows = 0;             ///< evaluate at most this many windows; 0: all that fit
  std::optional<text::token_id> bos;   ///< when set, each window's first token becomes BOS
};

/// What has been measured after a window (also the final result).
struct PerplexityProgress {
  index_t window = 0;             ///< windows done (1-based after the first)
  index_t n_windows = 0;          ///< windows that will be evaluated
  std::size_t tokens_scored = 0;  ///< predictions scored so far
  std::size_t tokens_evaluated = 0;  ///< tokens run through the model so far
  double nll_sum = 0;             ///< Σ −log p over the scored predictions
  double seconds = 0;             ///< model time so far
  [[nodiscard]] double perplexity() const noexcept {
    return tokens_scored > 0 ? std::exp(nll_sum / static_cast<double>(tokens_scored)) : 0.0;
  }
  [[nodiscard]] double tokens_per_second() const noexcept {
    return seconds > 0 ? static_cast<double>(tokens_evaluated) / seconds : 0.0;
  }
};

struct PerplexityResult {
  PerplexityProgress total;
  std::vector<double> running;  ///< perplexity after each window (llama.cpp's "[i]ppl" values)
};

/// Windows a text of `n_tokens` tokens gives with these options.
[[nodiscard]] inline index_t perplexity_windows(std::size_t n_tokens, const PerplexityOptions& opt) {
  const index_t stride = opt.stride == 0 ? opt.n_ctx : opt.stride;
  const auto n = static_cast<index_t>(n_tokens);
  index_t w = n < opt.n_ctx ? 0 : (n - opt.n_ctx) / stride + 1;
  if (opt.max_windows > 0) w = std::min(w, opt.max_windows);
  return w;
}

/// Perplexity of `lm` over `tokens` (see the header comment). `on_window` is called after each
/// window. config_error for bad options; range_error when the text is shorter than one window
/// or the window is longer than the model's context.
inline PerplexityResult perplexity(models::CausalLM& lm, std::span<const text::token_id> tokens,
                                   const PerplexityOptions& opt,
                                   const std::function<void(const PerplexityProgress&)>& on_window = {}) {
  PRECIS_CHECK(opt.n_ctx >= 4, config_error, "[perplexity] n_ctx = ", opt.n_ctx, "; it must be >= 4");
  PRECIS_CHECK(opt.stride >= 0 && opt.stride <= opt.n_ctx, config_error, "[perplexity] stride = ", opt.stride,
               "; it must be in [1, n_ctx = ", opt.n_ctx, "] (0: n_ctx)");
  PRECIS_CHECK(opt.max_windows >= 0, config_error, "[perplexity] max_windows = ", opt.max_windows,
               "; it must be >= 0 (0: all)");
  const index_t context = lm.info().context_length;
  PRECIS_CHECK(opt.n_ctx <= context, range_error, "[perplexity] window of ", opt.n_ctx,
               " tokens, but the model was loaded with a context of ", context, " positions (model: ",
               lm.info().model_context_length, ")");
  PRECIS_CHECK(static_cast<index_t>(tokens.size()) >= opt.n_ctx, range_error, "[perplexity] the text is ",
               tokens.size(), " tokens, shorter than one window of ", opt.n_ctx,
               " tokens; use a longer text or a smaller context");
  const index_t vocab = lm.info().vocab_size;
  for (std::size_t k = 0; k < tokens.size(); ++k)
    PRECIS_CHECK(tokens[k] >= 0 && tokens[k] < vocab, range_error, "[perplexity] token ", k, " is id ", tokens[k],
                 ", outside the model's vocabulary [0, ", vocab, ")");

  const index_t stride = opt.stride == 0 ? opt.n_ctx : opt.stride;
  const index_t first = opt.n_ctx / 2;
  PerplexityResult result;
  PerplexityProgress& p = result.total;
  p.n_windows = perplexity_windows(tokens.size(), opt);
  index_t scored_until = -1;  // the last target index (in the text) scored so far
  std::vector<std::int64_t> ids(static_cast<std::size_t>(opt.n_ctx));
  for (index_t w = 0; w < p.n_windows; ++w) {
    const index_t start = w * stride;
    for (index_t j = 0; j < opt.n_ctx; ++j) ids[static_cast<std::size_t>(j)] = tokens[static_cast<std::size_t>(start + j)];
    if (opt.bos) ids[0] = *opt.bos;

    const auto t0 = std::chrono::steady_clock::now();
    const Tensor<f32, 2> logits = [&] {  // [n_ctx, vocab], from an empty cache
      const models::SequenceId seq = lm.new_sequence();
      struct Release {
        models::CausalLM& lm;
        models::SequenceId seq;
        ~Release() { lm.release(seq); }
      } release{lm, seq};
      return lm.forward(seq, ids);
    }();
    p.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    p.tokens_evaluated += static_cast<std::size_t>(opt.n_ctx);

    // Position j predicts text token start + j + 1.
    const index_t j0 = std::max(first, scored_until - start);
    for (index_t j = j0; j <= opt.n_ctx - 2; ++j) {
      const TensorView<const f32, 1> row = logits.cview()[j];
      const std::int64_t target = tokens[static_cast<std::size_t>(start + j + 1)];
      double m = -1e300;
      for (index_t v = 0; v < vocab; ++v) m = std::max(m, static_cast<double>(row(v)));
      double sum = 0;
      for (index_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row(v)) - m);
      p.nll_sum += -(static_cast<double>(row(static_cast<index_t>(target))) - m - std::log(sum));
      ++p.tokens_scored;
    }
    scored_until = std::max(scored_until, start + opt.n_ctx - 1);
    p.window = w + 1;
    result.running.push_back(p.perplexity());
    if (on_window) on_window(p);
  }
  return result;
}

}  // namespace precis::generate
