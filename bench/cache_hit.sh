#!/usr/bin/env bash
# Exact-cache hits: wrk against frugal answering one cached request, and against
# Debian's nginx serving the same response bytes from a static file — same load tool,
# same run, 1 and 64 connections; prints rps, p50, p99 and frugal's ratios to nginx.
# Loopback only, bounded: DURATION seconds per run (default 5), ROUNDS interleaved rounds
# (default 3; the ratios are medians over rounds).
# Usage: bench/cache_hit.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/bench/lib.sh" "${1:-}"  # binaries, wrk, a temp dir, the mock upstream
frugal_port=$(free_port_pair)
OPENAI_BASE_URL="http://127.0.0.1:$mock_port/v1" OPENAI_API_KEY=sk-bench \
  "$frugal_bin" serve --listen "127.0.0.1:$frugal_port" --data-dir "$work/data" --log-level warn >"$work/frugal.log" 2>&1 & pids+=($!)
target_pid[frugal]=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$frugal_port/healthz" && break; sleep 0.05; done

url="http://127.0.0.1:$frugal_port/v1/chat/completions"
curl -s -o /dev/null -H 'content-type: application/json' -d "$body" "$url"          # the miss that fills it
hit=$(curl -s -D "$work/hit.headers" -H 'content-type: application/json' -d "$body" "$url")
grep -qi '^x-frugal-cache: hit' "$work/hit.headers" || { echo "second request was not a cache hit" >&2; cat "$work/hit.headers" >&2; exit 1; }
mkdir -p "$work/nginx/logs" "$work/nginx/www/v1/chat"
printf '%s' "$hit" >"$work/nginx/www/v1/chat/completions"
chmod -R a+rX "$work"  # nginx workers drop privileges when started as root

start_nginx "  server {
    listen 127.0.0.1:$nginx_port;
    root $work/nginx/www;
    default_type application/json;
    # The static file answers the same POST the gateway gets.
    error_page 405 =200 \$uri;
  }"
same=$(curl -s -H 'content-type: application/json' -d "$body" "http://127.0.0.1:$nginx_port/v1/chat/completions")
[[ "$same" == "$hit" ]] || { echo "nginx does not serve the same bytes" >&2; echo "$same" >&2; cat "$work/nginx/logs/error.log" >&2; exit 1; }

write_post_lua
wrk -t1 -c64 -d1s -s "$work/post.lua" "http://127.0.0.1:$frugal_port/v1/chat/completions" >/dev/null
wrk -t1 -c64 -d1s -s "$work/post.lua" "http://127.0.0.1:$nginx_port/v1/chat/completions" >/dev/null

echo "response: $(printf '%s' "$hit" | wc -c) bytes"
compare "$work/post.lua" nginx:$nginx_port frugal:$frugal_port
echo
mock_chats=$(curl -s "http://127.0.0.1:$mock_port/mock/stats" | grep -Eo '"chat":[0-9]+' | cut -d: -f2)
echo "upstream calls during the whole run: $mock_chats (the one miss)"
echo "goal: cache-hit throughput >= 0.70x nginx serving the same bytes from a static file"
