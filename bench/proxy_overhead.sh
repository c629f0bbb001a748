#!/usr/bin/env bash
# Proxy overhead: wrk against (a) the mock upstream directly, (b) Debian's nginx
# proxy_pass to it, (c) frugal to it — same mock, same load tool, same run — at 1 and
# 64 connections; prints rps, p50 and p99 and frugal's ratios to nginx. Then time to
# first token with a 200 ms upstream first-token delay, direct vs through frugal.
# Loopback only, bounded: DURATION seconds per run (default 5), ROUNDS interleaved rounds
# (default 3; the ratios are medians over rounds). BUSY_POLL=0 (or another duration)
# sets frugal's server.busy_poll and THREADS=N its server.threads (I/O threads); with
# neither, frugal runs its built-in default config. FRUGAL_BIN_B=PATH runs a second
# frugal binary (target frugal_b, e.g. the build of an older commit) with the same config
# in the same interleaved rounds and prints frugal/frugal_b ratios too.
# Usage: [FRUGAL_BIN_B=PATH] bench/proxy_overhead.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/bench/lib.sh" "${1:-}"  # binaries, wrk, a temp dir, the mock upstream

start_nginx_proxy

config_args=()
if [[ -n ${BUSY_POLL:-}${THREADS:-} ]]; then  # the built-in default, plus these server keys
  cat >"$work/frugal.yaml" <<YAML
server: { ${BUSY_POLL:+busy_poll: $BUSY_POLL, }${THREADS:+threads: $THREADS} }
providers:
  openai: { kind: openai, base_url: "\${OPENAI_BASE_URL}", api_key: "\${OPENAI_API_KEY}" }
passthrough: [ { prefix: "", provider: openai } ]
YAML
  config_args=(--config "$work/frugal.yaml")
fi
# start_frugal NAME BINARY: sets $port.
start_frugal() {
  # A fixed free port: frugal also listens on its admin port (the API port + 1 by default,
  # an ephemeral one with --listen …:0), so the API port cannot be read from ss.
  port=$(free_port_pair)
  OPENAI_BASE_URL="http://127.0.0.1:$mock_port/v1" OPENAI_API_KEY=sk-bench \
    "$2" serve "${config_args[@]}" --listen "127.0.0.1:$port" --data-dir "$work/data-$1" --log-level warn \
    >"$work/$1.log" 2>&1 & pids+=($!)
  target_pid[$1]=$!
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.05; done
  curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" || { echo "$1 did not start"; cat "$work/$1.log"; exit 1; }
}
start_frugal frugal "$frugal_bin"
frugal_port=$port
targets=("frugal:$frugal_port")
if [[ -n $frugal_bin_b ]]; then
  start_frugal frugal_b "$frugal_bin_b"
  frugal_b_port=$port
  targets+=("frugal_b:$frugal_b_port")
  export COMPARE_PAIRS="frugal/frugal_b"
fi

# Cache-Control: no-store keeps frugal's exact cache out of this measurement (the
# request is deterministic); bench/cache_hit.sh measures the cache.
write_post_lua no-store

# warm up connection pools
for t in "${targets[@]}" "nginx:$nginx_port"; do
  wrk -t1 -c64 -d1s -s "$work/post.lua" "http://127.0.0.1:${t##*:}/v1/chat/completions" >/dev/null
done

compare "$work/post.lua" "nginx:$nginx_port" "${targets[@]}" "direct:$mock_port"
echo "goals: frugal throughput >= 0.80x nginx, p99 <= 1.50x nginx"

# Time to first token with a 200 ms first-token delay upstream: median over 20 each.
echo
sbody='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"ttft_ms":200,"chunks":4}}'
ttft() {
  for _ in $(seq 1 20); do
    curl -s -o /dev/null -w '%{time_starttransfer}\n' -H 'content-type: application/json' -d "$sbody" "$1"
  done | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]*1000}'
}
d=$(ttft "http://127.0.0.1:$mock_port/v1/chat/completions")
f=$(ttft "http://127.0.0.1:$frugal_port/v1/chat/completions")
awk -v d="$d" -v f="$f" 'BEGIN { printf "TTFT median: direct %.3f ms, frugal %.3f ms, difference %.3f ms (goal <= 1 ms)\n", d, f, f-d }'
if [[ -n $frugal_bin_b ]]; then
  f=$(ttft "http://127.0.0.1:$frugal_b_port/v1/chat/completions")
  awk -v d="$d" -v f="$f" 'BEGIN { printf "TTFT median: direct %.3f ms, frugal_b %.3f ms, difference %.3f ms\n", d, f, f-d }'
fi
