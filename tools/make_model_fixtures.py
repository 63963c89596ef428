#!/usr/bin/env python3
"""Write the model conformance fixtures of tests/fixtures/models/.

Each fixture is a directory holding

    config.json            the HF config, shaped like the real release's config.json (legacy
                           `rope_theta` / `rope_scaling` keys *and* transformers-5 `rope_parameters`)
    model.safetensors      the checkpoint, with the tensor names of the real release
    reference.safetensors  tokens       I64 [S]
                           logits       F32 [S, vocab]  HF transformers' output at every position
                           position_ids I64 [3, S]      (MRoPE fixtures only)
                           __metadata__: transformers / torch versions, seed, fixture name
    model.gguf             (some fixtures) the same weights in llama.cpp's GGUF layout

The models are tiny random-init HF models (every parameter random and non-zero, biases, sinks and
norm weights included). The reference logits come from HF transformers itself
(`attn_implementation="eager"`, `experts_implementation="eager"`, float32, eval, no_grad).

Checks run for every fixture (the script stops on the first failure):
  * no parameter contains a zero;
  * the full-sequence logits equal HF's KV-cache incremental decoding (prefill S/2 tokens, then
    one token at a time) to < 1e-5 (max abs), which catches position-id / cache mistakes;
  * the written directory re-loaded with `from_pretrained` (i.e. through HF's own name mapping and
    quantization code) reproduces the reference logits;
  * each model.gguf is read back with gguf-py and re-run (llama: by an independent numpy forward
    pass that uses the permuted Q/K rows with llama.cpp's adjacent-pair "normal" RoPE; the MoE
    GGUFs: mapped back to HF tensors and re-run in HF) and reproduces the reference logits.

Run (needs the venv with torch + transformers + gguf + safetensors, and accelerate, which
transformers' MXFP4 loader requires for the gpt_oss re-load check):

    tools/.venv/bin/python tools/make_model_fixtures.py            # all fixtures
    tools/.venv/bin/python tools/make_model_fixtures.py llama gpt_oss

Deterministic for given torch / transformers versions (fixed seeds, CPU, one thread).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
import transformers
from safetensors.torch import save_file as pt_save_file

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "models"

VERSIONS = {
    "transformers": transformers.__version__,
    "torch": torch.__version__,
    "numpy": np.__version__,
}
try:
    import gguf  # noqa: E402

    VERSIONS["gguf"] = getattr(gguf, "__version__", None) or __import__("importlib.metadata").metadata.version("gguf")
except ImportError:  # pragma: no cover
    gguf = None

KV_TOL = 5e-6      # incremental vs full sequence: max abs logit difference <= KV_TOL * max(1, max|logit|)
RELOAD_TOL = 1e-5  # from_pretrained re-load vs reference
GGUF_TOL = 1e-4    # independent numpy forward / gguf re-load vs reference


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def log(*a):
    print(*a, flush=True)


def is_norm_weight(name: str) -> bool:
    return name.endswith("norm.weight") or name.endswith("layernorm.weight")


def randomize(model: torch.nn.Module, seed: int, qk_gain: float = 1.5, embed_std: float = 0.4,
              sink_std: float = 1.0, bias_std: float = 0.1, special=None) -> None:
    """Re-initialise every parameter: norm weights 1 + 0.2 N(0,1), biases N(0, bias_std), sinks
    N(0, sink_std), embeddings N(0, embed_std), other weights N(0, 1/fan_in) (x qk_gain for q/k
    projections so that attention is not uniform). `special(name, p, gen)` may override."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if special is not None and special(name, p, gen):
                continue
            if is_norm_weight(name):
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=gen)
            elif name.endswith("sinks"):
                v = sink_std * torch.randn(p.shape, generator=gen)
            elif name.endswith("bias"):
                v = bias_std * torch.randn(p.shape, generator=gen)
            elif "embed_tokens" in name or name.endswith("lm_head.weight"):
                v = embed_std * torch.randn(p.shape, generator=gen)
            else:
                fan_in = p.shape[-1]
                std = fan_in ** -0.5
                if ".q_proj." in name or ".k_proj." in name:
                    std *= qk_gain
                v = std * torch.randn(p.shape, generator=gen)
            p.copy_(v.to(p.dtype))


def assert_no_zeros(tensors: dict, what: str) -> None:
    for k, t in tensors.items():
        if isinstance(t, torch.Tensor):
            if t.is_floating_point() and bool((t == 0).any()):
                raise AssertionError(f"{what}: parameter {k} contains a zero")
        else:
            if np.issubdtype(t.dtype, np.floating) and bool((t == 0).any()):
                raise AssertionError(f"{what}: parameter {k} contains a zero")


def full_logits(model, ids, position_ids=None) -> torch.Tensor:
    kw = {}
    if position_ids is not None:
        kw["position_ids"] = position_ids
    out = model(input_ids=ids, use_cache=False, **kw)
    return out.logits[0].float()


def incremental_logits(model, ids, position_ids=None) -> torch.Tensor:
    """Prefill half the sequence, then decode one token at a time with HF's KV cache."""
    S = ids.shape[1]
    h = S // 2
    kw = {}
    if position_ids is not None:
        kw["position_ids"] = position_ids[..., :h]
    out = model(input_ids=ids[:, :h], use_cache=True, **kw)
    pkv = out.past_key_values
    chunks = [out.logits[0]]
    for i in range(h, S):
        kw = {}
        if position_ids is not None:
            kw["position_ids"] = position_ids[..., i:i + 1]
        out = model(input_ids=ids[:, i:i + 1], past_key_values=pkv, use_cache=True, **kw)
        pkv = out.past_key_values
        chunks.append(out.logits[0])
    return torch.cat(chunks, 0).float()


def maxdiff(a, b) -> float:
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).abs().max())


