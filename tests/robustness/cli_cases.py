#!/usr/bin/env python3
"""Hostile inputs through precis-generate and precis-eval (issue "Hostile files and prompts").

    python3 tests/robustness/cli_cases.py --generate PATH --eval PATH --fixtures tests/fixtures \
        [--markdown docs/robustness_cases.md]

Builds every bad input in a temporary directory (GGUF and safetensors files cut or edited byte
by byte, config.json and tokenizer.json edits, prompt files, flags), runs the tool on it under a
60 s time limit and an 8 GiB address-space limit, and checks that it
  - exits with status 1 (the model or request failed) or 2 (bad usage) — not 0, not a signal
    (a crash), not a timeout (a hang), not an out-of-memory kill;
  - prints, on stderr, one message matching the case's pattern (what was wrong and where).
With --markdown it writes the table of cases with the exact first line of each message
(docs/robustness.md includes it). Exit status: 0 when every case passes.
Standard library only: safetensors files are read and written with struct and json here.
"""
import argparse
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile

AS_LIMIT = 8 << 30
TIME_LIMIT = 60


def limits():
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


# --- safetensors, by hand ---------------------------------------------------------------------
def st_read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    data = b[8 + n:]
    meta = header.pop("__metadata__", None)
    tensors = {}
    for name, e in header.items():
        lo, hi = e["data_offsets"]
        tensors[name] = [e["dtype"], e["shape"], bytearray(data[lo:hi])]
    return tensors, meta


def st_write(path, tensors, meta=None):
    header, blob = {}, bytearray()
    if meta is not None:
        header["__metadata__"] = meta
    for name, (dt, shape, data) in sorted(tensors.items()):
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + bytes(blob))


def f32_to_16(data, kind):
    vals = struct.unpack(f"<{len(data) // 4}f", bytes(data))
    if kind == "BF16":
        return bytearray(b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in vals))
    return bytearray(struct.pack(f"<{len(vals)}e", *vals))


class Env:
    def __init__(self, root, fixtures):
        self.root = root
        self.fx = fixtures
        self.gguf = os.path.join(fixtures, "models", "llama", "model.gguf")
        self.n = 0

    def path(self, name):
        return os.path.join(self.root, name)

    def file(self, name, data):
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return p

    def hf(self, name, config=None, tensors=None, tokenizer=True, tokenizer_text=None):
        """An HF directory from the llama fixture, edited: config(dict) -> dict, tensors(dict) -> None."""
        d = self.path(name)
        os.makedirs(d, exist_ok=True)
        cfg = json.load(open(os.path.join(self.fx, "models", "llama", "config.json")))
        if config:
            cfg = config(cfg)
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
        t, meta = st_read(os.path.join(self.fx, "models", "llama", "model.safetensors"))
        if tensors:
            tensors(t)
        st_write(os.path.join(d, "model.safetensors"), t, meta)
        if tokenizer_text is not None:
            with open(os.path.join(d, "tokenizer.json"), "w") as f:
                f.write(tokenizer_text)
        elif tokenizer:
            shutil.copy(os.path.join(self.fx, "tokenizer", "tiny_smollm", "tokenizer.json"), d)
        return d


