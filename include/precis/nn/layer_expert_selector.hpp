// precis/nn/layer_expert_selector.hpp — the expert-selection hook of a whole MoE model.
//
// An ExpertSelector (nn/router.hpp) rewrites the selection scores of one routing call. A model
// routes once per sparse layer per forward pass, so a selector for the whole model also needs
// to know *which* layer is routing: a trust table per layer, a mask on one layer only, a probe
// that records the scores. LayerExpertSelector is that callable,
//
//   void(index_t layer, index_t row, std::span<float> scores)
//
// where `layer` is the decoder layer index (dense layers never call it), `row` the token row of
// the current forward call (a prefill: row t is the t-th new token of the sequence; a batched
// decode step: row b is the b-th sequence of the batch), and `scores` the n_experts selection
// scores of that row, to be rewritten in place with the ExpertSelector rules (router.hpp):
// selection only, mixture weights stay the model's own. It is type-erased (std::function) so a
// model loaded at run time under any precision policy takes it through CausalLM
// (models/causal_lm.hpp, set_expert_selector). Called on the calling thread, in layer order
// and row order; an empty selector is the identity.
#pragma once

#include <concepts>    // std::invocable, std::same_as, std::copy_constructible
#include <cstddef>     // std::nullptr_t
#include <functional>  // std::function
#include <type_traits> // std::decay_t, std::invoke_result_t, std::remove_cvref_t
#include <memory>      // std::make_shared, std::shared_ptr
#include <cmath>        // std::isfinite
#include <cstdint>      // std::uint8_t
#include <limits>       // std::numeric_limits
#include <vector>       // std::vector
#include <span>        // std::span
#include <utility>     // std::move, std::forward

#include <precis/core/config.hpp>  // index_t
#include <precis/core/error.hpp>   // PRECIS_CHECK, config_error, range_error, shape_error
#include <precis/nn/router.hpp>    // ExpertSelector, ExpertScoreBias, ExpertMask

namespace precis {

/// What a LayerExpertSelector may wrap: a callable of (layer, row, scores) that returns nothing.
/// The selector acts by rewriting `scores` in place; one that returns new scores instead would,
/// through a plain std::function<void(…)>, compile and have its result thrown away — a selector
/// that silently did nothing (robustness sweep). Such a callable does not compile here
/// (tests/compile_fail/cf_19_selector_returns_scores.cpp).
template <class F>
concept LayerSelectorCallable = std::copy_constructible<std::decay_t<F>> &&
                                std::invocable<const std::decay_t<F>&, index_t, index_t, std::span<float>> &&
                                std::same_as<std::invoke_result_t<const std::decay_t<F>&, index_t, index_t, std::span<float>>, void>;

/// A selection rewrite that is data, so a device backend can apply it where the scores are
/// (the CUDA backend's routing kernel): scores[e] ← allowed[e] ? scores[e] + bias[e] : −inf —
/// an ExpertScoreBias followed by an ExpertMask. Empty vectors mean no bias / every expert allowed.
struct ExpertScoreTable {
  std::vector<float> bias;            ///< [n_experts], finite
  std::vector<std::uint8_t> allowed;  ///< [n_experts], 1 = may be chosen

  [[nodiscard]] static ExpertScoreTable of(const ExpertScoreBias& b) {
    ExpertScoreTable t;
    t.bias.resize(static_cast<std::size_t>(b.n_experts()));
    std::vector<float> zero(t.bias.size(), 0.0f);
    b.adjust(0, std::span<float>(zero));
    t.bias = std::move(zero);
    return t;
  }
  [[nodiscard]] static ExpertScoreTable of(const ExpertMask& m) {
    ExpertScoreTable t;
    for (index_t e = 0; e < m.n_experts(); ++e) t.allowed.push_back(m.allowed(e) ? 1 : 0);
    return t;
  }

  void adjust(index_t /*token*/, std::span<float> scores) const {
    PRECIS_CHECK(bias.empty() || bias.size() == scores.size(), shape_error, "[ExpertScoreTable] ", bias.size(),
                 " biases for ", scores.size(), " experts");
    PRECIS_CHECK(allowed.empty() || allowed.size() == scores.size(), shape_error, "[ExpertScoreTable] mask of ",
                 allowed.size(), " experts for ", scores.size(), " experts");
    for (std::size_t e = 0; e < scores.size(); ++e) {
      if (!bias.empty()) scores[e] += bias[e];
      if (!allowed.empty() && allowed[e] == 0) scores[e] = -std::numeric_limits<float>::infinity();
    }
  }
};
static_assert(ExpertSelector<ExpertScoreTable>);

/// The whole-model selection hook (see the header comment). Empty = the model's own ranking.
class LayerExpertSelector {
 public:
  LayerExpertSelector() = default;
  LayerExpertSelector(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor): "no selector"
  template <class F>
    requires(!std::same_as<std::remove_cvref_t<F>, LayerExpertSelector>) && LayerSelectorCallable<F>
  LayerExpertSelector(F&& f) : f_(std::forward<F>(f)) {}  // NOLINT(google-explicit-constructor)