def write_config(cfg: dict, path: Path) -> None:
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def hf_config_dict(config, extra: dict | None = None, drop=()) -> dict:
    """config.json content: transformers' own serialisation plus the legacy keys real releases
    carry (`rope_theta`, `rope_scaling`, `torch_dtype`)."""
    d = json.loads(config.to_json_string(use_diff=False))
    generic = {"id2label", "label2id", "output_attentions", "output_hidden_states", "return_dict",
               "chunk_size_feed_forward", "problem_type", "is_encoder_decoder"}
    for k in list(d):
        if k.startswith("_") or k in drop or k in generic:
            d.pop(k)
    rp = d.get("rope_parameters")
    if isinstance(rp, dict) and "rope_theta" in rp:
        d["rope_theta"] = rp["rope_theta"]
        if rp.get("rope_type", "default") != "default":
            d["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
        else:
            d["rope_scaling"] = None
    if "dtype" in d:
        d["torch_dtype"] = d["dtype"]
    if extra:
        d.update(extra)
    return d


def write_reference(dirpath: Path, name: str, tokens, logits, seed: int, position_ids=None,
                    extra_meta: dict | None = None) -> None:
    t = {"tokens": np.ascontiguousarray(np.asarray(tokens, dtype=np.int64)),
         "logits": np.ascontiguousarray(np.asarray(logits, dtype=np.float32))}
    if position_ids is not None:
        t["position_ids"] = np.ascontiguousarray(np.asarray(position_ids, dtype=np.int64))
    meta = {"fixture": name, "seed": str(seed), "generator": "tools/make_model_fixtures.py",
            **{k: str(v) for k, v in VERSIONS.items()}}
    if extra_meta:
        meta.update({k: str(v) for k, v in extra_meta.items()})
    write_safetensors_sorted(dirpath / "reference.safetensors", t, meta)


def write_safetensors_sorted(path: Path, tensors: dict, meta: dict) -> None:
    """A plain safetensors writer with a sorted, byte-stable header (the Rust writer orders
    __metadata__ entries randomly, which would make every regeneration a diff)."""
    dt = {np.dtype(np.int64): "I64", np.dtype(np.float32): "F32"}
    header, blobs, off = {"__metadata__": dict(sorted(meta.items()))}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k]).astype(tensors[k].dtype.newbyteorder("<"), copy=False)
        b = a.tobytes()
        header[k] = {"dtype": dt[np.dtype(a.dtype.name)], "shape": list(a.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def save_checkpoint(tensors: dict, path: Path, meta: dict | None = None) -> None:
    tensors = {k: v.detach().contiguous() for k, v in sorted(tensors.items())}
    pt_save_file(tensors, str(path), metadata={"format": "pt", **(meta or {})})


def fresh_dir(name: str) -> Path:
    d = OUT / name
    if d.exists():
        for f in d.iterdir():
            if f.name != "README.md":
                f.unlink()
    d.mkdir(parents=True, exist_ok=True)
    return d


def make_tokens(vocab: int, S: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (1, S), generator=gen)


def check_reload(dirpath: Path, ref: torch.Tensor, ids, position_ids=None, loader=None, **kw) -> float:
    """Load the written directory with from_pretrained and compare logits."""
    if loader is None:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(dirpath), dtype=torch.float32, attn_implementation="eager",
            experts_implementation="eager", **kw)
    else:
        model = loader(dirpath)
    model.eval()
    with torch.no_grad():
        lg = full_logits(model, ids, position_ids)
    d = maxdiff(lg, ref)
    if d > RELOAD_TOL:
        raise AssertionError(f"{dirpath.name}: from_pretrained re-load differs by {d}")
    return d


def check_kv(model, ids, ref, position_ids=None) -> float:
    with torch.no_grad():
        inc = incremental_logits(model, ids, position_ids)
    d = maxdiff(inc, ref)
    if d > KV_TOL * max(1.0, float(ref.abs().max())):
        raise AssertionError(f"incremental decoding differs from the full sequence by {d}")
    return d


def build(config_cls_or_config, causal_cls, seed: int):
    torch.manual_seed(seed)
    model = causal_cls._from_config(config_cls_or_config, dtype=torch.float32,
                                    attn_implementation="eager")
    try:
        model.config._experts_implementation = "eager"
        model.set_experts_implementation("eager")  # transformers >= 5
    except Exception:
        pass
    model.eval()
    return model


SUMMARY = []


def summarize(name: str, dirpath: Path, S: int, vocab: int, notes: str = "") -> None:
    files = sorted(dirpath.iterdir())
    total = sum(f.stat().st_size for f in files)
    SUMMARY.append((name, ", ".join(f"{f.name}({f.stat().st_size})" for f in files), total, S, vocab, notes))


# ----------------------------------------------------------------------------------------------
# GGUF helpers (gguf-py)
# ----------------------------------------------------------------------------------------------


def llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute: within a head of size d, new row 2i = old row i and new
    row 2i+1 = old row i + d/2 (written from the rule, not copied)."""
    rows = w.shape[0]
    d = rows // n_head
    idx = np.empty(rows, dtype=np.int64)
    for h in range(n_head):
        for i in range(d // 2):
            idx[h * d + 2 * i] = h * d + i
            idx[h * d + 2 * i + 1] = h * d + i + d // 2
    return w[idx]


def synthetic_spm_vocab(n: int):
    """A minimal SentencePiece-style ('llama') vocabulary of n tokens: <unk>, <s>, </s>, the 256
    byte tokens <0xXX> when they fit, then made-up pieces."""
    tokens, scores, types = [], [], []
    T = gguf.TokenType
    for i, s in enumerate(["<unk>", "<s>", "</s>"]):
        tokens.append(s)
        scores.append(0.0)
        types.append(T.UNKNOWN if i == 0 else T.CONTROL)
    nbytes = min(256, n - 3)
    for b in range(nbytes):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(T.BYTE)
    k = 0
    while len(tokens) < n:
        tokens.append(f"\u2581tok{k}")
        scores.append(-float(k))
        types.append(T.NORMAL)
        k += 1
    return tokens, scores, types


def gguf_read(path: Path) -> tuple[dict, dict]:
    """Read a GGUF back: (metadata dict, {name: (np array as stored, ggml type, shape numpy-order)})."""
    r = gguf.GGUFReader(str(path))
    meta = {}
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue
        try:
            meta[f.name] = f.contents()
        except Exception:
            meta[f.name] = None
    tens = {}
    for t in r.tensors:
        tens[t.name] = (np.array(t.data), t.tensor_type, tuple(int(x) for x in reversed(t.shape)))
    return meta, tens


# ----------------------------------------------------------------------------------------------
# 1. llama (tied, GQA) + llama/model.gguf
# ----------------------------------------------------------------------------------------------

LLAMA_SEED = 1001


def llama_config(tied: bool, dtype: str):
    return transformers.LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, hidden_act="silu",
        max_position_embeddings=256, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 50000.0},
        attention_bias=False, mlp_bias=False, tie_word_embeddings=tied,
        bos_token_id=1, eos_token_id=2, pad_token_id=None, dtype=dtype,
        architectures=["LlamaForCausalLM"],
    )


def make_llama(name="llama", tied=True, store_dtype=torch.float32, seed=LLAMA_SEED, S=32, write_gguf=True):
    dtype_name = {torch.float32: "float32", torch.bfloat16: "bfloat16"}[store_dtype]
    config = llama_config(tied, dtype_name)
    model = build(config, transformers.LlamaForCausalLM, seed)
    randomize(model, seed)
    if store_dtype != torch.float32:
        # round every parameter to the storage dtype; the reference runs in f32 on those values
        with torch.no_grad():
            for _, p in model.named_parameters():
                p.copy_(p.to(store_dtype).to(torch.float32))
    sd = {k: v for k, v in model.state_dict().items()}
    if tied:
        assert sd["lm_head.weight"].data_ptr() == sd["model.embed_tokens.weight"].data_ptr()
        sd.pop("lm_head.weight")
    assert_no_zeros(sd, name)
    ids = make_tokens(config.vocab_size, S, seed + 1)
    with torch.no_grad():
        ref = full_logits(model, ids)
    kvd = check_kv(model, ids, ref)

    d = fresh_dir(name)
    cfg = hf_config_dict(config, extra={"dtype": dtype_name, "torch_dtype": dtype_name})
    write_config(cfg, d / "config.json")
    save_checkpoint({k: v.to(store_dtype) for k, v in sd.items()}, d / "model.safetensors")
    write_reference(d, name, ids[0], ref, seed)
    rd = check_reload(d, ref, ids)
    notes = f"kv={kvd:.1e} reload={rd:.1e} |logits|max={float(ref.abs().max()):.2f} std={float(ref.std()):.2f}"
    if write_gguf:
        write_llama_gguf(d / "model.gguf", config, {k: v.float().numpy() for k, v in sd.items()})
        gd = check_llama_gguf(d / "model.gguf", ids[0].numpy(), ref.numpy())
        notes += f" gguf(numpy fwd)={gd:.1e}"
    log(f"[{name}] {notes}")
    summarize(name, d, S, config.vocab_size, notes)


def write_llama_gguf(path: Path, config, sd: dict) -> None:
    """arch `llama`, all tensors F32, Q/K rows permuted, no output.weight (tied)."""
    nh, nkv, hd = config.num_attention_heads, config.num_key_value_heads, config.head_dim
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("precis-fixture-llama")
    w.add_vocab_size(config.vocab_size)
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_rope_dimension_count(hd)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    w.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    tokens, scores, types = synthetic_spm_vocab(config.vocab_size)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    def t(name, arr):
        w.add_tensor(name, np.ascontiguousarray(arr.astype(np.float32)))

    t("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        t(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        t(f"blk.{i}.attn_q.weight", llama_permute(sd[p + "self_attn.q_proj.weight"], nh))
        t(f"blk.{i}.attn_k.weight", llama_permute(sd[p + "self_attn.k_proj.weight"], nkv))
        t(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        t(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        t(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        t(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        t(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        t(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    t("output_norm.weight", sd["model.norm.weight"])
    if "lm_head.weight" in sd:
        t("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def check_llama_gguf(path: Path, tokens: np.ndarray, ref: np.ndarray) -> float:
    """Independent numpy (float64) forward pass of a llama-arch GGUF: uses the permuted Q/K rows
    directly with llama.cpp's NORM RoPE (rotate adjacent pairs (2i, 2i+1))."""
    meta, tens = gguf_read(path)
    A = meta["general.architecture"]
    nl = int(meta[f"{A}.block_count"])
    nh = int(meta[f"{A}.attention.head_count"])
    nkv = int(meta[f"{A}.attention.head_count_kv"])
    nrot = int(meta[f"{A}.rope.dimension_count"])
    base = float(meta[f"{A}.rope.freq_base"])
    eps = float(meta[f"{A}.attention.layer_norm_rms_epsilon"])
    assert len(meta["tokenizer.ggml.tokens"]) == tens["token_embd.weight"][2][0]

    def W(name):
        arr, ty, shape = tens[name]
        assert ty == gguf.GGMLQuantizationType.F32, name
        return arr.reshape(shape).astype(np.float64)

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    E = W("token_embd.weight")
    x = E[tokens]
    S = x.shape[0]
    hd = nrot
    pos = np.arange(S, dtype=np.float64)
    theta = pos[:, None] * base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)[None, :]
    c, s = np.cos(theta), np.sin(theta)

    def rope_norm(v):  # v [S, H, hd], pairs (2i, 2i+1)
        a, b = v[..., 0::2], v[..., 1::2]
        out = np.empty_like(v)
        out[..., 0::2] = a * c[:, None, :] - b * s[:, None, :]
        out[..., 1::2] = a * s[:, None, :] + b * c[:, None, :]
        return out

    mask = np.triu(np.full((S, S), -np.inf), 1)
    for i in range(nl):
        b = f"blk.{i}."
        h = rms(x, W(b + "attn_norm.weight"))
        q = (h @ W(b + "attn_q.weight").T).reshape(S, nh, hd)
        k = (h @ W(b + "attn_k.weight").T).reshape(S, nkv, hd)
        v = (h @ W(b + "attn_v.weight").T).reshape(S, nkv, hd)
        q, k = rope_norm(q), rope_norm(k)
        rep = nh // nkv
        o = np.empty((S, nh, hd))
        for hh in range(nh):
            sc = q[:, hh] @ k[:, hh // rep].T / np.sqrt(hd) + mask
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            o[:, hh] = sc @ v[:, hh // rep]
        x = x + o.reshape(S, nh * hd) @ W(b + "attn_output.weight").T
        h = rms(x, W(b + "ffn_norm.weight"))
        g = h @ W(b + "ffn_gate.weight").T
        u = h @ W(b + "ffn_up.weight").T
        x = x + (g / (1 + np.exp(-g)) * u) @ W(b + "ffn_down.weight").T
    x = rms(x, W("output_norm.weight"))
    out = W("output.weight") if "output.weight" in tens else E
    logits = x @ out.T
    d = float(np.abs(logits - ref).max())
    if d > GGUF_TOL:
        raise AssertionError(f"{path}: numpy GGUF forward differs from the reference by {d}")
    return d


def router_margin(model, ids, top_k: int, softmax_first: bool, position_ids=None) -> float:
    """Smallest gap, over tokens and MoE layers, between the k-th and (k+1)-th routing score
    (probabilities for Qwen, raw logits for gpt-oss): how far the fixture is from a top-k tie."""
    gaps = []

    def hook(_m, _inp, out):
        logits = out[0].detach().double()
        sc = torch.softmax(logits, -1) if softmax_first else logits
        srt = sc.sort(-1, descending=True).values
        gaps.append(float((srt[:, top_k - 1] - srt[:, top_k]).min()))

    hs = [m.register_forward_hook(hook) for n, m in model.named_modules()
          if n.endswith(".mlp.gate") or n.endswith(".mlp.router")]
    with torch.no_grad():
        full_logits(model, ids, position_ids)
    for h in hs:
        h.remove()
    assert gaps, "no router found"
    return min(gaps)


def qwen_moe_split_experts(sd: dict, prefix_in: str = "", prefix_out: str = "") -> dict:
    """transformers 5 keeps Qwen3-MoE experts fused in memory (`experts.gate_up_proj [E, 2I, H]`,
    first half gate, `experts.down_proj [E, H, I]`); real checkpoints store one tensor per expert:
    `experts.{e}.{gate,up,down}_proj.weight`. Rename everything with prefix_in -> prefix_out."""
    out = {}
    for k, v in sd.items():
        assert k.startswith(prefix_in), k
        k2 = prefix_out + k[len(prefix_in):]
        if k2.endswith("mlp.experts.gate_up_proj"):
            base = k2[: -len("gate_up_proj")]
            E, I2, H = v.shape
            I = I2 // 2
            for e in range(E):
                out[f"{base}{e}.gate_proj.weight"] = v[e, :I].clone()
                out[f"{base}{e}.up_proj.weight"] = v[e, I:].clone()
        elif k2.endswith("mlp.experts.down_proj"):
            base = k2[: -len("down_proj")]
            for e in range(v.shape[0]):
                out[f"{base}{e}.down_proj.weight"] = v[e].clone()
        else:
            out[k2] = v
    return out


# ----------------------------------------------------------------------------------------------
# 2. qwen3_moe (+ model.gguf)
# ----------------------------------------------------------------------------------------------

QWEN3_MOE_SEED = 808  # chosen so bf16 rounding flips no top-k choice (bf16 path rel-L2 9e-3; seeds 303, 404, 606 flip one)


def qwen3_moe_text_kwargs():
    return dict(
        vocab_size=128, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
        num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
        hidden_act="silu", max_position_embeddings=512, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        attention_bias=False, use_sliding_window=False, sliding_window=None,
        decoder_sparse_step=1, mlp_only_layers=[1], num_experts=8, num_experts_per_tok=3,
        norm_topk_prob=True, router_aux_loss_coef=0.001, output_router_logits=False,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
    )


def make_qwen3_moe(name="qwen3_moe", seed=QWEN3_MOE_SEED, S=32, write_gguf=True):
    config = transformers.Qwen3MoeConfig(**qwen3_moe_text_kwargs(), dtype="float32",
                                         architectures=["Qwen3MoeForCausalLM"])
    model = build(config, transformers.Qwen3MoeForCausalLM, seed)
    randomize(model, seed)
    kinds = ["moe" if hasattr(l.mlp, "experts") else "dense" for l in model.model.layers]
    assert kinds == ["moe", "dense", "moe"], kinds
    sd = dict(model.state_dict())
    assert_no_zeros(sd, name)
    ids = make_tokens(config.vocab_size, S, seed + 1)
    with torch.no_grad():
        ref = full_logits(model, ids)
    kvd = check_kv(model, ids, ref)
    gap = router_margin(model, ids, config.num_experts_per_tok, softmax_first=True)
    disk = qwen_moe_split_experts(sd)

    d = fresh_dir(name)
    write_config(hf_config_dict(config, extra={"num_experts": config.num_experts}), d / "config.json")
    save_checkpoint(disk, d / "model.safetensors")
    write_reference(d, name, ids[0], ref, seed)
    rd = check_reload(d, ref, ids)
    notes = (f"layers={kinds} kv={kvd:.1e} reload={rd:.1e} min top-k prob gap={gap:.1e} "
             f"|logits|max={float(ref.abs().max()):.2f} std={float(ref.std()):.2f}")
    if write_gguf:
        write_qwen3moe_gguf(d / "model.gguf", config, {k: v.numpy() for k, v in sd.items()})
        gd = check_moe_gguf_via_hf(d / "model.gguf", "qwen3moe", config, transformers.Qwen3MoeForCausalLM,
                                   ids, ref, seed)
        notes += f" gguf(re-load into HF)={gd:.1e}"
    log(f"[{name}] {notes}")
    summarize(name, d, S, config.vocab_size, notes)


def gguf_common(w, config, ctx_len, n_ff, head_dim, n_experts, n_used, eps):
    w.add_vocab_size(config.vocab_size)
    w.add_context_length(ctx_len)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    w.add_layer_norm_rms_eps(float(eps))
    w.add_expert_count(n_experts)
    w.add_expert_used_count(n_used)


def gguf_gpt2_vocab(w, n: int, bos: int, eos: int):
    """Minimal byte-level-BPE ('gpt2') vocabulary: n made-up tokens, no merges."""
    toks = [f"<|special_{i}|>" if i in (bos, eos) else f"t{i}" for i in range(n)]
    types = [gguf.TokenType.CONTROL if i in (bos, eos) else gguf.TokenType.NORMAL for i in range(n)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_merges([])
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)


def write_qwen3moe_gguf(path: Path, config, sd: dict) -> None:
    """arch `qwen3moe`, F32, no Q/K permute (NeoX RoPE), stacked experts [E, out, in] (numpy
    order; GGUF dims reversed), router `ffn_gate_inp`. Dense layers (mlp_only_layers) are written
    as blk.N.ffn_{gate,up,down}.weight, which llama.cpp's qwen3moe loader does not accept (it
    expects experts on every layer) -- precis' loader must."""
    arch = gguf.MODEL_ARCH.QWEN3MOE
    w = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch])
    w.add_name("precis-fixture-qwen3moe")
    gguf_common(w, config, config.max_position_embeddings, config.intermediate_size, config.head_dim,
                config.num_experts, config.num_experts_per_tok, config.rms_norm_eps)
    w.add_expert_feed_forward_length(config.moe_intermediate_size)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    gguf_gpt2_vocab(w, config.vocab_size, config.bos_token_id, config.eos_token_id)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    tmap = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    TN = gguf.TENSOR_NAMES
    M = gguf.MODEL_TENSOR
    for k, v in sd.items():
        if k.endswith("mlp.experts.gate_up_proj"):
            bid = int(k.split(".")[2])
            I = v.shape[1] // 2
            w.add_tensor(TN[M.FFN_GATE_EXP].format(bid=bid) + ".weight", np.ascontiguousarray(v[:, :I]))
            w.add_tensor(TN[M.FFN_UP_EXP].format(bid=bid) + ".weight", np.ascontiguousarray(v[:, I:]))
            continue
        if k.endswith("mlp.experts.down_proj"):
            bid = int(k.split(".")[2])
            w.add_tensor(TN[M.FFN_DOWN_EXP].format(bid=bid) + ".weight", np.ascontiguousarray(v))
            continue
        nm = tmap.get_name(k, try_suffixes=(".weight", ".bias"))
        if nm is None and (".mlp.gate_proj." in k or ".mlp.up_proj." in k or ".mlp.down_proj." in k):
            bid = int(k.split(".")[2])
            t = {"gate_proj": M.FFN_GATE, "up_proj": M.FFN_UP, "down_proj": M.FFN_DOWN}[k.split(".")[4]]
            nm = TN[t].format(bid=bid) + ".weight"
        assert nm is not None, k
        w.add_tensor(nm, np.ascontiguousarray(v.astype(np.float32)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def check_moe_gguf_via_hf(path: Path, arch_name: str, config, causal_cls, ids, ref, seed,
                          gguf_to_hf=None, position_ids=None) -> float:
    """Read a GGUF back (gguf-py), map every tensor back to the HF in-memory parameter, run HF."""
    meta, tens = gguf_read(path)
    assert meta["general.architecture"] == arch_name
    model = build(config, causal_cls, seed)
    hf_sd = model.state_dict()
    arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch_name]
    tmap = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    inv = {}
    for k in hf_sd:
        nm = tmap.get_name(k, try_suffixes=(".weight", ".bias"))
        if nm is not None:
            if not nm.endswith((".weight", ".bias")):
                nm += ".weight"
            inv[nm] = k
    new = {}
    exp_parts = {}
    for name, (arr, ty, shape) in tens.items():
        if gguf_to_hf is not None:
            r = gguf_to_hf(name, arr, ty, shape)
            if r is not None:
                new.update(r)
                continue
        assert ty == gguf.GGMLQuantizationType.F32, (name, ty)
        a = arr.reshape(shape)
        bid = name.split(".")[1] if name.startswith("blk.") else None
        if "_exps." in name:
            exp_parts[(bid, name.split(".")[2])] = a
            continue
        if name in inv:
            new[inv[name]] = torch.from_numpy(a.copy())
            continue
        leaf = name.split(".")[2]
        hf = {"ffn_gate": "gate_proj", "ffn_up": "up_proj", "ffn_down": "down_proj"}[leaf]
        new[f"model.layers.{bid}.mlp.{hf}.weight"] = torch.from_numpy(a.copy())
    for (bid, leaf), a in list(exp_parts.items()):
        if leaf == "ffn_gate_exps":
            new[f"model.layers.{bid}.mlp.experts.gate_up_proj"] = torch.from_numpy(
                np.concatenate([a, exp_parts[(bid, "ffn_up_exps")]], axis=1))
        elif leaf == "ffn_down_exps":
            new[f"model.layers.{bid}.mlp.experts.down_proj"] = torch.from_numpy(a.copy())
    if getattr(config, "tie_word_embeddings", False):
        new["lm_head.weight"] = new["model.embed_tokens.weight"]
    missing = set(hf_sd) - set(new)
    extra = set(new) - set(hf_sd)
    assert not missing and not extra, (missing, extra)
    model.load_state_dict(new, strict=True)
    with torch.no_grad():
        lg = full_logits(model, ids, position_ids)
    dd = maxdiff(lg, ref)
    if dd > GGUF_TOL:
        raise AssertionError(f"{path}: GGUF re-load differs from the reference by {dd}")
    return dd


# ----------------------------------------------------------------------------------------------
# MXFP4 (HF/OpenAI layout and ggml layout), written from model-semantics.md §1a/§1d
# ----------------------------------------------------------------------------------------------

FP4_VALUES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                       -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=np.float64)


