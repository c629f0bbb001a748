#!/usr/bin/env bash
# Soak: DURATION seconds (default 300) of mixed load against the release build's frugal
# and the C++ mock upstream, on loopback: plain, streamed, exact-cache hits, clients that
# hang up mid-stream, cascade escalations (the first tier rejected every other time) and
# an upstream that is killed and restarted every FLAP_SECONDS (default 10). frugal's RSS
# is sampled every second into $SOAK_OUT/soak_rss.csv (default build/soak/).
#
# Verdict (last line; exit 1 on failure):
#  - RSS after warm-up (the first WARMUP seconds, default 120: RocksDB's memtables and
#    table readers ramp for ~60-90 s at this rate, docs/PERFORMANCE.md "Soak") grows < 5%: the mean of
#    the last 30 samples against the mean of the 30 samples after warm-up (windows of
#    several memtable flushes; shorter for short runs);
#  - no request lost: after frugal shut down cleanly (SIGTERM, exit 0), the ledger's
#    row count (`frugal costs --data-dir`, all request types) equals the responses the
#    clients received (every request whose response head arrived, counted by
#    bench/soak_client.py, which finishes its requests in flight at the deadline).
# Not part of CI. Usage: bench/soak.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export DURATION=${DURATION:-300}
warmup=${WARMUP:-120}
flap_seconds=${FLAP_SECONDS:-10}
out=${SOAK_OUT:-$root/build/soak}
((DURATION > warmup + 10)) || { echo "DURATION must exceed WARMUP + 10 s" >&2; exit 2; }
source "$root/bench/lib.sh" "${1:-}"  # binaries, a temp dir cleaned up on exit, the stable mock
mkdir -p "$out"

# The flapping upstream: a second mock on a fixed port, killed and restarted (after one
# second down) every FLAP_SECONDS by a background loop that owns it.
flap_port=$(free_port)
flapper() {
  local mock_pid=""
  trap '[[ -n $mock_pid ]] && kill "$mock_pid" 2>/dev/null; exit 0' TERM
  while :; do
    "$mock_bin" --port "$flap_port" --threads 1 >>"$work/flap.log" 2>&1 &
    mock_pid=$!
    sleep "$flap_seconds" & wait $!
    kill -9 "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
    mock_pid=""
    sleep 1 & wait $!
  done
}
flapper & pids+=($!)
flapper_pid=$!

cat >"$work/policy.yaml" <<'YAML'
request_types:
  - name: escalate
    match: { header: { x-frugal-request-type: escalate } }
  - name: plain
routes:
  escalate:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept: { mean_logprob: { min: -0.5 } }
      - model: tier-large
prices:
  tier-small: { input: 0.10, output: 0.40 }
  tier-large: { input: 10.00, output: 30.00 }
YAML
cat >"$work/frugal.yaml" <<YAML
data_dir: $work/data
policy: policy.yaml
server:
  listen: ["127.0.0.1:0"]
  watch_interval: 0
providers:
  stable: { kind: openai, base_url: "http://127.0.0.1:$mock_port/v1", api_key: sk-soak,
            retry: { max_attempts: 1 } }
  flappy: { kind: openai, base_url: "http://127.0.0.1:$flap_port/v1", api_key: sk-soak,
            retry: { max_attempts: 1 }, timeouts: { connect: 1s, first_byte: 5s } }
passthrough:
  - { prefix: "flap-", provider: flappy }
  - { prefix: "", provider: stable }
YAML
"$frugal_bin" serve --config "$work/frugal.yaml" --log-level info >"$work/frugal.log" 2>&1 &
frugal_pid=$!
pids+=("$frugal_pid")
frugal_port=$(wait_for "$work/frugal.log" 'listening on 127\.0\.0\.1:[0-9]+' | grep -Eo '[0-9]+$')
start_wall=$(date +%s)

# RSS every second: seconds since start, VmRSS in KiB.
rss_csv=$out/soak_rss.csv
echo "t_s,rss_kib" >"$rss_csv"
(
  t=0
  while kill -0 "$frugal_pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$frugal_pid/status" 2>/dev/null) || break
    echo "$t,$rss" >>"$rss_csv"
    sleep 1
    t=$((t + 1))
  done
) & pids+=($!)
sampler_pid=$!

echo "soak: frugal pid $frugal_pid on 127.0.0.1:$frugal_port, mock :$mock_port, flapping mock :$flap_port every ${flap_seconds}s, ${DURATION}s"
python3 "$root/bench/soak_client.py" --port "$frugal_port" --duration "$DURATION" >"$out/soak_client.json"
kill "$flapper_pid" 2>/dev/null || true
kill "$sampler_pid" 2>/dev/null || true

# A clean shutdown: every row written before the process exits.
kill -TERM "$frugal_pid"
frugal_rc=0
for _ in $(seq 1 600); do kill -0 "$frugal_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$frugal_pid" 2>/dev/null; then
  echo "soak: frugal did not exit within 60 s of SIGTERM" >&2; frugal_rc=124; kill -9 "$frugal_pid"
else
  wait "$frugal_pid" || frugal_rc=$?
fi

"$frugal_bin" costs --data-dir "$work/data" --from $((start_wall - 3600)) --to $(($(date +%s) + 3600)) \
  --group-by request_type --json >"$out/soak_costs.json"
rows=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["requests"])' "$out/soak_costs.json")
responses=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["responses"])' "$out/soak_client.json")
no_head=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["no_head"])' "$out/soak_client.json")

# RocksDB's memtables make RSS a saw-tooth (a few MB/s up, then a flush drops it), so
# windows of several teeth are compared, not single samples.
read -r base final floor0 floor1 peak growth window < <(python3 - "$rss_csv" "$warmup" <<'PY'
import csv, statistics, sys
rows = [(int(r["t_s"]), int(r["rss_kib"])) for r in csv.DictReader(open(sys.argv[1]))]
after = [v for t, v in rows if t >= int(sys.argv[2])]
w = max(5, min(30, len(after) // 3))
first, last = after[:w], after[-w:]
base, final = statistics.mean(first), statistics.mean(last)
print(int(base), int(final), min(first), min(last), max(after), f"{(final / base - 1) * 100:.2f}", w)
PY
)
cp "$work/frugal.log" "$out/soak_frugal.log"

echo "soak: client lanes: $(cat "$out/soak_client.json")"
echo "soak: RSS mean of the ${window} s after warm-up ${base} KiB -> of the last ${window} s ${final} KiB (${growth}%); floors ${floor0} -> ${floor1} KiB, peak ${peak} KiB; samples in $rss_csv"
echo "soak: responses ${responses}, ledger rows ${rows}, requests without a response head ${no_head}, frugal exit ${frugal_rc}"
ok=1
awk -v g="$growth" 'BEGIN { exit !(g < 5) }' || ok=0
[[ $rows == "$responses" ]] || ok=0
((frugal_rc == 0)) || ok=0
if ((ok)); then
  echo "SOAK PASS: ${DURATION}s, RSS growth ${growth}% (< 5%), ledger rows = responses = ${rows}"
else
  echo "SOAK FAIL: ${DURATION}s, RSS growth ${growth}% (limit 5%), ledger rows ${rows} vs responses ${responses}, frugal exit ${frugal_rc}"
  exit 1
fi
