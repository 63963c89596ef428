#!/usr/bin/env python3
"""Write the block-quantization fixtures of tests/fixtures/quant/.

precis' scalar quantize/dequantize reference (include/precis/quant/block_reference.hpp) is
tested against two implementations it shares no code with:

* gguf-py (`pip install gguf`, llama.cpp's Python package): `gguf.quants.quantize` and
  `gguf.quants.dequantize` are numpy ports of ggml-quants.c's reference quantisers
  (`quantize_row_{q8_0,q4_0,q4_1,mxfp4}_ref`) and dequantisers, for the ggml block layouts.
* For the HF/OpenAI MXFP4 layout, a numpy re-implementation (below) of HF transformers'
  `convert_moe_packed_tensors` (integrations/mxfp4.py) and of OpenAI's weights.py rule:
  `out[2j] = lut[blk & 0x0F]`, `out[2j+1] = lut[blk >> 4]`, `ldexp(out, scale - 127)`,
  with the FP4 table that has -0.0 at nibble 8 (model-semantics.md §1a). Its input bytes are
  the gguf-py MXFP4 blocks re-packed by an independent numpy re-implementation of llama.cpp's
  converter (`transform_nibble_layout`, §1d).

The C++ tests (tests/unit/quant/) read these files and need no Python.

Run from anywhere (re-runnable; the output is deterministic for a given gguf/numpy):

    tools/.venv/bin/python tools/make_quant_fixtures.py

File format: every file is one array, little-endian:

    offset  size  field
    0       8     magic b"PRECQNT1"
    8       4     u32 ndim           1..4
    12      4     u32 element_bytes  1 (u8 bytes) or 4 (f32)
    16      32    u64 dims[4]        row-major extents; unused trailing dims are 1
    48      ...   payload            prod(dims) * element_bytes bytes

Files (R = 8 rows of K = 256 values, i.e. 8 blocks per row):

    input_f32.bin                  [R, K] f32    the values that are quantized (see make_input)
    {fmt}.bin                      [R, K/32*B] u8  gguf.quants.quantize(input, fmt), B = block bytes
    {fmt}_dequant.bin              [R, K] f32    gguf.quants.dequantize({fmt}.bin)
        fmt in q8_0, q4_0, q4_1, mxfp4_ggml
    mxfp4_openai_nibbles.bin       [R, K/32, 16] u8  mxfp4_ggml.bin re-packed to the HF layout
    mxfp4_openai_scales.bin        [R, K/32] u8
    mxfp4_openai_dequant.bin       [R, K] f32    HF rule applied to the two planes
    random_{fmt}.bin               [N, B] u8     random blocks (not quantizer outputs)
    random_{fmt}_dequant.bin       [N, 32] f32   gguf.quants.dequantize(random_{fmt}.bin)
        q8_0/q4_0/q4_1: N = 64, finite f16 scales (subnormals included, no Inf/NaN);
        mxfp4_ggml: N = 256, block i has scale byte e = i (every E8M0 byte, 0 and 255 too)
    random_mxfp4_openai_{nibbles,scales}.bin  [256, 16] / [256] u8: random_mxfp4_ggml re-packed
    random_mxfp4_openai_dequant.bin           [256, 32] f32  HF rule

Known gguf-py vs ggml-quants.c differences, avoided by the input (and tested separately in C++):
  * Q4_0 all-zero block whose first element is -0.0: ggml-quants.c starts `max` at +0.0 and only
    replaces it on a strictly larger |v|, so d = +0/-8 = -0.0 (f16 0x8000); gguf-py takes
    `blocks[argmax|blocks|]` = the first element, -0.0, so d = +0.0 (0x0000).
  * Q4_1 blocks whose minimum is a zero that occurs with both signs: C keeps the first zero,
    numpy's min reduction may return either.
  * MXFP4 blocks with 0 < amax < 2^-125: ggml-quants.c converts a negative float to uint8
    (undefined behaviour); precis clamps e to 0.
  The MXFP4 exponent e = floor(log2f(amax)) - 2 + 127 depends on log2f rounding to the nearest
  float just below powers of two; numpy's float32 log2 and glibc's log2f agree on every input
  used here (the script asserts it where a C library is loadable).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import pathlib
import struct
import sys

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as QT
    from gguf import quants as gq
except ImportError:  # pragma: no cover
    sys.exit("gguf is missing: tools/.venv/bin/pip install gguf")

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "quant"
ROWS, K, QK = 8, 256, 32
SEED = 20240917

FORMATS = {"q8_0": QT.Q8_0, "q4_0": QT.Q4_0, "q4_1": QT.Q4_1, "mxfp4_ggml": QT.MXFP4}
BLOCK_BYTES = {"q8_0": 34, "q4_0": 18, "q4_1": 20, "mxfp4_ggml": 17}

# HF transformers integrations/mxfp4.py FP4_VALUES / OpenAI weights.py: note -0.0 at nibble 8.
FP4_VALUES = [+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
              -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def write_array(name: str, arr: np.ndarray) -> None:
    assert arr.dtype in (np.uint8, np.float32), arr.dtype
    assert 1 <= arr.ndim <= 4
    dims = list(arr.shape) + [1] * (4 - arr.ndim)
    header = b"PRECQNT1" + struct.pack("<II4Q", arr.ndim, arr.dtype.itemsize, *dims)
    assert len(header) == 48
    data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    (OUT / name).write_bytes(header + data)


def make_input(rng: np.random.Generator) -> np.ndarray:
    """[ROWS, K] f32 rows chosen to exercise every branch of the reference quantisers."""
    x = np.zeros((ROWS, K), dtype=np.float32)
    x[0] = rng.standard_normal(K)                                   # plain weights
    x[1] = rng.standard_normal(K) * 1e-3                            # f16 scales become subnormal
    x[2] = rng.standard_normal(K) * 50.0
    x[2, rng.choice(K, 6, replace=False)] *= 20.0                   # outliers dominate their block
    x[3] = rng.uniform(-1.0, 3.0, K)                                # offset blocks (Q4_1's min)
    # Row 4: one hand-made block per rounding rule.
    b = x[4].reshape(K // QK, QK)
    b[0] = 0.0                                                      # all +0: d = 0 paths
    b[1] = 0.7                                                      # constant: Q4_1 d = 0, m = 0.7
    b[2] = -np.abs(rng.standard_normal(QK)) - 0.1                   # max |v| is negative (Q4_0 sign)
    b[3] = np.concatenate([[127.0, -127.0], np.arange(-7.5, 7.5, 1.0), [0.5, -0.5, 2.5, -2.5, 0.0, 1.0,
                                                                        -1.0, 100.5, -100.5, 126.5,
                                                                        -126.5, 63.5, -63.5, 3.0,
                                                                        -3.0]])  # Q8_0: d = 1, roundf ties
    b[4] = np.array([8.0, 0.5, 1.5, 2.5, 3.5, 5.0, 7.0, 10.0, -0.5, -1.5, -2.5, -3.5, -5.0, -7.0,
                     -10.0, 0.25, 0.75, 1.25, 1.75, 4.5, 6.5, 9.0, 11.0, -0.25, -0.75, -4.5, -6.5,
                     -9.0, -11.0, 6.0, -6.0, 0.0], dtype=np.float32)  # MXFP4 with s = 1: ties
    b[5] = np.concatenate([[-8.0], np.arange(-7.5, 8.0, 0.5)])  # Q4_0: d = 1, x + 8.5 ties
    b[6] = rng.standard_normal(QK) * 1e-30                          # tiny (f16 scales flush to 0)
    b[7] = rng.standard_normal(QK)
    b[7, 5] = np.nextafter(np.float32(128.0), np.float32(0.0))      # log2f(amax) rounds up to 7
    # Row 5: MXFP4 amax just below (and at) powers of two, where the float log2 may round up.
    b = x[5].reshape(K // QK, QK)
    for i, k in enumerate([-20, -3, 1, 2, 3, 7, 15, 5]):
        b[i] = rng.uniform(-1.0, 1.0, QK) * np.float32(2.0 ** (k - 1))
        p = np.float32(2.0 ** k)
        b[i, i] = p if i == 7 else np.nextafter(p, np.float32(0.0)) * (1 if i % 2 else -1)
    # Row 6: wide dynamic range, one exponent per block (f16 scales stay finite).
    exps = rng.integers(-20, 12, K // QK)
    x[6] = (rng.standard_normal(K).reshape(K // QK, QK) * np.ldexp(1.0, exps)[:, None]).ravel()
    # Row 7: heavy tails.
    x[7] = rng.standard_t(2.0, K)
    return x.astype(np.float32)


def hf_dequantize(nibbles: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """HF convert_moe_packed_tensors / OpenAI weights.py in numpy, in float32."""
    lut = np.array(FP4_VALUES, dtype=np.float32)
    idx_lo = (nibbles & 0x0F).astype(np.intp)
    idx_hi = (nibbles >> 4).astype(np.intp)
    out = np.empty(nibbles.shape[:-1] + (nibbles.shape[-1] * 2,), dtype=np.float32)
    out[..., 0::2] = lut[idx_lo]
    out[..., 1::2] = lut[idx_hi]
    exp = scales.astype(np.int32) - 127
    with np.errstate(over="ignore"):
        out = np.ldexp(out, exp[..., None])
    assert out.dtype == np.float32
    return out.reshape(*nibbles.shape[:-2], nibbles.shape[-2] * nibbles.shape[-1] * 2)


def ggml_mxfp4_to_openai(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[..., 17] ggml blocks {e, qs[16]} -> ([..., 16] HF nibbles, [...] scales)."""
    e = blocks[..., 0]
    qs = blocks[..., 1:]
    codes = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)           # element j and j+16 -> 0..31
    packed = (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)
    return packed, e.copy()