def build_cases(env, gen, ev):
    """(id, group, description, argv, expected pattern); argv[0] is the tool."""
    g = lambda *a: [gen, *a]
    e = lambda *a: [ev, *a]
    GG = env.gguf
    raw = open(GG, "rb").read()
    tok_json = open(os.path.join(env.fx, "tokenizer", "tiny_smollm", "tokenizer.json")).read()
    cases = []

    def add(group, what, argv, pattern):
        cases.append((len(cases) + 1, group, what, argv, pattern))

    P = ["-p", "hi", "-n", "2"]
    # --- model paths and GGUF files
    add("model path", "empty file named .gguf", g("-m", env.file("empty.gguf", b""), *P), r"does not start with the GGUF magic")
    add("model path", "a text file named .gguf", g("-m", env.file("text.gguf", "hello"), *P), r"GGUF magic")
    add("model path", "a text file (LICENSE-like) as -m", g("-m", env.file("notes.txt", "just text\n"), *P), r"neither a GGUF file")
    add("model path", "a directory without config.json", g("-m", env.path("."), *P), r"directory with no config\.json")
    add("model path", "/dev/zero as -m", g("-m", "/dev/zero", *P), r"not a regular file")
    fifo = env.path("fifo")
    os.mkfifo(fifo)
    add("model path", "a FIFO as -m", g("-m", fifo, *P), r"not a regular file")
    add("model path", "a path that does not exist", g("-m", env.path("nope.gguf"), *P), r"does not exist")
    add("GGUF", "the fixture cut to 1000 bytes", g("-m", env.file("cut1000.gguf", raw[:1000]), *P), r"\[gguf\]")
    add("GGUF", "the fixture cut in half", g("-m", env.file("half.gguf", raw[: len(raw) // 2]), *P), r"\[gguf\]")
    add("GGUF", "GGUF magic then garbage", g("-m", env.file("garbage.gguf", b"GGUF" + os.urandom(200)), *P), r"\[gguf\]")
    add("GGUF", "version 4", g("-m", env.file("v4.gguf", b"GGUF" + struct.pack("<I", 4) + raw[8:]), *P), r"version")
    add("GGUF", "metadata count 2^62", g("-m", env.file("kv.gguf", raw[:16] + struct.pack("<Q", 1 << 62) + raw[24:]), *P), r"\[gguf\]")
    add("GGUF", "tensor count 2^62", g("-m", env.file("tc.gguf", raw[:8] + struct.pack("<Q", 1 << 62) + raw[16:]), *P), r"\[gguf\]")
    # --- HF checkpoint directories: config.json
    add("config.json", "nested 100000 deep", g("-m", env.hf("deep", lambda c: '{"a": ' + "[" * 100000 + "]" * 100000 + "}"), *P), r"deeper than 128 levels")
    add("config.json", "not JSON", g("-m", env.hf("notjson", lambda c: "{ this is not json"), *P), r"not valid JSON")
    add("config.json", "an array, not an object", g("-m", env.hf("array", lambda c: "[1, 2]"), *P), r"config")
    big = env.hf("bigcfg")
    with open(os.path.join(big, "config.json"), "r+b") as f:
        f.truncate(600 << 20)  # sparse: the size check comes before any read
    add("config.json", "600 MB (sparse)", g("-m", big, *P), r"at most 536870912")
    zdir = env.hf("zerocfg")
    os.remove(os.path.join(zdir, "config.json"))
    os.symlink("/dev/zero", os.path.join(zdir, "config.json"))
    add("config.json", "a symlink to /dev/zero", g("-m", zdir, *P), r"not a regular file")
    add("config.json", "num_hidden_layers = 10^12", g("-m", env.hf("layers", lambda c: {**c, "num_hidden_layers": 10**12}), *P), r"num_hidden_layers.*implausibly large")
    add("config.json", "num_hidden_layers = 40 over 2 layers of weights", g("-m", env.hf("layers40", lambda c: {**c, "num_hidden_layers": 40}), *P), r"layers 0\.\.1 only")
    add("config.json", "num_hidden_layers = 1 over 2 layers of weights", g("-m", env.hf("layers1", lambda c: {**c, "num_hidden_layers": 1}), *P), r"holds tensors of layer 1")
    add("config.json", "hidden_size a string", g("-m", env.hf("hstr", lambda c: {**c, "hidden_size": "64"}), *P), r"hidden_size.*must be an integer")
    add("config.json", "hidden_size = 2^40", g("-m", env.hf("h40", lambda c: {**c, "hidden_size": 1 << 40}), *P), r"hidden_size.*implausibly large")
    add("config.json", "vocab_size = -1", g("-m", env.hf("vneg", lambda c: {**c, "vocab_size": -1}), *P), r"vocab_size.*must be ≥ 1")
    add("config.json", "unknown architecture", g("-m", env.hf("arch", lambda c: {**c, "architectures": ["FooForCausalLM"], "model_type": "foo"}), *P), r"not a supported model; supported: llama")
    add("config.json", "max_position_embeddings = 10^9", g("-m", env.hf("ctx", lambda c: {**c, "max_position_embeddings": 10**9}), *P, "-c", "0"), r"max_position_embeddings.*implausibly large")
    add("config.json", "rope_scaling of an unknown type", g("-m", env.hf("rope", lambda c: {**c, "rope_scaling": {"rope_type": "bogus", "factor": 2.0}, "rope_parameters": {"rope_type": "bogus", "factor": 2.0, "rope_theta": 50000.0}}), *P), r"bogus")
    add("config.json", "num_key_value_heads not dividing the heads", g("-m", env.hf("kvh", lambda c: {**c, "num_key_value_heads": 3}), *P), r"not a multiple of num_key_value_heads")
    add("config.json", "hidden_act gelu (not implemented)", g("-m", env.hf("act", lambda c: {**c, "hidden_act": "gelu"}), *P), r"hidden_act")
    # --- safetensors weights
    def to16(kind, mix=None):
        def f(t):
            for name, v in t.items():
                if v[0] == "F32":
                    k = "F16" if mix and name == mix else kind
                    v[0], v[2] = k, f32_to_16(v[2], k)
        return f
    add("weights", "config says float32, tensors are BF16", g("-m", env.hf("bf16", tensors=to16("BF16")), *P), r"disagrees with the tensor headers.*BF16")
    add("weights", "F16 and BF16 matrices mixed", g("-m", env.hf("mixed", lambda c: {k: v for k, v in c.items() if k not in ("torch_dtype", "dtype")}, tensors=to16("BF16", mix="model.layers.1.mlp.up_proj.weight")), *P), r"mixes F16 and BF16")
    def nan_norm(t):
        t["model.norm.weight"][2][12:16] = struct.pack("<f", float("nan"))
    add("weights", "a NaN in model.norm.weight", g("-m", env.hf("nan", tensors=nan_norm), *P), r"model\.norm\.weight.*element 3.*not finite")
    def inf_bias(t):
        t["model.layers.0.input_layernorm.weight"][2][0:4] = struct.pack("<f", float("inf"))
    add("weights", "+inf in a layer norm", g("-m", env.hf("inf", tensors=inf_bias), *P), r"input_layernorm\.weight.*element 0")
    add("weights", "a tensor missing", g("-m", env.hf("missing", tensors=lambda t: t.pop("model.layers.1.mlp.up_proj.weight")), *P), r"no tensor 'model\.layers\.1\.mlp\.up_proj\.weight'")
    def wrong_shape(t):
        v = t["model.layers.0.self_attn.k_proj.weight"]
        v[1] = [v[1][1], v[1][0]]
    add("weights", "a tensor of the wrong shape", g("-m", env.hf("shape", tensors=wrong_shape), *P), r"k_proj\.weight.*shape")
    def extra_layer(t):
        t["model.layers.5.mlp.up_proj.weight"] = list(t["model.layers.1.mlp.up_proj.weight"])
    add("weights", "tensors of a layer past num_hidden_layers", g("-m", env.hf("extra", tensors=extra_layer), *P), r"holds tensors of layer 5")
    def i32_weight(t):
        t["model.layers.0.mlp.down_proj.weight"][0] = "I32"
    add("weights", "an I32 projection", g("-m", env.hf("i32", tensors=i32_weight), *P), r"down_proj\.weight.*I32")
    d = env.hf("stcut")
    p = os.path.join(d, "model.safetensors")
    b = open(p, "rb").read()
    open(p, "wb").write(b[: len(b) - 100])
    add("weights", "model.safetensors cut short", g("-m", d, *P), r"\[safetensors\]")
    d = env.hf("sthdr")
    p = os.path.join(d, "model.safetensors")
    b = open(p, "rb").read()
    open(p, "wb").write(struct.pack("<Q", 1 << 60) + b[8:])
    add("weights", "safetensors header length 2^60", g("-m", d, *P), r"\[safetensors\]")
    d = env.hf("stdeep")
    hdr = ('{"a": ' + "[" * 5000 + "]" * 5000 + "}").encode()
    open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", len(hdr)) + hdr)
    add("weights", "safetensors header nested 5000 deep", g("-m", d, *P), r"deeper than 64 levels")
    d = env.hf("stempty")
    open(os.path.join(d, "model.safetensors"), "wb").close()
    add("weights", "empty model.safetensors", g("-m", d, *P), r"\[safetensors\]")
    # --- tokenizer.json
    add("tokenizer.json", "absent", g("-m", env.hf("notok", tokenizer=False), *P), r"has no tokenizer")
    add("tokenizer.json", "nested 100000 deep", g("-m", env.hf("tokdeep", tokenizer_text='{"model": ' + "[" * 100000 + "]" * 100000 + "}"), *P), r"deeper than 128 levels")
    tj = json.loads(tok_json)
    tj["added_tokens"].append({"id": 2147483646, "content": "<huge>", "special": True})
    add("tokenizer.json", "a token id of 2^31 - 2", g("-m", env.hf("tokhuge", tokenizer_text=json.dumps(tj)), *P), r"token id 2147483646.*without gaps")
    add("tokenizer.json", "not JSON", g("-m", env.hf("toknot", tokenizer_text="{]"), *P), r"not valid JSON")
    tj = json.loads(tok_json)
    tj["model"]["type"] = "Unigram"
    add("tokenizer.json", "a Unigram model", g("-m", env.hf("tokuni", tokenizer_text=json.dumps(tj)), *P), r"Unigram.*not supported")
    d = env.hf("tokdir", tokenizer=False)
    os.makedirs(os.path.join(d, "tokenizer.json"))
    add("tokenizer.json", "a directory named tokenizer.json", g("-m", d, *P), r"not a regular file")
    tj = json.loads(tok_json)
    tj["model"]["merges"] = tj["model"]["merges"][:3] + ["single"]
    add("tokenizer.json", "a malformed merge", g("-m", env.hf("tokmerge", tokenizer_text=json.dumps(tj)), *P), r"merges\[3\]")
    add("tokenizer.json", "more tokens than embedding rows", g("-m", env.hf("tokbig"), *P), r"tokenizer has 601 tokens.*only 256")
    # --- prompts and --file
    add("prompt", "--file /dev/zero", g("-m", GG, "--file", "/dev/zero"), r"not a regular file")
    add("prompt", "--file of random binary bytes", g("-m", GG, "--file", env.file("bin.txt", b"ok\n" + bytes(range(256)) * 8)), r"NUL byte at line 2")
    add("prompt", "--file with invalid UTF-8", g("-m", GG, "--file", env.file("bad.txt", b"fine\nbad \xff\xfe here\n")), r"not valid UTF-8: byte 0xff at line 2, column 5")
    add("prompt", "--file a directory", g("-m", GG, "--file", env.path(".")), r"not a regular file")
    add("prompt", "--file missing", g("-m", GG, "--file", env.path("none.txt")), r"does not exist")
    add("prompt", "--file empty", g("-m", GG, "--file", env.file("empty.txt", "\n\n")), r"holds no prompt")
    sp = env.file("huge.txt", b"")
    with open(sp, "r+b") as f:
        f.truncate((1 << 30) + 1)
    add("prompt", "--file of 1 GiB + 1 (sparse)", g("-m", GG, "--file", sp), r"at most 1073741824")
    add("prompt", "-p with invalid UTF-8", g("-m", GG, "-p", os.fsdecode(b"caf\xe9")), r"prompt 1 is not valid UTF-8")
    add("prompt", "a prompt longer than the context", g("-m", GG, "-c", "8", "-p", "a prompt longer than eight tokens"), r"context holds 8 positions")
    add("prompt", "--chat on a model without a chat template", g("-m", GG, "--chat", "-p", "hi"), r"no chat template")
    add("prompt", "--system without --chat", g("-m", GG, "--system", "x", "-p", "hi"), r"--system needs --chat")
    add("prompt", "no prompt at all", g("-m", GG), r"no prompt")
    # --- flags
    for flag, val, pat in [
        ("-n", "1e12", r"-n 1e12 is out of range.*from -1 to 2147483647"),
        ("-n", "99999999999", r"-n 99999999999 is out of range"),
        ("-n", "2.5", r"-n 2\.5 is not a whole number"),
        ("-n", "ten", r"-n expects an integer"),
        ("-c", "-5", r"-c -5 is out of range"),
        ("-c", "999999", r"-c 999999 exceeds the model's context length"),
        ("--top-p", "1.5", r"--top-p 1\.5 is out of range"),
        ("--temp", "nan", r"--temp nan is out of range"),
        ("--seed", "-1", r"--seed expects an integer >= 0"),
        ("-t", "0", r"-t 0 is out of range"),
        ("-np", "0", r"-np 0 is out of range"),
        ("--device", "tpu", r"--device must be cpu or cuda"),
        ("--precision", "f64", r"--precision must be f32 or bf16"),
        ("--repeat-penalty", "0", r"--repeat-penalty must be > 0"),
    ]:
        add("flags", f"{flag} {val}", g("-m", GG, "-p", "hi", flag, val), pat)
    add("flags", "an unknown option", g("-m", GG, "-p", "hi", "--frobnicate"), r"unknown option '--frobnicate'")
    add("flags", "-m without a value", g("-m"), r"-m needs a value")
    add("flags", "--stop with an empty string", g("-m", GG, "-p", "hi", "--stop", ""), r"--stop needs a non-empty string")
    # --- precis-eval
    add("precis-eval", "-f missing", e("-m", GG, "-f", env.path("none.txt")), r"the text file .* does not exist")
    add("precis-eval", "-f /dev/zero", e("-m", GG, "-f", "/dev/zero"), r"not a regular file")
    add("precis-eval", "-f a binary file", e("-m", GG, "-f", env.file("bin2.txt", bytes(range(256)))), r"NUL byte at line 1")
    add("precis-eval", "-f shorter than one window", e("-m", GG, "-f", env.file("short.txt", "a b c"), "-c", "64", "-o", env.path("ev")), r"shorter than one window")
    add("precis-eval", "-c beyond the model's context", e("-m", GG, "-f", env.file("t.txt", "text " * 400), "-c", "300", "-o", env.path("ev")), r"exceeds the model's context length")
    add("precis-eval", "a non-model file as -m", e("-m", env.file("m.txt", "x"), "-f", env.path("t.txt")), r"neither a GGUF file")
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--generate", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--markdown")
    a = ap.parse_args()
    a.generate, a.eval, a.fixtures = (os.path.abspath(x) for x in (a.generate, a.eval, a.fixtures))
    root = tempfile.mkdtemp(prefix="precis-robustness-")
    failed = 0
    rows = []
    try:
        env = Env(root, a.fixtures)
        cases = build_cases(env, a.generate, a.eval)
        for cid, group, what, argv, pattern in cases:
            try:
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIME_LIMIT,
                                   preexec_fn=limits, cwd=root)
                rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
            except subprocess.TimeoutExpired:
                rc, err = "timeout", ""
            lines = [l for l in err.splitlines() if l.startswith(("precis-generate:", "precis-eval:"))]
            msg = lines[-1] if lines else (err.strip().splitlines() or [""])[-1]
            ok = rc in (1, 2) and re.search(pattern, err) is not None and len(msg) < 2000
            failed += 0 if ok else 1
            print(f"{'ok  ' if ok else 'FAIL'} {cid:3d} [{group}] {what}: exit {rc}")
            if not ok:
                print(f"      expected /{pattern}/; stderr tail:\n      " + "\n      ".join(err.strip().splitlines()[-4:]))
            shown = msg.replace(root, "$TMP").replace("|", "\\|")
            if len(shown) > 240:
                shown = shown[:240] + "…"
            rows.append(f"| {cid} | {group} | {what} | {rc} | `{shown}` |")
        print(f"\n{len(cases) - failed} of {len(cases)} hostile-input cases pass")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("| # | input | case | exit | message (stderr) |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
