#!/usr/bin/env bash
# `frugal replay` and `frugal calibrate` on a synthetic replay log (replay_loggen: two
# request types, four models, recorded confidences): replay throughput in requests per
# second on one core (goal: >= 50k/s), and calibrate's run time with 4 candidate models
# and 5 folds (goal: < 60 s). Each run is pinned to CPU 0 (taskset); wall and CPU time
# are both printed, since on a shared machine wall time includes waiting for the core.
# The reference measured in the same run: the same log replayed under a policy without
# routes (one tier per request), so the ratio is what the cascades add.
#
#   bench/router/replay_bench.sh [BUILD_DIR=build/rel] [REQUESTS=100000] [RUNS=3]
set -euo pipefail
build=${1:-build/rel}
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

timed() {  # LABEL CMD... → "LABEL wall_s cpu_s"
  local label=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$work/time" taskset -c 0 "$@" >"$work/out" 2>"$work/err" || {
    cat "$work/err" >&2; return 1; }
  read -r wall user sys <"$work/time"
  awk -v l="$label" -v w="$wall" -v u="$user" -v s="$sys" 'BEGIN { printf "%s %.3f %.3f\n", l, w, u + s }'
}

for i in $(seq 1 "$runs"); do
  timed replay "$frugal" replay --policy "$work/policy.yaml" --log "$work/log.jsonl" --json
  timed reference "$frugal" replay --policy "$work/no-routes.yaml" --log "$work/log.jsonl" --json
  timed calibrate "$frugal" calibrate --policy "$work/policy.yaml" --log "$work/log.jsonl" \
    --target-accuracy ref-1pp --folds 5 --models tiny,small,medium,large --json
done | awk -v n="$n" '
  { wall[$1] = wall[$1] " " $2; cpu[$1] = cpu[$1] " " $3 }
  function med(s,   a, k, i, j, t) { k = split(s, a, " "); for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                     return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
  END {
    rw = med(wall["replay"]); rc = med(cpu["replay"]); fw = med(wall["reference"]); fc = med(cpu["reference"])
    printf "frugal replay (cascades):     median wall %.3f s, cpu %.3f s: %.0f req/s (wall), %.0f req/s (cpu)\n", rw, rc, n / rw, n / rc
    printf "frugal replay (no routes):    median wall %.3f s, cpu %.3f s: %.0f req/s (wall), %.0f req/s (cpu)\n", fw, fc, n / fw, n / fc
    printf "ratio cascades / no routes:   %.2f (cpu)\n", rc / fc
    printf "frugal calibrate (4 models, 5 folds, up to 3 tiers): median wall %.2f s, cpu %.2f s\n", med(wall["calibrate"]), med(cpu["calibrate"])
  }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
