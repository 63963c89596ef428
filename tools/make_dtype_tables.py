#!/usr/bin/env python3
"""Write the bit-exact scalar-conversion fixtures of tests/fixtures/dtype/.

precis' narrow float types (numeric/bfloat16.hpp, float16.hpp, float8.hpp, microscaling.hpp)
are tested against an independent implementation: ml_dtypes (the library JAX and many
checkpoint tools use), and numpy's float16 for IEEE binary16 (ml_dtypes has no float16 of its
own; it uses numpy's). The C++ tests read these tables and need no Python.

Run from anywhere (re-runnable; the output is deterministic for a given ml_dtypes/numpy):

    tools/.venv/bin/python tools/make_dtype_tables.py

File format (all integers little-endian), one table per file `<kind>_<format>.bin`:

    offset  size  field
    0       8     magic  b"PRECTBL1"
    8       4     u32    count        number of entries N
    12      1     u8     input_bytes  1, 2 or 4; 0 means "input i is the integer i" (decode
                                      tables over every bit pattern: nothing is stored)
    13      1     u8     output_bytes 1, 2 or 4
    14      2     u16    reserved     0
    16      N*input_bytes             inputs  (bit patterns)
    ...     N*output_bytes            outputs (bit patterns), entry i belongs to input i

Tables:

    decode_{bf16,f16,e4m3fn,e5m2}  every narrow bit pattern -> f32 bits of the widened value
    decode_fp4_e2m1                the 16 nibbles -> f32 bits (ml_dtypes float4_e2m1fn)
    decode_e8m0                    the 256 bytes -> f32 bits (ml_dtypes float8_e8m0fnu)
    encode_{bf16,f16,e4m3fn,e5m2}  f32 bits -> narrow bits, round to nearest even
    encode_fp4_e2m1                f32 bits -> nibble (ml_dtypes float4_e2m1fn)

Encode inputs, for each format: every non-NaN narrow value v exactly; for every finite v >= 0
the exact midpoint between v and its successor in magnitude (the tie) and the tie +- 1 f32 ulp,
with both signs (the successor of the largest finite value is the next binade step, so its
midpoint is the overflow threshold); a window of consecutive f32 values around that threshold
and large values up to FLT_MAX and +-Inf; NaNs with several payloads and both signs; f32
subnormals; a few thousand random f32 bit patterns and random values inside the format's
exponent range (fixed seed). Duplicate inputs are removed.

Where the reference output is NaN, the C++ tests only require a NaN (libraries legitimately
differ in the NaN's sign and payload: ml_dtypes returns a canonical NaN, precis keeps the sign
and top payload bits); every other output must match bit for bit.

FP4 E2M1 (MXFP4 elements): ml_dtypes 0.6's float4_e2m1fn *saturates* (+-Inf and every |x| > 5
go to +-6), which is also what the OCP MX v1.0 spec prescribes for conversion into MX element
types, and what precis' f32_to_fp4_e2m1 does. The encode_fp4_e2m1 table therefore contains no
NaN inputs: ml_dtypes maps NaN to an arbitrary signed zero (+NaN -> 0x8, i.e. -0), which is not
a behaviour to match; precis documents NaN -> (signed) 0.
"""

from __future__ import annotations

import pathlib
import struct
import sys

import ml_dtypes
import numpy as np

OUT_DIR = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "dtype"
MAGIC = b"PRECTBL1"
SEED = 20250601


def write_table(name: str, inputs: np.ndarray | None, outputs: np.ndarray) -> int:
    """Writes one table; `inputs=None` means the inputs are 0..N-1. Returns the file size."""
    outputs = np.ascontiguousarray(outputs)
    n = outputs.shape[0]
    in_bytes = 0 if inputs is None else inputs.dtype.itemsize
    if inputs is not None:
        assert inputs.shape[0] == n, name
    header = MAGIC + struct.pack("<IBBH", n, in_bytes, outputs.dtype.itemsize, 0)
    blob = header
    if inputs is not None:
        blob += inputs.astype(inputs.dtype.newbyteorder("<")).tobytes()
    blob += outputs.astype(outputs.dtype.newbyteorder("<")).tobytes()
    (OUT_DIR / f"{name}.bin").write_bytes(blob)
    return len(blob)


