#!/usr/bin/env bash
# User-space instructions per request, all threads, counted by callgrind: frugal's
# release binary under valgrind with server.threads: 1 and busy_poll: 0 (a spinning idle
# loop would count time, not work), in front of the (native) mock upstream, for
#   passthrough  the built-in default config (as bench/proxy_overhead.sh runs it),
#                Cache-Control: no-store;
#   full_path    the policy of bench/full_path.sh (ROUTE, default cascade): every request
#                routed, an exact-cache miss that is stored, its ledger row durable.
# A keep-alive client with CONNS connections (default 1) sends WARMUP requests (default
# 300), then the counters are zeroed (callgrind_control -z), REQUESTS requests (default
# 2000) are sent, every answer checked to be a 200, the process settles for a second
# (the cache's writer thread stores the last answers), and the counters are dumped:
# instructions per request = the dump's total / REQUESTS. Every full-path request has a
# unique prompt. Each measurement runs REPEAT times (default 2; binaries alternate) and
# the median is printed last. Spread of one binary at 1 connection (8cd54d6, 8 runs):
# pass-through 0.6%, full path 1.8%; at 4 connections 3% and 5% (6 runs; the ledger's
# and the cache's writers batch by timing). The count does not depend on the machine's load.
# FRUGAL_BIN_B=PATH measures a second binary too (e.g. the build of an older commit).
# PATHS="passthrough full_path" picks the paths.
# TELEMETRY_B=on|off|"" for frugal_b alone ("" for a binary older than telemetry: no block).
# TELEMETRY=on|off sets telemetry for every binary measured (unset: the config's default):
# on = /metrics recording, OTLP export of spans and metrics (1 s batches and intervals) to
# a loopback sink that answers 200, and the access log to a file; off = none of them.
# TELEMETRY_AB=1 measures the cost of telemetry instead: frugal_b is the same binary with
# telemetry off, frugal has it on (docs/PERFORMANCE.md, "Cost of telemetry"). /metrics is
# not scraped here (a scrape's cost does not grow with the requests).
# Loopback only, bounded (each measurement takes 30-60 s under valgrind).
# Usage: [FRUGAL_BIN_B=PATH] bench/callgrind_per_request.sh [BUILD_DIR]   (default build/release)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/bench/lib.sh" "${1:-}"  # binaries, a temp dir, the mock upstream
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
  { echo "valgrind missing (Debian: apt-get install valgrind)" >&2; exit 1; }
requests=${REQUESTS:-2000} warmup=${WARMUP:-300} nconns=${CONNS:-1}

# load PORT N PATH KIND: N POST requests over nconns keep-alive connections; exits non-zero
# unless every answer is a 200 (full_path: and a cache miss).
cat >"$work/load.py" <<'PY'
import http.client, json, sys, threading, uuid
port, n, conns, kind = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
run = uuid.uuid4().hex[:12]
errors = []
def worker(w):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for i in range(w, n, conns):
        headers = {"Content-Type": "application/json"}
        text = "Say hello in five words."
        if kind == "full_path":
            text += " %s-%d" % (run, i)
        else:
            headers["Cache-Control"] = "no-store"
        body = json.dumps({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "You are terse."}, {"role": "user", "content": text}],
            "temperature": 0}, separators=(",", ":"))
        c.request("POST", "/v1/chat/completions", body, headers)
        r = c.getresponse()
        r.read()
        if r.status != 200 or (kind == "full_path" and r.getheader("x-frugal-cache") != "miss"):
            errors.append("status %d, x-frugal-cache %s" % (r.status, r.getheader("x-frugal-cache")))
            return
threads = [threading.Thread(target=worker, args=(w,)) for w in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    sys.exit("load: " + errors[0])
PY

write_route_policy "$work/policy.yaml"

if [[ ${TELEMETRY_AB:-0} == 1 ]]; then
  [[ -z $frugal_bin_b ]] || { echo "TELEMETRY_AB=1 compares one binary with itself: unset FRUGAL_BIN_B" >&2; exit 1; }
  frugal_bin_b=$frugal_bin
fi
# telemetry_of LABEL: on, off or "" (the config's default) for that measurement.
telemetry_of() {
  if [[ ${TELEMETRY_AB:-0} == 1 ]]; then [[ $1 == frugal ]] && echo on || echo off
  elif [[ $1 == frugal_b ]]; then echo "${TELEMETRY_B-${TELEMETRY:-}}"
  else echo "${TELEMETRY:-}"; fi
}
if [[ ${TELEMETRY_AB:-0} == 1 || ${TELEMETRY:-} == on ]]; then
  start_otlp_sink
fi
# add_telemetry FILE MODE LOG: appends MODE's telemetry: block to the config FILE.
add_telemetry() {
  case $2 in
    on) printf 'telemetry:\n  metrics: { enabled: true }\n  access_log: %s\n  otlp: { endpoint: "http://127.0.0.1:%s", flush_interval: 1s, export_interval: 1s }\n' \
          "$3" "$otlp_port" >>"$1" ;;
    off) printf 'telemetry:\n  metrics: { enabled: false }\n  otlp: { enabled: false }\n' >>"$1" ;;
    "") ;;
    *) echo "TELEMETRY is on or off" >&2; exit 1 ;;
  esac
}

