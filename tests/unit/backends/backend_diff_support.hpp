// tests/unit/backends/backend_diff_support.hpp — what the backend-against-backend tests share
// (test_backend_seam: Cpu vs Reference; tests/cuda/test_cuda_backend: Cuda vs Reference): weights
// of every stored format from one f32 master, bit and tolerance comparisons of host results, and
// the fixed prefill + decode run whose stacked logits are compared model by model.
#pragma once

#include <catch2/catch.hpp>  // FAIL

#include <algorithm>  // std::max
#include <cmath>    // std::fabs, std::sqrt
#include <cstddef>  // std::byte
#include <cstdint>  // std::int64_t
#include <cstring>  // std::memcmp, std::memcpy
#include <random>   // std::mt19937
#include <span>     // std::span
#include <string>   // std::string
#include <vector>   // std::vector

#include <precis/core/cast.hpp>           // cast
#include <precis/core/scalar.hpp>         // to_compute
#include <precis/core/tensor.hpp>         // Tensor
#include <precis/models/causal_lm.hpp>    // CausalLM
#include <precis/quant/block_formats.hpp>  // visit_ggml_block_format
#include <precis/quant/quantize.hpp>      // quantize, reference_quantizable
#include <precis/weights/any_weight.hpp>  // AnyWeight

#include "support/any_tensor_bytes.hpp"
#include "unit/quant/random_download_blocks.hpp"  // fill_random_download_blocks             // io::detail::AnyTensorBytes
#include "unit/models/test_moe_models_support.hpp"  // rel_l2 (one definition for every backend/model diff)

namespace precis::test {

template <class D, std::size_t R>
[[nodiscard]] bool same_bits(const Tensor<D, R>& a, const Tensor<D, R>& b) {
  return a.extents() == b.extents() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

/// |got − ref| ≤ rel·|ref| + abs elementwise; returns the first violation or "".
template <class D, std::size_t R>
[[nodiscard]] std::string close(const Tensor<D, R>& got, const Tensor<D, R>& ref, double rel, double abs) {
  if (got.extents() != ref.extents()) return "extents differ";
  for (index_t i = 0; i < got.numel(); ++i) {
    const double c = to_compute<D>(got.data()[i]), r = to_compute<D>(ref.data()[i]);
    if (!(std::fabs(c - r) <= rel * std::fabs(r) + abs))
      return "element " + std::to_string(i) + ": got " + std::to_string(c) + ", reference " + std::to_string(r);
  }
  return "";
}

/// A weight matrix of `format` from an f32 master [n, k] (its bytes kept alive by `keep`).
[[nodiscard]] inline AnyWeight weight_of(dtype_code format, const Tensor<f32, 2>& master,
                                         std::vector<std::vector<std::byte>>& keep) {
  const index_t n = master.extent(0), k = master.extent(1);
  std::vector<std::byte> bytes;
  const auto put = [&](const void* p, std::size_t size) {
    bytes.resize(size);
    std::memcpy(bytes.data(), p, size);
  };
  const auto put_blocks = [&]<class F>() {
    if constexpr (reference_quantizable<F>) {
      const auto q = quantize<F>(master);
      put(q.blocks(), q.bytes());
    } else {
      // A download format (no quantizer): random blocks with small scales (|w| ≲ 4), seeded by
      // the master's first value; K must be a multiple of the format's block size.
      std::mt19937 rng(static_cast<std::uint32_t>(master.numel() > 0 ? master.data()[0] * 1e6f : 0.0f));
      QuantTensor<F, 2> q(master.extents());
      fill_random_download_blocks(q, rng, -10, -7);
      put(q.blocks(), q.bytes());
    }
  };
  switch (format) {
    case dtype_code::f32: put(master.data(), master.bytes()); break;
    case dtype_code::bf16: {
      const Tensor<bf16, 2> b = cast<bf16>(master);
      put(b.data(), b.bytes());
      break;
    }
    case dtype_code::f16: {
      const Tensor<f16, 2> b = cast<f16>(master);
      put(b.data(), b.bytes());
      break;
    }
    default:
      if (!visit_ggml_block_format(format, [&]<class F>() { put_blocks.template operator()<F>(); }))
        FAIL("unexpected format");
  }
  keep.push_back(std::move(bytes));
  return AnyWeight::from(io::detail::AnyTensorBytes::make("w", format, {n, k}, std::span<const std::byte>(keep.back()), "test"));
}

/// The GGUF download formats (random blocks: weight_of), for the linear diffs at K = 512.
inline const std::vector<dtype_code> download_formats = []<class... F>(format_list<F...>) {
  return std::vector<dtype_code>{dtype_traits<F>::code...};
}(download_block_formats{});

/// max over rows n of Σ_k |w[n, k]| (the magnitude an f32 accumulation bound scales with when |x| < 1).
template <class B>
[[nodiscard]] double max_row_abs_sum(B& backend, const AnyWeight& w) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(w.rows()));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
  const Tensor<f32, 2> rows = backend.template embed<f32>(w, ids);  // [N, K], exact
  double worst = 0;
  for (index_t n = 0; n < rows.extent(0); ++n) {
    double s = 0;
    for (index_t k = 0; k < rows.extent(1); ++k) s += std::fabs(static_cast<double>(rows(n, k)));
    worst = std::max(worst, s);
  }
  return worst;
}

/// Prefill of `prompt`, then one decode step for each of `next`; the logits stacked [T + steps, vocab].
[[nodiscard]] inline Tensor<f32, 2> run_model(models::CausalLM& lm, const std::vector<std::int64_t>& prompt,
                                              const std::vector<std::int64_t>& next) {
  const auto s = lm.new_sequence();
  const Tensor<f32, 2> pre = lm.forward(s, prompt);  // [T, vocab]
  const index_t v = pre.extent(1), steps = static_cast<index_t>(next.size());
  Tensor<f32, 2> all({pre.extent(0) + steps, v});
  for (index_t t = 0; t < pre.extent(0); ++t)
    for (index_t j = 0; j < v; ++j) all(t, j) = pre(t, j);
  for (index_t step = 0; step < steps; ++step) {
    const std::int64_t tok = next[static_cast<std::size_t>(step)];
    const Tensor<f32, 2> l = lm.forward(s, std::span<const std::int64_t>(&tok, 1));  // [1, vocab]
    for (index_t j = 0; j < v; ++j) all(pre.extent(0) + step, j) = l(0, j);
  }
  return all;
}

}  // namespace precis::test
