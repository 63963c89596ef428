// precis/quant/mxfp4_layout.hpp — conversion between the two MXFP4 layouts, what llama.cpp's
// convert_hf_to_gguf does to gpt-oss experts (model-semantics.md §1a, §1d).
//
//   HF/OpenAI (mxfp4)      nibbles [..., K/32, 16] + scales [..., K/32]; byte j = 2j | 2j+1
//   ggml (mxfp4_ggml)      blocks  [..., K/32] of {u8 e; u8 qs[16]};      byte j = j | j+16
//
// Both represent FP4[code]·2^(e−127) with the same scale byte and the same code per element, so
// the conversion is a lossless nibble permutation: to_openai_layout(to_ggml_layout(q)) returns
// q's bytes exactly, and the two dequantize to the same numbers (the HF table's −0.0 at code 8
// becomes ggml's +0). Mixing the layouts up is the classic MXFP4 loader bug (§1.7 item 8), which
// is why they are distinct types.
#pragma once

#include <cstddef>  // std::size_t

#include <precis/quant/block_reference.hpp>  // repack_mxfp4_openai_to_ggml, repack_mxfp4_ggml_to_openai
#include <precis/quant/quant_tensor.hpp>     // precis::QuantTensor
#include <precis/quant/quant_view.hpp>       // precis::QuantView

namespace precis {

/// HF/OpenAI two-plane MXFP4 → ggml block_mxfp4 array of the same logical extents.
template <std::size_t R>
[[nodiscard]] QuantTensor<mxfp4_ggml, R> to_ggml_layout(const QuantView<mxfp4, R>& q) {
  QuantTensor<mxfp4_ggml, R> out(q.extents());  // (..., K)
  const index_t nb = q.num_blocks();
  for (index_t b = 0; b < nb; ++b) {
    out.blocks()[b].e = q.scales()[b];
    repack_mxfp4_openai_to_ggml(q.nibbles() + 16 * b, out.blocks()[b].qs);
  }
  return out;
}

template <std::size_t R>
[[nodiscard]] QuantTensor<mxfp4_ggml, R> to_ggml_layout(const QuantTensor<mxfp4, R>& q) {
  return to_ggml_layout(q.view());
}

/// ggml block_mxfp4 array → HF/OpenAI two-plane MXFP4 of the same logical extents.
template <std::size_t R>
[[nodiscard]] QuantTensor<mxfp4, R> to_openai_layout(const QuantView<mxfp4_ggml, R>& q) {
  QuantTensor<mxfp4, R> out(q.extents());  // (..., K)
  const index_t nb = q.num_blocks();
  for (index_t b = 0; b < nb; ++b) {
    out.scales()[b] = q.blocks()[b].e;
    repack_mxfp4_ggml_to_openai(q.blocks()[b].qs, out.nibbles() + 16 * b);
  }
  return out;
}

template <std::size_t R>
[[nodiscard]] QuantTensor<mxfp4, R> to_openai_layout(const QuantTensor<mxfp4_ggml, R>& q) {
  return to_openai_layout(q.view());
}

}  // namespace precis