# measure LABEL BINARY PATH: prints "LABEL PATH instructions/request" (and keeps it in
# $work/results).
measure() {
  local label=$1 bin=$2 kind=$3 port cfg="$work/$1-$3.yaml" data="$work/data-$1-$3"
  port=$(free_port_pair)
  if [[ $kind == full_path ]]; then
    write_route_config "$cfg" "$port" "$data" "$work/policy.yaml" "threads: 1" "busy_poll: 0"
  else  # the built-in default, with these server keys (as proxy_overhead.sh's THREADS/BUSY_POLL)
    cat >"$cfg" <<YAML
server: { listen: ["127.0.0.1:$port"], threads: 1, busy_poll: 0 }
data_dir: $data
providers:
  openai: { kind: openai, base_url: "http://127.0.0.1:$mock_port/v1", api_key: sk-bench }
passthrough: [ { prefix: "", provider: openai } ]
YAML
  fi
  add_telemetry "$cfg" "$(telemetry_of "$label")" "$work/access-$label-$kind.log"
  local out="$work/callgrind.$label.$kind"
  valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no \
    "$bin" serve --config "$cfg" --log-level warn >"$work/$label-$kind.log" 2>&1 &
  local vpid=$!
  pids+=("$vpid")
  for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" || { echo "$label did not start" >&2; cat "$work/$label-$kind.log" >&2; exit 1; }
  python3 "$work/load.py" "$port" "$warmup" "$nconns" "$kind"
  sleep 1
  callgrind_control -z "$vpid" >/dev/null 2>&1 || { echo "callgrind_control -z failed" >&2; exit 1; }
  python3 "$work/load.py" "$port" "$requests" "$nconns" "$kind"
  sleep 1
  callgrind_control -d "$vpid" >/dev/null 2>&1 || { echo "callgrind_control -d failed" >&2; exit 1; }
  local total=""  # the dump ($out.1) is complete once its totals line is written
  for _ in $(seq 1 300); do
    total=$(awk '/^totals:/ {print $2; exit}' "$out".1 2>/dev/null || true)
    [[ -n $total ]] && break; sleep 0.1
  done
  [[ -n $total ]] || { echo "no callgrind dump for $label" >&2; exit 1; }
  # KEEP_DUMPS=DIR keeps each dump (callgrind_annotate DIR/callgrind.LABEL.KIND.N: where the instructions go)
  if [[ -n ${KEEP_DUMPS:-} ]]; then mkdir -p "$KEEP_DUMPS"; cp "$out".1 "$KEEP_DUMPS/callgrind.$label.$kind.$(date +%s%N)"; fi
  kill "$vpid"; wait "$vpid" 2>/dev/null || true
  awk -v l="$label" -v k="$kind" -v t="$total" -v n="$requests" \
    'BEGIN { printf "%-9s %-12s %10.0f instructions/request (%d requests, %.0f in all)\n", l, k, t / n, n, t }' |
    tee -a "$work/results"
}

echo "callgrind: $requests requests after $warmup warm-up, $nconns connections, route ${ROUTE:-cascade}, load $(cut -d' ' -f1-3 /proc/loadavg)"
[[ ${TELEMETRY_AB:-0} != 1 ]] || echo "telemetry A/B: frugal has metrics, OTLP export and the access log on; frugal_b (the same binary) has telemetry off"
[[ -z ${TELEMETRY:-} ]] || echo "telemetry $TELEMETRY for every binary"
labels=(frugal); [[ -z $frugal_bin_b ]] || labels+=(frugal_b)
for kind in ${PATHS:-passthrough full_path}; do
  for _ in $(seq 1 "${REPEAT:-2}"); do
    measure frugal "$frugal_bin" "$kind"
    [[ -z $frugal_bin_b ]] || measure frugal_b "$frugal_bin_b" "$kind"
  done
done
# med LABEL PATH: the median of that measurement's runs.
med() {
  awk -v l="$1" -v k="$2" '$1 == l && $2 == k {print $3}' "$work/results" | sort -n |
    awk '{v[NR]=$1} END { printf "%.0f", (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2 }'
}
echo
for kind in ${PATHS:-passthrough full_path}; do
  for label in "${labels[@]}"; do
    echo "median $label $kind: $(med "$label" "$kind") instructions/request (runs: $(awk -v l="$label" -v k="$kind" \
      '$1 == l && $2 == k {printf "%s%s", (n++ ? " " : ""), $3}' "$work/results"))"
  done
  [[ -z $frugal_bin_b ]] ||
    awk -v k="$kind" -v a="$(med frugal "$kind")" -v b="$(med frugal_b "$kind")" 'BEGIN { printf "%s: frugal/frugal_b %.3f\n", k, a / b }'
done
