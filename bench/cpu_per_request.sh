#!/usr/bin/env bash
# CPU time per proxied request (user + system, all threads) of nginx and frugal in front
# of the same mock upstream, and of the mock and wrk themselves: at 64 connections every
# process is CPU-bound on a small machine, so these figures set the throughput ratio of
# bench/proxy_overhead.sh. Read from /proc/PID/task/*/stat around each wrk run.
# Loopback only, bounded: DURATION seconds per run (default 4), ROUNDS interleaved rounds
# (default 3). FRUGAL_TRANSPORT=libcurl measures frugal's libcurl transport instead of
# its built-in HTTP/1.1 client.
# Usage: bench/cpu_per_request.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
DURATION=${DURATION:-4}
source "$root/bench/lib.sh" "${1:-}"  # binaries, wrk, a temp dir, the mock upstream
mock_pid=${pids[0]}

start_nginx_proxy
nginx_master=$(cat "$work/nginx/nginx.pid")

frugal_port=$(free_port_pair)
cat >"$work/frugal.yaml" <<YAML
server: { listen: ["127.0.0.1:$frugal_port"] }
data_dir: $work/data
providers:
  mock: { kind: openai, base_url: "http://127.0.0.1:$mock_port/v1", api_key: sk-bench, transport: ${FRUGAL_TRANSPORT:-auto} }
passthrough:
  - { prefix: "", provider: mock }
YAML
"$frugal_bin" serve --config "$work/frugal.yaml" --log-level warn >"$work/frugal.log" 2>&1 & pids+=($!)
frugal_pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$frugal_port/healthz" && break; sleep 0.05; done
curl -sf -o /dev/null "http://127.0.0.1:$frugal_port/healthz" || { echo "frugal did not start" >&2; cat "$work/frugal.log" >&2; exit 1; }

write_post_lua no-store

# ticks PID (clock ticks of a process, its threads and its children) and hz: lib.sh.

printf '%-7s %5s %8s %12s %10s %10s\n' target round rps proxy_us mock_us wrk_us
for target in nginx frugal; do
  port=$nginx_port; [[ $target == frugal ]] && port=$frugal_port
  wrk -t1 -c64 -d1s -s "$work/post.lua" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null  # warm-up
done
for round in $(seq 1 "${ROUNDS:-3}"); do
  for target in nginx frugal; do
    pid=$nginx_master port=$nginx_port
    [[ $target == frugal ]] && pid=$frugal_pid port=$frugal_port
    a=$(ticks "$pid"); ma=$(ticks "$mock_pid")
    TIMEFORMAT='%U %S'  # bash's time: wrk's own user and system seconds
    { time wrk -t1 -c64 -d"${DURATION}s" -s "$work/post.lua" "http://127.0.0.1:$port/v1/chat/completions" \
        >"$work/wrk.out"; } 2>"$work/wrk.time"
    b=$(ticks "$pid"); mb=$(ticks "$mock_pid")
    n=$(awk '/requests in/ {print $1}' "$work/wrk.out")
    grep -q "Non-2xx" "$work/wrk.out" && { echo "$target: non-2xx responses" >&2; cat "$work/wrk.out" >&2; exit 1; }
    read -r wu ws <"$work/wrk.time"
    awk -v t="$target" -v r="$round" -v n="$n" -v d="$DURATION" -v p=$((b - a)) -v m=$((mb - ma)) \
        -v w="$(awk -v u="$wu" -v s="$ws" 'BEGIN {print u + s}')" -v hz="$hz" \
      'BEGIN { printf "%-7s %5d %8d %12.1f %10.1f %10.1f\n", t, r, n / d, p * 1e6 / hz / n, m * 1e6 / hz / n, w * 1e6 / n }'
  done
done