def f32_from_bits(bits) -> np.ndarray:
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def bits_of_f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).view(np.uint32)


class Format:
    """One narrow float format and its reference conversion type."""

    def __init__(self, name: str, ref_type, bits: int):
        self.name = name
        self.ref_type = ref_type
        self.bits = bits
        self.uint = np.uint8 if bits == 8 else np.uint16

    def decode(self, patterns: np.ndarray) -> np.ndarray:
        """Narrow bit patterns -> float32 values (the reference widening)."""
        with np.errstate(invalid="ignore"):
            return patterns.astype(self.uint).view(self.ref_type).astype(np.float32)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """float32 values -> narrow bit patterns (the reference rounding)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(x, dtype=np.float32).astype(self.ref_type).view(self.uint)


FORMATS = [
    Format("bf16", ml_dtypes.bfloat16, 16),
    Format("f16", np.float16, 16),
    Format("e4m3fn", ml_dtypes.float8_e4m3fn, 8),
    Format("e5m2", ml_dtypes.float8_e5m2, 8),
]
FP4 = Format("fp4_e2m1", ml_dtypes.float4_e2m1fn, 4)
FP4.uint = np.uint8


def positive_finite_values(fmt: Format) -> np.ndarray:
    """All finite values >= 0 of the format, ascending, as float64 (exact)."""
    n = 1 << fmt.bits
    pat = np.arange(n // 2, dtype=np.uint32)  # sign bit clear
    v = fmt.decode(pat)
    v = v[np.isfinite(v)].astype(np.float64)
    v = np.unique(v)  # ascending; removes nothing for these formats but keeps the order exact
    assert v[0] == 0.0
    return v


def tie_inputs(fmt: Format) -> np.ndarray:
    """v, the midpoint to v's successor, and midpoint +- 1 f32 ulp, for every finite v >= 0."""
    v = positive_finite_values(fmt)
    succ = np.empty_like(v)
    succ[:-1] = v[1:]
    succ[-1] = 2 * v[-1] - v[-2]  # the next step past the largest finite value (same binade)
    mid64 = (v + succ) / 2
    mid = mid64.astype(np.float32)
    assert np.all(mid.astype(np.float64) == mid64), f"{fmt.name}: a midpoint is not exact in f32"
    below = np.nextafter(mid, np.float32(0))
    above = np.nextafter(mid, np.float32(np.inf))
    pos = np.concatenate([v.astype(np.float32), mid, below, above])
    return np.concatenate([pos, -pos])


def overflow_inputs(fmt: Format) -> np.ndarray:
    v = positive_finite_values(fmt)
    threshold = np.float32((v[-1] + (2 * v[-1] - v[-2])) / 2)
    t = int(bits_of_f32(threshold))
    window = f32_from_bits(np.arange(t - 64, t + 65, dtype=np.uint32))
    big64 = np.array([v[-1] * 1.5, v[-1] * 2, v[-1] * 4, 1e20, 1e30, 3.0e38])
    big = big64[big64 <= np.finfo(np.float32).max].astype(np.float32)
    extremes = f32_from_bits([0x7F7FFFFF, 0x7F7FFFFE, 0x7F800000])  # FLT_MAX, its predecessor, +Inf
    pos = np.concatenate([window, big, extremes])
    return np.concatenate([pos, -pos])


def nan_inputs(rng: np.random.Generator) -> np.ndarray:
    payloads = [0x400000, 0x000001, 0x3FFFFF, 0x7FFFFF, 0x200000, 0x002000, 0x001FFF, 0x400001, 0x000100]
    payloads += [int(p) for p in rng.integers(1, 1 << 23, size=16)]
    bits = [0x7F800000 | p for p in payloads]
    bits += [0x80000000 | b for b in bits]
    return f32_from_bits(bits)


def subnormal_inputs(rng: np.random.Generator) -> np.ndarray:
    fixed = [0x00000001, 0x00000002, 0x00000003, 0x00007FFF, 0x00008000, 0x00008001, 0x00018000,
             0x00400000, 0x007FFFFF, 0x00000000]
    rand = [int(p) for p in rng.integers(1, 1 << 23, size=256)]
    bits = fixed + rand
    bits += [0x80000000 | b for b in bits]
    return f32_from_bits(bits)


