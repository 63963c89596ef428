// tests/unit/backends/backend_diff_support.hpp — what the backend-against-backend tests share
// (test_backend_seam: Cpu vs Reference; tests/cuda/test_cuda_backend: Cuda vs Reference): weights
// of every stored format from one f32 master, bit and tolerance comparisons of host results, and
// the fixed prefill + decode run whose stacked logits are compared model by model.
#pragma once

#include <catch2/catch.hpp>  // FAIL

#include <cmath>    // std::fabs, std::sqrt
#include <cstddef>  // std::byte
#include <cstdint>  // std::int64_t
#include <cstring>  // std::memcmp, std::memcpy
#include <span>     // std::span
#include <string>   // std::string
#include <vector>   // std::vector

#include <precis/core/cast.hpp>           // cast
#include <precis/core/scalar.hpp>         // to_compute
#include <precis/core/tensor.hpp>         // Tensor
#include <precis/models/causal_lm.hpp>    // CausalLM
#include <precis/quant/quantize.hpp>      // quantize
#include <precis/weights/any_weight.hpp>  // AnyWeight

#include "support/any_tensor_bytes.hpp"             // io::detail::AnyTensorBytes
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
    const auto q = quantize<F>(master);
    put(q.blocks(), q.bytes());
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
    case dtype_code::q8_0: put_blocks.operator()<q8_0>(); break;
    case dtype_code::q4_0: put_blocks.operator()<q4_0>(); break;
    case dtype_code::q4_1: put_blocks.operator()<q4_1>(); break;
    case dtype_code::mxfp4_ggml: put_blocks.operator()<mxfp4_ggml>(); break;
    default: FAIL("unexpected format");
  }
  keep.push_back(std::move(bytes));
  return AnyWeight::from(io::detail::AnyTensorBytes::make("w", format, {n, k}, std::span<const std::byte>(keep.back()), "test"));
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
