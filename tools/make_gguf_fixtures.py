#!/usr/bin/env python3
"""Write the GGUF reader's fixtures (tests/fixtures/gguf/) and the GGUF fuzzer's seed corpus
(tests/fuzz/corpus/gguf/).

The reference writer is gguf-py (`pip install gguf`, 0.19.0; llama.cpp's own Python package):
`gguf.GGUFWriter` writes the files, `gguf.quants.quantize` / `gguf.quants.dequantize` (numpy
ports of ggml-quants.c's reference quantisers and dequantisers) produce the block bytes and the
expected values, and `gguf.GGUFReader` (a reader precis shares no code with) reads the written
file back to record the tensor offsets and metadata in file order. gguf-py 0.19 supports MXFP4
in `gguf.quants`, so every block format comes from it; no block is built by hand.

Run from anywhere (re-runnable; the output is deterministic for a given gguf/numpy):

    tools/.venv/bin/python tools/make_gguf_fixtures.py

Fixtures (tests/fixtures/gguf/):

    reference.gguf       GGUF v3, general.alignment = 64 (not the default 32), architecture
                         "precis_fixture"; a metadata value of every type (12 scalar types plus
                         arrays of each, unicode strings, an array of strings with an empty one,
                         extreme integers); tensors in F32 (1-D, 3-D), F16, BF16, F64, I8, I16,
                         I32, I64, Q8_0, Q4_0, Q4_1 (3-D), MXFP4, and one Q4_K (random blocks, read
                         as q4_K); non-square shapes so a reader that
                         forgets to reverse GGUF's dims fails.
    reference.json       the sidecar: metadata in file order (type, array type, value), and per
                         tensor its row-major shape, ggml type, offset, byte size, bytes (hex) and
                         expected values (gguf.quants.dequantize for block types, numpy's values
                         widened to float64 for element types).
    nested_array.gguf    gguf-py writes an array of arrays when asked to; ggml's reader (and
                         precis) reject it. A real writer's output for that rejection path.

Seed corpus (tests/fuzz/corpus/gguf/): `valid_*` files must parse, `invalid_*` must be rejected
with a precis::format_error (tests/unit/gguf/test_gguf_fuzz_corpus_replay.cpp checks both); each
invalid seed breaks one rule of model-semantics.md §1d starting from a valid file, built here
byte by byte (the writer refuses to produce them). Fuzzer finds are added as `regress_*` and are
kept when this script re-runs.
"""

import json
import pathlib
import shutil
import struct

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "gguf"
CORPUS = ROOT / "tests" / "fuzz" / "corpus" / "gguf"

TYPE_NAMES = {
    VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32", VT.INT32: "i32",
    VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "string", VT.ARRAY: "array", VT.UINT64: "u64",
    VT.INT64: "i64", VT.FLOAT64: "f64",
}

# (key, value type, value[, array element type]). The keys are in the order they are written.
METADATA = [
    ("test.u8", VT.UINT8, 255),
    ("test.i8", VT.INT8, -128),
    ("test.u16", VT.UINT16, 65535),
    ("test.i16", VT.INT16, -32768),
    ("test.u32", VT.UINT32, 4294967295),
    ("test.i32", VT.INT32, -2147483648),
    ("test.f32", VT.FLOAT32, 0.1),  # stored as the f32 nearest to 0.1
    ("test.bool_true", VT.BOOL, True),
    ("test.bool_false", VT.BOOL, False),
    ("test.string", VT.STRING, "héllo wörld ✓ 日本語 🦙"),
    ("test.empty_string", VT.STRING, ""),
    ("test.u64", VT.UINT64, 2**64 - 1),
    ("test.i64", VT.INT64, -(2**63)),
    ("test.f64", VT.FLOAT64, -1.0e300),
    ("test.small_u64", VT.UINT64, 7),
    ("test.neg_i32", VT.INT32, -5),
    ("test.arr_u8", VT.ARRAY, [0, 1, 254, 255], VT.UINT8),
    ("test.arr_i8", VT.ARRAY, [-128, -1, 0, 127], VT.INT8),
    ("test.arr_u16", VT.ARRAY, [0, 65535], VT.UINT16),
    ("test.arr_i16", VT.ARRAY, [-32768, 32767], VT.INT16),
    ("test.arr_u32", VT.ARRAY, [1, 2, 3, 4294967295], VT.UINT32),
    ("test.arr_i32", VT.ARRAY, [3, -1, 2147483647, -2147483648, 0], VT.INT32),
    ("test.arr_f32", VT.ARRAY, [0.5, -2.25, 1.0e-3, 3.0e38], VT.FLOAT32),
    ("test.arr_bool", VT.ARRAY, [True, False, True], VT.BOOL),
    ("test.arr_string", VT.ARRAY, ["a", "", "ünïcödé", "日本", "<0x0A>", "▁the"], VT.STRING),
    ("test.arr_u64", VT.ARRAY, [0, 2**64 - 1, 5], VT.UINT64),
    ("test.arr_i64", VT.ARRAY, [-(2**63), 2**63 - 1, -7], VT.INT64),
    ("test.arr_f64", VT.ARRAY, [1.5, -0.0, 1.0e-300], VT.FLOAT64),
]


