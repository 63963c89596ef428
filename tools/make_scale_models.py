#!/usr/bin/env python3
"""Random-weight GGUF files with the real shapes and storage types of two MoE models people run on CPUs.

    tools/.venv/bin/python tools/make_scale_models.py [--only qwen3|gptoss] [--out DIR]

writes into the precis cache (~/.cache/precis/models/scale/ unless --out):

  Qwen3-30B-A3B-shaped.Q4_K_M.gguf  arch qwen3moe: 48 layers, hidden 2048, 32 query / 4 KV heads of 128,
                                    128 experts (top-8) of moe_intermediate 768, vocab 151936 (the HF
                                    config of Qwen/Qwen3-30B-A3B). Storage types as llama-quantize's
                                    Q4_K_M picks them (llama-quant.cpp): Q4_K everywhere, Q6_K for
                                    `output`, and for attn_v and ffn_down_exps on the layers its
                                    `use_more_bits` rule selects (i < n/8, i >= 7n/8, (i - n/8) % 3 == 2)
                                    -- so half the layers' down experts are Q6_K under Q4_K gate/up,
                                    norms and the router F32. ~17 GiB.
  gpt-oss-20b-shaped.MXFP4.gguf     arch gpt-oss: 24 layers, hidden 2880, 64 query / 8 KV heads of 64,
                                    32 experts (top-4) of 2880, vocab 201088, sliding window 128 on
                                    even layers, YaRN x32 over 4096 (openai/gpt-oss-20b's config).
                                    Experts MXFP4 (ggml blocks) with F32 biases, attention BF16 with F32
                                    biases and sinks, token_embd and output Q8_0. ~12 GiB.

Weights are random bytes with finite, moderate scales (K-quant d/dmin in 2^-10..2^-7, Q8_0 d in
2^-10..2^-8, MXFP4 exponents 2^-8..2^-5), so a forward pass stays finite through every layer (each
block's input is RMS-normalised) and the MoE router sees ordinary logits. The values mean nothing:
the files exist to measure loading (memory-mapped, no full read), peak memory and speed at real
size, side by side with llama.cpp (llama-bench) on the same files. The vocabulary is made up
(byte-level BPE: the 256 byte characters, one merge, "t<i>" filler): enough for both engines to load
it, not for text.

Each tensor is written as it is made (gguf-py's streaming writer), so memory stays at one tensor
(<= 200 MB); blocks are drawn from a 64 MiB random pool per format at random offsets. A progress
line per 5 % of the bytes goes to stderr.
"""
import argparse
import os
import pathlib
import sys
import time

import numpy as np
import gguf

CACHE = pathlib.Path(os.environ.get("PRECIS_CACHE_DIR") or
                     pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "precis")
QT = gguf.GGMLQuantizationType
BLOCK = {QT.Q4_K: (256, 144), QT.Q6_K: (256, 210), QT.Q8_0: (32, 34), QT.MXFP4: (32, 17)}


class Pool:
    """64 MiB of random blocks per format, with the format's scale fields set to finite values."""

    def __init__(self, rng):
        self.rng = rng
        self.pools = {}

    def f16(self, n, lo, hi):
        return np.exp2(self.rng.uniform(lo, hi, n)).astype(np.float16).view(np.uint8).reshape(n, 2)

    def get(self, qt):
        if qt not in self.pools:
            _, bb = BLOCK[qt]
            n = (64 << 20) // bb
            p = self.rng.integers(0, 256, size=(n, bb), dtype=np.uint8)
            if qt == QT.Q4_K:    # d, dmin (f16) lead the block
                p[:, 0:2] = self.f16(n, -10, -7)
                p[:, 2:4] = self.f16(n, -10, -7)
            elif qt == QT.Q6_K:  # d (f16) ends the block
                p[:, 208:210] = self.f16(n, -10, -7)
            elif qt == QT.Q8_0:  # d (f16) leads the block
                p[:, 0:2] = self.f16(n, -10, -8)
            elif qt == QT.MXFP4:  # e8m0 exponent byte leads the block
                p[:, 0] = self.rng.integers(127 - 8, 127 - 5 + 1, size=n, dtype=np.uint8)
            self.pools[qt] = p
        return self.pools[qt]

    def blocks(self, qt, rows, cols):
        """[rows, cols] values in qt as the byte array gguf-py stores: [rows, cols/bs*bb] uint8."""
        bs, bb = BLOCK[qt]
        assert cols % bs == 0, (qt, cols)
        p = self.get(qt)
        nb = rows * cols // bs
        start = int(self.rng.integers(0, len(p)))
        idx = (start + np.arange(nb, dtype=np.int64)) % len(p)
        return p[idx].reshape(rows, cols // bs * bb)


class Writer:
    """Tensor infos first, then the data one tensor at a time (GGUFWriter's streaming order)."""

    def __init__(self, path, arch):
        self.path = path
        self.w = gguf.GGUFWriter(str(path), arch)
        self.specs = []  # (name, shape, qtype, make)

    def tensor(self, name, shape, qt, make):
        self.specs.append((name, tuple(shape), qt, make))

    def write(self):
        nbytes = []
        for name, shape, qt, _ in self.specs:
            if qt in BLOCK:
                bs, bb = BLOCK[qt]
                byte_shape = shape[:-1] + (shape[-1] // bs * bb,)
                n = int(np.prod(byte_shape))
                self.w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), n, raw_dtype=qt)
            elif qt == QT.BF16:
                n = int(np.prod(shape)) * 2
                self.w.add_tensor_info(name, shape, np.dtype(np.uint16), n, raw_dtype=QT.BF16)
            else:
                n = int(np.prod(shape)) * 4
                self.w.add_tensor_info(name, shape, np.dtype(np.float32), n)
            nbytes.append(n)
        total = sum(nbytes)
        self.w.write_header_to_file()
        self.w.write_kv_data_to_file()
        self.w.write_ti_data_to_file()
        done, last, t0 = 0, -1, time.time()
        for (name, shape, qt, make), n in zip(self.specs, nbytes):
            arr = make()
            assert arr.nbytes == n, (name, arr.nbytes, n)
            self.w.write_tensor_data(arr)
            done += n
            pct = int(100 * done / total) // 5 * 5
            if pct != last:
                print(f"{self.path.name}: {pct:3d} % of {total / 2**30:.2f} GiB ({time.time() - t0:.0f} s)",
                      file=sys.stderr, flush=True)
                last = pct
        self.w.close()


