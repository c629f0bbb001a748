# Shared by the wrk benchmarks (sourced): a temp dir cleaned up with every process the
# script started, waiting for a log line, a free loopback port, wrk latency → ms.
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# wait_for FILE REGEX: prints the first match once it appears (10 s at most).
wait_for() {
  for _ in $(seq 1 200); do
    if grep -Eo "$2" "$1" >/dev/null 2>&1; then grep -Eo "$2" "$1" | head -1; return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for $2 in $1" >&2; cat "$1" >&2; exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wrk prints 95.00us / 1.23ms / 2.00s
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'; }