def make_tensors(rng):
    """(name, ggml type, row-major values as float32/float64/int numpy array)."""
    t = []
    t.append(("f32_1d", QT.F32, rng.standard_normal(7).astype(np.float32)))
    t.append(("f32_3d", QT.F32, rng.standard_normal((2, 3, 5)).astype(np.float32)))
    t.append(("f16_2d", QT.F16, rng.standard_normal((3, 5)).astype(np.float32)))
    t.append(("bf16_2d", QT.BF16, rng.standard_normal((4, 3)).astype(np.float32)))
    t.append(("f64_2d", QT.F64, rng.standard_normal((2, 3))))
    t.append(("i8_1d", QT.I8, np.array([-128, -1, 0, 127, 5], dtype=np.int8)))
    t.append(("i16_2d", QT.I16, np.array([[-32768, 2, 3], [4, 5, 32767]], dtype=np.int16)))
    t.append(("i32_1d", QT.I32, np.array([-2147483648, -1, 0, 2147483647], dtype=np.int32)))
    t.append(("i64_1d", QT.I64, np.array([-(2**63), 2**63 - 1, 42], dtype=np.int64)))
    # Block types: the innermost extent is a multiple of 32; the others are not square.
    t.append(("q8_0_2d", QT.Q8_0, (rng.standard_normal((3, 64)) * 2.0).astype(np.float32)))
    t.append(("q4_0_2d", QT.Q4_0, rng.standard_normal((2, 96)).astype(np.float32)))
    t.append(("q4_1_3d", QT.Q4_1, (rng.standard_normal((2, 3, 32)) + 1.0).astype(np.float32)))
    mx = rng.standard_normal((3, 64)).astype(np.float32)
    mx[1] *= 100.0  # another E8M0 scale
    mx[2, :32] *= 1.0e-3
    t.append(("mxfp4_2d", QT.MXFP4, mx))
    return t


def stored_bytes(qtype, values):
    """The tensor as gguf-py stores it: (array to hand to add_tensor, raw_dtype or None)."""
    if qtype == QT.F32:
        return values.astype(np.float32), None
    if qtype == QT.F16:
        return values.astype(np.float16), None
    if qtype == QT.F64:
        return values.astype(np.float64), None
    if qtype in (QT.I8, QT.I16, QT.I32, QT.I64):
        return values, None
    # BF16 and the block formats: gguf.quants gives the raw bytes, typed by raw_dtype.
    return gguf.quants.quantize(values, qtype), qtype


def expected_values(qtype, stored, values):
    if qtype in (QT.I8, QT.I16, QT.I32, QT.I64):
        return [int(v) for v in values.reshape(-1)]
    if qtype in (QT.F32, QT.F16, QT.F64):
        return [float(v) for v in stored.astype(np.float64).reshape(-1)]
    deq = gguf.quants.dequantize(stored, qtype)  # float32, row-major logical shape
    assert deq.shape == values.shape, (deq.shape, values.shape)
    return [float(v) for v in deq.astype(np.float64).reshape(-1)]


