#!/usr/bin/env python3
"""precis-bench and llama-bench on the same GGUF files, same threads, runs interleaved; JSON, Markdown, PNG.

    tools/.venv/bin/python tools/bench_side_by_side.py --precis-bench build/gcc/benchmarks/precis-bench \\
        [--rounds 2] [--threads 2] [--out docs/bench_side_by_side] [MODEL.gguf:pp:tg ...]
    tools/.venv/bin/python tools/bench_side_by_side.py --from-json a.json b.json --out docs/bench_side_by_side

Default models: SmolLM2-135M-Instruct Q4_K_M (tools/make_kquant_models.sh), and the random-weight
Qwen3-30B-A3B-shaped Q4_K_M and gpt-oss-20b-shaped MXFP4 files (tools/make_scale_models.py), each with
its prompt/generation lengths (a 17 GiB MoE prefill at ~15 tokens/s makes pp128 a minute per run).
llama.cpp is the one tools/build_llamacpp.sh builds (llama-cpp-python 0.3.36's vendored sources).

Per model and round, each engine runs once as its own process (load included, not timed by the
benches): precis-bench twice (exact activations, and --act-quant q8 — llama.cpp's rounding of
activations to 8-bit blocks, the comparable mode; the MoE models refuse it, shown as —), then llama-bench; rounds alternate the engines'
order so that neither always runs on a warmer page cache. Each process reports its own mean over
-r repetitions; the table gives the mean over rounds, and the ratio precis / llama.cpp per test.
Writes <out>.json (every number), <out>.md and <out>.png (tokens/s, grouped by model and test).
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("PRECIS_CACHE_DIR") or
                     pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "precis")
LLAMA_BIN = CACHE / "llama.cpp" / "0.3.36" / "bin"
DEFAULT_MODELS = [
    f"{CACHE}/models/kquants/SmolLM2-135M-Instruct.Q4_K_M.gguf:128:64",
    f"{CACHE}/models/scale/Qwen3-30B-A3B-shaped.Q4_K_M.gguf:64:16",
    f"{CACHE}/models/scale/gpt-oss-20b-shaped.MXFP4.gguf:64:16",
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run_precis(binary, model, pp, tg, threads, reps, act_quant):
    cmd = [str(binary), "-m", model, "-p", str(pp), "-n", str(tg), "-t", str(threads), "-r", str(reps),
           "--act-quant", act_quant, "-o", "json"]
    log("  $", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:  # e.g. q8 activations, which the MoE models refuse by name
        log("    refused:", proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode)
        return None
    j = json.loads(proc.stdout)
    res = {t["test"]: t["mean"] for t in j["tests"]}
    res["_peak_memory_bytes"] = j["peak_memory_bytes"]
    res["_load_seconds"] = j["load_seconds"]
    res["_roofline"] = {t["test"]: t["roofline_fraction"] for t in j["tests"]}
    return res


def run_llama(model, pp, tg, threads, reps):
    cmd = [str(LLAMA_BIN / "llama-bench"), "-m", model, "-p", str(pp), "-n", str(tg), "-t", str(threads),
           "-r", str(reps), "-o", "json"]
    log("  $", " ".join(cmd))
    env = dict(os.environ, LD_LIBRARY_PATH=str(LLAMA_BIN))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    res = {}
    for t in json.loads(out):
        name = f"pp{t['n_prompt']}" if t["n_prompt"] > 0 else f"tg{t['n_gen']}"
        res[name] = t["avg_ts"]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--precis-bench", type=pathlib.Path, default=ROOT / "build" / "gcc" / "benchmarks" / "precis-bench")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "docs" / "bench_side_by_side")
    ap.add_argument("--from-json", type=pathlib.Path, nargs="*", default=[],
                    help="merge earlier runs' JSON files (and run nothing new unless models are given)")
    ap.add_argument("models", nargs="*")
    a = ap.parse_args()
    if not a.models and not a.from_json:
        a.models = DEFAULT_MODELS
    engines = ["precis", "precis q8", "llama.cpp"]
    results = {}
    for f in a.from_json:
        results.update(json.loads(f.read_text())["results"])
    for spec in a.models:
        model, pp, tg = spec.rsplit(":", 2)
        if not pathlib.Path(model).exists():
            log(f"skipping {model}: not found (tools/make_kquant_models.sh, tools/make_scale_models.py)")
            continue
        name = pathlib.Path(model).name.removesuffix(".gguf")
        runs = {e: [] for e in engines}
        for r in range(a.rounds):
            order = engines if r % 2 == 0 else list(reversed(engines))
            log(f"{name}: round {r + 1}/{a.rounds} ({', '.join(order)})")
            for e in order:
                if e == "llama.cpp":
                    runs[e].append(run_llama(model, pp, tg, a.threads, a.reps))
                else:
                    runs[e].append(run_precis(a.precis_bench, model, pp, tg, a.threads, a.reps,
                                              "q8" if e.endswith("q8") else "none"))
        results[name] = {"pp": int(pp), "tg": int(tg), "runs": runs}

    tests = lambda m: [f"pp{results[m]['pp']}", f"tg{results[m]['tg']}"]
    def mean(rs, t):
        vals = [r[t] for r in rs if r is not None]
        return statistics.mean(vals) if vals else float("nan")

    fmt = lambda v, spec=".2f": "—" if v != v else format(v, spec)
    lines = [f"{a.threads} threads, {a.rounds} interleaved rounds × {a.reps} repetitions; tokens/s (mean over rounds)", "",
             "| model | test | precis | precis q8 | llama.cpp | precis / llama.cpp | precis q8 / llama.cpp | precis peak RSS |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m, r in results.items():
        for t in tests(m):
            p, q, l = (mean(r["runs"][e], t) for e in engines)
            peak = max(x["_peak_memory_bytes"] for x in r["runs"]["precis"] + r["runs"]["precis q8"] if x) / 2**30
            lines.append(f"| {m} | {t} | {fmt(p)} | {fmt(q)} | {fmt(l)} | {fmt(p / l)}× | {fmt(q / l)}× | {peak:.2f} GiB |")
    md = "\n".join(lines) + "\n"
    print(md)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"threads": a.threads, "rounds": a.rounds, "reps": a.reps,
                                                      "results": results}, indent=1))
    a.out.with_suffix(".md").write_text(md)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed (tools/.venv/bin/pip install matplotlib): no PNG")
        return
    groups = [(m, t) for m in results for t in tests(m)]
    fig, axes = plt.subplots(1, len(groups), figsize=(2.6 * len(groups), 3.6))
    colors = {"precis": "#4c72b0", "precis q8": "#55a868", "llama.cpp": "#c44e52"}
    for ax, (m, t) in zip(axes if len(groups) > 1 else [axes], groups):
        vals = [0.0 if v != v else v for v in (mean(results[m]["runs"][e], t) for e in engines)]
        ax.bar(range(3), vals, color=[colors[e] for e in engines])
        ax.set_xticks(range(3), ["precis", "q8", "llama"], fontsize=8)
        ax.set_title(f"{m.split('.')[0][:18]}\n{t}", fontsize=8)
        ax.set_ylabel("tokens/s", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"precis vs llama.cpp, CPU, {a.threads} threads (higher is better)", fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out.with_suffix(".png"), dpi=110)
    log(f"wrote {a.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
