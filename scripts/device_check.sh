#!/usr/bin/env bash
# scripts/device_check.sh — the CUDA backend's checks on a GPU machine, in two halves:
#
#   bash scripts/device_check.sh stage   here (the build machine, no GPU needed): builds the CUDA
#                                        test binary (build/gcc) and copies what the GPU machine
#                                        lacks into .device/ (git-ignored): the binary, libtbb,
#                                        the shared stories260K model
#   bash scripts/device_check.sh run     on the GPU machine, from the repository root (the lent
#                                        machine has CUDA 13 but no Debian -dev packages, so the
#                                        program is built here and carried): prints the device,
#                                        runs every CUDA test, then compute-sanitizer memcheck
#                                        and racecheck on the op tests; logs under $OUT (or .device/out)
#
# With the device tool: stage here, then `run` with carry [".device"] and command
#   bash scripts/device_check.sh run
# The binary has this checkout's absolute paths for its fixtures compiled in; `run` links them
# to the repository root it runs in.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
mode=${1:-run}

if [ "$mode" = stage ]; then
  set -e
  cmake -S . -B build/gcc -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ >/dev/null
  ninja -C build/gcc test_cuda_backend
  mkdir -p .device/lib .device/data/models
  cp build/gcc/tests/cuda/test_cuda_backend .device/
  strip .device/test_cuda_backend
  cp -L /lib/x86_64-linux-gnu/libtbb.so.12 .device/lib/
  cp ../shared/data/models/stories260K.gguf .device/data/models/ 2>/dev/null || echo "no stories260K.gguf to carry"
  # The binary has this checkout's fixture and shared-data paths compiled in; `run` recreates them.
  echo "$root" > .device/build_root
  du -sh .device
  exit 0
fi

out=${OUT:-$root/.device/out}
mkdir -p "$out"
export LD_LIBRARY_PATH="$root/.device/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>&1 | tee "$out/device.txt"
date -u +"%Y-%m-%d %H:%M UTC" | tee -a "$out/device.txt"
# The build machine's checkout and shared-data paths, pointing at this copy.
build_root=$(cat .device/build_root)
if [ "$build_root" != "$root" ]; then
  mkdir -p "$(dirname "$build_root")"
  ln -sfn "$root" "$build_root"
fi
mkdir -p "$(dirname "$build_root")/shared/data"
ln -sfn "$root/.device/data/models" "$(dirname "$build_root")/shared/data/models" 2>/dev/null || true

status=0
echo "==== test_cuda_backend"
timeout "${TEST_TIMEOUT:-300}" .device/test_cuda_backend --durations yes 2>&1 | tee "$out/test.log" | tail -40 || status=1
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
if command -v compute-sanitizer >/dev/null; then
  echo "==== compute-sanitizer memcheck (every test)"
  timeout "${SANITIZER_TIMEOUT:-240}" compute-sanitizer --tool memcheck --error-exitcode 9 .device/test_cuda_backend >"$out/memcheck.log" 2>&1
  rc=$?; [ $rc -eq 124 ] && echo "memcheck: stopped after ${SANITIZER_TIMEOUT:-240} s"; tail -5 "$out/memcheck.log"; [ $rc -eq 0 ] || status=1
  echo "==== compute-sanitizer racecheck (op tests)"
  timeout "${SANITIZER_TIMEOUT:-240}" compute-sanitizer --tool racecheck --error-exitcode 9 .device/test_cuda_backend "~[models]" >"$out/racecheck.log" 2>&1
  rc=$?; [ $rc -eq 124 ] && echo "racecheck: stopped after ${SANITIZER_TIMEOUT:-240} s"; tail -5 "$out/racecheck.log"; [ $rc -eq 0 ] || status=1
fi
echo "==== device_check: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