def byte_tokens():
    """GPT-2's byte-level alphabet: the 256 characters byte-level BPE spells bytes with."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def gpt2_vocab(w, n, bos, eos):
    """A made-up byte-level BPE vocabulary llama.cpp accepts: the 256 byte characters (it looks up
    the newline's), one merge, "t<i>" filler, two control tokens."""
    toks = byte_tokens() + ["\u0120\u0120"]
    toks += [f"t{i}" for i in range(len(toks), n)]
    toks[bos], toks[eos] = "<|bos|>", "<|eos|>"
    types = [gguf.TokenType.CONTROL if i in (bos, eos) else gguf.TokenType.NORMAL for i in range(n)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges(["\u0120 \u0120"])
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)


def moe_hparams(w, name, V, ctx, H, L, ff, I, NQ, NKV, HD, theta, eps, E, K):
    """The keys both MoE architectures share (llama.cpp's names), in the converter's order."""
    w.add_name(f"{name}-shaped random weights (precis tools/make_scale_models.py)")
    w.add_vocab_size(V)
    w.add_context_length(ctx)
    w.add_embedding_length(H)
    w.add_block_count(L)
    w.add_feed_forward_length(ff)
    w.add_expert_feed_forward_length(I)
    w.add_head_count(NQ)
    w.add_head_count_kv(NKV)
    w.add_key_length(HD)
    w.add_value_length(HD)
    w.add_rope_dimension_count(HD)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(eps)
    w.add_expert_count(E)
    w.add_expert_used_count(K)


class Makers:
    """Deferred tensor contents (called when the writer reaches the tensor): norms of ones, small
    normal f32 (or bf16 bits), and random blocks of a format, as a matrix or an expert stack."""

    def __init__(self, rng):
        self.rng = rng
        self.pool = Pool(rng)

    def ones(self, n):
        return lambda: np.ones(n, np.float32)

    def normal(self, shape, s):
        return lambda: self.rng.standard_normal(shape, dtype=np.float32) * s

    def bnormal(self, shape, s):
        return lambda: bf16(self.rng.standard_normal(shape, dtype=np.float32) * s)

    def q(self, qt, r, c):
        return lambda: self.pool.blocks(qt, r, c)

    def stack(self, qt, e, r, c):
        return lambda: self.pool.blocks(qt, e * r, c).reshape(e, r, -1)


def bf16(a):
    return (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


def use_more_bits(i, n):  # llama-quant.cpp
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def qwen3_30b_a3b(path, rng, layers=None):
    L, H, NQ, NKV, HD, E, K, I, V = 48, 2048, 32, 4, 128, 128, 8, 768, 151936
    L = layers or L
    wr = Writer(path, "qwen3moe")
    w = wr.w
    moe_hparams(w, "Qwen3-30B-A3B", V, 40960, H, L, 6144, I, NQ, NKV, HD, 1e6, 1e-6, E, K)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    gpt2_vocab(w, V, 151643, 151645)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    m = Makers(rng)
    ones, normal, q, stack = m.ones, m.normal, m.q, m.stack
    wr.tensor("token_embd.weight", (V, H), QT.Q4_K, q(QT.Q4_K, V, H))
    for i in range(L):
        b = f"blk.{i}."
        more = use_more_bits(i, L)
        wr.tensor(b + "attn_norm.weight", (H,), QT.F32, ones(H))
        wr.tensor(b + "attn_q.weight", (NQ * HD, H), QT.Q4_K, q(QT.Q4_K, NQ * HD, H))
        wr.tensor(b + "attn_k.weight", (NKV * HD, H), QT.Q4_K, q(QT.Q4_K, NKV * HD, H))
        vt = QT.Q6_K if more else QT.Q4_K
        wr.tensor(b + "attn_v.weight", (NKV * HD, H), vt, q(vt, NKV * HD, H))
        wr.tensor(b + "attn_output.weight", (H, NQ * HD), QT.Q4_K, q(QT.Q4_K, H, NQ * HD))
        wr.tensor(b + "attn_q_norm.weight", (HD,), QT.F32, ones(HD))
        wr.tensor(b + "attn_k_norm.weight", (HD,), QT.F32, ones(HD))
        wr.tensor(b + "ffn_norm.weight", (H,), QT.F32, ones(H))
        wr.tensor(b + "ffn_gate_inp.weight", (E, H), QT.F32, normal((E, H), 0.02))
        wr.tensor(b + "ffn_gate_exps.weight", (E, I, H), QT.Q4_K, stack(QT.Q4_K, E, I, H))
        wr.tensor(b + "ffn_up_exps.weight", (E, I, H), QT.Q4_K, stack(QT.Q4_K, E, I, H))
        dt = QT.Q6_K if more else QT.Q4_K
        wr.tensor(b + "ffn_down_exps.weight", (E, H, I), dt, stack(dt, E, H, I))
    wr.tensor("output_norm.weight", (H,), QT.F32, ones(H))
    wr.tensor("output.weight", (V, H), QT.Q6_K, q(QT.Q6_K, V, H))
    wr.write()


def gpt_oss_20b(path, rng, layers=None):
    L, H, NQ, NKV, HD, E, K, I, V = 24, 2880, 64, 8, 64, 32, 4, 2880, 201088
    L = layers or L
    wr = Writer(path, "gpt-oss")
    w = wr.w
    moe_hparams(w, "gpt-oss-20b", V, 131072, H, L, I, I, NQ, NKV, HD, 150000.0, 1e-5, E, K)
    w.add_sliding_window(128)
    w.add_sliding_window_pattern([i % 2 == 0 for i in range(L)])
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(32.0)
    w.add_rope_scaling_orig_ctx_len(4096)
    w.add_rope_scaling_yarn_beta_fast(32.0)
    w.add_rope_scaling_yarn_beta_slow(1.0)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_MXFP4_MOE)
    gpt2_vocab(w, V, 199998, 200002)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    m = Makers(rng)
    ones, normal, bnormal, q, stack = m.ones, m.normal, m.bnormal, m.q, m.stack
    wr.tensor("token_embd.weight", (V, H), QT.Q8_0, q(QT.Q8_0, V, H))
    for i in range(L):
        b = f"blk.{i}."
        wr.tensor(b + "attn_norm.weight", (H,), QT.F32, ones(H))
        wr.tensor(b + "attn_sinks.weight", (NQ,), QT.F32, normal((NQ,), 1.0))
        for nm, rows, cols in (("attn_q", NQ * HD, H), ("attn_k", NKV * HD, H), ("attn_v", NKV * HD, H),
                               ("attn_output", H, NQ * HD)):
            wr.tensor(b + nm + ".weight", (rows, cols), QT.BF16, bnormal((rows, cols), 0.02))
            wr.tensor(b + nm + ".bias", (rows,), QT.F32, normal((rows,), 0.02))
        wr.tensor(b + "post_attention_norm.weight", (H,), QT.F32, ones(H))
        wr.tensor(b + "ffn_gate_inp.weight", (E, H), QT.F32, normal((E, H), 0.02))
        wr.tensor(b + "ffn_gate_inp.bias", (E,), QT.F32, normal((E,), 0.02))
        for nm, rows, cols in (("ffn_gate_exps", I, H), ("ffn_up_exps", I, H), ("ffn_down_exps", H, I)):
            wr.tensor(b + nm + ".weight", (E, rows, cols), QT.MXFP4, stack(QT.MXFP4, E, rows, cols))
            wr.tensor(b + nm + ".bias", (E, rows), QT.F32, normal((E, rows), 0.02))
    wr.tensor("output_norm.weight", (H,), QT.F32, ones(H))
    wr.tensor("output.weight", (V, H), QT.Q8_0, q(QT.Q8_0, V, H))
    wr.write()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["qwen3", "gptoss"])
    ap.add_argument("--out", type=pathlib.Path, default=CACHE / "models" / "scale")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--layers", type=int, help="fewer layers (a quick check that both engines load the file)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    jobs = {"qwen3": ("Qwen3-30B-A3B-shaped.Q4_K_M.gguf", qwen3_30b_a3b),
            "gptoss": ("gpt-oss-20b-shaped.MXFP4.gguf", gpt_oss_20b)}
    for key, (name, fn) in jobs.items():
        if a.only and a.only != key:
            continue
        if a.layers:
            name = name.replace("-shaped", f"-shaped-{a.layers}L")
        path = a.out / name
        if path.exists():
            print(f"{path} exists (delete it to rewrite)", file=sys.stderr)
            continue
        tmp = path.with_suffix(".gguf.part")
        fn(tmp, rng, a.layers)
        tmp.rename(path)
        print(path)


if __name__ == "__main__":
    main()
