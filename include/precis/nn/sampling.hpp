// precis/nn/sampling.hpp — choosing the next token from f32 logits: argmax, the llama.cpp
// sampler chain (penalties → top-k → top-p → min-p → temperature → sample) and a specified,
// seeded random generator, so a (logits, history, seed) triple gives one token on every platform.
//
//   sampling::SamplerChain chain({.temperature = 0.7f, .top_k = 40, .top_p = 0.95f, .seed = 42});
//   const std::int32_t tok = chain.sample(logits_row, history);       // logits [V] f32
//
// Logits are f32 only (sampler_logits_are_f32): they are the output of an f32-declared lm_head
// GEMM, and the softmax inside top-p and the final draw is a reduction (dtype-bugs C6, E19–E21).
// Each step is also a public function on a `Candidates` set, so its support can be inspected.
//
// Semantics (one per step; llama.cpp `src/llama-sampling.cpp` and HF `generation/logits_process.py`
// agree on each except where noted):
//   penalties     for each token in the window of the last `penalty_last_n` history tokens
//                 (0: none, −1: all), counted c ≥ 1 times:
//                   repetition (HF RepetitionPenaltyLogitsProcessor, llama.cpp penalty_repeat):
//                     l ← l / r if l > 0, l ← l · r otherwise — once per token, not per occurrence;
//                   then frequency/presence (OpenAI, llama.cpp penalty_freq/penalty_present):
//                     l ← l − c·frequency − presence.
//   top-k         keep the k largest logits (k = 0: off; k ≥ V: all).
//   top-p         keep the shortest prefix, by decreasing probability, whose probability sum
//                 reaches p (llama.cpp: `cum_sum >= p`; at least one token). p = 1: off.
//   min-p         keep tokens with p_i ≥ min_p · p_max, computed as l_i ≥ l_max + ln(min_p)
//                 (llama.cpp's logit-space form). min_p = 0: off.
//   temperature   l ← l / T after the filters (llama.cpp's order: the filters see the
//                 untempered distribution). T = 0: greedy — argmax after the penalties (the
//                 filters always keep the argmax) and no random number is drawn.
//   sample        p_i = softmax(l) over the survivors (in double), u = uniform [0, 1) from the
//                 generator, the first survivor (in the set's order) whose cumulative p exceeds
//                 u·Σp.
// Ties everywhere go to the lower token id: candidates are ordered by (logit desc, id asc).
//
// Reproducibility: the generator is std::mt19937_64, whose output sequence the C++ standard
// specifies exactly ([rand.predef]: the 10000th draw from the default seed is
// 9981545732273789042). std::uniform_real_distribution is *not* used — its algorithm is
// implementation-defined (libstdc++ and libc++ give different doubles from one engine state) —
// u is built from the top 53 bits of one draw: u = (x >> 11) · 2^-53. The one remaining
// platform dependence is std::exp's last bit in the softmax, which can only move a draw that
// lands within ~1e-16 of a cumulative boundary.
//
// Errors: NaN or +inf logits, history tokens outside [0, V), and invalid options (each named,
// with its valid range) throw; options are checked once, when the chain is built (config_error).
#pragma once

#include <algorithm>    // std::sort, std::partial_sort, std::max_element
#include <cmath>        // std::exp, std::log, std::isnan, std::isfinite
#include <concepts>     // std::same_as
#include <cstddef>      // std::size_t
#include <cstdint>      // std::int32_t, std::uint64_t
#include <limits>       // std::numeric_limits
#include <map>          // std::map
#include <utility>      // std::pair
#include <random>       // std::mt19937_64
#include <span>         // std::span
#include <vector>       // std::vector

#include <precis/core/dtype.hpp>       // precis::f32
#include <precis/core/error.hpp>       // precis::range_error, config_error, PRECIS_CHECK
#include <precis/ops/host_tensor.hpp>  // precis::HostTensorOfRank, const_view_t

namespace precis {

/// Sampling reads f32 logits only (C6).
template <class T>
concept sampler_logits_are_f32 = std::same_as<std::remove_cv_t<T>, f32>;

namespace sampling {

// ---------------------------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------------------------

/// The sampler's generator: std::mt19937_64 (sequence fixed by the standard) and uniforms made
/// from its raw bits (see the header comment).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : g_(seed) {}
  [[nodiscard]] std::uint64_t next_u64() { return g_(); }
  /// Uniform in [0, 1): a multiple of 2^-53, every one equally likely.
  [[nodiscard]] double uniform() { return static_cast<double>(g_() >> 11) * 0x1p-53; }

