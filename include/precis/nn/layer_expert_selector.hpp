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
#include <memory>      // std::make_shared
#include <span>        // std::span
#include <utility>     // std::move, std::forward

#include <precis/core/config.hpp>  // index_t
#include <precis/nn/router.hpp>    // ExpertSelector

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

/// The whole-model selection hook (see the header comment). Empty = the model's own ranking.
class LayerExpertSelector {
 public:
  LayerExpertSelector() = default;
  LayerExpertSelector(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor): "no selector"
  template <class F>
    requires(!std::same_as<std::remove_cvref_t<F>, LayerExpertSelector>) && LayerSelectorCallable<F>
  LayerExpertSelector(F&& f) : f_(std::forward<F>(f)) {}  // NOLINT(google-explicit-constructor)

  void operator()(index_t layer, index_t row, std::span<float> scores) const { f_(layer, row, scores); }
  explicit operator bool() const noexcept { return static_cast<bool>(f_); }

 private:
  std::function<void(index_t, index_t, std::span<float>)> f_;
};

/// One layer's view of a LayerExpertSelector: the ExpertSelector a routing policy takes.
class BoundLayerSelector {
 public:
  BoundLayerSelector(const LayerExpertSelector& selector, index_t layer) noexcept : f_(&selector), layer_(layer) {}
  void adjust(index_t row, std::span<float> scores) const {
    if (*f_) (*f_)(layer_, row, scores);
  }

 private:
  const LayerExpertSelector* f_;
  index_t layer_;
};
static_assert(ExpertSelector<BoundLayerSelector>);

/// The same ExpertSelector on every layer. The hook owns it (moved in, shared between copies of
/// the hook: selectors holding a Tensor are move-only), so it may be a temporary.
template <ExpertSelector S>
[[nodiscard]] LayerExpertSelector on_every_layer(S selector) {
  return [s = std::make_shared<const S>(std::move(selector))](index_t /*layer*/, index_t row, std::span<float> scores) {
    s->adjust(row, scores);
  };
}

}  // namespace precis
