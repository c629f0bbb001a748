#!/usr/bin/env bash
# Proxy overhead: wrk against (a) the mock upstream directly, (b) Debian's nginx
# proxy_pass to it, (c) frugal to it — same mock, same load tool, same run — at 1 and
# 64 connections; prints rps, p50 and p99 and frugal's ratios to nginx. Then time to
# first token with a 200 ms upstream first-token delay, direct vs through frugal.
# Loopback only, bounded: DURATION seconds per run (default 5).
# Usage: bench/proxy_overhead.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build=${1:-$root/build/release}
duration=${DURATION:-5}
frugal_bin=$build/gateway/frugal
mock_bin=$build/bench/mock_upstream
for b in "$frugal_bin" "$mock_bin"; do [[ -x $b ]] || { echo "missing $b: build the release preset first" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk missing: run deploy/install-deps.sh" >&2; exit 1; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

source "$root/bench/lib.sh"

"$mock_bin" --port 0 --threads 1 >"$work/mock.log" 2>&1 & pids+=($!)
mock_port=$(wait_for "$work/mock.log" 'PORT=[0-9]+' | cut -d= -f2)

nginx_port=$(free_port)
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream mock { server 127.0.0.1:$mock_port; keepalive 128; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 & pids+=($!)

OPENAI_BASE_URL="http://127.0.0.1:$mock_port/v1" OPENAI_API_KEY=sk-bench \
  "$frugal_bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" --log-level warn >"$work/frugal.log" 2>&1 & pids+=($!)
sleep 0.3
frugal_port=""
for _ in $(seq 1 100); do
  frugal_port=$(ss -ltnp 2>/dev/null | awk -v pid="${pids[2]}" '$0 ~ "pid="pid"," {split($4,a,":"); print a[length(a)]; exit}')
  [[ -n $frugal_port ]] && break; sleep 0.05
done
[[ -n $frugal_port ]] || { echo "frugal did not start"; cat "$work/frugal.log"; exit 1; }
sleep 0.3

# Cache-Control: no-store keeps frugal's exact cache out of this measurement (the
# request is deterministic); bench/cache_hit.sh measures the cache.
body='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in five words."}],"temperature":0}'
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Cache-Control"] = "no-store"
LUA

# run NAME PORT CONNS -> "rps p50_ms p99_ms"
run() {
  local out
  out=$(wrk -t1 -c"$3" -d"${duration}s" --latency -s "$work/post.lua" "http://127.0.0.1:$2/v1/chat/completions" 2>&1)
  local non2xx; non2xx=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' <<<"$out" | grep -Eo '[0-9]+$' || echo 0)
  [[ $non2xx == 0 ]] || { echo "$1: $non2xx non-2xx responses" >&2; echo "$out" >&2; exit 1; }
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}

# warm up connection pools
wrk -t1 -c64 -d1s -s "$work/post.lua" "http://127.0.0.1:$frugal_port/v1/chat/completions" >/dev/null
wrk -t1 -c64 -d1s -s "$work/post.lua" "http://127.0.0.1:$nginx_port/v1/chat/completions" >/dev/null

printf '%-8s %6s %12s %10s %10s\n' target conns rps p50_ms p99_ms
declare -A R
for c in 1 64; do
  for t in direct:$mock_port nginx:$nginx_port frugal:$frugal_port; do
    name=${t%%:*} port=${t##*:}
    read -r rps p50 p99 < <(run "$name" "$port" "$c")
    R[$name.$c]="$rps $p50 $p99"
    printf '%-8s %6s %12s %10s %10s\n' "$name" "$c" "$rps" "$p50" "$p99"
  done
done
echo
for c in 1 64; do
  read -r nr _ n99 <<<"${R[nginx.$c]}"
  read -r fr _ f99 <<<"${R[frugal.$c]}"
  awk -v c="$c" -v nr="$nr" -v fr="$fr" -v n99="$n99" -v f99="$f99" 'BEGIN {
    printf "c=%-3s frugal/nginx throughput %.2fx (goal >= 0.80)   p99 %.2fx (goal <= 1.50)\n", c, fr/nr, f99/n99 }'
done

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