def write_reference():
    rng = np.random.default_rng(20250117)
    path = FIXTURES / "reference.gguf"
    w = gguf.GGUFWriter(str(path), "precis_fixture")
    w.add_custom_alignment(64)
    for entry in METADATA:
        key, vtype, value = entry[:3]
        sub = entry[3] if len(entry) > 3 else None
        w.add_key_value(key, value, vtype, sub_type=sub)

    tensors = make_tensors(rng)
    sidecar_tensors = []
    for name, qtype, values in tensors:
        arr, raw = stored_bytes(qtype, values)
        w.add_tensor(name, arr, raw_dtype=raw)
        sidecar_tensors.append({
            "name": name,
            "ggml_type": int(qtype),
            "type_name": qtype.name,
            "shape": list(values.shape),
            "bytes_hex": arr.tobytes().hex(),
            "values": expected_values(qtype, arr, values),
        })
    # Q4_K: random bytes (gguf-py 0.19 cannot quantize Q4_K); the C++ test checks it loads as q4_K blocks.
    q4k = rng.integers(0, 256, size=(2, 144), dtype=np.uint8)
    w.add_tensor("blk.0.attn_q.weight", q4k, raw_dtype=QT.Q4_K)
    sidecar_tensors.append({
        "name": "blk.0.attn_q.weight", "ggml_type": int(QT.Q4_K), "type_name": "Q4_K", "shape": [2, 256],
        "bytes_hex": q4k.tobytes().hex(), "values": None,
    })

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # Read back with gguf-py's reader: offsets, sizes, and the metadata in file order.
    r = gguf.GGUFReader(str(path))
    by_name = {t.name: t for t in r.tensors}
    for t in sidecar_tensors:
        rt = by_name[t["name"]]
        t["offset"] = int(rt.data_offset - r.data_offset)
        t["nbytes"] = int(rt.n_bytes)
        assert bytes(np.asarray(rt.data).tobytes()) == bytes.fromhex(t["bytes_hex"]), t["name"]
        assert list(reversed([int(d) for d in rt.shape])) == t["shape"] or t["shape"] == [int(d) for d in rt.shape[::-1]]
    meta = []
    for field in r.fields.values():
        if field.name.startswith("GGUF."):
            continue  # the reader's pseudo-fields for the header
        vtype = field.types[0]
        entry = {"key": field.name, "type": TYPE_NAMES[vtype]}
        if vtype == VT.ARRAY:
            entry["array_type"] = TYPE_NAMES[field.types[-1]]
            entry["value"] = [jsonable(v) for v in field.contents()]
        else:
            entry["value"] = jsonable(field.contents())
        meta.append(entry)
    sidecar = {
        "file": "reference.gguf",
        "writer": "gguf-py " + gguf_version(),
        "version": 3,
        "alignment": 64,
        "data_offset": int(r.data_offset),
        "architecture": "precis_fixture",
        "metadata": meta,
        "tensors": sidecar_tensors,
    }
    (FIXTURES / "reference.json").write_text(json.dumps(sidecar, ensure_ascii=False, indent=1) + "\n")
    return path


