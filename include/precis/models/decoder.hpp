// precis/models/decoder.hpp — Decoder<Model, B, Act>: the part every decoder-only model shares,
// written once. A model derives from it (CRTP) and keeps only what differs — its config, its
// weight names and shapes, and `run`, its forward pass over N token rows:
//
//   tensor_of<B, f32, 2> run(std::span<const KvSeqId> seqs, std::span<const std::int64_t> tokens,
//                            const Tensor<i64, 1>& positions, logits_rows rows);
//
// `seqs` is one sequence with N tokens (a prefill or one decode step) or N sequences with one
// token each (a batched decode step); `positions` [N] are the rows' absolute positions, already
// checked. `run` may return only the last row when rows == logits_rows::last, or all N.
//
// What lives here: the backend object and the KV cache (in the backend's memory, made by it),
// sequence bookkeeping, the context and batch checks with their messages, execution inside the
// backend's context (the CPU backend's task arena), and the logits' crossing to the host (or,
// for generation, the sampled token's: forward_sampled, decode_batch_sampled).
#pragma once

#include <algorithm>  // std::min
#include <cstdint>  // std::int64_t
#include <span>     // std::span
#include <string>   // std::string
#include <utility>  // std::move
#include <vector>   // std::vector

#include <precis/backends/backend.hpp>       // Backend, kv_cache_of, tensor_of
#include <precis/core/dtype.hpp>             // ActivationDtype, i64, f32
#include <precis/core/error.hpp>             // shape_error, range_error, config_error
#include <precis/core/tensor.hpp>            // Tensor
#include <precis/models/model_loading.hpp>   // logits_rows, LoadOptions, context_for, kv_size_for
#include <precis/nn/kv_index.hpp>            // KvSeqId, KvLayerPlan, PagedKvSize
#include <precis/nn/sampling.hpp>            // SampleRequest, SampleOutcome

namespace precis::models {

template <class Model, backends::Backend B, ActivationDtype Act>
class Decoder {
 public:
  using backend_type = B;
  using cache_type = backends::kv_cache_of<B, Act>;

  /// What sizes a decoder: `name` prefixes messages ("llama"); `source` and `model_context`
  /// (the file and its max_position_embeddings) are what the context error cites.
  struct Spec {
    std::string name, source;
    index_t model_context = 0;
    KvLayerPlan plan;
    index_t n_kv_heads = 0, head_dim = 0;
    index_t max_append = 0;  ///< most tokens one forward appends (sizes sliding rings); 0: the context
  };

  /// The context (LoadOptions::max_context, or the model's own) and the paged cache that holds
  /// max_sequences sequences of it are worked out here, once.
  Decoder(B backend, const LoadOptions& options, Spec spec)
      : be_(std::move(backend)),
        name_(std::move(spec.name)),
        source_(std::move(spec.source)),
        context_(context_for(options, spec.model_context, source_)),
        model_context_(spec.model_context),
        max_append_(spec.max_append > 0 ? std::min(spec.max_append, context_) : context_),
        cache_(be_.template make_kv_cache<Act>(spec.plan, kv_size(options, spec),
                                               options.cache_types.template resolve<Act>())) {}

  [[nodiscard]] B& backend() noexcept { return be_; }
  [[nodiscard]] const B& backend() const noexcept { return be_; }
  [[nodiscard]] const cache_type& cache() const noexcept { return cache_; }
  /// Positions one sequence may hold (≤ the model's context length).
  [[nodiscard]] index_t context_length() const noexcept { return context_; }
  /// Most tokens one forward appends to a sequence (Spec::max_append, at most the context).
  [[nodiscard]] index_t max_append() const noexcept { return max_append_; }

  [[nodiscard]] KvSeqId new_sequence() { return cache_.add_sequence(); }
  void release(KvSeqId seq) { cache_.remove_sequence(seq); }
  /// Tokens cached for `seq` (the position of its next token).
  [[nodiscard]] index_t length(KvSeqId seq) const { return cache_.length(seq, 0); }

  /// Runs `tokens` [T] of `seq` at positions length(seq) .. length(seq) + T − 1, appending their
  /// K/V to the cache: a prefill (T > 1) or one decode step (T = 1). Returns logits [T, vocab], or
  /// [1, vocab] (the last token's) with rows = logits_rows::last.
  [[nodiscard]] Tensor<f32, 2> forward(KvSeqId seq, std::span<const std::int64_t> tokens,
                                       logits_rows rows = logits_rows::all) {
    const Tensor<i64, 1> positions = sequence_positions(seq, static_cast<index_t>(tokens.size()));  // [T]
    return execute([&] { return finish(self().run(std::span<const KvSeqId>(&seq, 1), tokens, positions, rows), rows); });
  }

  /// One decode step for several sequences: token b of `tokens` [B] continues seqs[b]. The B rows
  /// go through every projection as one matrix; attention reads each sequence's own cache.
  /// Returns logits [B, vocab], row b for seqs[b].
  [[nodiscard]] Tensor<f32, 2> decode_batch(std::span<const KvSeqId> seqs, std::span<const std::int64_t> tokens) {
    const Tensor<i64, 1> positions = batch_positions(seqs, tokens);  // [B]
    return execute([&] { return finish(self().run(seqs, tokens, positions, logits_rows::all), logits_rows::all); });
  }

