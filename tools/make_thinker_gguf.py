#!/usr/bin/env python3
"""The Qwen3-Omni thinker fixture as the GGUF llama.cpp's converter writes for it (architecture `qwen3vlmoe`).

    tools/.venv/bin/python tools/make_thinker_gguf.py      # needs gguf, numpy, safetensors (PyPI)

reads tests/fixtures/models/qwen3_omni_thinker/{config.json, model.safetensors} (made by
tools/make_model_fixtures.py) and writes tests/fixtures/models/qwen3_omni_thinker/model.gguf, following
what llama.cpp's convert_hf_to_gguf.py (llama-cpp-python 0.3.36's vendored copy, conversion/qwen3vl.py)
does for `Qwen3OmniMoeForConditionalGeneration`'s text model, `Qwen3OmniMoeTextModel`:

  - architecture QWEN3VLMOE; `thinker.` stripped from the names, which then go through gguf-py's
    tensor-name map of that architecture (blk.N.attn_q, attn_q_norm, ffn_gate_inp, ...);
  - per-expert `mlp.experts.{e}.{gate,up,down}_proj.weight` stacked into ffn_{gate,up,down}_exps
    [E, out, in] (Qwen2MoeModel.modify_tensors); the fixture's dense layers (the released thinker has
    none) as qwen3moe files name them, ffn_{gate,up,down};
  - the qwen3moe hyperparameters, `rope.dimension_sections` = mrope_section padded to 4 with 0
    (TextModel.set_gguf_parameters), `n_deepstack_layers` = 0 (Qwen3OmniMoeTextModel).

Why not run the converter itself: it reads the model's tokenizer (AutoTokenizer, then a hash of its
pre-tokenizer against a list of known models), and the fixture is a random 160-token model with none.
The weights are written as F32 (the fixture's dtype), so the GGUF's logits must equal the HF
checkpoint's: tests/fixtures' conformance runs both against the same HF reference logits.
"""
import json
import pathlib

import gguf
import numpy as np
from safetensors.numpy import load_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
DIR = ROOT / "tests" / "fixtures" / "models" / "qwen3_omni_thinker"


def main():
    cfg = json.loads((DIR / "config.json").read_text())
    tc = cfg["thinker_config"]["text_config"]
    rope = tc.get("rope_parameters") or tc.get("rope_scaling") or {}
    sd = {k.removeprefix("thinker."): v for k, v in load_file(str(DIR / "model.safetensors")).items()}
    L = tc["num_hidden_layers"]
    arch = gguf.MODEL_ARCH.QWEN3VLMOE
    w = gguf.GGUFWriter(str(DIR / "model.gguf"), gguf.MODEL_ARCH_NAMES[arch])
    w.add_name("precis-fixture-qwen3-omni-thinker")
    w.add_block_count(L)
    w.add_context_length(tc["max_position_embeddings"])
    w.add_embedding_length(tc["hidden_size"])
    w.add_feed_forward_length(tc["intermediate_size"])
    w.add_head_count(tc["num_attention_heads"])
    w.add_head_count_kv(tc["num_key_value_heads"])
    w.add_key_length(tc["head_dim"])
    w.add_value_length(tc["head_dim"])
    w.add_rope_freq_base(float(rope.get("rope_theta", tc.get("rope_theta", 10000.0))))
    w.add_layer_norm_rms_eps(float(tc["rms_norm_eps"]))
    w.add_expert_count(tc["num_experts"])
    w.add_expert_used_count(tc["num_experts_per_tok"])
    w.add_expert_feed_forward_length(tc["moe_intermediate_size"])
    sections = list(rope["mrope_section"])
    while len(sections) < 4:
        sections.append(0)
    w.add_rope_dimension_sections(sections)
    w.add_num_deepstack_layers(0)
    w.add_vocab_size(tc["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    tmap = gguf.get_tensor_name_map(arch, L)
    TN, M = gguf.TENSOR_NAMES, gguf.MODEL_TENSOR
    done = set()
    for k in sorted(sd):
        if k in done:
            continue
        parts = k.split(".")
        if ".mlp.experts." in k:  # model.layers.{bid}.mlp.experts.{e}.{w}.weight: stack all E
            bid, proj = int(parts[2]), parts[6]
            names = [f"model.layers.{bid}.mlp.experts.{e}.{proj}.weight" for e in range(tc["num_experts"])]
            stack = np.stack([sd[n] for n in names])
            done.update(names)
            t = {"gate_proj": M.FFN_GATE_EXP, "up_proj": M.FFN_UP_EXP, "down_proj": M.FFN_DOWN_EXP}[proj]
            w.add_tensor(TN[t].format(bid=bid) + ".weight", np.ascontiguousarray(stack.astype(np.float32)))
            continue
        nm = tmap.get_name(k, try_suffixes=(".weight", ".bias"))
        if nm is None and ".mlp." in k and parts[4] in ("gate_proj", "up_proj", "down_proj"):
            # A dense layer (the fixture's decoder_sparse_step = 2; the released thinker has none, so
            # gguf-py's QWEN3VLMOE map lacks ffn_{gate,up,down}): the names qwen3moe files use.
            t = {"gate_proj": M.FFN_GATE, "up_proj": M.FFN_UP, "down_proj": M.FFN_DOWN}[parts[4]]
            nm = TN[t].format(bid=int(parts[2])) + ".weight"
        assert nm is not None, k
        w.add_tensor(nm, np.ascontiguousarray(sd[k].astype(np.float32)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(DIR / "model.gguf")


if __name__ == "__main__":
    main()
