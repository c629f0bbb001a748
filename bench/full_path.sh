#!/usr/bin/env bash
# Full request path: wrk against frugal with a policy that routes every request, every
# request an exact-cache miss (looked up, missed, stored) and its ledger row durable
# before the response completes (the default), and against Debian's nginx proxy_pass to
# the same mock upstream as the reference — same load tool, same run, interleaved rounds,
# at CONNS connections (default "1 32 64"); prints rps, p50, p99, CPU µs per request
# (all threads, from /proc) and the ratios to nginx.
#
# The route (ROUTE=cascade, the default): request type `chat` matches everything; its
# cascade is gpt-4o-mini accepted by `not_refusal`, then gpt-4o, reference gpt-4o, with a
# global monthly budget far above what the run spends. The mock's answer is accepted, so
# every request makes one upstream call (as through nginx) and runs what a routed request
# runs: classification, the plan, the budget check, a buffered tier scored by its rule,
# cost and baseline, the cache store and the ledger row. ROUTE=single routes to a
# one-tier cascade (gpt-4o-mini, no rule: the live last tier) instead.
#
# Every request differs (a counter and a per-run id in the user message, the same bodies
# through nginx), so the cache never hits; after the run each frugal's /admin/cache
# counters are printed (hits are the one probe hit made before the run).
#
# FRUGAL_BIN_B=PATH runs a second frugal binary (target frugal_b; e.g. the build of an
# older commit) with the same config in the same interleaved rounds and prints
# frugal/frugal_b ratios too: before/after on a noisy machine. Loopback only, bounded:
# DURATION seconds per run (default 5), ROUNDS rounds (default 3), THREADS sets
# server.threads (default: frugal's own).
# TELEMETRY_AB=1 measures the cost of telemetry instead (docs/PERFORMANCE.md, issue 19):
# frugal_b is the same binary with telemetry off (`metrics.enabled: false`, no OTLP), frugal
# has it on: /metrics scraped every second and OTLP export of spans and metrics (every
# second) to a loopback sink that answers 200.
# Usage: [FRUGAL_BIN_B=PATH | TELEMETRY_AB=1] bench/full_path.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CONNS=${CONNS:-1 32 64}
source "$root/bench/lib.sh" "${1:-}"  # binaries, wrk, a temp dir, the mock upstream

start_nginx_proxy

write_route_policy "$work/policy.yaml"

# start_frugal NAME BINARY [TELEMETRY]: frugal with the policy on a fresh port (sets
# $port); TELEMETRY on (metrics, OTLP to $otlp_port) or off (neither).
start_frugal() {
  port=$(free_port_pair)
  write_route_config "$work/$1.yaml" "$port" "$work/data-$1" "$work/policy.yaml" ${THREADS:+"threads: $THREADS"}
  case ${3:-} in
    on) printf 'telemetry:\n  metrics: { enabled: true }\n  otlp: { endpoint: "http://127.0.0.1:%s", flush_interval: 1s, export_interval: 1s }\n' \
          "$otlp_port" >>"$work/$1.yaml" ;;
    off) printf 'telemetry:\n  metrics: { enabled: false }\n' >>"$work/$1.yaml" ;;
  esac
  "$2" serve --config "$work/$1.yaml" --log-level warn >"$work/$1.log" 2>&1 & pids+=($!)
  target_pid[$1]=$!
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.05; done
  curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" || { echo "$1 did not start" >&2; cat "$work/$1.log" >&2; exit 1; }
}

# probe NAME PORT: the same request twice must be routed, a miss, then a hit.
probe() {
  local url="http://127.0.0.1:$2/v1/chat/completions" h
  for want in miss hit; do
    h=$(curl -s -D - -o /dev/null -H 'content-type: application/json' -d "$body" "$url" | tr -d '\r')
    grep -qi "^x-frugal-cache: $want" <<<"$h" && grep -qi '^x-frugal-request-type: chat' <<<"$h" ||
      { echo "$1: expected a routed cache $want:" >&2; echo "$h" >&2; exit 1; }
  done
  echo "$1: $(grep -i '^x-frugal-' <<<"$h" | grep -vi '^x-frugal-cache' | tr '\n' ' ')"
}

targets=()
if [[ ${TELEMETRY_AB:-0} == 1 ]]; then
  start_otlp_sink
  start_frugal frugal "$frugal_bin" on; targets+=("frugal:$port"); probe frugal "$port"
  scrape_port=$port
  (while :; do curl -s -o /dev/null "http://127.0.0.1:$scrape_port/metrics"; sleep 1; done) & pids+=($!)
  start_frugal frugal_b "$frugal_bin" off; targets+=("frugal_b:$port"); probe frugal_b "$port"
  export COMPARE_PAIRS="frugal/frugal_b"
  frugal_bin_b=""
  echo "telemetry A/B: frugal has /metrics scraped every second and OTLP export on; frugal_b has telemetry off"
else
  start_frugal frugal "$frugal_bin"; targets+=("frugal:$port"); probe frugal "$port"
fi
if [[ -n $frugal_bin_b ]]; then
  start_frugal frugal_b "$frugal_bin_b"; targets+=("frugal_b:$port"); probe frugal_b "$port"
  export COMPARE_PAIRS="frugal/frugal_b"
fi
echo "frugal: $frugal_bin${frugal_bin_b:+, frugal_b: $frugal_bin_b}; route: ${ROUTE:-cascade}"

# Every request differs: a counter and the run's id (wrk_run passes it) in the prompt.
prefix=${body%%Say hello in five words.*}'Say hello in five words. '
suffix='"}],"temperature":0}'
cat >"$work/miss.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local run, n = "0", 0
function init(args) run = args[1] or "0" end
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, '$prefix' .. run .. "-" .. n .. '$suffix')
end
LUA

for t in "${targets[@]}" "nginx:$nginx_port"; do  # warm up connection pools
  wrk -t1 -c64 -d1s -s "$work/miss.lua" "http://127.0.0.1:${t##*:}/v1/chat/completions" -- "warm${t%%:*}" >/dev/null
done

compare "$work/miss.lua" "nginx:$nginx_port" "${targets[@]}"
echo
for t in "${targets[@]}"; do
  # the admin listener (API port + 1 by default); a binary older than it serves the API port
  p=${t##*:}
  echo "${t%%:*} cache: $(curl -sf "http://127.0.0.1:$((p + 1))/admin/cache" || curl -s "http://127.0.0.1:$p/admin/cache")"
done