  /// As forward(seq, tokens, logits_rows::last), sampling the last row where the logits are
  /// (backends/backend.hpp `sample`): only the token id (or the bad logit) crosses to the host.
  [[nodiscard]] sampling::SampleOutcome forward_sampled(KvSeqId seq, std::span<const std::int64_t> tokens,
                                                        const sampling::SampleRequest& request) {
    const Tensor<i64, 1> positions = sequence_positions(seq, static_cast<index_t>(tokens.size()));  // [T]
    return execute([&] {
      const backends::tensor_of<B, f32, 2> logits =
          self().run(std::span<const KvSeqId>(&seq, 1), tokens, positions, logits_rows::last);  // [T or 1, vocab]
      const backends::view_of<B, const f32, 2> all = logits;
      return be_.sample(all.slice(0, all.extent(0) - 1, all.extent(0)), std::span(&request, 1)).front();
    });
  }

  /// As decode_batch, sampling row b with requests[b] on the backend.
  [[nodiscard]] std::vector<sampling::SampleOutcome> decode_batch_sampled(std::span<const KvSeqId> seqs,
                                                                          std::span<const std::int64_t> tokens,
                                                                          std::span<const sampling::SampleRequest> requests) {
    PRECIS_CHECK(requests.size() == seqs.size(), shape_error, "[", name_, "::decode_batch] ", requests.size(),
                 " sampling requests for ", seqs.size(), " sequences");
    const Tensor<i64, 1> positions = batch_positions(seqs, tokens);  // [B]
    return execute([&] {
      const backends::tensor_of<B, f32, 2> logits = self().run(seqs, tokens, positions, logits_rows::all);  // [B, vocab]
      return be_.sample(backends::view_of<B, const f32, 2>(logits), requests);
    });
  }

  /// Runs f() in the backend's execution context.
  template <class F>
  decltype(auto) execute(F&& f) {
    return be_.execute(std::forward<F>(f));
  }

  /// The positions [n] of `n` new tokens of `seq`, checked against the context.
  [[nodiscard]] Tensor<i64, 1> sequence_positions(KvSeqId seq, index_t n) const {
    const index_t start = length(seq);
    check_context(start, n, seq);
    Tensor<i64, 1> positions({n});  // [T]
    for (index_t t = 0; t < n; ++t) positions(t) = start + t;
    return positions;
  }

  /// The positions [B] of one decode step of `seqs` (each checked; a sequence may appear once).
  [[nodiscard]] Tensor<i64, 1> batch_positions(std::span<const KvSeqId> seqs, std::span<const std::int64_t> tokens) const {
    const auto b = static_cast<index_t>(seqs.size());
    PRECIS_CHECK(tokens.size() == seqs.size(), shape_error, "[", name_, "::decode_batch] ", tokens.size(),
                 " tokens for ", b, " sequences (one token each)");
    Tensor<i64, 1> positions({b});  // [B]
    for (index_t i = 0; i < b; ++i) {
      const KvSeqId s = seqs[static_cast<std::size_t>(i)];
      for (index_t j = 0; j < i; ++j)
        PRECIS_CHECK(!(s == seqs[static_cast<std::size_t>(j)]), config_error, "[", name_, "::decode_batch] sequence (slot ",
                     s.slot, ") appears twice in one batch");
      positions(i) = length(s);
      check_context(positions(i), 1, s);
    }
    return positions;
  }

  /// `n` new tokens at `start` fit the context (range_error naming the sequence and the limits).
  void check_context(index_t start, index_t n, KvSeqId seq) const {
    PRECIS_CHECK(n > 0, shape_error, "[", name_, "] no tokens to run for sequence (slot ", seq.slot, ")");
    PRECIS_CHECK(start + n <= context_, range_error, "[", name_, "] sequence (slot ", seq.slot, "): ", start,
                 " cached + ", n, " new tokens exceed the context length ", context_, " (max_position_embeddings ",
                 model_context_, " of '", source_, "', or the smaller max_context the model was loaded with)");
  }

 protected:
  /// Appends k, v to layer `l` of the cache and attends (backends/backend.hpp `attend`).
  template <class Q, class K, class V, class... Sinks>
  [[nodiscard]] auto attend(index_t l, std::span<const KvSeqId> seqs, const Q& q, const K& k, const V& v,
                            const AttentionConfig& cfg, const Sinks&... sinks) {
    return be_.attend(cache_, l, seqs, q, k, v, cfg, sinks...);
  }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  [[nodiscard]] Model& self() noexcept { return static_cast<Model&>(*this); }

  /// The logits on the host; the last row alone when only it was asked for and `run` gave all.
  [[nodiscard]] Tensor<f32, 2> finish(backends::tensor_of<B, f32, 2>&& logits, logits_rows rows) {
    Tensor<f32, 2> host = be_.to_host(std::move(logits));  // [T or 1, vocab]
    if (rows == logits_rows::all || host.extent(0) == 1) return host;
    Tensor<f32, 2> last({1, host.extent(1)});  // [1, vocab]
    for (index_t v = 0; v < host.extent(1); ++v) last(0, v) = host(host.extent(0) - 1, v);
    return last;
  }

  [[nodiscard]] PagedKvSize kv_size(const LoadOptions& options, const Spec& spec) const {
    PagedKvSize kv = kv_size_for(options, context_, spec.n_kv_heads, spec.head_dim);
    kv.max_append = max_append_;
    return kv;
  }

  B be_;
  std::string name_, source_;
  index_t context_, model_context_, max_append_;
  cache_type cache_;
};

}  // namespace precis::models
