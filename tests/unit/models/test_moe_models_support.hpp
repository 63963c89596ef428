// tests/unit/models/test_moe_models_support.hpp — the conformance fixtures of the MoE models
// (tests/fixtures/models/{qwen3_moe,gpt_oss,qwen3_omni_thinker}: HF float32 reference logits,
// tools/make_model_fixtures.py) and the comparisons the MoE model tests state their tolerances in.
//
// Tolerances used by the tests (stated once, here):
//   kF32Conformance = 1e-4   relative L2 of the f32 path against HF's float32 logits: f32
//                            accumulation everywhere, what remains is summation order (the
//                            issue's criterion; measured 5e-7 … 2e-6, tests/unit/models/*).
//   kF32SumOrder    = 1e-5   two f32 runs of one model that differ only in the summation order
//                            of their GEMMs (prefill GEMM vs decode GEMV, grouped experts of a
//                            different size): each logit is a chain of f32 dot products of
//                            K ≤ 128 terms, γ_K·Σ|x·w| ≈ 8e-6 relative per product in the worst
//                            case, far below it in practice (measured ≤ 1e-6).
#pragma once

#include <catch2/catch.hpp>  // REQUIRE

#include <cmath>       // std::sqrt
#include <cstdint>     // std::int64_t
#include <filesystem>  // std::filesystem::path
#include <optional>    // std::optional
#include <span>        // std::span
#include <string>      // std::string
#include <vector>      // std::vector

#include <precis/core/tensor.hpp>     // Tensor
#include <precis/io/load.hpp>         // io::load
#include <precis/io/safetensors.hpp>  // io::SafetensorsFile

namespace precis::test {

inline constexpr double kF32Conformance = 1e-4;
inline constexpr double kF32SumOrder = 1e-5;

/// tests/fixtures/models/<name>.
[[nodiscard]] inline std::filesystem::path moe_fixture(const std::string& name) {
  return std::filesystem::path(PRECIS_FIXTURES_DIR) / "models" / name;
}

/// A fixture's reference.safetensors: tokens [S], logits [S, vocab], position_ids [3, S].
struct MoeReference {
  std::vector<std::int64_t> tokens;
  Tensor<f32, 2> logits;                  // [S, vocab]
  std::optional<Tensor<i64, 2>> positions;  // [3, S] (MRoPE fixtures)

  [[nodiscard]] static MoeReference open(const std::string& fixture) {
    const auto file = io::SafetensorsFile::open(moe_fixture(fixture) / "reference.safetensors");
    const io::Loaded<i64, 1> tok = io::load<i64, 1>(file.tensor("tokens"));
    MoeReference r;
    for (index_t i = 0; i < tok.extent(0); ++i) r.tokens.push_back(tok(i));
    r.logits = io::load<f32, 2>(file.tensor("logits")).to_tensor();
    if (file.contains("position_ids")) r.positions = io::load<i64, 2>(file.tensor("position_ids")).to_tensor();
    return r;
  }
  [[nodiscard]] index_t size() const noexcept { return static_cast<index_t>(tokens.size()); }
};

/// ‖a − b‖₂ / ‖b‖₂ over all elements (a, b: same extents).
[[nodiscard]] inline double rel_l2(const Tensor<f32, 2>& a, const Tensor<f32, 2>& b) {
  REQUIRE(a.extents() == b.extents());
  double num = 0.0, den = 0.0;
  for (index_t i = 0; i < a.numel(); ++i) {
    const double d = static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i]);
    num += d * d;
    den += static_cast<double>(b.data()[i]) * static_cast<double>(b.data()[i]);
  }
  return std::sqrt(num / den);
}

/// Rows whose argmax agrees.
[[nodiscard]] inline index_t top1_agree(const Tensor<f32, 2>& a, const Tensor<f32, 2>& b) {
  index_t n = 0;
  for (index_t t = 0; t < a.extent(0); ++t) {
    index_t ia = 0, ib = 0;
    for (index_t j = 1; j < a.extent(1); ++j) {
      if (a(t, j) > a(t, ia)) ia = j;
      if (b(t, j) > b(t, ib)) ib = j;
    }
    n += ia == ib ? 1 : 0;
  }
  return n;
}

/// Rows [first, first + n) of every part stacked: the logits of a prefill followed by decode steps.
[[nodiscard]] inline Tensor<f32, 2> stack_rows(const std::vector<Tensor<f32, 2>>& parts) {
  index_t rows = 0;
  for (const auto& p : parts) rows += p.extent(0);
  Tensor<f32, 2> out({rows, parts.front().extent(1)});
  index_t r = 0;
  for (const auto& p : parts)
    for (index_t i = 0; i < p.extent(0); ++i, ++r)
      for (index_t j = 0; j < p.extent(1); ++j) out(r, j) = p(i, j);
  return out;
}

/// Prefill the first `split` tokens, then decode the rest one at a time through `step(tokens)`.
template <class Step>
[[nodiscard]] Tensor<f32, 2> prefill_then_decode(std::span<const std::int64_t> tokens, std::size_t split, Step&& step) {
  std::vector<Tensor<f32, 2>> parts;
  parts.push_back(step(tokens.first(split), 0));
  for (std::size_t t = split; t < tokens.size(); ++t) parts.push_back(step(tokens.subspan(t, 1), t));
  return stack_rows(parts);
}

}  // namespace precis::test
