#!/usr/bin/env bash
# Builds the Release tree and runs the engine benchmark. Models are generated into a temp
# dir (pass --dir DIR --keep to reuse them across runs). Extra args go to engine_bench,
# e.g. `bench/engine/run.sh --layers 4 --vocab 32000` for a quick run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cmake -S "$root" -B "$root/build/rel" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build/rel" -j2 --target engine_bench
exec "$root/build/rel/bench/engine/engine_bench" "$@"
