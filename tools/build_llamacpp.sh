#!/usr/bin/env bash
# tools/build_llamacpp.sh — builds llama.cpp's command-line tools (llama-quantize, llama-bench,
# llama-simple, llama-completion, llama-perplexity) from the llama.cpp sources vendored in the PyPI source
# distribution of llama-cpp-python (the only registry this project may use), for this CPU, into a
# cache outside the repository (llama.cpp is never committed):
#
#   <cache>/llama.cpp/<version>/bin/llama-*      <cache> as in scripts/fetch_model.sh
#
# Cached: a second run with the binaries present does nothing but print the bin directory.
#   LLAMACPP_CUDA=1    also builds with -DGGML_CUDA=ON (the GPU machine; arch 90) into <version>-cuda
#   JOBS=N             parallel compile jobs (default: nproc)
# Prints the bin directory on stdout (progress on stderr).
set -euo pipefail

version="${LLAMACPP_PYTHON_VERSION:-0.3.36}"
cache="${PRECIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/precis}"
suffix=""; [ "${LLAMACPP_CUDA:-0}" = 1 ] && suffix="-cuda"
root="$cache/llama.cpp/$version$suffix"
targets=(llama-quantize llama-bench llama-simple llama-completion llama-perplexity)
say() { echo "build_llamacpp: $*" >&2; }

all_present=1
for t in "${targets[@]}"; do [ -x "$root/bin/$t" ] || all_present=0; done
if [ "$all_present" = 1 ]; then say "cached in $root/bin"; echo "$root/bin"; exit 0; fi

mkdir -p "$cache/llama.cpp"
sdist="$cache/llama.cpp/llama_cpp_python-$version.tar.gz"
if [ ! -f "$sdist" ]; then
  say "downloading the llama-cpp-python==$version source distribution from PyPI"
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" "llama-cpp-python==$version" >&2
  mv "$tmp"/llama_cpp_python-"$version".tar.gz "$sdist"
  rm -rf "$tmp"
fi
src="$cache/llama.cpp/src-$version"
if [ ! -d "$src/vendor/llama.cpp" ]; then
  say "unpacking $sdist"
  rm -rf "$src" && mkdir -p "$src"
  tar xzf "$sdist" -C "$src" --strip-components=1
fi
cuda_args=(-DGGML_CUDA=OFF)
[ -n "$suffix" ] && cuda_args=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90)
say "configuring (GGML_NATIVE=ON ${cuda_args[*]})"
cmake -S "$src/vendor/llama.cpp" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF "${cuda_args[@]}" >&2
say "building ${targets[*]} (a few minutes on 2 cores)"
cmake --build "$root/build" -j "${JOBS:-$(nproc)}" --target "${targets[@]}" >&2
mkdir -p "$root/bin"
for t in "${targets[@]}"; do cp "$root/build/bin/$t" "$root/bin/"; done
# the shared libraries the tools link (libllama, libggml*) sit beside them
find "$root/build/bin" -maxdepth 1 -name '*.so*' -exec cp -P {} "$root/bin/" \;
say "built into $root/bin"
echo "$root/bin"