  /// A selector that is data: tables[l] rewrites layer l's scores (a layer past the end, or
  /// with an empty table, keeps the model's ranking); `every_layer`: tables[0] for every layer.
  /// A device backend applies these where the router logits are, with no host round trip.
  [[nodiscard]] static LayerExpertSelector from_tables(std::vector<ExpertScoreTable> tables, bool every_layer = false) {
    PRECIS_CHECK(!every_layer || tables.size() == 1, config_error, "[LayerExpertSelector] every_layer takes one table, got ",
                 tables.size());
    for (const ExpertScoreTable& t : tables)
      for (std::size_t e = 0; e < t.bias.size(); ++e)
        PRECIS_CHECK(std::isfinite(t.bias[e]), range_error, "[ExpertScoreTable] bias of expert ", e, " is ", t.bias[e],
                     "; expected a finite value (disallow experts with `allowed`)");
    LayerExpertSelector s;
    s.tables_ = std::make_shared<const std::vector<ExpertScoreTable>>(std::move(tables));
    s.every_layer_ = every_layer;
    s.f_ = [t = s.tables_, every_layer](index_t layer, index_t row, std::span<float> scores) {
      const auto i = static_cast<std::size_t>(every_layer ? 0 : layer);
      if (i < t->size()) (*t)[i].adjust(row, scores);
    };
    return s;
  }

  void operator()(index_t layer, index_t row, std::span<float> scores) const { f_(layer, row, scores); }
  explicit operator bool() const noexcept { return static_cast<bool>(f_); }
  /// Is the selector data (from_tables, or empty)? Then table() says everything it does.
  [[nodiscard]] bool is_data() const noexcept { return !f_ || tables_ != nullptr; }
  /// Layer `layer`'s table, or null (no rewrite, or a selector that is code).
  [[nodiscard]] const ExpertScoreTable* table(index_t layer) const noexcept {
    if (!tables_) return nullptr;
    const auto i = static_cast<std::size_t>(every_layer_ ? 0 : layer);
    if (i >= tables_->size()) return nullptr;
    const ExpertScoreTable& t = (*tables_)[i];
    return t.bias.empty() && t.allowed.empty() ? nullptr : &t;
  }

 private:
  std::function<void(index_t, index_t, std::span<float>)> f_;
  std::shared_ptr<const std::vector<ExpertScoreTable>> tables_;
  bool every_layer_ = false;
};

/// One layer's view of a LayerExpertSelector: the ExpertSelector a routing policy takes.
class BoundLayerSelector {
 public:
  BoundLayerSelector(const LayerExpertSelector& selector, index_t layer) noexcept : f_(&selector), layer_(layer) {}
  void adjust(index_t row, std::span<float> scores) const {
    if (*f_) (*f_)(layer_, row, scores);
  }
  /// A selector that is data (or none): a device backend applies table() itself.
  [[nodiscard]] bool is_data() const noexcept { return f_->is_data(); }
  [[nodiscard]] const ExpertScoreTable* table() const noexcept { return f_->table(layer_); }

 private:
  const LayerExpertSelector* f_;
  index_t layer_;
};
static_assert(ExpertSelector<BoundLayerSelector>);

/// Bias and mask selectors on every layer, as data (a device backend routes with them on the device).
[[nodiscard]] inline LayerExpertSelector on_every_layer(const ExpertScoreBias& b) {
  return LayerExpertSelector::from_tables({ExpertScoreTable::of(b)}, true);
}
[[nodiscard]] inline LayerExpertSelector on_every_layer(const ExpertMask& m) {
  return LayerExpertSelector::from_tables({ExpertScoreTable::of(m)}, true);
}
[[nodiscard]] inline LayerExpertSelector on_every_layer(ExpertScoreTable t) {
  return LayerExpertSelector::from_tables({std::move(t)}, true);
}

/// The same ExpertSelector on every layer. The hook owns it (moved in, shared between copies of
/// the hook: selectors holding a Tensor are move-only), so it may be a temporary.
template <ExpertSelector S>
[[nodiscard]] LayerExpertSelector on_every_layer(S selector) {
  return [s = std::make_shared<const S>(std::move(selector))](index_t /*layer*/, index_t row, std::span<float> scores) {
    s->adjust(row, scores);
  };
}

}  // namespace precis
