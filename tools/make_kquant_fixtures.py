#!/usr/bin/env python3
"""Write the K-quant / IQ4 / Q5 dequantization fixtures of tests/fixtures/quant/.

precis' scalar dequantizers of the formats llama.cpp's `llama-quantize` writes for downloaded
GGUF files (include/precis/quant/kquants.hpp: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q5_0, Q5_1, IQ4_NL,
IQ4_XS) are tested against gguf-py's `gguf.quants.dequantize` (numpy ports of ggml-quants.c's
`dequantize_row_*`), on random blocks: every quant and scale byte random, and the f16 super-block
scales `d` / `dmin` drawn from edge cases — zero, -0, subnormals, the largest finite f16
(65504) with both signs, and random finite values. (Random bytes cover every code of every field;
quantizer outputs would not, and gguf-py has no K-quant quantizers.)

Same file format as tools/make_quant_fixtures.py (PRECQNT1):

    random_{fmt}.bin          [N, B] u8    random blocks, B = block bytes
    random_{fmt}_dequant.bin  [N, V] f32   gguf.quants.dequantize, V = values per block (256 or 32)

Run (re-runnable, deterministic for a given gguf/numpy):

    tools/.venv/bin/python tools/make_kquant_fixtures.py
"""

from __future__ import annotations

import sys

import numpy as np

try:
    from gguf import GGMLQuantizationType as QT
    from gguf import quants as gq
    from gguf.constants import GGML_QUANT_SIZES
except ImportError:  # pragma: no cover
    sys.exit("gguf is missing: tools/.venv/bin/pip install gguf")

from make_quant_fixtures import write_array

SEED = 20261207
N = 64

# name -> (type, byte offsets of the f16 scale fields d / dmin / m inside the block)
FORMATS = {
    "q2_k": (QT.Q2_K, [80, 82]),
    "q3_k": (QT.Q3_K, [108]),
    "q4_k": (QT.Q4_K, [0, 2]),
    "q5_k": (QT.Q5_K, [0, 2]),
    "q6_k": (QT.Q6_K, [208]),
    "q5_0": (QT.Q5_0, [0]),
    "q5_1": (QT.Q5_1, [0, 2]),
    "iq4_nl": (QT.IQ4_NL, [0]),
    "iq4_xs": (QT.IQ4_XS, [0]),
}

EDGE_F16 = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00]


def random_f16(rng: np.random.Generator, i: int) -> int:
    if i < len(EDGE_F16):
        return EDGE_F16[i]
    while True:
        v = int(rng.integers(0, 1 << 16))
        if (v & 0x7C00) != 0x7C00:  # finite
            return v


def main() -> None:
    rng = np.random.default_rng(SEED)
    for name, (qt, scale_offsets) in FORMATS.items():
        values, nbytes = GGML_QUANT_SIZES[qt]
        blocks = rng.integers(0, 256, size=(N, nbytes), dtype=np.uint8)
        for b in range(N):
            for k, off in enumerate(scale_offsets):
                # dmin / m get the edge cases in another order than d, so the pairs differ.
                v = random_f16(rng, (b + 5 * k) % N)
                blocks[b, off] = v & 0xFF
                blocks[b, off + 1] = v >> 8
        deq = gq.dequantize(blocks, qt).astype(np.float32).reshape(N, values)
        assert np.all(np.isfinite(deq)), name
        write_array(f"random_{name}.bin", blocks)
        write_array(f"random_{name}_dequant.bin", deq)
        print(f"{name}: {N} blocks of {nbytes} bytes, {values} values")


if __name__ == "__main__":
    main()
