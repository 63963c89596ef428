#!/usr/bin/env python3
"""Roofline fractions of bm_matmul, from Google Benchmark JSON, as a PNG bar chart and a table.

Why: docs/performance.md reports every matmul figure as a fraction of what the machine can do —
decode GEMVs against bm_roofline's streaming read bandwidth (they are memory-bound: 2 FLOP per
weight), prefill GEMMs against its f32 FMA peak (compute-bound) — and a chart makes the gap to
the targets (80 % and 60 %) visible at a glance.

Usage (from the repository root, matplotlib from PyPI in tools/.venv):
    build/benchmarks/bm_roofline --benchmark_repetitions=5 --benchmark_format=json > roofline.json
    build/benchmarks/bm_matmul --benchmark_repetitions=5 --benchmark_format=json > matmul.json
    tools/.venv/bin/python tools/plot_benchmarks.py --roofline roofline.json --matmul matmul.json \\
        --stat max --out docs/bm_matmul_roofline.png

Several JSON files per side may be given (benchmarks run one filter at a time); repetitions are
reduced to their median, or with --stat max to their best. The table on stdout is Markdown.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

DECODE_TARGET = 0.80  # fraction of read bandwidth (docs/performance.md)
PREFILL_TARGET = 0.60  # fraction of FMA peak


def load_counters(paths: list[Path], stat: str) -> dict[str, dict[str, float]]:
    """run name → {counter: value} over the repetitions in one or more JSON files: their median,
    or their maximum (`max`: the least disturbed repetition on a shared machine)."""
    runs: dict[str, list[dict]] = defaultdict(list)
    for path in paths:
        for b in json.loads(path.read_text())["benchmarks"]:
            if b.get("run_type") != "aggregate":
                runs[b.get("run_name", b["name"])].append(b)
    reduce = max if stat == "max" else statistics.median
    out: dict[str, dict[str, float]] = {}
    for name, entries in runs.items():
        keys = {k for e in entries for k, v in e.items() if isinstance(v, (int, float))}
        out[name] = {k: float(reduce(e[k] for e in entries if k in e)) for k in keys}
        out[name]["repetitions"] = float(len(entries))
    return out


def find(counters: dict[str, dict[str, float]], prefix: str, key: str) -> float:
    for name, c in counters.items():
        if name.startswith(prefix) and key in c:
            return float(c[key])
    raise SystemExit(f"no benchmark starting with {prefix!r} with counter {key!r}")


def short(name: str) -> str:
    """'decode/q4_1/x_bf16/1/min_time:1.000/real_time' → 'decode q4_1 x bf16'."""
    parts = [p for p in name.split("/") if p and not p.startswith(("min_time", "real_time"))]
    kind, fmt, act = parts[0], parts[1], parts[2].removeprefix("x_")
    size = f" {parts[3]}" if kind.startswith("prefill") and len(parts) > 3 else ""
    return f"{kind} {fmt} × {act}{size}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--roofline", type=Path, nargs="+", required=True, help="bm_roofline JSON output(s)")
    ap.add_argument("--matmul", type=Path, nargs="+", required=True, help="bm_matmul JSON output(s)")
    ap.add_argument("--stat", choices=["median", "max"], default="median",
                    help="reduce repetitions by their median (default) or maximum")
    ap.add_argument("--out", type=Path, default=Path("docs/bm_matmul_roofline.png"))
    ap.add_argument("--title", default="precis CPU matmul: fraction of the measured roofline")
    args = ap.parse_args()

    roof = load_counters(args.roofline, args.stat)
    peak = find(roof, "BM_fma_peak", "FLOP/s")
    mm = load_counters(args.matmul, args.stat)
    # bm_matmul's own read reference, interleaved with the GEMVs, when it ran; else bm_roofline's.
    try:
        bw = find(mm, "roofline/read_bandwidth", "bytes/s")
    except SystemExit:
        bw = find(roof, "BM_read_bandwidth", "bytes/s")

    kinds = ["decode", "decode_q8act", "decode_m4", "prefill"]
    formats = ["f32", "bf16", "f16", "q8_0", "q4_0", "q4_1", "mxfp4", "mxfp4_ggml"]

    def order(name: str) -> tuple:  # registration order is lost when benchmarks are interleaved
        p = name.split("/")
        kind = kinds.index(p[0]) if p[0] in kinds else len(kinds)
        fmt = formats.index(p[1]) if len(p) > 1 and p[1] in formats else len(formats)
        size = int(p[3]) if len(p) > 3 and p[3].isdigit() else 0
        return (kind, fmt, p[2] if len(p) > 2 else "", size)

    rows = []  # (label, fraction, target, figure text)
    for name, c in sorted(mm.items(), key=lambda item: order(item[0])):
        if name.startswith("decode"):
            frac = c["bytes/s"] / bw
            rows.append((short(name), frac, DECODE_TARGET, f"{c['bytes/s'] / 1e9:.1f} GB/s"))
        elif name.startswith("prefill"):
            frac = c["FLOP/s"] / peak
            rows.append((short(name), frac, PREFILL_TARGET, f"{c['FLOP/s'] / 1e9:.1f} GFLOP/s"))

    print(f"{args.stat} over repetitions: read bandwidth {bw / 1e9:.1f} GB/s, FMA peak {peak / 1e9:.1f} GFLOP/s\n")
    print("| benchmark | measured | fraction of roofline | target |")
    print("|---|---|---|---|")
    for label, frac, target, fig in rows:
        print(f"| {label} | {fig} | {frac:.0%} | {target:.0%} |")

    import matplotlib  # imported late: the table above needs no plotting library

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.36 * len(rows) + 1.6))
    labels = [r[0] for r in rows][::-1]
    fracs = [r[1] for r in rows][::-1]
    colors = ["tab:green" if r[1] >= r[2] else "tab:orange" for r in rows][::-1]
    ax.barh(labels, fracs, color=colors)
    for i, (f, r) in enumerate(zip(fracs, rows[::-1])):
        ax.text(f + 0.01, i, f"{f:.0%}  ({r[3]})", va="center", fontsize=8)
    ax.axvline(DECODE_TARGET, color="gray", ls="--", lw=1, label=f"decode target {DECODE_TARGET:.0%} of read BW")
    ax.axvline(PREFILL_TARGET, color="gray", ls=":", lw=1, label=f"prefill target {PREFILL_TARGET:.0%} of FMA peak")
    ax.set_xlim(0, max(1.1, max(fracs) + 0.25))
    ax.set_xlabel(f"fraction of roofline (read {bw / 1e9:.1f} GB/s, FMA {peak / 1e9:.0f} GFLOP/s)")
    ax.set_title(args.title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
