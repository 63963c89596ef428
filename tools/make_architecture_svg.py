#!/usr/bin/env python3
"""Writes docs/architecture.svg, the layer picture of docs/architecture.md, from the table below.

    python3 tools/make_architecture_svg.py

No dependencies. Each row is one layer (bottom to top); arrows point from a layer to what it may
include. Edit LAYERS and rerun; the SVG is committed next to the Markdown that shows it.
"""
import pathlib

LAYERS = [  # (name, directories, what lives there)
    ("numeric", "numeric/", "bf16 / f16 / fp8 / MX element types, bit-exact conversions"),
    ("core", "core/", "dtype + memory tags, Tensor<D,R,Mem>, TensorView, cast, policies, to_device / to_host"),
    ("io", "io/", "safetensors, GGUF: mmapped, validated; AnyTensor, typed load with named conversions"),
    ("reference ops", "ops/  nn/  quant/", "the math spec: one scalar loop nest per op; KV-cache index"),
    ("weights", "weights/", "AnyWeight, AnyMoeExperts: stored formats read in place"),
    ("backends", "backends/", "Backend concept; Reference (scalar), Cpu (xsimd + oneTBB), CUDA next"),
    ("models", "models/", "Llama, Qwen3-MoE, Qwen3-Omni thinker, gpt-oss: written once on Backend"),
    ("runtime", "runtime/", "load_model: file → model × policy × backend (the one place both meet)"),
    ("generate", "generate/  text/", "tokenizers, chat formats, sampling, Generator, perplexity, CLIs"),
]

W, ROW, GAP, X0 = 860, 54, 16, 20


def main():
    n = len(LAYERS)
    h = n * ROW + (n - 1) * GAP + 2 * X0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" '
           'font-family="DejaVu Sans, Arial, sans-serif">',
           '<defs><marker id="a" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
           '<path d="M0,0 L10,4 L0,8 z" fill="#555"/></marker></defs>',
           f'<rect width="{W}" height="{h}" fill="white"/>']
    for i, (name, dirs, what) in enumerate(LAYERS):
        y = h - X0 - (i + 1) * ROW - i * GAP  # bottom to top
        fill = "#dbe9f6" if name in ("backends",) else "#e8f3e0" if name == "models" else "#f2f2f2"
        out.append(f'<rect x="{X0}" y="{y}" width="{W - 2 * X0}" height="{ROW}" rx="8" fill="{fill}" stroke="#888"/>')
        out.append(f'<text x="{X0 + 14}" y="{y + 22}" font-size="16" font-weight="bold">{name}</text>')
        out.append(f'<text x="{X0 + 14}" y="{y + 42}" font-size="12" fill="#444">include/precis/{dirs}</text>')
        out.append(f'<text x="{X0 + 230}" y="{y + 32}" font-size="13">{what}</text>')
        if i > 0:
            out.append(f'<line x1="{W - 60}" y1="{y + ROW}" x2="{W - 60}" y2="{y + ROW + GAP - 1}" stroke="#555" '
                       'stroke-width="2" marker-end="url(#a)"/>')
    out.append('</svg>')
    path = pathlib.Path(__file__).resolve().parent.parent / "docs" / "architecture.svg"
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
