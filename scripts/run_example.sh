#!/usr/bin/env bash
# scripts/run_example.sh — sets up, builds and runs examples/01_tensor_basics (typed tensors,
# casts, views and precision policies). Only the example is built: no tests, no benchmarks.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir=${PRECIS_BUILD_ROOT:-$PWD/build}/example

bash scripts/setup.sh
cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DPRECIS_BUILD_TESTS=OFF \
  -DPRECIS_BUILD_BENCHMARKS=OFF \
  -DPRECIS_BUILD_EXAMPLES=ON \
  -DPRECIS_ENABLE_CUDA=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target 01_tensor_basics
echo
"$build_dir/examples/01_tensor_basics"
