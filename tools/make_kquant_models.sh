#!/usr/bin/env bash
# tools/make_kquant_models.sh — the GGUF files people download, made by llama.cpp's own tool:
# precis' default model (SmolLM2-135M-Instruct Q4_1) requantized by `llama-quantize
# --allow-requantize` to each llama-quantize type precis reads, into the user cache:
#
#   <cache>/models/kquants/SmolLM2-135M-Instruct.<TYPE>.gguf
#
# TYPE ∈ Q4_K_M Q4_K_S Q5_K_M Q6_K Q3_K_M Q2_K IQ4_XS IQ4_NL Q5_0 Q5_1 Q8_0. SmolLM2's hidden size
# (576) is not a multiple of 256, so llama-quantize falls back for most matrices (Q4_K → Q5_0,
# Q5_K → Q5_1, Q6_K → Q8_0, Q2_K/Q3_K → IQ4_NL, IQ4_XS → IQ4_NL): exactly the mixed files users
# get. The ffn_down matrices (K = 1536 = 6·256) and the tied embedding keep the K-quant types.
# Requantizing from Q4_1 compounds two quantizations; the files test decoding, not quality.
#
# llama.cpp comes from tools/build_llamacpp.sh (cached). Idempotent: existing files are kept.
# Prints the directory on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${PRECIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/precis}"
src="$("$here/../scripts/fetch_model.sh")"
bin="$("$here/build_llamacpp.sh")"
out="$cache/models/kquants"
mkdir -p "$out"
types=(${KQUANT_TYPES:-Q4_K_M Q4_K_S Q5_K_M Q6_K Q3_K_M Q2_K IQ4_XS IQ4_NL Q5_0 Q5_1 Q8_0})
for t in "${types[@]}"; do
  dst="$out/SmolLM2-135M-Instruct.$t.gguf"
  if [ -s "$dst" ]; then echo "make_kquant_models: $dst is present" >&2; continue; fi
  echo "make_kquant_models: llama-quantize --allow-requantize → $t" >&2
  LD_LIBRARY_PATH="$bin" "$bin/llama-quantize" --allow-requantize "$src" "$dst.tmp" "$t" 2 > "$out/$t.log" 2>&1 ||
    { echo "make_kquant_models: llama-quantize failed for $t (log: $out/$t.log)" >&2; rm -f "$dst.tmp"; exit 1; }
  mv "$dst.tmp" "$dst"
done
echo "$out"