def random_blocks(rng: np.random.Generator, fmt: str, n: int) -> np.ndarray:
    b = rng.integers(0, 256, (n, BLOCK_BYTES[fmt]), dtype=np.uint8)
    if fmt == "mxfp4_ggml":
        b[:, 0] = np.arange(n, dtype=np.uint8)                      # every E8M0 byte once
        return b
    n_half = 2 if fmt == "q4_1" else 1                              # d (and m for Q4_1)
    for h in range(n_half):
        bits = rng.integers(0, 0x7C00, n, dtype=np.uint16)          # finite magnitudes only
        bits |= (rng.integers(0, 2, n, dtype=np.uint16) << 15)
        bits[:4] = [0x0000, 0x8000, 0x0001, 0x7BFF]                 # ±0, smallest subnormal, max
        b[:, 2 * h:2 * h + 2] = bits.astype("<u2").view(np.uint8).reshape(n, 2)
    return b


def check_log2_agreement(x: np.ndarray) -> None:
    """numpy's float32 log2 and the C library's log2f must floor identically on every amax."""
    name = ctypes.util.find_library("m")
    if name is None:
        print("note: no C math library found; log2f agreement not checked")
        return
    libm = ctypes.CDLL(name)
    libm.log2f.restype = ctypes.c_float
    libm.log2f.argtypes = [ctypes.c_float]
    amax = np.abs(x.reshape(-1, QK)).max(axis=1)
    for a in amax[amax > 0]:
        assert np.floor(np.log2(a)) == np.floor(libm.log2f(float(a))), a


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    x = make_input(rng)
    assert x.shape == (ROWS, K) and np.all(np.isfinite(x))
    check_log2_agreement(x)
    write_array("input_f32.bin", x)

    for fmt, qt in FORMATS.items():
        q = gq.quantize(x, qt)
        assert q.dtype == np.uint8 and q.shape == (ROWS, K // QK * BLOCK_BYTES[fmt]), q.shape
        y = gq.dequantize(q, qt)
        assert y.dtype == np.float32 and y.shape == (ROWS, K)
        write_array(f"{fmt}.bin", q)
        write_array(f"{fmt}_dequant.bin", y)
        if fmt == "mxfp4_ggml":
            nib, sc = ggml_mxfp4_to_openai(q.reshape(ROWS, K // QK, 17))
            write_array("mxfp4_openai_nibbles.bin", nib)
            write_array("mxfp4_openai_scales.bin", sc)
            y_hf = hf_dequantize(nib, sc)
            # Same numbers in both layouts (== ignores the sign of zero, which differs: the HF
            # table has -0.0 at nibble 8, ggml's kvalues a plain 0).
            assert np.array_equal(y_hf, y), "HF and ggml MXFP4 rules disagree"
            write_array("mxfp4_openai_dequant.bin", y_hf)

    for fmt, qt in FORMATS.items():
        n = 256 if fmt == "mxfp4_ggml" else 64
        blocks = random_blocks(rng, fmt, n)
        with np.errstate(over="ignore"):  # E8M0 byte 255 with |code| >= 2 overflows to ±Inf, as in ggml
            y = gq.dequantize(blocks, qt).reshape(n, QK)
        assert y.dtype == np.float32
        write_array(f"random_{fmt}.bin", blocks)
        write_array(f"random_{fmt}_dequant.bin", y)
        if fmt == "mxfp4_ggml":
            nib, sc = ggml_mxfp4_to_openai(blocks)
            y_hf = hf_dequantize(nib[:, None, :], sc[:, None]).reshape(n, QK)
            finite = np.isfinite(y)
            assert np.array_equal(y_hf[finite], y[finite]) and np.array_equal(np.isinf(y_hf), np.isinf(y))
            write_array("random_mxfp4_openai_nibbles.bin", nib)
            write_array("random_mxfp4_openai_scales.bin", sc)
            write_array("random_mxfp4_openai_dequant.bin", y_hf)

    total = sum(p.stat().st_size for p in OUT.glob("*.bin"))
    print(f"wrote {len(list(OUT.glob('*.bin')))} files, {total} bytes, to {OUT} (gguf {gguf_version()})")


def gguf_version() -> str:
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # pragma: no cover
        return "?"


if __name__ == "__main__":
    main()