def mxfp4_quantize(w: np.ndarray, no_zero: bool = True):
    """w [..., K] (K % 32 == 0) -> (codes u8 [..., K/32, 32], scale bytes u8 [..., K/32]).

    OpenAI / HF (triton_kernels downcast_to_mxfp, scale rounding "up") rule: the block scale is
    amax/6 rounded *up* to a power of two, 2^s, stored as E8M0 byte s + 127; each value x/2^s
    (|.| <= 6) is rounded to the nearest E2M1 value, ties to the even code.
    With no_zero, a value that rounds to +-0 gets code +-0.5 instead (same sign), so that no
    dequantized expert weight is zero (the fixture rule "every parameter non-zero")."""
    w = np.asarray(w, dtype=np.float64)
    blk = w.reshape(*w.shape[:-1], w.shape[-1] // 32, 32)
    amax = np.abs(blk).max(-1)
    assert (amax > 0).all()
    m, k = np.frexp(amax / 6.0)  # amax/6 = m 2^k, m in [0.5, 1)
    s = np.where(m == 0.5, k - 1, k)  # ceil(log2(amax/6))
    assert ((s + 127) >= 1).all() and ((s + 127) <= 254).all()
    q = blk / np.ldexp(1.0, s)[..., None]
    assert np.abs(q).max() <= 6.0
    mag = np.abs(q)
    pos = FP4_VALUES[:8]
    dist = np.abs(mag[..., None] - pos)  # [..., 32, 8]
    best = dist.min(-1, keepdims=True)
    cand = np.isclose(dist, best, rtol=0, atol=0)
    # ties: prefer the even code
    score = np.where(cand, np.arange(8) % 2, 9) * 16 + np.arange(8)
    code = score.argmin(-1)
    if no_zero:
        code = np.where(code == 0, 1, code)
    code = code + 8 * (q < 0)
    return code.astype(np.uint8), (s + 127).astype(np.uint8)


def mxfp4_dequantize_codes(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    v = FP4_VALUES[codes] * np.ldexp(1.0, scales.astype(np.int64) - 127)[..., None]
    return v.reshape(*codes.shape[:-2], codes.shape[-2] * 32)


def mxfp4_pack_hf(codes: np.ndarray) -> np.ndarray:
    """HF/OpenAI nibble order: byte j = code[2j] | code[2j+1] << 4 -> [..., K/32, 16]."""
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def mxfp4_dequantize_hf(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """HF/OpenAI layout [..., K/32, 16] + [..., K/32] -> [..., K] (independent of the packer)."""
    lo = FP4_VALUES[blocks & 0x0F]
    hi = FP4_VALUES[blocks >> 4]
    v = np.empty(blocks.shape[:-1] + (32,))
    v[..., 0::2] = lo
    v[..., 1::2] = hi
    v = v * np.ldexp(1.0, scales.astype(np.int64) - 127)[..., None]
    return v.reshape(*blocks.shape[:-2], blocks.shape[-2] * 32)


def mxfp4_pack_ggml(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """ggml block_mxfp4 {u8 e; u8 qs[16]}: qs[j] = code[j] | code[j+16] << 4, e = the same E8M0
    byte (ggml's doubled table with 2^(e-128) gives the same value). -> [..., K/32*17] u8."""
    qs = (codes[..., :16] | (codes[..., 16:] << 4)).astype(np.uint8)
    b = np.concatenate([scales[..., None], qs], axis=-1)
    return b.reshape(*b.shape[:-2], b.shape[-2] * 17)


# ----------------------------------------------------------------------------------------------
# 3. gpt_oss (MXFP4 experts) + model.gguf
# ----------------------------------------------------------------------------------------------

GPT_OSS_SEED = 3003


def gpt_oss_config(**over):
    kw = dict(
        vocab_size=192, hidden_size=64, intermediate_size=64, num_hidden_layers=3,
        num_local_experts=8, num_experts_per_tok=2, head_dim=32, num_attention_heads=4,
        num_key_value_heads=2, sliding_window=8,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        max_position_embeddings=128, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 8.0,
                         "beta_fast": 32.0, "beta_slow": 1.0, "truncate": False,
                         "original_max_position_embeddings": 16},
        swiglu_limit=7.0, attention_bias=True, tie_word_embeddings=False,
        router_aux_loss_coef=0.9, output_router_logits=False,
        bos_token_id=1, eos_token_id=2, pad_token_id=3, hidden_act="silu",
        architectures=["GptOssForCausalLM"], dtype="float32",
    )
    kw.update(over)
    return transformers.GptOssConfig(**kw)


def make_gpt_oss(name="gpt_oss", seed=GPT_OSS_SEED, S=40, write_gguf=True):
    config = gpt_oss_config()
    H, I, E = config.hidden_size, config.intermediate_size, config.num_local_experts
    assert H % 32 == 0 and I % 32 == 0

    def special(pname, p, gen):
        with torch.no_grad():
            if pname.endswith("experts.gate_up_proj"):   # [E, H, 2I]: outputs O(3) so 7 clamps
                p.copy_(3.0 * H ** -0.5 * torch.randn(p.shape, generator=gen))
            elif pname.endswith("experts.down_proj"):    # [E, I, H]
                p.copy_(0.3 * I ** -0.5 * torch.randn(p.shape, generator=gen))
            elif pname.endswith("experts.gate_up_proj_bias") or pname.endswith("experts.down_proj_bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif pname.endswith("sinks"):                # per query head, large enough to matter
                p.copy_(1.0 + 1.5 * torch.randn(p.shape, generator=gen))
            elif pname.endswith("router.weight"):
                p.copy_(2.0 * H ** -0.5 * torch.randn(p.shape, generator=gen))
            elif pname.endswith("router.bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                return False
        return True

    model = build(config, transformers.GptOssForCausalLM, seed)
    randomize(model, seed, special=special)

    # experts -> MXFP4 (on-disk [E, out, K/32, 16] layout) -> dequantize -> back into the model
    disk = {}
    bumped = [0, 0]
    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            ex = layer.mlp.experts
            pre = f"model.layers.{i}.mlp.experts."
            for proj in ("gate_up_proj", "down_proj"):
                wmem = getattr(ex, proj).detach().double().numpy()        # [E, K, out]
                wdisk = np.ascontiguousarray(np.swapaxes(wmem, 1, 2))     # [E, out, K]
                codes, sc = mxfp4_quantize(wdisk)
                codes0, _ = mxfp4_quantize(wdisk, no_zero=False)
                bumped[0] += int((codes != codes0).sum())
                bumped[1] += codes.size
                blocks = mxfp4_pack_hf(codes)
                deq = mxfp4_dequantize_hf(blocks, sc)
                assert np.array_equal(deq, mxfp4_dequantize_codes(codes, sc))
                assert (deq != 0).all()
                getattr(ex, proj).copy_(torch.from_numpy(np.swapaxes(deq, 1, 2).copy()).float())
                disk[pre + proj + "_blocks"] = torch.from_numpy(blocks)
                disk[pre + proj + "_scales"] = torch.from_numpy(sc)
                disk[pre + proj + "_codes"] = codes  # not saved; used for the GGUF
                b = getattr(ex, proj + "_bias")
                b.copy_(b.to(torch.bfloat16).float())                     # biases stored bf16
                disk[pre + proj + "_bias"] = b.detach().to(torch.bfloat16).clone()
    sd = dict(model.state_dict())
    assert_no_zeros(sd, name)
    for k, v in sd.items():
        if ".mlp.experts." not in k:
            disk[k] = v
    codes_all = {k: disk.pop(k) for k in list(disk) if k.endswith("_codes")}

    ids = make_tokens(config.vocab_size, S, seed + 1)
    with torch.no_grad():
        ref = full_logits(model, ids)
        out = model(input_ids=ids, use_cache=False, output_attentions=True)
    sink_mass = torch.stack([1.0 - a.sum(-1) for a in out.attentions])  # [L, 1, H, S, ]
    kvd = check_kv(model, ids, ref)
    gap = router_margin(model, ids, config.num_experts_per_tok, softmax_first=False)
    clamp = gpt_oss_clamp_stats(model, ids)
    sens = gpt_oss_sensitivity(model, ids, ref)

    d = fresh_dir(name)
    cfg = hf_config_dict(config, extra={
        "quantization_config": {
            "quant_method": "mxfp4",
            "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                       "model.embed_tokens", "lm_head"]},
        "experts_per_token": config.num_experts_per_tok,
        "initial_context_length": config.rope_parameters["original_max_position_embeddings"],
    })
    write_config(cfg, d / "config.json")
    save_checkpoint(disk, d / "model.safetensors")
    write_reference(d, name, ids[0], ref, seed)
    rd = check_reload(d, ref, ids)
    notes = (f"mxfp4 codes bumped from +-0 to +-0.5: {100 * bumped[0] / bumped[1]:.2f}%; "
             f"kv={kvd:.1e} reload(HF mxfp4 dequantize)={rd:.1e} min top-k logit gap={gap:.1e} "
             f"sink mass mean={float(sink_mass.mean()):.3f} min={float(sink_mass.min()):.3f} "
             f"max={float(sink_mass.max()):.3f}; {clamp}; sensitivity(max|dlogit|): {sens}; "
             f"|logits|max={float(ref.abs().max()):.2f} std={float(ref.std()):.2f}")
    if write_gguf:
        write_gpt_oss_gguf(d / "model.gguf", config, sd, codes_all, disk)
        gd = check_moe_gguf_via_hf(d / "model.gguf", "gpt-oss", config, transformers.GptOssForCausalLM,
                                   ids, ref, seed, gguf_to_hf=gpt_oss_gguf_to_hf)
        notes += f" gguf(re-load into HF)={gd:.1e}"
    log(f"[{name}] {notes}")
    summarize(name, d, S, config.vocab_size, notes)


def gpt_oss_clamp_stats(model, ids) -> str:
    """Fraction of routed (token, expert) gate / up pre-activations beyond the 7.0 clamp."""
    stats = []

    def hook(mod, inp, _out):
        x = inp[0].reshape(-1, inp[0].shape[-1])
        _, _, idx = mod.router(x)
        ex = mod.experts
        for t in range(x.shape[0]):
            for e in idx[t].tolist():
                gu = x[t] @ ex.gate_up_proj[e] + ex.gate_up_proj_bias[e]
                g, u = gu[0::2], gu[1::2]
                stats.append((int((g > ex.limit).sum()), int((u.abs() > ex.limit).sum()), g.numel()))

    hs = [l.mlp.register_forward_hook(hook) for l in model.model.layers]
    with torch.no_grad():
        full_logits(model, ids)
    for h in hs:
        h.remove()
    n = sum(s[2] for s in stats)
    g = sum(s[0] for s in stats) / n
    u = sum(s[1] for s in stats) / n
    assert g > 0 and u > 0, "the swiglu clamp is never hit"
    return f"clamp hit: gate>7 {100 * g:.2f}%, |up|>7 {100 * u:.2f}% of routed pre-activations"


def gpt_oss_sensitivity(model, ids, ref) -> str:
    """How much the logits move when one feature is switched off (same weights)."""
    sd = model.state_dict()
    res = []
    variants = {
        "no_sinks": ({}, lambda s: {k: (torch.full_like(v, -1e4) if k.endswith("sinks") else v)
                                    for k, v in s.items()}),
        "no_sliding": ({"layer_types": ["full_attention"] * 3}, None),
        "yarn_truncate": ({"rope_parameters": {**model.config.rope_parameters, "truncate": True}}, None),
        "no_clamp": ({"swiglu_limit": 1e9}, None),
        "no_yarn": ({"rope_parameters": {"rope_type": "default", "rope_theta": 150000.0}}, None),
    }
    for vname, (over, fix) in variants.items():
        m = build(gpt_oss_config(**over), transformers.GptOssForCausalLM, 0)
        m.load_state_dict(fix(sd) if fix else sd)
        with torch.no_grad():
            lg = full_logits(m, ids)
        dd = maxdiff(lg, ref)
        assert dd > 1e-3, f"{vname} does not change the logits"
        res.append(f"{vname} {dd:.3g}")
    return ", ".join(res)


def write_gpt_oss_gguf(path: Path, config, sd: dict, codes_all: dict, disk: dict) -> None:
    """arch `gpt-oss`: experts MXFP4 in ggml blocks, gate/up split from the interleave
    (even rows gate, odd rows up), biases F32 (exact bf16 values), other tensors F32."""
    arch = gguf.MODEL_ARCH.GPT_OSS
    rp = config.rope_parameters
    w = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch])
    w.add_name("precis-fixture-gpt-oss")
    gguf_common(w, config, config.max_position_embeddings, config.intermediate_size, config.head_dim,
                config.num_local_experts, config.num_experts_per_tok, config.rms_norm_eps)
    w.add_expert_feed_forward_length(config.intermediate_size)
    w.add_sliding_window(config.sliding_window)
    # per-layer flags (true = sliding). llama.cpp's converter does not write this for gpt-oss (its
    # loader hard-codes "even layers slide"); written here so that the file states it.
    w.add_sliding_window_pattern([t == "sliding_attention" for t in config.layer_types])
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(float(rp["factor"]))
    w.add_rope_scaling_orig_ctx_len(int(rp["original_max_position_embeddings"]))
    w.add_rope_scaling_yarn_beta_fast(float(rp["beta_fast"]))
    w.add_rope_scaling_yarn_beta_slow(float(rp["beta_slow"]))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_MXFP4_MOE)
    gguf_gpt2_vocab(w, config.vocab_size, config.bos_token_id, config.eos_token_id)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    tmap = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    TN, M = gguf.TENSOR_NAMES, gguf.MODEL_TENSOR
    for k, v in sd.items():
        if ".mlp.experts." in k:
            continue
        nm = tmap.get_name(k, try_suffixes=(".weight", ".bias"))
        assert nm is not None, k
        if not nm.endswith((".weight", ".bias")):
            nm += ".weight"   # self_attn.sinks -> blk.N.attn_sinks.weight
        w.add_tensor(nm, np.ascontiguousarray(v.numpy().astype(np.float32)))
    for i in range(config.num_hidden_layers):
        pre = f"model.layers.{i}.mlp.experts."
        cg = codes_all[pre + "gate_up_proj_codes"]          # [E, 2I, H/32, 32]
        sg = disk[pre + "gate_up_proj_scales"].numpy()     # [E, 2I, H/32]
        bg = disk[pre + "gate_up_proj_bias"].float().numpy()
        for t, sl in ((M.FFN_GATE_EXP, slice(0, None, 2)), (M.FFN_UP_EXP, slice(1, None, 2))):
            nm = TN[t].format(bid=i)
            w.add_tensor(nm + ".weight", np.ascontiguousarray(mxfp4_pack_ggml(cg[:, sl], sg[:, sl])),
                         raw_dtype=gguf.GGMLQuantizationType.MXFP4)
            w.add_tensor(nm + ".bias", np.ascontiguousarray(bg[:, sl]))
        cd = codes_all[pre + "down_proj_codes"]
        sdn = disk[pre + "down_proj_scales"].numpy()
        nm = TN[M.FFN_DOWN_EXP].format(bid=i)
        w.add_tensor(nm + ".weight", np.ascontiguousarray(mxfp4_pack_ggml(cd, sdn)),
                     raw_dtype=gguf.GGMLQuantizationType.MXFP4)
        w.add_tensor(nm + ".bias", np.ascontiguousarray(disk[pre + "down_proj_bias"].float().numpy()))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


_GPT_OSS_PARTS = {}


def gpt_oss_gguf_to_hf(name, arr, ty, shape):
    """GGUF expert tensors -> HF in-memory experts.{gate_up_proj [E,H,2I], down_proj [E,I,H], *_bias}.
    MXFP4 blocks are dequantized by gguf-py (gguf.quants.dequantize: ggml's own rule)."""
    if "_exps." not in name:
        if name.endswith("attn_sinks.weight"):
            bid = name.split(".")[1]
            return {f"model.layers.{bid}.self_attn.sinks": torch.from_numpy(arr.reshape(shape).copy())}
        return None
    bid = name.split(".")[1]
    leaf = name.split(".")[2]
    if ty == gguf.GGMLQuantizationType.MXFP4:
        a = gguf.quants.dequantize(arr.reshape(shape[:-1] + (-1,)), ty)   # [E, out, K]
    else:
        a = arr.reshape(shape)
    _GPT_OSS_PARTS[(bid, name.split(".", 2)[2])] = a
    P = lambda s: _GPT_OSS_PARTS.get((bid, s))
    out = {}
    pre = f"model.layers.{bid}.mlp.experts."
    if P("ffn_gate_exps.weight") is not None and P("ffn_up_exps.weight") is not None \
            and pre + "gate_up_proj" not in _GPT_OSS_PARTS:
        g, u = P("ffn_gate_exps.weight"), P("ffn_up_exps.weight")
        gu = np.empty((g.shape[0], 2 * g.shape[1], g.shape[2]), dtype=np.float32)
        gu[:, 0::2], gu[:, 1::2] = g, u
        out[pre + "gate_up_proj"] = torch.from_numpy(np.swapaxes(gu, 1, 2).copy())
        _GPT_OSS_PARTS[pre + "gate_up_proj"] = True
    if P("ffn_gate_exps.bias") is not None and P("ffn_up_exps.bias") is not None \
            and pre + "gate_up_proj_bias" not in _GPT_OSS_PARTS:
        g, u = P("ffn_gate_exps.bias"), P("ffn_up_exps.bias")
        gu = np.empty((g.shape[0], 2 * g.shape[1]), dtype=np.float32)
        gu[:, 0::2], gu[:, 1::2] = g, u
        out[pre + "gate_up_proj_bias"] = torch.from_numpy(gu)
        _GPT_OSS_PARTS[pre + "gate_up_proj_bias"] = True
    if leaf == "ffn_down_exps":
        if name.endswith(".weight"):
            out[pre + "down_proj"] = torch.from_numpy(np.swapaxes(a, 1, 2).copy().astype(np.float32))
        else:
            out[pre + "down_proj_bias"] = torch.from_numpy(a.copy())
    return out


# ----------------------------------------------------------------------------------------------
# 4. qwen3_omni_thinker (interleaved MRoPE, thinker.* names)
# ----------------------------------------------------------------------------------------------

OMNI_SEED = 55  # chosen so bf16 rounding flips no top-k choice (bf16 path rel-L2 1.3e-2; seeds 33, 88 flip one)


class ThinkerTextLM(torch.nn.Module):
    """Qwen3OmniMoeThinkerTextModel + lm_head (what the thinker runs for text tokens)."""

    def __init__(self, text_config):
        super().__init__()
        self.model = transformers.models.qwen3_omni_moe.modeling_qwen3_omni_moe.Qwen3OmniMoeThinkerTextModel \
            ._from_config(text_config, dtype=torch.float32, attn_implementation="eager")
        try:
            self.model.set_experts_implementation("eager")
        except Exception:
            pass
        self.lm_head = torch.nn.Linear(text_config.hidden_size, text_config.vocab_size, bias=False)

    def forward(self, input_ids, position_ids=None, past_key_values=None, use_cache=False, **kw):
        out = self.model(input_ids=input_ids, position_ids=position_ids, past_key_values=past_key_values,
                         use_cache=use_cache)
        logits = self.lm_head(out.last_hidden_state)
        return type("Out", (), {"logits": logits, "past_key_values": out.past_key_values})()


def omni_text_config():
    return transformers.Qwen3OmniMoeTextConfig(
        vocab_size=160, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
        hidden_act="silu", max_position_embeddings=1024, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [6, 5, 5],
                         "interleaved": True, "mrope_interleaved": True},
        attention_bias=False, sliding_window=None, decoder_sparse_step=2, mlp_only_layers=[],
        num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, router_aux_loss_coef=0.001,
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )


def omni_position_ids():
    """[3, S] (t, h, w): text, a 1x2x3 image grid (t constant, h/w vary), text resuming at
    max+1, a 2x2x2 video-like grid (t varies too), text resuming at max+1."""
    rows = [[], [], []]
    nxt = 0

    def text(n):
        nonlocal nxt
        for _ in range(n):
            for r in rows:
                r.append(nxt)
            nxt += 1

    def grid(T, Hh, W):
        nonlocal nxt
        base = nxt
        for t in range(T):
            for h in range(Hh):
                for w in range(W):
                    rows[0].append(base + t)
                    rows[1].append(base + h)
                    rows[2].append(base + w)
        nxt = max(max(r) for r in rows) + 1

    text(8)
    grid(1, 2, 3)
    text(6)
    grid(2, 2, 2)
    text(12)
    return torch.tensor(rows, dtype=torch.long)


def make_qwen3_omni_thinker(name="qwen3_omni_thinker", seed=OMNI_SEED):
    tc = omni_text_config()
    torch.manual_seed(seed)
    model = ThinkerTextLM(tc).eval()
    randomize(model, seed)
    kinds = ["moe" if hasattr(l.mlp, "experts") else "dense" for l in model.model.layers]
    assert kinds == ["dense", "moe", "dense", "moe"], kinds
    sd = dict(model.state_dict())
    assert_no_zeros(sd, name)
    pos = omni_position_ids()
    S = pos.shape[1]
    assert not torch.equal(pos[0], pos[1]) and not torch.equal(pos[1], pos[2]) and not torch.equal(pos[0], pos[2])
    ids = make_tokens(tc.vocab_size, S, seed + 1)
    pos3 = pos[:, None, :]  # [3, B=1, S]
    with torch.no_grad():
        ref = full_logits(model, ids, pos3)
        # the same tokens with 1-D positions (t = h = w = arange) must give different logits
        plain = full_logits(model, ids, torch.arange(S)[None, None, :].expand(3, 1, S))
    sens = maxdiff(plain, ref)
    assert sens > 1e-3
    kvd = check_kv(model, ids, ref, pos3)
    gap = router_margin(model, ids, tc.num_experts_per_tok, softmax_first=True, position_ids=pos3)
    disk = qwen_moe_split_experts(sd, "", "thinker.")

    d = fresh_dir(name)
    write_config(omni_config_json(tc), d / "config.json")
    save_checkpoint(disk, d / "model.safetensors")
    write_reference(d, name, ids[0], ref, seed, position_ids=pos)
    rd = check_omni_reload(d, ref, ids, pos3)
    notes = (f"layers={kinds} kv={kvd:.1e} reload(Qwen3OmniMoeForConditionalGeneration)={rd:.1e} "
             f"min top-k prob gap={gap:.1e} |ref - logits with t=h=w positions|max={sens:.3g} "
             f"|logits|max={float(ref.abs().max()):.2f} std={float(ref.std()):.2f}")
    log(f"[{name}] {notes}")
    summarize(name, d, S, tc.vocab_size, notes)


def omni_config_json(tc) -> dict:
    """config.json shaped like the Qwen3-Omni-30B-A3B release: top-level model_type
    qwen3_omni_moe, thinker_config.{text_config, audio_config, vision_config}. The audio/vision
    towers are tiny placeholders (no weights in the fixture); enable_audio_output is false and no
    talker/code2wav configs are written (no talker weights either)."""
    text = hf_config_dict(tc)
    rp = tc.rope_parameters
    text["rope_scaling"] = {"interleaved": True, "mrope_interleaved": True,
                            "mrope_section": list(rp["mrope_section"]),
                            "rope_type": "default", "type": "default"}
    text["use_qk_norm"] = True
    text["use_sliding_window"] = False
    text.pop("transformers_version", None)
    audio = dict(model_type="qwen3_omni_moe_audio_encoder", d_model=32, encoder_layers=1,
                 encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=16, output_dim=tc.hidden_size,
                 downsample_hidden_size=8, max_source_positions=64, n_window=4, n_window_infer=8,
                 conv_chunksize=16)
    vision = dict(model_type="qwen3_omni_moe_vision_encoder", depth=1, hidden_size=32, intermediate_size=64,
                  num_heads=2, in_channels=3, patch_size=4, spatial_merge_size=2, temporal_patch_size=2,
                  out_hidden_size=tc.hidden_size, num_position_embeddings=16, deepstack_visual_indexes=[0])
    thinker = {
        "model_type": "qwen3_omni_moe_thinker",
        "text_config": text, "audio_config": audio, "vision_config": vision,
        "audio_token_id": 150, "image_token_id": 151, "video_token_id": 152,
        "audio_start_token_id": 153, "vision_start_token_id": 154, "vision_end_token_id": 155,
        "audio_end_token_id": 156, "user_token_id": 157, "position_id_per_seconds": 13,
        "seconds_per_chunk": 2, "tie_word_embeddings": False, "initializer_range": 0.02,
        "dtype": "float32", "torch_dtype": "float32",
    }
    return {
        "architectures": ["Qwen3OmniMoeForConditionalGeneration"],
        "model_type": "qwen3_omni_moe",
        "thinker_config": thinker,
        "enable_audio_output": False,
        "im_start_token_id": 158, "im_end_token_id": 159, "system_token_id": 140, "user_token_id": 157,
        "assistant_token_id": 141, "tts_pad_token_id": 142, "tts_bos_token_id": 143, "tts_eos_token_id": 144,
        "dtype": "float32", "torch_dtype": "float32",
        "transformers_version": transformers.__version__,
    }


def check_omni_reload(dirpath: Path, ref, ids, pos3) -> float:
    """Load the fixture with Qwen3OmniMoeForConditionalGeneration.from_pretrained (HF's own
    thinker.* name mapping; the placeholder audio/vision towers are left random) and run the
    thinker's text model + lm_head, and the thinker's own forward, with the position ids."""
    m = transformers.Qwen3OmniMoeForConditionalGeneration.from_pretrained(
        str(dirpath), dtype=torch.float32, attn_implementation="eager", experts_implementation="eager")
    m.eval()
    th = m.thinker
    lm = th.model.language_model if hasattr(th.model, "language_model") else th.model
    with torch.no_grad():
        h = lm(input_ids=ids, position_ids=pos3, use_cache=False).last_hidden_state
        lg = th.lm_head(h)[0]
        lg2 = th(input_ids=ids, position_ids=pos3, use_cache=False).logits[0]
    dd = max(maxdiff(lg, ref), maxdiff(lg2, ref))
    if dd > RELOAD_TOL:
        raise AssertionError(f"{dirpath.name}: from_pretrained re-load differs by {dd}")
    return dd


# ----------------------------------------------------------------------------------------------

FIXTURES = {
    "llama": lambda: make_llama("llama", tied=True, store_dtype=torch.float32, seed=LLAMA_SEED, S=32),
    "qwen3_moe": lambda: make_qwen3_moe(),
    "gpt_oss": lambda: make_gpt_oss(),
    "qwen3_omni_thinker": lambda: make_qwen3_omni_thinker(),
    "llama_untied_bf16": lambda: make_llama("llama_untied_bf16", tied=False, store_dtype=torch.bfloat16,
                                            seed=5005, S=32, write_gguf=False),
}


def main(argv):
    names = argv or list(FIXTURES)
    for n in names:
        if n not in FIXTURES:
            raise SystemExit(f"unknown fixture {n}; known: {', '.join(FIXTURES)}")
    log("versions:", VERSIONS)
    for n in names:
        log(f"== {n}")
        FIXTURES[n]()
    log("")
    log(f"{'fixture':<22} {'bytes':>9} {'S':>4} {'vocab':>6}  files")
    for name, files, total, S, vocab, notes in SUMMARY:
        log(f"{name:<22} {total:>9} {S:>4} {vocab:>6}  {files}")
    for name, files, total, S, vocab, notes in SUMMARY:
        log(f"{name}: {notes}")


if __name__ == "__main__":
    main(sys.argv[1:])
