#!/usr/bin/env bash
# scripts/device_check.sh — the CUDA backend's checks on a GPU machine:
#
#   bash scripts/device_check.sh stage   here (the build machine, no GPU needed): builds the CUDA
#                                        test binary and the tools (build/gcc) and copies what
#                                        the GPU machine lacks into .device/ (git-ignored): the
#                                        binaries, libtbb, libpcre2, the shared stories260K model;
#                                        the default SmolLM2 GGUF (98 MB, over the device tool's
#                                        64 MiB a call with the ~19 MB working tree) is split in three:
#                                        .device_model/, .device_model_b/, .device_model_c/
#   bash scripts/device_check.sh receive on the GPU machine, three calls (carry [".device_model"], then
#                                        [".device_model_b"], [".device_model_c"]): keeps the parts in
#                                        /root/precis-carry
#   bash scripts/device_check.sh run     on the GPU machine, next call (carry [".device"]), from the
#                                        repository root (the lent machine has CUDA 13 but no
#                                        Debian -dev packages, so programs are built here and
#                                        carried): prints the device, runs every CUDA test, then
#                                        compute-sanitizer memcheck and racecheck on the op tests,
#                                        then the tools with --device cuda against --device cpu:
#                                        precis-conform on every fixture (f32 and bf16, prefill and
#                                        prefill + decode), precis-generate greedy and seeded text
#                                        on stories260K and (when both parts arrived) SmolLM2-135M,
#                                        precis-eval perplexity, precis-bench pp512/tg128 on the GPU and
#                                        the CPU; logs under $OUT (or .device/out)
#
# The binaries have this checkout's absolute paths for fixtures compiled in; `run` links them
# to the repository root it runs in. SKIP_TESTS=1 skips the test binary and the sanitizers.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
mode=${1:-run}