 private:
  std::mt19937_64 g_;
};

// ---------------------------------------------------------------------------------------------
// Candidates
// ---------------------------------------------------------------------------------------------

struct Candidate {
  std::int32_t id;  // token id
  float logit;
};

/// The tokens still in play in one sampling step, with their current logits.
class Candidates {
 public:
  /// Every token of `logits` [V], in id order. NaN or +inf logits throw range_error; −inf is
  /// allowed (a token that can never be drawn).
  template <HostTensorOfRank<1> L>
    requires sampler_logits_are_f32<dtype_of<L>>
  explicit Candidates(const L& logits) {
    const const_view_t<L> lv = logits;
    PRECIS_CHECK(lv.extent(0) >= 1, range_error, "[sampling] empty logits: nothing to sample");
    PRECIS_CHECK(lv.extent(0) <= std::numeric_limits<std::int32_t>::max(), range_error, "[sampling] vocabulary of ",
                 lv.extent(0), " tokens exceeds the i32 token id range");
    items_.reserve(static_cast<std::size_t>(lv.extent(0)));
    for (index_t i = 0; i < lv.extent(0); ++i) {
      const float l = lv(i);
      PRECIS_CHECK(!std::isnan(l) && l < std::numeric_limits<float>::infinity(), range_error,
                   "[sampling] logit of token ", i, " is ", l, "; expected a finite value or -inf");
      items_.push_back({static_cast<std::int32_t>(i), l});
    }
    vocab_ = lv.extent(0);
  }

  [[nodiscard]] index_t vocab() const noexcept { return vocab_; }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] const Candidate& operator[](std::size_t i) const noexcept { return items_[i]; }
  [[nodiscard]] auto begin() const noexcept { return items_.begin(); }
  [[nodiscard]] auto end() const noexcept { return items_.end(); }
  /// Ordered by (logit desc, id asc)? (top-k/top-p sort; penalties need the id order.)
  [[nodiscard]] bool sorted() const noexcept { return sorted_; }
  /// The surviving token ids, ascending (tests, debugging).
  [[nodiscard]] std::vector<std::int32_t> ids() const {
    std::vector<std::int32_t> r;
    for (const Candidate& c : items_) r.push_back(c.id);
    std::sort(r.begin(), r.end());
    return r;
  }

  // The steps are friends: they edit the set in place.
  friend void apply_penalties(Candidates&, std::span<const std::int32_t>, float, float, float);
  friend void top_k(Candidates&, index_t);
  friend void top_p(Candidates&, float);
  friend void min_p(Candidates&, float);
  friend void temperature(Candidates&, float);

