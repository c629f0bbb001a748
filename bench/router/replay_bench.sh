#!/usr/bin/env bash
# `frugal replay` and `frugal calibrate` on a synthetic replay log (replay_loggen: two
# request types, four models, recorded confidences): replay throughput in requests per
# second on one core (goal: >= 50k/s), and calibrate's run time with 4 candidate models
# and 5 folds (goal: < 60 s), timed by replay_bench (the functions the commands run,
# without their printing) and, when the build has it, the `frugal replay` command. Each
# run is pinned to CPU 0 (taskset); wall and CPU time are both printed, since on a shared
# machine wall time includes waiting for the core. The reference measured in the same
# run: the same log replayed under a policy without routes (one tier per request), so
# the ratio is what the cascades add.
#
#   bench/router/replay_bench.sh [BUILD_DIR=build/release] [REQUESTS=100000] [RUNS=3]
set -euo pipefail
build=${1:-build/release}
n=${2:-100000}
runs=${3:-3}
here="$(cd "$(dirname "$0")/../.." && pwd)"
frugal="$here/$build/gateway/frugal"
gen="$here/$build/bench/router/replay_loggen"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$gen" --policy >"$work/policy.yaml"
sed -n '/^prices:/,$p' "$work/policy.yaml" | { printf 'request_types:\n  - name: chat\n'; cat; } >"$work/no-routes.yaml"
"$gen" "$n" >"$work/log.jsonl"
echo "log: $n requests, $(du -h "$work/log.jsonl" | cut -f1); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Default build dir: the release preset's.
# The router's work (replay_bench: read, replay, calibrate, each timed on its thread).
taskset -c 0 "$here/$build/bench/router/replay_bench" "$work/policy.yaml" "$work/no-routes.yaml" "$work/log.jsonl" "$runs" 5

# The whole command, printing included, when this build has the frugal binary.
if [[ -x $frugal ]]; then
  for i in $(seq 1 "$runs"); do
    /usr/bin/time -f "%e %U %S" -o "$work/time" taskset -c 0 "$frugal" replay --policy "$work/policy.yaml" \
      --log "$work/log.jsonl" --json >/dev/null
    cat "$work/time"
  done | sort -n | awk -v n="$n" '{ w[NR] = $1; c[NR] = $2 + $3 }
    END { m = int((NR + 1) / 2); printf "frugal replay (the command):       median wall %.3f s, cpu %.3f s  -> %.0f req/s (wall)\n", w[m], c[m], n / w[m] }'
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
