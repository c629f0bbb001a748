# Shared by the wrk benchmarks: `source bench/lib.sh [BUILD_DIR]` (with $root set) checks
# the binaries and wrk, makes a temp dir cleaned up with every process the script
# started, and starts the mock upstream (mock_port). Also: waiting for a log line, a free
# loopback port, the benchmark request and its wrk script (write_post_lua), wrk latency →
# ms, and the interleaved comparison (compare).
# FRUGAL_BIN_B=PATH names a second frugal binary (frugal_bin_b; e.g. a build of an older
# commit) for the scripts that compare two gateways in the same interleaved rounds.
build=${1:-$root/build/release}
duration=${DURATION:-5}
frugal_bin=$build/gateway/frugal
mock_bin=$build/bench/mock_upstream
frugal_bin_b=${FRUGAL_BIN_B:-}
for b in "$frugal_bin" "$mock_bin" ${frugal_bin_b:+"$frugal_bin_b"}; do
  [[ -x $b ]] || { echo "missing $b: build the release preset first" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk missing: run deploy/install-deps.sh" >&2; exit 1; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

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
# free_port_pair: a port P with P + 1 free too (frugal's admin listener by default).
free_port_pair() {
  python3 -c '
import socket
for _ in range(100):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
'
}
# start_otlp_sink: an OTLP/HTTP sink on a fresh loopback port (otlp_port) that answers
# every POST 200 with an empty body and keeps nothing.
start_otlp_sink() {
  otlp_port=$(free_port)
  python3 - "$otlp_port" >"$work/otlp-sink.log" 2>&1 <<'PY' & pids+=($!)
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
}
"$mock_bin" --port 0 --threads 1 >"$work/mock.log" 2>&1 & pids+=($!)
mock_port=$(wait_for "$work/mock.log" 'PORT=[0-9]+' | cut -d= -f2)

# CPU per request: compare reads the clock ticks of each target whose process id is in
# target_pid[NAME] (nginx's is set by start_nginx, a script sets its frugals') around
# that target's runs. ticks PID: user + system ticks of PID's threads and its children's
# (nginx's workers).
declare -A target_pid=()
hz=$(getconf CLK_TCK)
ticks() {
  local s=0 pid t
  for pid in $1 $(pgrep -P "$1" || true); do
    for t in /proc/"$pid"/task/*/stat; do s=$((s + $(awk '{print $14 + $15}' "$t" 2>/dev/null || echo 0))); done
  done
  echo "$s"
}

# start_nginx HTTP_BLOCK_BODY: Debian's nginx (2 workers, no access log) on a fresh
# loopback port (nginx_port) with the given http{} contents; waits until it answers.
nginx_port=$(free_port)
start_nginx() {
  mkdir -p "$work/nginx/logs"
  cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
$1
}
NGINX
  "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 & pids+=($!)
  target_pid[nginx]=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" && break; sleep 0.05; done
}

# start_nginx_proxy: start_nginx as the reference proxy — proxy_pass to the mock with
# upstream keep-alive and no buffering, as frugal relays.
start_nginx_proxy() {
  start_nginx "  upstream mock { server 127.0.0.1:$mock_port; keepalive 128; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_buffering off;
    }
  }"
}

# The small chat request every benchmark sends ($body), and write_post_lua
# [CACHE_CONTROL]: the wrk script POSTing it ($work/post.lua), with that Cache-Control.
body='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in five words."}],"temperature":0}'
write_post_lua() {
  {
    echo 'wrk.method = "POST"'
    echo "wrk.body = '$body'"
    echo 'wrk.headers["Content-Type"] = "application/json"'
    [[ -z ${1:-} ]] || echo "wrk.headers[\"Cache-Control\"] = \"$1\""
  } >"$work/post.lua"
}

# The full path's policy (bench/full_path.sh, bench/callgrind_per_request.sh):
# write_route_policy FILE writes a policy whose one request type routes every request.
# ROUTE=cascade (default): gpt-4o-mini accepted by not_refusal (the mock's answer is),
# then gpt-4o — a buffered, scored first tier; ROUTE=single: gpt-4o-mini alone (the live
# last tier). A global monthly budget far above what a run spends is checked each time.
write_route_policy() {
  local tiers
  case ${ROUTE:-cascade} in
    cascade) tiers='      - model: gpt-4o-mini
        accept: { not_refusal: true }
      - model: gpt-4o' ;;
    single) tiers='      - model: gpt-4o-mini' ;;
    *) echo "ROUTE is cascade or single" >&2; exit 1 ;;
  esac
  cat >"$1" <<YAML
request_types:
  - name: chat
routes:
  chat:
    reference_model: gpt-4o
    cascade:
$tiers
prices:
  gpt-4o:      { input: 2.50, cached_input: 1.25, output: 10.00 }
  gpt-4o-mini: { input: 0.15, cached_input: 0.075, output: 0.60 }
budgets:
  - { scope: global, per: month, hard: 1000000 }
YAML
}
# write_route_config FILE PORT DATA_DIR POLICY [SERVER_KEY...]: frugal's config for the
# full path: the mock as provider, the policy, the cache and ledger at their defaults;
# extra server keys ("threads: 1") are added to server:.
write_route_config() {
  local extra="" k
  for k in "${@:5}"; do extra+=", $k"; done
  cat >"$1" <<YAML
server: { listen: ["127.0.0.1:$2"]$extra }
data_dir: $3
policy: $4
providers:
  mock: { kind: openai, base_url: "http://127.0.0.1:$mock_port/v1", api_key: sk-bench }
passthrough:
  - { prefix: "", provider: mock }
YAML
}

# wrk prints 95.00us / 1.23ms / 2.00s
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'; }

# wrk_run NAME PORT CONNS LUA -> "rps p50_ms p99_ms requests"; a non-2xx answer fails the run.
# The script's init(args) gets one argument unique to the run (the clock in µs), so a
# script can make every request of every run differ.
wrk_run() {
  local out
  out=$(wrk -t1 -c"$3" -d"${duration}s" --latency -s "$4" "http://127.0.0.1:$2/v1/chat/completions" \
          -- "${EPOCHREALTIME/./}" 2>&1)
  local non2xx; non2xx=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' <<<"$out" | grep -Eo '[0-9]+$' || echo 0)
  [[ $non2xx == 0 ]] || { echo "$1: $non2xx non-2xx responses" >&2; echo "$out" >&2; exit 1; }
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")") $(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")") $(awk '/requests in/ {print $1}' <<<"$out")"
}

# compare LUA REF_NAME:PORT NAME:PORT... — for each of CONNS connections (default "1 64"), ROUNDS rounds
# (default 3) that each run every target once, back to back, so that drift on a shared
# machine hits all targets alike. Odd rounds run the list rotated, each pair of rounds
# one target further, even rounds the previous order reversed (a, b, c: a b c, c b a,
# b c a, a c b, c a b, b a c — with 3 targets 6 rounds run every order once), so that no
# target always runs right after the same one: on the bench VM the order moved the
# ratios (docs/PERFORMANCE.md, session 7), and a rotation alone keeps b right after a in
# every round but one in three, where b meets a's leftover work (RocksDB flushes). Prints
# every run, then per target the median over rounds of its per-round throughput and p99
# ratios to the reference, and the same for each pair A/B listed in COMPARE_PAIRS
# (e.g. COMPARE_PAIRS="frugal/frugal_b": two gateways against each other). Where both
# have a target_pid, also CPU µs per request (cpu_us, all threads) and its ratio. At low
# concurrency frugal's CPU includes its busy-poll spin (server.busy_poll) between requests.
rounds=${ROUNDS:-3}
conns=${CONNS:-1 64}
median() { sort -n | awk '{v[NR]=$1} END { printf "%.2f", (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2 }'; }
compare() {
  local lua=$1; shift
  local ref=${1%%:*}
  printf '%-8s %5s %6s %12s %10s %10s %8s\n' target round conns rps p50_ms p99_ms cpu_us
  local c r t rps p50 p99 nreq pid t0 cpu
  local targets=("$@") n=$#
  declare -A R=()
  for c in $conns; do
    for r in $(seq 1 "$rounds"); do
      local k=$(((r - 1) / 2 % n)) i
      local order=("${targets[@]:$k}" "${targets[@]:0:$k}")
      if ((r % 2 == 0)); then
        local reversed=()
        for ((i = n - 1; i >= 0; i--)); do reversed+=("${order[i]}"); done
        order=("${reversed[@]}")
      fi
      for t in "${order[@]}"; do
        pid=${target_pid[${t%%:*}]:-} cpu=-
        [[ -z $pid ]] || t0=$(ticks "$pid")
        read -r rps p50 p99 nreq < <(wrk_run "${t%%:*}" "${t##*:}" "$c" "$lua")
        [[ -z $pid ]] || cpu=$(awk -v d=$(($(ticks "$pid") - t0)) -v n="$nreq" -v hz="$hz" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
        R[${t%%:*}.$c.$r]="$rps $p99 $cpu"
        printf '%-8s %5s %6s %12s %10s %10s %8s\n' "${t%%:*}" "$r" "$c" "$rps" "$p50" "$p99" "$cpu"
      done
    done
  done
  echo
  # ratio_line C NAME REF: medians over rounds of NAME's per-round ratios to REF's.
  ratio_line() {
    local c=$1 name=$2 ref=$3 ratios="" r nr n99 ncpu fr f99 fcpu tr p9 all p9all cpu=""
    for r in $(seq 1 "$rounds"); do
      read -r nr n99 ncpu <<<"${R[$ref.$c.$r]}"
      read -r fr f99 fcpu <<<"${R[$name.$c.$r]}"
      ratios+="$(awk -v a="$fr" -v b="$nr" -v x="$f99" -v y="$n99" -v p="$fcpu" -v q="$ncpu" \
                   'BEGIN { printf "%.4f %.4f %s", a/b, x/y, (p == "-" || q == "-") ? "-" : sprintf("%.4f", p/q) }')"$'\n'
    done
    tr=$(awk 'NF {print $1}' <<<"$ratios" | median)
    p9=$(awk 'NF {print $2}' <<<"$ratios" | median)
    all=$(awk 'NF {printf "%s%.2f", (n++ ? " " : ""), $1}' <<<"$ratios")
    p9all=$(awk 'NF {printf "%s%.2f", (n++ ? " " : ""), $2}' <<<"$ratios")
    if ! grep -q -- ' -$' <<<"$ratios"; then
      cpu=", CPU per request $(awk 'NF {print $3}' <<<"$ratios" | median)x (rounds: $(awk 'NF {printf "%s%.2f", (n++ ? " " : ""), $3}' <<<"$ratios"))"
    fi
    echo "c=$c $name/$ref: throughput ${tr}x (rounds: $all), p99 ${p9}x (rounds: $p9all)$cpu — median of $rounds rounds"
  }
  # cpu_line C NAME: the median of NAME's CPU µs per request over rounds.
  cpu_line() {
    local r v=""
    for r in $(seq 1 "$rounds"); do v+="$(awk '{print $3}' <<<"${R[$2.$1.$r]}")"$'\n'; done
    grep -q -- '^-$' <<<"$v" || echo "c=$1 $2: CPU $(awk 'NF' <<<"$v" | median | awk '{printf "%.1f", $1}') µs per request (rounds: $(awk 'NF {printf "%s%s", (n++ ? " " : ""), $1}' <<<"$v"))"
  }
  for c in $conns; do
    for t in "${@:2}"; do ratio_line "$c" "${t%%:*}" "$ref"; done
    for pair in ${COMPARE_PAIRS:-}; do ratio_line "$c" "${pair%%/*}" "${pair##*/}"; done
    for t in "$@"; do cpu_line "$c" "${t%%:*}"; done
  done
}
