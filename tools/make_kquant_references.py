#!/usr/bin/env python3
"""llama.cpp's outputs on K-quant / IQ4 / Q5 GGUF files made by llama.cpp's own llama-quantize.

Two sets (the C++ side: tests/unit/models/test_kquant_models.cpp):

1. tests/fixtures/kquant_model/ (committed): a tiny random Llama-shaped model whose every matrix has
   rows of a multiple of 256, so that `llama-quantize --pure` stores *every* matrix (the tied token
   embedding included) in the one type: Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_XS IQ4_NL Q5_0 Q5_1.
     shape: 1 layer, hidden 256, 4 query heads / 2 KV heads of 64, FFN 512, vocab 512 (the
     tokenizer of ../shared/data/models/stories260K.gguf), RoPE over the whole head, tied embedding.
     weights: normal(0, 1/sqrt(fan_in)) from numpy seed 15 (norm weights 1 + small noise), written
     as F32 by gguf-py, then quantized per type.
   For each type: tiny-llama.<TYPE>.gguf, and <TYPE>.logits.f32 = llama.cpp's logits [T, 512] of
   every position of the prompt "Once upon a time" (BOS + 4 tokens), plus greedy ids in
   kquant_references.json.
2. SmolLM2-135M-Instruct requantized to the llama-quantize presets (tools/make_kquant_models.sh,
   files in the user cache, never committed): llama.cpp's 32 greedy tokens after "The capital of
   France is" and the file's size and sha256 (a test skips, saying so, when the file is absent or differs).

llama.cpp is built from the llama-cpp-python 0.3.36 sdist by tools/build_llamacpp.sh; the small
C++ driver tools/llamacpp_greedy.cpp (one thread, flash attention off) is compiled against it here.

    tools/.venv/bin/python tools/make_kquant_references.py
"""
import hashlib
import json
import os
import pathlib
import subprocess
import tempfile

import numpy as np
import gguf

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "tests" / "fixtures" / "kquant_model"
TYPES = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS", "IQ4_NL", "Q5_0", "Q5_1"]
PRESETS = ["Q4_K_M", "Q4_K_S", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K", "IQ4_XS", "IQ4_NL", "Q5_0", "Q5_1", "Q8_0"]
TINY_PROMPT = "Once upon a time"
SMOL_PROMPT = "The capital of France is"


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, **kw).stdout


def llama_bin():
    return pathlib.Path(sh("bash", ROOT / "tools" / "build_llamacpp.sh").strip())


def build_driver(bin_dir, dest):
    src = bin_dir.parent.parent / f"src-{bin_dir.parent.name}" / "vendor" / "llama.cpp"
    sh("g++", "-O2", "-std=c++17", ROOT / "tools" / "llamacpp_greedy.cpp", f"-I{src}/include", f"-I{src}/ggml/include",
       f"-L{bin_dir}", "-lllama", "-lggml", "-lggml-base", f"-Wl,-rpath,{bin_dir}", "-o", dest)


def write_tiny_f32(path):
    rng = np.random.default_rng(15)
    tok = gguf.GGUFReader(str(SHARED / "models" / "stories260K.gguf"))
    field = lambda k: tok.fields[k]
    tokens = [bytes(field("tokenizer.ggml.tokens").parts[i]).decode("utf-8") for i in field("tokenizer.ggml.tokens").data]
    scores = [float(field("tokenizer.ggml.scores").parts[i][0]) for i in field("tokenizer.ggml.scores").data]
    ttypes = [int(field("tokenizer.ggml.token_type").parts[i][0]) for i in field("tokenizer.ggml.token_type").data]
    H, F, NH, NKV, HD, V = 256, 512, 4, 2, 64, len(tokens)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("precis tiny K-quant test model")
    w.add_context_length(256)
    w.add_embedding_length(H)
    w.add_feed_forward_length(F)
    w.add_block_count(1)
    w.add_head_count(NH)
    w.add_head_count_kv(NKV)
    w.add_rope_dimension_count(HD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(0)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(ttypes)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def mat(n, k):  # [N, K] rows = outputs; GGUF stores dims reversed, gguf-py takes the numpy shape
        return (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(V, H) * np.float32(4.0))  # tied: also the output projection
    w.add_tensor("output_norm.weight", norm(H))
    w.add_tensor("blk.0.attn_norm.weight", norm(H))
    w.add_tensor("blk.0.attn_q.weight", mat(NH * HD, H))
    w.add_tensor("blk.0.attn_k.weight", mat(NKV * HD, H))
    w.add_tensor("blk.0.attn_v.weight", mat(NKV * HD, H))
    w.add_tensor("blk.0.attn_output.weight", mat(H, NH * HD))
    w.add_tensor("blk.0.ffn_norm.weight", norm(H))
    w.add_tensor("blk.0.ffn_gate.weight", mat(F, H))
    w.add_tensor("blk.0.ffn_up.weight", mat(F, H))
    w.add_tensor("blk.0.ffn_down.weight", mat(H, F))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def run_driver(driver, model, prompt, n, logits=None):
    args = [driver, model, prompt, n] + ([logits] if logits else [])
    return json.loads(sh(*args))


def main():
    bin_dir = llama_bin()
    env = dict(os.environ, LD_LIBRARY_PATH=str(bin_dir))
    OUT.mkdir(parents=True, exist_ok=True)
    refs = {"llama_cpp": "llama-cpp-python 0.3.36 sdist (vendored llama.cpp), tools/llamacpp_greedy.cpp, 1 thread",
            "tiny": {"prompt": TINY_PROMPT, "types": {}}, "smollm2": {"prompt": SMOL_PROMPT, "files": {}}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        driver = tmp / "llamacpp_greedy"
        build_driver(bin_dir, driver)
        f32 = tmp / "tiny-llama.F32.gguf"
        write_tiny_f32(f32)
        for t in TYPES:
            dst = OUT / f"tiny-llama.{t}.gguf"
            subprocess.run([str(bin_dir / "llama-quantize"), "--pure", str(f32), str(dst), t, "1"], check=True,
                           capture_output=True, env=env)
            r = run_driver(driver, dst, TINY_PROMPT, 24, OUT / f"{t}.logits.f32")
            refs["tiny"]["types"][t] = {"file": dst.name, "prompt_ids": r["prompt"], "greedy": r["greedy"],
                                        "n_vocab": r["n_vocab"], "logits": f"{t}.logits.f32"}
            print(t, dst.stat().st_size, "bytes, greedy", r["greedy"][:8])
        models = pathlib.Path(sh("bash", ROOT / "tools" / "make_kquant_models.sh").strip())
        for p in PRESETS:
            path = models / f"SmolLM2-135M-Instruct.{p}.gguf"
            r = run_driver(driver, path, SMOL_PROMPT, 32)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            refs["smollm2"]["files"][p] = {"file": path.name, "sha256": sha, "bytes": path.stat().st_size, "prompt_ids": r["prompt"],
                                           "greedy": r["greedy"]}
            print(p, "greedy", r["greedy"][:8])
    (OUT / "kquant_references.json").write_text(json.dumps(refs, indent=1) + "\n")


if __name__ == "__main__":
    main()