if [ "$mode" = stage ]; then
  set -e
  # The architecture explicitly: a build directory configured earlier may have cached another
  # (CMake's own default, 75, runs Hopper through the PTX JIT and without the bf16 tensor cores).
  cmake -S . -B build/gcc -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
  ninja -C build/gcc test_cuda_backend precis-generate precis-eval precis-conform precis-bench
  rm -rf .device .device_model .device_model_b .device_model_c
  mkdir -p .device/lib .device/data/models .device/bin .device_model .device_model_b .device_model_c
  cp build/gcc/tests/cuda/test_cuda_backend .device/
  cp build/gcc/examples/precis-generate build/gcc/examples/precis-eval build/gcc/examples/precis-conform .device/bin/
  cp build/gcc/benchmarks/precis-bench .device/bin/
  strip .device/test_cuda_backend .device/bin/*
  gzip -9 .device/test_cuda_backend .device/bin/*   # 31 MB → 8 MB of the 64 MiB a call carries
  cp -L /lib/x86_64-linux-gnu/libtbb.so.12 /lib/x86_64-linux-gnu/libpcre2-8.so.0 /lib/x86_64-linux-gnu/libbenchmark.so.1debian .device/lib/
  cp ../shared/data/models/stories260K.gguf .device/data/models/ 2>/dev/null || echo "no stories260K.gguf to carry"
  smol=${PRECIS_MODEL:-$HOME/.cache/precis/models/SmolLM2-135M-Instruct.Q4_1.gguf}
  if [ -f "$smol" ]; then
    # Each call carries the working tree (~19 MB) too: three parts of ~33 MB, one per call.
    split -n 3 -d "$smol" .device_model/smol.part
    mv .device_model/smol.part01 .device_model_b/
    mv .device_model/smol.part02 .device_model_c/
    sha256sum < "$smol" | cut -d' ' -f1 > .device/smol.sha256
  else
    echo "no $smol: the SmolLM2 checks will be skipped (scripts/fetch_model.sh)"
  fi
  # The binary has this checkout's fixture and shared-data paths compiled in; `run` recreates them.
  echo "$root" > .device/build_root
  du -sh .device .device_model .device_model_b .device_model_c
  exit 0
fi

if [ "$mode" = receive ]; then
  mkdir -p /root/precis-carry
  for d in .device_model .device_model_b .device_model_c; do [ -d $d ] && cp $d/* /root/precis-carry/; done
  ls -la /root/precis-carry
  exit 0
fi

out=${OUT:-$root/.device/out}
mkdir -p "$out"
for z in .device/test_cuda_backend.gz .device/bin/*.gz; do [ -f "$z" ] && gunzip -f "$z"; done
chmod +x .device/test_cuda_backend .device/bin/* 2>/dev/null
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
if [ "${SKIP_TESTS:-0}" != 1 ]; then
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
  grep -A12 "FAILED" "$out/racecheck.log" | head -40
fi
fi

bin=.device/bin
if [ -x $bin/precis-conform ]; then
  echo "==== precis-conform --device cuda (every fixture, f32 and bf16, prefill and prefill + decode)"
  fx=tests/fixtures/models
  for spec in llama:llama:5 llama/model.gguf:llama:5 llama_untied_bf16:llama_untied_bf16:9 qwen3_moe:qwen3_moe:13 \
              qwen3_moe/model.gguf:qwen3_moe:13 gpt_oss:gpt_oss:17 gpt_oss/model.gguf:gpt_oss:17 \
              qwen3_omni_thinker:qwen3_omni_thinker:20 qwen3_omni_thinker/model.gguf:qwen3_omni_thinker:20; do
    IFS=: read -r m r split <<<"$spec"
    for p in f32 bf16; do
      for sp in "" "--split $split"; do
        line=$(timeout 120 $bin/precis-conform --model $fx/$m --reference $fx/$r/reference.safetensors --precision $p \
               --device cuda $sp 2>&1 | tr '\n' ' ')
        rc=$?
        echo "$m $p ${sp:-prefill}: rc=$rc $(echo "$line" | grep -o 'relative L2[^,]*' | head -1) $(echo "$line" | grep -o 'top-1[^,]*' | head -1)"
        echo "$m $p $sp: $line" >>"$out/conform.log"
        [ $rc -eq 0 ] || status=1
      done
    done
  done | tee "$out/conform.txt"
  grep -q "rc=[^0]" "$out/conform.txt" && status=1
fi

if [ -x $bin/precis-conform ]; then  # gpt-oss bf16: the CPU's error, and the GPU's with each fast path off
  fx=tests/fixtures/models
  for v in "cpu" "cuda" "cuda PRECIS_CUDA_TC_ATTENTION=0" "cuda PRECIS_CUDA_DEVICE_ROUTING=0"; do
    set -- $v
    for sp in "" "--split 17"; do
      echo "gpt_oss bf16 $v ${sp:-prefill}: $(env ${2:-X=1} $bin/precis-conform --model $fx/gpt_oss --reference $fx/gpt_oss/reference.safetensors \
        --precision bf16 --device $1 $sp 2>&1 | grep -o 'relative L2 *[0-9.e+-]*')"
    done
  done | tee -a "$out/conform.txt"
fi

gen_pair() {  # name model extra-args...: the same generation on cpu and cuda, text compared
  local name=$1 model=$2; shift 2
  for d in cpu cuda; do
    timeout 300 $bin/precis-generate -m "$model" --device $d "$@" >"$out/gen_${name}_$d.txt" 2>"$out/gen_${name}_$d.err"
    echo "$name $d: rc=$? $(grep -o '[0-9.]* tokens/s[^,]*' "$out/gen_${name}_$d.err" | tr '\n' ' ')"
  done
  if cmp -s "$out/gen_${name}_cpu.txt" "$out/gen_${name}_cuda.txt" && [ -s "$out/gen_${name}_cpu.txt" ]; then
    echo "$name: text identical ($(wc -c <"$out/gen_${name}_cpu.txt") bytes)"
  else
    echo "$name: TEXT DIFFERS"; diff "$out/gen_${name}_cpu.txt" "$out/gen_${name}_cuda.txt" | head -8; status=1
  fi
}
if [ -x $bin/precis-generate ]; then
  echo "==== precis-generate: --device cuda vs --device cpu"
  st=.device/data/models/stories260K.gguf
  if [ -f $st ]; then
    gen_pair stories_greedy $st -p "Once upon a time" -n 64 --temp 0
    gen_pair stories_sampled $st -p "Once upon a time" -n 64 --temp 0.8 --top-k 40 --top-p 0.95 --seed 5
  fi
  smol=/root/smol.gguf
  if [ -f /root/precis-carry/smol.part00 ] && [ -f /root/precis-carry/smol.part01 ] && [ -f /root/precis-carry/smol.part02 ]; then
    cat /root/precis-carry/smol.part00 /root/precis-carry/smol.part01 /root/precis-carry/smol.part02 >$smol
    [ "$(sha256sum <$smol | cut -d' ' -f1)" = "$(cat .device/smol.sha256)" ] || { echo "SmolLM2: parts do not match the checksum"; rm -f $smol; }
  fi
  if [ -f $smol ]; then
    gen_pair smol_greedy $smol -p "What is the capital of France?" -n 48 --temp 0
    gen_pair smol_greedy_bf16 $smol -p "Write a haiku about the sea." -n 48 --temp 0 --precision bf16
    gen_pair smol_sampled $smol -p "Tell me a story about a robot." -n 64 --temp 0.7 --top-p 0.9 --seed 3
    printf 'Name a color.\nName a fruit.\nName an animal.\nName a city.\n' >"$out/prompts.txt"
    gen_pair smol_batch4 $smol --file "$out/prompts.txt" -n 32 --temp 0
    for d in cpu cuda; do
      timeout 300 $bin/precis-generate -m $smol --device $d -p "Explain how a rainbow forms." -n 256 --temp 0 --ignore-eos \
        >/dev/null 2>"$out/speed_$d.err"
      echo "smol decode 256 tokens $d: $(grep -i 'tokens/s\|peak' "$out/speed_$d.err" | tr '\n' ' ')"
    done
    if [ -x $bin/precis-eval ]; then
      for d in cpu cuda; do
        timeout 300 $bin/precis-eval -m $smol --device $d -f LICENSE -c 256 >"$out/eval_$d.txt" 2>&1
        echo "precis-eval SmolLM2 on LICENSE, $d: rc=$? $(grep -i 'perplexity' "$out/eval_$d.txt" | head -2 | tr '\n' ' ')"
      done
    fi
    if [ -x $bin/precis-bench ]; then  # llama-bench's pp512 / tg128, and decoding 8 sequences together
      for d in cuda cpu; do
        for p in f32 bf16; do
          timeout 300 $bin/precis-bench -m $smol --device $d --precision $p -p 512 -n 128 -b 1,8 -r 3 >"$out/bench_${d}_$p.md" 2>"$out/bench_${d}_$p.err"
          echo "precis-bench SmolLM2 $d $p: rc=$?"; grep "^| " "$out/bench_${d}_$p.md" | tail -3
        done
      done
    fi
  else
    echo "SmolLM2: not carried (stage, then receive ×3, run in consecutive calls)"
  fi
fi
echo "==== device_check: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