 private:
  static bool before(const Candidate& a, const Candidate& b) noexcept {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
  void sort() {
    if (!sorted_) std::sort(items_.begin(), items_.end(), before);
    sorted_ = true;
  }

  std::vector<Candidate> items_;
  index_t vocab_ = 0;
  bool sorted_ = false;
};

// ---------------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------------

/// One penalised logit: a token seen `count` ≥ 1 times in the window. Every product is an
/// explicit fused multiply-add (std::fma; d = c·frequency + presence, and l·r − d for a negative
/// logit), so a device backend computes the same float (__fmaf_rn) whatever contraction either
/// compiler would otherwise choose.
[[nodiscard]] inline float penalized(float l, index_t count, float repetition, float frequency, float presence) {
  const float d = std::fma(static_cast<float>(count), frequency, presence);
  if (repetition == 1.0f) return l - d;
  return l > 0.0f ? l / repetition - d : std::fma(l, repetition, -d);
}

/// The distinct tokens of a penalty window with their counts, by ascending id (what the
/// penalties read; a device backend uploads these pairs). range_error for a token outside [0, vocab).
[[nodiscard]] inline std::vector<std::pair<std::int32_t, index_t>> window_counts(std::span<const std::int32_t> window,
                                                                                 index_t vocab) {
  std::map<std::int32_t, index_t> count;  // token → occurrences in the window
  for (const std::int32_t t : window) {
    PRECIS_CHECK(t >= 0 && t < vocab, range_error, "[sampling::penalties] history token ", t, " outside [0, ", vocab,
                 ")");
    ++count[t];
  }
  return {count.begin(), count.end()};
}

/// Repetition, frequency and presence penalties for the tokens of `window` (see the header).
/// `repetition` > 0 (1: off); `frequency`, `presence` finite (0: off).
inline void apply_penalties(Candidates& c, std::span<const std::int32_t> window, float repetition, float frequency,
                            float presence) {
  PRECIS_CHECK(std::isfinite(repetition) && repetition > 0.0f, config_error, "[sampling::penalties] repetition = ",
               repetition, "; expected a finite value > 0 (1 = off)");
  PRECIS_CHECK(std::isfinite(frequency) && std::isfinite(presence), config_error,
               "[sampling::penalties] frequency = ", frequency, ", presence = ", presence, "; expected finite values");
  const std::vector<std::pair<std::int32_t, index_t>> pairs = window_counts(window, c.vocab_);
  const std::map<std::int32_t, index_t> count(pairs.begin(), pairs.end());
  for (Candidate& cand : c.items_) {
    const auto it = count.find(cand.id);
    if (it == count.end()) continue;
    cand.logit = penalized(cand.logit, it->second, repetition, frequency, presence);
  }
  c.sorted_ = false;
}

/// Keeps the k highest logits (k ≥ 1; k ≥ size keeps all). The set ends sorted.
inline void top_k(Candidates& c, index_t k) {
  PRECIS_CHECK(k >= 1, config_error, "[sampling::top_k] k = ", k, "; expected k >= 1");
  const auto n = std::min(static_cast<std::size_t>(k), c.items_.size());
  if (!c.sorted_) std::partial_sort(c.items_.begin(), c.items_.begin() + static_cast<std::ptrdiff_t>(n), c.items_.end(), Candidates::before);
  c.items_.resize(n);
  c.sorted_ = true;
}

namespace detail {
/// Softmax of the candidates' logits in their order, in double (max subtracted).
inline std::vector<double> probabilities(const std::vector<Candidate>& items) {
  float m = -std::numeric_limits<float>::infinity();
  for (const Candidate& c : items) m = c.logit > m ? c.logit : m;
  PRECIS_CHECK(m > -std::numeric_limits<float>::infinity(), range_error,
               "[sampling] every remaining logit is -inf: no token can be drawn");
  std::vector<double> p(items.size());
  double sum = 0.0;
  for (std::size_t i = 0; i < items.size(); ++i)
    sum += p[i] = std::exp(static_cast<double>(items[i].logit) - static_cast<double>(m));
  for (double& v : p) v /= sum;
  return p;
}
}  // namespace detail

/// Keeps the shortest most-probable prefix whose probability reaches p (0 < p ≤ 1; 1: all).
inline void top_p(Candidates& c, float p) {
  PRECIS_CHECK(p > 0.0f && p <= 1.0f, config_error, "[sampling::top_p] p = ", p, "; expected 0 < p <= 1");
  if (p >= 1.0f) return;
  c.sort();
  const std::vector<double> prob = detail::probabilities(c.items_);
  double cum = 0.0;
  std::size_t keep = c.items_.size();
  for (std::size_t i = 0; i < prob.size(); ++i) {
    cum += prob[i];
    if (cum >= static_cast<double>(p)) {
      keep = i + 1;
      break;
    }
  }
  c.items_.resize(keep);
}

/// Keeps tokens with p_i ≥ min_p·p_max, i.e. l_i ≥ l_max + ln(min_p) (0 ≤ min_p ≤ 1; 0: all).
inline void min_p(Candidates& c, float p) {
  PRECIS_CHECK(p >= 0.0f && p <= 1.0f, config_error, "[sampling::min_p] min_p = ", p, "; expected 0 <= min_p <= 1");
  if (p <= 0.0f || c.items_.empty()) return;
  float m = -std::numeric_limits<float>::infinity();
  for (const Candidate& x : c.items_) m = x.logit > m ? x.logit : m;
  const float threshold = m + std::log(p);
  std::erase_if(c.items_, [&](const Candidate& x) { return !(x.logit >= threshold); });
}

/// Divides every logit by t (t > 0, finite).
inline void temperature(Candidates& c, float t) {
  PRECIS_CHECK(std::isfinite(t) && t > 0.0f, config_error, "[sampling::temperature] t = ", t,
               "; expected a finite t > 0 (t = 0 is greedy: SamplerChain, or argmax)");
  for (Candidate& x : c.items_) x.logit /= t;
}

/// The candidate with the highest logit; ties to the lower id.
[[nodiscard]] inline std::int32_t greedy(const Candidates& c) {
  PRECIS_CHECK(c.size() >= 1, range_error, "[sampling::greedy] no candidates");
  const Candidate* best = &c[0];
  for (const Candidate& x : c)
    if (x.logit > best->logit || (x.logit == best->logit && x.id < best->id)) best = &x;
  return best->id;
}

/// The draw for a given uniform u ∈ [0, 1): the first candidate (in the set's order) whose
/// cumulative softmax probability exceeds u (see the header comment).
[[nodiscard]] inline std::int32_t draw(const Candidates& c, double u) {
  PRECIS_CHECK(c.size() >= 1, range_error, "[sampling::sample] no candidates");
  const std::vector<Candidate> items(c.begin(), c.end());
  const std::vector<double> p = detail::probabilities(items);
  double cum = 0.0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    cum += p[i];
    if (u < cum && p[i] > 0.0) return items[i].id;
  }
  for (std::size_t i = items.size(); i-- > 0;)  // u within rounding of 1: the last drawable one
    if (p[i] > 0.0) return items[i].id;
  return items.back().id;
}

