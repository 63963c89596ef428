#!/usr/bin/env python3
"""End-to-end generation speed: precis-generate and llama.cpp side by side, same model, prompt, threads.

    tools/.venv/bin/python tools/bench_generate.py --precis build/examples/precis-generate [--runs 3]

llama.cpp is the one vendored in llama-cpp-python==0.3.36, built from its source distribution for this CPU
(see tools/make_llamacpp_references.py for the pip command); both run on the default model
(SmolLM2-135M-Instruct Q4_1, scripts/fetch_model.sh) with the same prompt tokens, greedy, a fixed number of
generated tokens (end-of-generation ignored), the same thread count. For each engine and configuration the script
reports prompt (prefill) and generation tokens/s, the median of --runs runs (each in a fresh process for precis,
a fresh context for llama.cpp), and generation's effective weight-read rate: the model file's bytes per decoded
token × tokens/s, the roofline of a memory-bound decode. It prints a Markdown table and writes it, with the raw
numbers, to --out (JSON). A progress line per run goes to stderr.
"""
import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("PRECIS_CACHE_DIR") or
                     pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "precis")
MODEL = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
# ~120 tokens of ordinary English prose, so the prefill is a real batch.
PROMPT = ("The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined "
          "movable metal type, oil-based ink and a wooden screw press into a system that could produce books far "
          "faster than scribes. Within fifty years, presses were operating in more than two hundred cities across "
          "Europe, and the price of books fell sharply. Historians still debate how much this changed the spread "
          "of ideas, but it is clear that")


def precis_run(binary, n_gen, threads, act_quant):
    cmd = [str(binary), "-m", str(MODEL), "-p", PROMPT, "-n", str(n_gen), "--temp", "0", "--ignore-eos",
           "-t", str(threads), "-c", "512", "--act-quant", act_quant, "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return {"prompt_tokens": j["prompt_tokens"][0] if isinstance(j["prompt_tokens"], list) else j["prompt_tokens"],
            "prompt_tps": j["prompt_tokens_per_second"], "gen_tps": j["generation_tokens_per_second"],
            "peak_mib": j.get("peak_memory_bytes", 0) / 2**20}


def llamacpp_run(llm, n_gen):
    """The Python binding: a greedy loop of llm.sample + llm.eval (a little Python per token)."""
    ids = llm.tokenize(PROMPT.encode(), add_bos=True, special=True)
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    t1 = time.perf_counter()
    for _ in range(n_gen):
        tok = llm.sample(temp=0.0)
        llm.eval([tok])
    t2 = time.perf_counter()
    # n_gen decode runs here (the loop also decodes its last token), so n_gen / time, like n-1 runs elsewhere.
    return {"prompt_tokens": len(ids), "prompt_tps": len(ids) / (t1 - t0), "gen_tps": n_gen / (t2 - t1)}


def llama_completion_run(binary, n_gen, threads):
    """llama.cpp's own command-line front end; its timings (common_perf_print) count generation as llama.cpp
    does: n_gen - 1 decode runs (the first token comes from the prefill), as precis-generate does."""
    cmd = [str(binary), "-m", str(MODEL), "-p", PROMPT, "-n", str(n_gen), "-t", str(threads), "--temp", "0",
           "--ignore-eos", "-c", "512", "-no-cnv"]
    err = subprocess.run(cmd, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL).stderr
    pm = re.search(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens", err)
    gm = re.search(r"\beval time =\s*([\d.]+) ms /\s*(\d+) runs", err)
    if not pm or not gm:
        sys.exit(f"no timings in the output of {' '.join(cmd)}")
    return {"prompt_tokens": int(pm[2]), "prompt_tps": int(pm[2]) / float(pm[1]) * 1e3,
            "gen_tps": int(gm[2]) / float(gm[1]) * 1e3}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precis", required=True, help="path of the precis-generate binary")
    ap.add_argument("--llama-completion", help="path of llama.cpp's llama-completion, built from the same "
                    "vendored sources (optional: a second llama.cpp front end without Python in the loop)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-n", type=int, default=128, help="tokens to generate")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench_generate.json"))
    args = ap.parse_args()
    if not MODEL.exists():
        sys.exit(f"{MODEL} is absent: run bash scripts/fetch_model.sh")
    model_bytes = MODEL.stat().st_size

    rows = []
    configs = [("precis", "f32 activations (exact)", lambda: precis_run(args.precis, args.n, args.threads, "none")),
               ("precis", "q8 activations (as llama.cpp)", lambda: precis_run(args.precis, args.n, args.threads, "q8"))]
    try:
        import llama_cpp
        llm = llama_cpp.Llama(model_path=str(MODEL), n_ctx=512, n_batch=512, n_threads=args.threads,
                              n_threads_batch=args.threads, verbose=False)
        configs.append((f"llama.cpp (llama-cpp-python {llama_cpp.__version__})", "q8 activations",
                        lambda: llamacpp_run(llm, args.n)))
    except ImportError:
        print("llama-cpp-python is not installed: precis only (see tools/make_llamacpp_references.py)",
              file=sys.stderr)

    if args.llama_completion:
        configs.append(("llama.cpp (llama-completion, same sources)", "q8 activations",
                        lambda: llama_completion_run(args.llama_completion, args.n, args.threads)))

    for engine, config, fn in configs:
        runs = []
        for r in range(args.runs):
            runs.append(fn())
            print(f"[{engine}, {config}] run {r + 1}/{args.runs}: prompt {runs[-1]['prompt_tps']:.1f} tok/s, "
                  f"generation {runs[-1]['gen_tps']:.1f} tok/s", file=sys.stderr, flush=True)
        gen = statistics.median(x["gen_tps"] for x in runs)
        rows.append({"engine": engine, "config": config, "prompt_tokens": runs[0]["prompt_tokens"],
                     "prompt_tps": statistics.median(x["prompt_tps"] for x in runs), "gen_tps": gen,
                     "weight_read_gbps": gen * model_bytes / 1e9, "runs": runs})

    print(f"\nSmolLM2-135M-Instruct Q4_1 ({model_bytes / 1e6:.1f} MB), {args.threads} threads, "
          f"{rows[0]['prompt_tokens']}-token prompt, {args.n} generated tokens, median of {args.runs}\n")
    print("| engine | configuration | prompt tok/s | generation tok/s | weights read during generation |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['config']} | {r['prompt_tps']:.0f} | {r['gen_tps']:.0f} | "
              f"{r['weight_read_gbps']:.1f} GB/s |")
    pathlib.Path(args.out).write_text(json.dumps({"model": str(MODEL.name), "model_bytes": model_bytes,
                                                  "threads": args.threads, "n_gen": args.n,
                                                  "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows},
                                                 indent=1) + "\n")


if __name__ == "__main__":
    main()
