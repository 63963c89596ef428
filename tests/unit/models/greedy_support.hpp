// tests/unit/models/greedy_support.hpp — greedy decoding through a CausalLM for the tests that
// compare token streams with llama.cpp's (test_llama.cpp, test_kquant_models.cpp).
#pragma once

#include <cstdint>  // std::int64_t
#include <span>     // std::span
#include <vector>   // std::vector

#include <precis/models/causal_lm.hpp>  // models::CausalLM
#include <precis/nn/sampling.hpp>       // argmax

namespace precis::test {

/// Greedy continuation of `prompt_ids` by prefill + one-token decode steps; `rows` (optional)
/// receives the logits each token was picked from.
[[nodiscard]] inline std::vector<std::int64_t> greedy(models::CausalLM& lm, const std::vector<std::int64_t>& prompt_ids,
                                                      int n_new, std::vector<std::vector<double>>* rows = nullptr) {
  const auto seq = lm.new_sequence();
  Tensor<f32, 2> logits = lm.forward_last(seq, prompt_ids);  // [1, vocab]
  std::vector<std::int64_t> out;
  for (int i = 0; i < n_new; ++i) {
    const index_t last = logits.extent(0) - 1;
    const TensorView<const f32, 1> row = logits.cview()[last];
    if (rows != nullptr) rows->push_back(std::vector<double>(row.data(), row.data() + row.extent(0)));
    const std::int64_t next = argmax(row);
    out.push_back(next);
    logits = lm.forward(seq, std::span(&out.back(), 1));
  }
  lm.release(seq);
  return out;
}

}  // namespace precis::test
