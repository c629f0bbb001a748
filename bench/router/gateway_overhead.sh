#!/usr/bin/env bash
# Time spent inside frugal per request (its x-frugal-overhead-us header: everything but
# waiting for upstreams), without a policy and with one, for the paths the router adds:
# a passthrough type, a cascade whose buffered first tier is accepted, and one that
# escalates to the live last tier. Every path writes its ledger row and waits for it to
# be durable before the response completes, so that wait is included.
#
#   bench/router/gateway_overhead.sh [BUILD_DIR=build/rel] [REQUESTS=300]
#
# Loopback only: the C++ mock upstream and frugal, sequential requests with curl.
set -euo pipefail
build=${1:-build/rel}
n=${2:-300}
here="$(cd "$(dirname "$0")/../.." && pwd)"
frugal="$here/$build/gateway/frugal"
mock="$here/$build/bench/mock_upstream"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_for() {  # FILE REGEX
  for _ in $(seq 1 200); do
    if grep -Eo "$2" "$1" >/dev/null 2>&1; then grep -Eo "$2" "$1" | head -1; return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

"$mock" --port 0 >"$work/mock.log" 2>&1 & pids+=($!)
mock_port=$(wait_for "$work/mock.log" 'PORT=[0-9]+' | cut -d= -f2)

cat >"$work/policy.yaml" <<'EOF'
request_types:
  - name: classify
    match: { header: { x-frugal-request-type: classify } }
  - name: pinned
    match: { model: "pinned-*" }
  - name: chat
routes:
  classify:
    reference_model: big
    cascade:
      - model: small
        accept: { all: [ { mean_logprob: { min: -0.5 } }, { not_refusal: true } ] }
      - model: big
prices:
  small: { input: 0.15, cached_input: 0.075, output: 0.60 }
  big:   { input: 2.50, cached_input: 1.25, output: 10.00 }
EOF

start_gateway() {  # NAME WITH_POLICY; sets $port
  {
    echo "data_dir: $work/data-$1"
    [[ $2 == yes ]] && echo "policy: policy.yaml"
    cat <<EOF
server: { listen: ["127.0.0.1:0"], threads: 1 }
cache: { enabled: false }
providers:
  mock: { kind: openai, base_url: "http://127.0.0.1:$mock_port/v1" }
passthrough:
  - { prefix: "", provider: mock }
EOF
  } >"$work/gw-$1.yaml"
  "$frugal" serve --config "$work/gw-$1.yaml" >"$work/$1.log" 2>&1 &
  pids+=($!)
  port=$(wait_for "$work/$1.log" 'listening on 127\.0\.0\.1:[0-9]+' | grep -Eo '[0-9]+$')
}

measure() {  # LABEL PORT BODY [HEADER]
  local label=$1 port=$2 body=$3 header=${4:-x-none: 1}
  for _ in $(seq 1 20); do  # warm-up
    curl -s -o /dev/null -H "$header" -H 'content-type: application/json' -d "$body" "http://127.0.0.1:$port/v1/chat/completions"
  done
  for _ in $(seq 1 "$n"); do
    curl -s -D - -o /dev/null -H "$header" -H 'content-type: application/json' -d "$body" \
      "http://127.0.0.1:$port/v1/chat/completions" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-frugal-overhead-us"{print $2}'
  done | sort -n | awk -v label="$label" '{v[NR]=$1} END {printf "%-44s p50 %6d us   p90 %6d us   p99 %6d us\n", label, v[int(NR*0.5)], v[int(NR*0.9)], v[int(NR*0.99)]}'
}

msgs='"messages":[{"role":"user","content":"Which colour is the sky?"}]'
start_gateway plain no
plain_port=$port
start_gateway policy yes
policy_port=$port

echo "gateway_overhead: $n sequential requests per path, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
measure "no policy (requested model)" "$plain_port" "{\"model\":\"gpt-4o-mini\",$msgs}"
measure "policy, type without route (passthrough)" "$policy_port" "{\"model\":\"pinned-x\",$msgs}"
measure "policy, tier 1 buffered + scored, accepted" "$policy_port" \
  "{\"model\":\"auto\",$msgs,\"mock\":{\"models\":{\"small\":{\"logprobs\":[-0.1,-0.2,-0.1]}}}}" "x-frugal-request-type: classify"
measure "policy, tier 1 rejected, tier 2 live" "$policy_port" \
  "{\"model\":\"auto\",$msgs,\"mock\":{\"models\":{\"small\":{\"logprobs\":[-2,-2,-2]}}}}" "x-frugal-request-type: classify"
