// precis/models/moe_weights.hpp — loading one MoE layer's expert stacks from a checkpoint by its
// naming convention (HF Qwen3-MoE per-expert or fused, HF gpt-oss MXFP4 or dequantized, GGUF
// `ffn_*_exps`). The stacks and the layer type they build are weights/any_experts.hpp.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include <precis/models/weight_source.hpp>  // WeightSource, ExpectedShape
#include <precis/weights/any_experts.hpp>   // AnyExpertStack, mxfp4_experts

namespace precis::models {

/// How a file convention stores a layer's experts (a named tensor-naming policy of the MoE models).
enum class expert_layout {
  hf,    ///< HF: `{prefix}.{e}.{gate,up,down}_proj.weight` per expert, transformers-5's
         ///< fused gate_up_proj, or gpt-oss's interleaved MXFP4 / float gate_up
  gguf,  ///< llama.cpp: stacked `blk.N.ffn_{gate,up,down}_exps.weight` [E, N, K], any ggml format
};


// ---------------------------------------------------------------------------------------------
// Loaders by checkpoint convention
// ---------------------------------------------------------------------------------------------

/// gate [E, I, H], up [E, I, H], down [E, H, I] of one layer.
struct ExpertTensors {
  AnyExpertStack gate, up, down;
};

/// Qwen3-MoE experts of one layer from an HF checkpoint, `prefix` = "model.layers.3.mlp.experts"
/// (or "thinker.model.layers.3.mlp.experts"): the released per-expert tensors
/// `{prefix}.{e}.{gate,up,down}_proj.weight`, or transformers-5's fused `{prefix}.gate_up_proj`
/// [E, 2I, H] (gate rows first, `chunk(2)`) + `{prefix}.down_proj` [E, H, I]. `n_experts`,
/// `intermediate` and `hidden` come from the config and are checked against every tensor.
[[nodiscard]] inline ExpertTensors load_hf_qwen3_experts(WeightSource& src, const std::string& prefix,
                                                         index_t n_experts, index_t intermediate, index_t hidden,
                                                         const std::string& why) {
  const std::string gu_name = prefix + ".gate_up_proj";
  if (src.contains(gu_name)) {  // fused (transformers 5 in-memory layout, saved as is)
    const AnyExpertStack gu = AnyExpertStack::stacked(
        src.tensor(gu_name, {{n_experts, 2 * intermediate, hidden}, why}));
    AnyExpertStack down = AnyExpertStack::stacked(
        src.tensor(prefix + ".down_proj", {{n_experts, hidden, intermediate}, why}));
    return {gu.row_range(0, intermediate), gu.row_range(intermediate, intermediate), std::move(down)};
  }
  std::vector<io::AnyTensor> g, u, d;
  for (index_t e = 0; e < n_experts; ++e) {
    const std::string p = prefix + "." + std::to_string(e) + ".";
    g.push_back(src.tensor(p + "gate_proj.weight", {{intermediate, hidden}, why}));
    u.push_back(src.tensor(p + "up_proj.weight", {{intermediate, hidden}, why}));
    d.push_back(src.tensor(p + "down_proj.weight", {{hidden, intermediate}, why}));
  }
  return {AnyExpertStack::per_expert(g), AnyExpertStack::per_expert(u), AnyExpertStack::per_expert(d)};
}

/// Stacked GGUF experts of block `blk` ("blk.3"): `{blk}.ffn_{gate,up}_exps.weight` [E, I, H],
/// `{blk}.ffn_down_exps.weight` [E, H, I] (qwen3moe, gpt-oss), in whatever format the file has.
[[nodiscard]] inline ExpertTensors load_gguf_experts(WeightSource& src, const std::string& blk, index_t n_experts,
                                                     index_t intermediate, index_t hidden, const std::string& why) {
  return {AnyExpertStack::stacked(src.tensor(blk + ".ffn_gate_exps.weight", {{n_experts, intermediate, hidden}, why})),
          AnyExpertStack::stacked(src.tensor(blk + ".ffn_up_exps.weight", {{n_experts, intermediate, hidden}, why})),
          AnyExpertStack::stacked(src.tensor(blk + ".ffn_down_exps.weight", {{n_experts, hidden, intermediate}, why}))};
}

/// gpt-oss experts of one HF layer, `prefix` = "model.layers.3.mlp.experts": MXFP4
/// `gate_up_proj_{blocks,scales}` [E, 2I, H/32, (16)] (rows interleaved gate/up) and
/// `down_proj_{blocks,scales}` [E, H, I/32, (16)], or (a dequantized checkpoint) float
/// `gate_up_proj` [E, H, 2I] and `down_proj` [E, I, H] stored for x @ W (transposed once).
struct InterleavedExpertTensors {
  AnyExpertStack gate_up, down;
};

[[nodiscard]] inline InterleavedExpertTensors load_hf_gpt_oss_experts(WeightSource& src, const std::string& prefix,
                                                                      index_t n_experts, index_t intermediate,
                                                                      index_t hidden, const std::string& why,
                                                                      mxfp4_experts mode = mxfp4_experts::as_stored) {
  const std::string gu = prefix + ".gate_up_proj", dn = prefix + ".down_proj";
  if (src.contains(gu + "_blocks")) {
    PRECIS_CHECK(hidden % 32 == 0 && intermediate % 32 == 0, shape_error, "[moe] MXFP4 experts '", gu,
                 "_blocks' need hidden_size (", hidden, ") and intermediate_size (", intermediate,
                 ") to be multiples of 32 (", why, ")");
    AnyExpertStack g = AnyExpertStack::mxfp4_blocks(
        src.tensor(gu + "_blocks", {{n_experts, 2 * intermediate, hidden / 32, 16}, why}),
        src.tensor(gu + "_scales", {{n_experts, 2 * intermediate, hidden / 32}, why}));
    AnyExpertStack d = AnyExpertStack::mxfp4_blocks(
        src.tensor(dn + "_blocks", {{n_experts, hidden, intermediate / 32, 16}, why}),
        src.tensor(dn + "_scales", {{n_experts, hidden, intermediate / 32}, why}));
    if (mode == mxfp4_experts::repack_ggml) return {g.repacked_ggml(), d.repacked_ggml()};
    return {std::move(g), std::move(d)};
  }
  return {AnyExpertStack::transposed(src.tensor(gu, {{n_experts, hidden, 2 * intermediate}, why})),
          AnyExpertStack::transposed(src.tensor(dn, {{n_experts, intermediate, hidden}, why}))};
}

}  // namespace precis::models