def jsonable(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8")
    return v


def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # pragma: no cover
        return "unknown"


def write_nested_array():
    path = FIXTURES / "nested_array.gguf"
    w = gguf.GGUFWriter(str(path), "precis_fixture")
    w.add_key_value("test.nested", [[1, 2], [3, 4, 5]], VT.ARRAY, sub_type=VT.ARRAY)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ------------------------------------------------------------------------------------------------
# Hand-built files for the seed corpus
# ------------------------------------------------------------------------------------------------


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


def kv_u32(key, v):
    return kv(key, 4, struct.pack("<I", v))


def kv_str(key, s):
    return kv(key, 8, gstr(s))


def kv_arr(key, elem_type, n, payload):
    return kv(key, 9, struct.pack("<IQ", elem_type, n) + payload)


def tinfo(name, dims, ggml_type, offset):
    return gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + \
        struct.pack("<IQ", ggml_type, offset)


def gguf_file(kvs, infos, data=b"", version=3, alignment=32, n_tensors=None, n_kv=None, magic=b"GGUF"):
    head = magic + struct.pack("<IQQ", version, len(infos) if n_tensors is None else n_tensors,
                                len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(infos)
    if infos or data:
        body += b"\0" * ((-len(body)) % alignment)
    return body + data


def corpus_seeds():
    arch = kv_str("general.architecture", "llama")
    f32x4 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    s = {}

    # --- valid ------------------------------------------------------------------------------
    s["valid_empty"] = gguf_file([], [])
    s["valid_v2"] = gguf_file([arch], [tinfo("t", [4], 0, 0)], f32x4, version=2)
    s["valid_one_f32"] = gguf_file([arch], [tinfo("t", [2, 2], 0, 0)], f32x4)
    s["valid_vocab"] = gguf_file(
        [arch, kv_str("tokenizer.ggml.model", "llama"),
         kv_arr("tokenizer.ggml.tokens", 8, 3, gstr("<s>") + gstr("") + gstr("▁a")),
         kv_arr("tokenizer.ggml.scores", 6, 3, struct.pack("<3f", 0, -1, -2)),
         kv_arr("tokenizer.ggml.token_type", 5, 3, struct.pack("<3i", 3, 1, 1)),
         kv_arr("empty", 4, 0, b""), kv("flag", 7, b"\x01")], [])
    s["valid_alignment_8"] = gguf_file(
        [arch, kv_u32("general.alignment", 8)],
        [tinfo("a", [2], 0, 0), tinfo("b", [3], 1, 8), tinfo("c", [32], 8, 16)],
        struct.pack("<2f", 1, 2) + struct.pack("<3e", 1, 2, 3) + b"\0\0" + b"\x00\x3c" + bytes(range(32)))
    s["valid_unsupported_type"] = gguf_file([arch], [tinfo("k", [256], 12, 0)], bytes(144))
    q4 = bytes([0x00, 0x3c]) + bytes(range(16))
    s["valid_blocks"] = gguf_file(
        [arch], [tinfo("q4_0", [32, 1], 2, 0), tinfo("mx", [32], 39, 32)],
        q4 + bytes(14) + bytes([127]) + bytes(range(16)))
    ref = FIXTURES / "reference.gguf"
    s["valid_reference"] = ref.read_bytes()

    # --- invalid: header ----------------------------------------------------------------------
    one = s["valid_one_f32"]
    s["invalid_empty_file"] = b""
    s["invalid_magic"] = b"GGML" + one[4:]
    s["invalid_version_1"] = one[:4] + struct.pack("<I", 1) + one[8:]
    s["invalid_version_4"] = one[:4] + struct.pack("<I", 4) + one[8:]
    s["invalid_version_big_endian"] = one[:4] + struct.pack(">I", 3) + one[8:]
    s["invalid_truncated_header"] = one[:20]
    s["invalid_huge_kv_count"] = gguf_file([arch], [], n_kv=2**62)
    s["invalid_huge_tensor_count"] = gguf_file([arch], [], n_tensors=2**40)

    # --- invalid: metadata --------------------------------------------------------------------
    s["invalid_key_length_past_eof"] = gguf_file([struct.pack("<Q", 2**40) + b"key" + bytes(16)], [], n_kv=1)
    s["invalid_value_type_13"] = gguf_file([kv("k", 13, b"\0" * 8)], [])
    s["invalid_nested_array"] = (FIXTURES / "nested_array.gguf").read_bytes()
    s["invalid_array_elem_type"] = gguf_file([kv_arr("k", 99, 1, b"\0" * 8)], [])
    s["invalid_array_count_past_eof"] = gguf_file([kv_arr("k", 10, 2**61, b"\0" * 8)], [])
    s["invalid_string_array_count"] = gguf_file([kv_arr("k", 8, 2**50, gstr("a"))], [])
    s["invalid_bool_2"] = gguf_file([kv("k", 7, b"\x02")], [])
    s["invalid_bool_array"] = gguf_file([kv_arr("k", 7, 3, b"\x00\x01\x05")], [])
    s["invalid_duplicate_key"] = gguf_file([arch, kv_u32("x", 1), kv_u32("x", 2)], [])
    s["invalid_alignment_not_u32"] = gguf_file([kv("general.alignment", 10, struct.pack("<Q", 32))], [])
    s["invalid_alignment_not_pow2"] = gguf_file([kv_u32("general.alignment", 24)], [])

    # --- invalid: tensor infos ----------------------------------------------------------------
    s["invalid_tensor_name_65_bytes"] = gguf_file([arch], [tinfo("n" * 65, [4], 0, 0)], f32x4)
    s["invalid_duplicate_tensor"] = gguf_file([arch], [tinfo("t", [4], 0, 0), tinfo("t", [4], 0, 32)],
                                              f32x4 + bytes(16) + f32x4)
    s["invalid_n_dims_5"] = gguf_file([arch], [tinfo("t", [1, 1, 1, 1, 4], 0, 0)], f32x4)
    s["invalid_dim_zero"] = gguf_file([arch], [tinfo("t", [4, 0], 0, 0)], f32x4)
    s["invalid_dims_overflow"] = gguf_file([arch], [tinfo("t", [2**32, 2**32], 0, 0)], f32x4)
    s["invalid_ggml_type_unknown"] = gguf_file([arch], [tinfo("t", [4], 77, 0)], f32x4)
    s["invalid_block_misfit"] = gguf_file([arch], [tinfo("t", [16, 2], 8, 0)], bytes(68))
    s["invalid_offset_unaligned"] = gguf_file([arch], [tinfo("t", [4], 0, 4)], bytes(4) + f32x4)
    s["invalid_data_past_eof"] = gguf_file([arch], [tinfo("t", [8], 0, 0)], f32x4)
    s["invalid_offset_past_eof"] = gguf_file([arch], [tinfo("t", [4], 0, 2**63)], f32x4)
    s["invalid_overlap"] = gguf_file([arch], [tinfo("a", [16], 0, 0), tinfo("b", [4], 0, 32)], bytes(64))
    s["invalid_truncated_tensor_info"] = gguf_file([arch], [tinfo("t", [4], 0, 0)], f32x4)[:100]
    return s


def write_corpus():
    CORPUS.mkdir(parents=True, exist_ok=True)
    for p in CORPUS.iterdir():
        if p.name.startswith(("valid_", "invalid_")):
            p.unlink()
    for name, data in corpus_seeds().items():
        (CORPUS / name).write_bytes(data)


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    write_reference()
    write_nested_array()
    write_corpus()
    total = sum(p.stat().st_size for p in FIXTURES.iterdir())
    corpus = sum(p.stat().st_size for p in CORPUS.iterdir())
    print(f"fixtures: {total} bytes in {FIXTURES}; corpus: {len(list(CORPUS.iterdir()))} files, {corpus} bytes")


if __name__ == "__main__":
    main()
