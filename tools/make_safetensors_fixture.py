#!/usr/bin/env python3
"""Writes tests/fixtures/safetensors/reference.safetensors with the reference implementation.

The file is produced by HuggingFace's own `safetensors` package (Rust serializer, via
`safetensors.numpy.save_file`; bf16 and fp8 arrays come from ml_dtypes), so reading it in
tests/unit/io/test_safetensors_interop.cpp proves precis' reader agrees with the format's
reference writer: its dtype strings, its tensor ordering (by alignment, then name), its header
padding and its metadata. Every value is exactly representable in its dtype, so the C++ test
can compare against literals without any rounding question.

Re-runnable: `tools/.venv/bin/python tools/make_safetensors_fixture.py` rewrites the file with
the same tensors and bytes (the Rust writer may order the `__metadata__` keys differently).
"""

import json
import pathlib
import struct

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "safetensors" / "reference.safetensors"


def tensors() -> dict:
    return {
        "f64": np.array([1.0 / 3.0, -1e300, 2.0**-1074], dtype=np.float64),
        "f32": (np.arange(6, dtype=np.float32) * 0.5 - 1.0).reshape(2, 3),
        "f16": np.array([0.5, -1024.0, 2.0**-14, 65504.0], dtype=np.float16),
        "bf16": np.array([1.0, -2.5, 0.15625, 65536.0], dtype=ml_dtypes.bfloat16),
        "f8_e4m3": np.array([0.5, -448.0, 2.0**-9, 1.75], dtype=ml_dtypes.float8_e4m3fn),
        "f8_e5m2": np.array([0.5, -57344.0, 2.0**-16], dtype=ml_dtypes.float8_e5m2),
        "i64": np.array([-1, 2**40, 7], dtype=np.int64),
        "i32": np.array([[-2147483648, 2147483647], [0, -5]], dtype=np.int32),
        "i16": np.array([-32768, 12345], dtype=np.int16),
        "u16": np.array([65535, 1], dtype=np.uint16),
        "u32": np.array([4294967295, 2], dtype=np.uint32),
        "u64": np.array([2**64 - 1, 3], dtype=np.uint64),
        "i8": np.array([-128, 127, 0], dtype=np.int8),
        "u8": np.arange(5, dtype=np.uint8),
        "bool": np.array([True, False, True], dtype=np.bool_),
        "scalar": np.array(42.0, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    data = tensors()
    save_file(data, str(OUT), metadata={"format": "pt", "producer": "tools/make_safetensors_fixture.py"})
    # Self-check: safetensors.numpy cannot read bf16/fp8 back, so check the header and the
    # bytes of every tensor directly.
    raw = OUT.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header.pop("__metadata__")["format"] == "pt"
    assert set(header) == set(data)
    for name, value in data.items():
        begin, end = header[name]["data_offsets"]
        assert header[name]["shape"] == list(value.shape), name
        assert raw[8 + n + begin : 8 + n + end] == value.tobytes(), name
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
