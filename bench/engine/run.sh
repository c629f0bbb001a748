#!/usr/bin/env bash
# Builds the Release tree and runs the engine benchmark. Models are generated into a temp
# dir (pass --dir DIR --keep to reuse them across runs). Extra args go to engine_bench,
# e.g. `bench/engine/run.sh --layers 4 --vocab 32000` for a quick run.
# llama.cpp's figures appear beside frugal's when node-llama-cpp is installed, e.g.
#   npm install --prefix bench/engine --no-save node-llama-cpp@3.22.0
# (or point NODE_LLAMA_CPP_DIR at a folder whose node_modules holds it).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [[ -z "${NODE_LLAMA_CPP_DIR:-}" && -d "$root/bench/engine/node_modules/node-llama-cpp" ]]; then
  export NODE_LLAMA_CPP_DIR="$root/bench/engine"
fi
cmake -S "$root" -B "$root/build/rel" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build/rel" -j2 --target engine_bench
exec "$root/build/rel/bench/engine/engine_bench" "$@"
