#!/usr/bin/env python3
"""Writes the seed corpus of the safetensors header fuzzer: tests/fuzz/corpus/safetensors/.

Seeds named `valid_*` must parse; seeds named `invalid_*` must be rejected with a
precis::format_error (tests/unit/io/test_fuzz_corpus_replay.cpp checks both, so the corpus is
also a regression suite for g++ builds that do not run the fuzzer). Each invalid seed breaks one
rule of model-semantics.md §1e, starting from a valid file, so the fuzzer starts next to every
validation branch. Inputs the fuzzer finds later can be added as `regress_*` (must not crash).

Re-runnable: `tools/.venv/bin/python tests/fuzz/make_corpus.py` deletes the `valid_*` and
`invalid_*` seeds and writes them again (`regress_*` files are kept). Needs only the standard
library, plus the `safetensors` package for one seed written by the reference implementation.
"""

import json
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "safetensors"


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def pack(header, buffer=b"", declared_len=None, pad=True):
    """A safetensors file from a header (dict, or a raw str/bytes) and a data buffer."""
    if isinstance(header, dict):
        text = json.dumps(header, separators=(",", ":")).encode()
    elif isinstance(header, str):
        text = header.encode()
    else:
        text = header
    if pad:
        text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    n = len(text) if declared_len is None else declared_len
    return struct.pack("<Q", n) + text + buffer


