// compile_fail 19 — robustness sweep, load-time dtype holes: a LayerExpertSelector whose callable
// returns new scores instead of rewriting them in place. Wrapped in a plain
// std::function<void(index_t, index_t, std::span<float>)> it compiled and its result was thrown
// away: a selector that silently did nothing. LayerExpertSelector accepts only callables that
// return void (LayerSelectorCallable, nn/layer_expert_selector.hpp); the twin rewrites in place.
// expect-error: (LayerSelectorCallable|no viable conversion|conversion from|could not convert)
#include <span>    // std::span
#include <vector>  // std::vector

#include <precis/nn/layer_expert_selector.hpp>  // precis::LayerExpertSelector

using namespace precis;

int main() {
#ifdef PRECIS_SHOULD_FAIL
  // "Mask expert 3": builds the masked scores and returns them — nobody reads the result.
  LayerExpertSelector mask = [](index_t, index_t, std::span<float> scores) {
    std::vector<float> out(scores.begin(), scores.end());
    out[3] = -1e30f;
    return out;
  };
#else
  LayerExpertSelector mask = [](index_t, index_t, std::span<float> scores) { scores[3] = -1e30f; };
#endif
  std::vector<float> s(8, 0.0f);
  mask(0, 0, s);
  return s[3] < 0.0f ? 0 : 1;
}