def random_inputs(fmt: Format, rng: np.random.Generator, count: int) -> np.ndarray:
    """Uniform random bit patterns, plus random values whose exponent lies in the format's range."""
    anybits = rng.integers(0, 1 << 32, size=count, dtype=np.uint64).astype(np.uint32)
    v = positive_finite_values(fmt)
    e_min = int(np.floor(np.log2(v[1]))) - 2  # below the smallest subnormal
    e_max = int(np.floor(np.log2(v[-1]))) + 2  # past the overflow threshold
    lo, hi = max(e_min + 127, 1), min(e_max + 127, 254)  # keep them normal f32 numbers
    exps = rng.integers(lo, hi + 1, size=count, dtype=np.int64).astype(np.uint32)
    mants = rng.integers(0, 1 << 23, size=count, dtype=np.uint64).astype(np.uint32)
    signs = rng.integers(0, 2, size=count, dtype=np.uint64).astype(np.uint32) << 31
    inrange = signs | (exps << 23) | mants
    return f32_from_bits(np.concatenate([anybits, inrange]))


def encode_table(fmt: Format, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    all_pat = np.arange(1 << fmt.bits, dtype=np.uint32)
    exact = fmt.decode(all_pat)
    exact = exact[~np.isnan(exact)]  # includes +-Inf where the format has them
    x = np.concatenate([exact, tie_inputs(fmt), overflow_inputs(fmt), nan_inputs(rng), subnormal_inputs(rng),
                        random_inputs(fmt, rng, 4096)]).astype(np.float32)
    inputs = np.unique(bits_of_f32(x))
    outputs = fmt.encode(f32_from_bits(inputs))
    return inputs, outputs


def self_check_ties(fmt: Format) -> None:
    """Sanity check of the reference itself: at every exact tie it picked an even code."""
    v = positive_finite_values(fmt)
    mids = ((v[:-1] + v[1:]) / 2).astype(np.float32)
    got = fmt.encode(mids).astype(np.uint32)
    assert np.all((got & 1) == 0), f"{fmt.name}: reference did not round a tie to even"


def fp4_encode_table(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=np.float64)
    succ = np.append(values[1:], 8.0)  # past 6 the next E2M1 step would be 8
    mid = ((values + succ) / 2).astype(np.float32)
    pos = np.concatenate([values.astype(np.float32), mid, np.nextafter(mid, np.float32(0)),
                          np.nextafter(mid, np.float32(np.inf)),
                          np.array([6.5, 8, 100, 1e30], dtype=np.float32),
                          f32_from_bits([0x7F7FFFFF, 0x7F800000])])
    dense = np.linspace(0, 8, 8193, dtype=np.float32)  # step 2^-10: every region of the grid
    rand = rng.uniform(-10, 10, size=4096).astype(np.float32)
    x = np.concatenate([pos, -pos, dense, -dense, rand, subnormal_inputs(rng)])
    inputs = np.unique(bits_of_f32(x))
    assert not np.any(np.isnan(f32_from_bits(inputs)))
    outputs = FP4.encode(f32_from_bits(inputs))
    return inputs, outputs


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    total = 0
    for fmt in FORMATS:
        patterns = np.arange(1 << fmt.bits, dtype=np.uint32)
        total += write_table(f"decode_{fmt.name}", None, bits_of_f32(fmt.decode(patterns)))
        inputs, outputs = encode_table(fmt, rng)
        self_check_ties(fmt)
        total += write_table(f"encode_{fmt.name}", inputs, outputs.astype(fmt.uint))
        print(f"{fmt.name}: {len(inputs)} encode inputs")

    nibbles = np.arange(16, dtype=np.uint8)
    total += write_table("decode_fp4_e2m1", None, bits_of_f32(FP4.decode(nibbles)))
    e8m0 = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e8m0fnu).astype(np.float32)
    total += write_table("decode_e8m0", None, bits_of_f32(e8m0))
    inputs, outputs = fp4_encode_table(rng)
    total += write_table("encode_fp4_e2m1", inputs, outputs.astype(np.uint8))
    print(f"fp4_e2m1: {len(inputs)} encode inputs")
    print(f"wrote {total} bytes to {OUT_DIR} (ml_dtypes {ml_dtypes.__version__}, numpy {np.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