def seeds():
    two = {"a": entry("F32", [2], 0, 8), "b": entry("U8", [3], 8, 11)}
    buf = bytes(range(11))
    s = {}

    # --- valid ---------------------------------------------------------------------------------
    s["valid_two_tensors"] = pack(two, buf)
    s["valid_metadata"] = pack({"__metadata__": {"format": "pt", "k": "v"}, **two}, buf)
    s["valid_empty_header"] = pack({})
    s["valid_scalar_and_empty"] = pack(
        {"s": entry("F64", [], 0, 8), "z": entry("BF16", [0, 4], 8, 8), "z0": entry("I32", [0], 0, 0)}, bytes(8)
    )
    # Every supported dtype, tiled back to back.
    off = 0
    hdr = {}
    for name, size in [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("F8_E4M3", 1), ("F8_E5M2", 1), ("I8", 1),
                       ("U8", 1), ("I16", 2), ("U16", 2), ("I32", 4), ("U32", 4), ("I64", 8), ("U64", 8),
                       ("BOOL", 1)]:
        hdr["t_" + name] = entry(name, [2, 1], off, off + 2 * size)
        off += 2 * size
    s["valid_all_dtypes"] = pack(hdr, bytes(off))
    s["valid_unpadded_header"] = pack(two, buf, pad=False)
    s["valid_utf8_names"] = pack({"é€😀": entry("U8", [1], 0, 1)}, b"\x01")
    try:
        import numpy as np
        from safetensors.numpy import save

        s["valid_reference_writer"] = save(
            {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([1, 2], dtype=np.int64)},
            metadata={"format": "pt"},
        )
    except ImportError:  # the seed is optional; the others need only the standard library
        pass

    # --- invalid: the prefix and the header bounds ----------------------------------------------
    s["invalid_empty_file"] = b""
    s["invalid_truncated_prefix"] = b"\x10\x00\x00"
    s["invalid_truncated_header"] = pack(two, buf)[:20]
    s["invalid_huge_header_length"] = pack(two, buf, declared_len=100_000_001)
    s["invalid_max_header_length"] = pack(two, buf, declared_len=2**64 - 1)
    s["invalid_header_past_eof"] = pack(two, b"", declared_len=4096)
    s["invalid_zero_header_length"] = pack(b"", b"", declared_len=0, pad=False)
    # --- invalid: encoding and syntax -----------------------------------------------------------
    s["invalid_utf8"] = pack(b'{"\xff\xfe":{}}')
    s["invalid_utf8_overlong"] = pack(b'{"\xc0\xaf":{}}')
    s["invalid_utf8_surrogate"] = pack(b'{"\xed\xa0\x80":{}}')
    s["invalid_json"] = pack('{"a":{"dtype":"F32",}')
    s["invalid_json_trailing"] = pack("{} {}")
    s["invalid_json_nul"] = pack(b"{}\x00junk", pad=False)
    s["invalid_not_object"] = pack("[1,2,3]")
    s["invalid_leading_space"] = pack(" {}")
    s["invalid_duplicate_tensor"] = pack('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                         '"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x00")
    s["invalid_duplicate_field"] = pack('{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x00")
    s["invalid_deep_nesting"] = pack('{"a":' + "[" * 200 + "]" * 200 + "}")
    # --- invalid: entries -----------------------------------------------------------------------
    s["invalid_entry_not_object"] = pack({"a": [1, 2]})
    s["invalid_missing_dtype"] = pack({"a": {"shape": [2], "data_offsets": [0, 8]}}, bytes(8))
    s["invalid_missing_shape"] = pack({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, bytes(8))
    s["invalid_missing_offsets"] = pack({"a": {"dtype": "F32", "shape": [2]}}, bytes(8))
    s["invalid_dtype_not_string"] = pack({"a": entry(7, [2], 0, 8)}, bytes(8))
    s["invalid_unknown_dtype"] = pack({"a": entry("F17", [2], 0, 8)}, bytes(8))
    s["invalid_unsupported_dtype_f4"] = pack({"a": entry("F4", [16], 0, 8)}, bytes(8))
    s["invalid_unsupported_dtype_c64"] = pack({"a": entry("C64", [1], 0, 8)}, bytes(8))
    s["invalid_unsupported_dtype_e8m0"] = pack({"a": entry("F8_E8M0", [8], 0, 8)}, bytes(8))
    s["invalid_negative_shape"] = pack({"a": entry("F32", [-2], 0, 8)}, bytes(8))
    s["invalid_float_shape"] = pack({"a": entry("F32", [2.5], 0, 8)}, bytes(8))
    s["invalid_shape_overflow"] = pack({"a": entry("U8", [2**32, 2**32], 0, 8)}, bytes(8))
    s["invalid_bytes_overflow"] = pack({"a": entry("F64", [2**61], 0, 8)}, bytes(8))
    s["invalid_shape_too_large"] = pack({"a": entry("U8", [2**63], 0, 8)}, bytes(8))
    s["invalid_offsets_reversed"] = pack({"a": entry("F32", [0], 8, 0)}, bytes(8))
    s["invalid_offsets_negative"] = pack({"a": entry("F32", [2], -8, 0)}, bytes(8))
    s["invalid_offsets_three"] = pack({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8]}}, bytes(8))
    s["invalid_out_of_range_offsets"] = pack({"a": entry("F32", [4], 0, 16)}, bytes(8))
    s["invalid_huge_offsets"] = pack({"a": entry("F32", [2], 2**64 - 9, 2**64 - 1)}, bytes(8))
    s["invalid_size_mismatch"] = pack({"a": entry("F32", [3], 0, 8)}, bytes(8))
    # --- invalid: tiling ------------------------------------------------------------------------
    s["invalid_overlapping_offsets"] = pack({"a": entry("U8", [8], 0, 8), "b": entry("U8", [8], 4, 12)}, bytes(12))
    s["invalid_hole"] = pack({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 8, 12)}, bytes(12))
    s["invalid_hole_at_start"] = pack({"a": entry("U8", [4], 4, 8)}, bytes(8))
    s["invalid_trailing_bytes"] = pack(two, buf + b"\x00\x00")
    # --- invalid: metadata ----------------------------------------------------------------------
    s["invalid_metadata_not_object"] = pack({"__metadata__": ["a"]})
    s["invalid_metadata_value"] = pack({"__metadata__": {"n": 1}})
    return s


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in list(OUT.glob("valid_*")) + list(OUT.glob("invalid_*")):
        old.unlink()
    all_seeds = seeds()
    for name, data in sorted(all_seeds.items()):
        (OUT / (name + ".safetensors")).write_bytes(data)
    print(f"wrote {len(all_seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