/// One draw from softmax(logits) over the candidates, u from the generator.
[[nodiscard]] inline std::int32_t sample(const Candidates& c, Rng& rng) { return draw(c, rng.uniform()); }

}  // namespace sampling

/// The index of the largest logit of `logits` [V]; ties to the lower index; NaN throws.
template <HostTensorOfRank<1> L>
  requires sampler_logits_are_f32<dtype_of<L>>
[[nodiscard]] std::int32_t argmax(const L& logits) {
  return sampling::greedy(sampling::Candidates(logits));
}

namespace sampling {

// ---------------------------------------------------------------------------------------------
// The chain
// ---------------------------------------------------------------------------------------------

struct SamplerParams {
  float temperature = 1.0f;         // ≥ 0; 0 = greedy
  index_t top_k = 0;                // ≥ 0; 0 = off
  float top_p = 1.0f;               // (0, 1]; 1 = off
  float min_p = 0.0f;               // [0, 1]; 0 = off
  float repetition_penalty = 1.0f;  // > 0; 1 = off
  float frequency_penalty = 0.0f;   // finite; 0 = off
  float presence_penalty = 0.0f;    // finite; 0 = off
  index_t penalty_last_n = 64;      // ≥ −1; 0 = no penalty window, −1 = the whole history
  std::uint64_t seed = 0;
};

/// One sampling step with its randomness drawn: what a backend needs to pick a token from a row
/// of logits without the generator (the CUDA backend samples on the device from this).
struct SampleRequest {
  SamplerParams params;                  ///< validated by the SamplerChain that made the request
  std::span<const std::int32_t> window;  ///< the penalty window (the last penalty_last_n tokens)
  double u = 0.0;                        ///< the uniform draw in [0, 1) (temperature > 0 only)
  index_t usable = 0;                    ///< sample among ids [0, usable); 0: the whole row
};

/// A backend's answer for one row: the token, or the first NaN/+inf logit of the row (then
/// token is −1 and the caller reports where it surfaced).
struct SampleOutcome {
  std::int32_t token = -1;
  index_t bad_id = -1;  ///< −1: every logit was finite or −inf
  float bad_logit = 0.0f;
};

[[nodiscard]] inline bool penalties_on(const SamplerParams& p) noexcept {
  return (p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) &&
         p.penalty_last_n != 0;
}

/// The chain over `logits` [V] for a drawn request — the math spec every backend's sampler is
/// diffed against: penalties → (T = 0: argmax) → top-k → top-p → min-p → temperature → draw u.
template <HostTensorOfRank<1> L>
  requires sampler_logits_are_f32<dtype_of<L>>
[[nodiscard]] std::int32_t sample_row(const L& logits, const SampleRequest& r) {
  const SamplerParams& p = r.params;
  Candidates c(logits);
  if (penalties_on(p)) apply_penalties(c, r.window, p.repetition_penalty, p.frequency_penalty, p.presence_penalty);
  if (p.temperature == 0.0f) return greedy(c);
  if (p.top_k > 0) top_k(c, p.top_k);
  top_p(c, p.top_p);
  min_p(c, p.min_p);
  if (p.temperature != 1.0f) temperature(c, p.temperature);
  return draw(c, r.u);
}

/// The first NaN or +inf of `row` [V] (index and value), or index −1.
template <HostTensorOfRank<1> L>
  requires sampler_logits_are_f32<dtype_of<L>>
[[nodiscard]] SampleOutcome first_bad_logit(const L& logits) {
  const const_view_t<L> lv = logits;
  for (index_t v = 0; v < lv.extent(0); ++v) {
    const float l = lv(v);
    if (std::isnan(l) || l == std::numeric_limits<float>::infinity()) return {-1, v, l};
  }
  return {};
}

/// A host backend's sampler (backends/backend.hpp `sample`): each row of `logits` [B, V] checked
/// for NaN/+inf over all V, then sample_row over its usable ids.
template <HostTensorOfRank<2> L>
  requires sampler_logits_are_f32<dtype_of<L>>
[[nodiscard]] std::vector<SampleOutcome> sample_rows(const L& logits, std::span<const SampleRequest> reqs) {
  const const_view_t<L> lv = logits;
  PRECIS_CHECK(static_cast<std::size_t>(lv.extent(0)) == reqs.size(), shape_error, "[sampling] ", reqs.size(),
               " requests for ", lv.extent(0), " rows of logits");
  std::vector<SampleOutcome> out(reqs.size());
  for (std::size_t b = 0; b < reqs.size(); ++b) {
    const auto row = lv[static_cast<index_t>(b)];
    out[b] = first_bad_logit(row);
    if (out[b].bad_id >= 0) continue;
    const index_t usable = reqs[b].usable > 0 ? std::min(reqs[b].usable, row.extent(0)) : row.extent(0);
    out[b].token = sample_row(row.slice(0, 0, usable), reqs[b]);
  }
  return out;
}

/// penalties → top-k → top-p → min-p → temperature → sample, with every option validated once.
class SamplerChain {
 public:
  explicit SamplerChain(const SamplerParams& p) : p_(p), rng_(p.seed) {
    PRECIS_CHECK(std::isfinite(p.temperature) && p.temperature >= 0.0f, config_error,
                 "[SamplerChain] temperature = ", p.temperature, "; expected a finite value >= 0 (0 = greedy)");
    PRECIS_CHECK(p.top_k >= 0, config_error, "[SamplerChain] top_k = ", p.top_k, "; expected >= 0 (0 = off)");
    PRECIS_CHECK(p.top_p > 0.0f && p.top_p <= 1.0f, config_error, "[SamplerChain] top_p = ", p.top_p,
                 "; expected 0 < top_p <= 1 (1 = off)");
    PRECIS_CHECK(p.min_p >= 0.0f && p.min_p <= 1.0f, config_error, "[SamplerChain] min_p = ", p.min_p,
                 "; expected 0 <= min_p <= 1 (0 = off)");
    PRECIS_CHECK(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0.0f, config_error,
                 "[SamplerChain] repetition_penalty = ", p.repetition_penalty, "; expected a finite value > 0 (1 = off)");
    PRECIS_CHECK(std::isfinite(p.frequency_penalty), config_error, "[SamplerChain] frequency_penalty = ",
                 p.frequency_penalty, "; expected a finite value (0 = off)");
    PRECIS_CHECK(std::isfinite(p.presence_penalty), config_error, "[SamplerChain] presence_penalty = ",
                 p.presence_penalty, "; expected a finite value (0 = off)");
    PRECIS_CHECK(p.penalty_last_n >= -1, config_error, "[SamplerChain] penalty_last_n = ", p.penalty_last_n,
                 "; expected >= -1 (0 = off, -1 = whole history)");
  }

  [[nodiscard]] const SamplerParams& params() const noexcept { return p_; }

  /// The next token for `logits` [V] given the tokens so far (`history`, oldest first).
  template <HostTensorOfRank<1> L>
    requires sampler_logits_are_f32<dtype_of<L>>
  [[nodiscard]] std::int32_t sample(const L& logits, std::span<const std::int32_t> history = {}) {
    return sample_row(logits, request(history));
  }

  /// The next step as a request for a backend's sampler: the penalty window cut from `history`
  /// (which must outlive the request) and, when temperature > 0, the one uniform the step draws
  /// (the generator advances exactly as sample() advances it).
  [[nodiscard]] SampleRequest request(std::span<const std::int32_t> history, index_t usable = 0) {
    SampleRequest r{p_, {}, 0.0, usable};
    if (penalties_on(p_)) {
      const std::size_t n = p_.penalty_last_n < 0 ? history.size()
                                                  : std::min(history.size(), static_cast<std::size_t>(p_.penalty_last_n));
      r.window = history.last(n);
    }
    if (p_.temperature != 0.0f) r.u = rng_.uniform();
    return r;
  }

 private:

  SamplerParams p_;
  Rng rng_;
};

}  // namespace sampling
}  // namespace precis
