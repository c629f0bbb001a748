#!/usr/bin/env python3
"""frugal's telemetry through the real binary, over loopback: /metrics against real
Prometheus tools, and the access log.

  telemetry_test.py promtool   FRUGAL MOCK  `promtool check metrics` on a scrape after traffic
  telemetry_test.py access_log FRUGAL MOCK  the access log's lines and the upstream warnings for
                                            the same traffic; /metrics behind admin_token
  telemetry_test.py reload     FRUGAL MOCK  a reload turns the access log on and moves OTLP export
                                            to another receiver: the next request is logged and
                                            exported there, a stream in flight finishes intact;
                                            a key that needs a restart is reported, a log file
                                            that cannot be opened rejects the reload
  telemetry_test.py prometheus FRUGAL MOCK  Debian's prometheus scrapes frugal while scripted
                                            traffic runs (an accepted cheap tier, an escalation,
                                            a cache hit, an upstream error); the cost, baseline
                                            and escalation series read back through Prometheus's
                                            query API must equal the ledger's figures.

promtool and prometheus come from Debian's `prometheus` package, installed with apt-get if
missing; when that is impossible (no root, no network) those modes print SKIP and exit 77.
Standard library only. Every process binds 127.0.0.1; every wait is a bounded poll.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

SKIP = 77

POLICY = """request_types:
  - name: classify
    match: { header: { x-frugal-request-type: classify } }
  - name: chat
    match: { header: { x-frugal-request-type: chat } }
  - name: other
routes:
  classify:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept: { mean_logprob: { min: -0.5 } }
      - model: tier-large
  chat:
    reference_model: tier-large
    cascade:
      - model: tier-small
        accept: { non_empty: true }
      - model: tier-large
    cache: { ttl: 10m }
prices:
  tier-small: { input: 0.10, cached_input: 0.05, output: 0.40 }
  tier-large: { input: 10.00, cached_input: 5.00, output: 30.00 }
  plain-model: { input: 1.00, output: 2.00 }
budgets:
  - { name: everything, scope: global, per: month, soft: 50.00, hard: 100.00 }
"""


def config_text(data_dir, mock_url, extra=""):
    return f"""data_dir: {data_dir}
policy: policy.yaml
server:
  listen: ["127.0.0.1:0"]
  threads: 2
providers:
  mock:
    kind: openai
    base_url: {mock_url}/v1
    retry: {{ max_attempts: 2, base_delay: 10ms, max_delay: 20ms }}
    timeouts: {{ first_byte: 5s }}
passthrough:
  - {{ prefix: "", provider: mock }}
telemetry:
  metrics: {{ enabled: true, max_label_values: 20 }}
{extra}"""


def skip(why):
    print(f"SKIP: {why}", flush=True)
    sys.exit(SKIP)


def fail(why):
    print(f"FAIL: {why}", flush=True)
    sys.exit(1)


def ensure_tools():
    """promtool and prometheus on PATH, installing Debian's package if needed."""
    if shutil.which("promtool") and shutil.which("prometheus"):
        return
    if os.geteuid() != 0 and not shutil.which("sudo"):
        skip("prometheus is not installed and this user cannot install it (apt-get install prometheus)")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
                       env=env, check=True, timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    except (subprocess.SubprocessError, OSError) as e:
        skip(f"prometheus is not installed and apt-get could not install it ({e})")
    if not (shutil.which("promtool") and shutil.which("prometheus")):
        skip("the prometheus package did not provide promtool and prometheus")


class Proc:
    """A child whose merged output is collected by a thread; wait_for polls it."""

    def __init__(self, argv, cwd=None):
        self.p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()

    def wait_for(self, pattern, timeout=20):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cv:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m.group(1) if m.groups() else line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    fail(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines[-40:]))
                self.cv.wait(left)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def http(method, url, body=None, headers=None, timeout=20):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat(url, request_type, extra=None, model="auto", temperature=None):
    body = {"model": model, "messages": [{"role": "user", "content": "Which colour is the sky?"}]}
    if temperature is not None:
        body["temperature"] = temperature
    body.update(extra or {})
    headers = {"authorization": "Bearer sk-metrics-test"}
    if request_type:
        headers["x-frugal-request-type"] = request_type
    return http("POST", url + "/v1/chat/completions", body, headers)


def traffic(url):
    """The scripted requests; returns their responses' x-frugal-* facts."""
    out = {}
    # 1. An accepted cheap tier (deterministic, so the next identical request can hit the cache).
    s, h, b = chat(url, "chat", temperature=0)
    out["cheap"] = (s, h)
    out["answer_text"] = json.loads(b)["choices"][0]["message"]["content"] if s == 200 else None
    # 2. The same request again: a cache hit.
    s, h, b = chat(url, "chat", temperature=0)
    out["hit"] = (s, h)
    # 3. An escalation: tier-small's log-probs fail the rule, tier-large answers.
    s, h, b = chat(url, "classify", {"mock": {"models": {"tier-small": {"logprobs": [-3.0, -2.5, -4.0]},
                                                          "tier-large": {"logprobs": [-0.1, -0.1]}}}})
    out["escalation"] = (s, h)
    # 4. An upstream error: 503 twice (first attempt and its retry), relayed to the client.
    s, h, b = chat(url, None, {"mock": {"status": 503}}, model="plain-model")
    out["error"] = (s, h)
    return out


def check_traffic(facts):
    checks = [
        (facts["cheap"][0] == 200 and facts["cheap"][1].get("x-frugal-tier") == "1", "cheap tier answered"),
        (facts["hit"][0] == 200 and facts["hit"][1].get("x-frugal-cache") == "hit", "cache hit"),
        (facts["escalation"][0] == 200 and facts["escalation"][1].get("x-frugal-tier") == "2", "escalation"),
        (facts["error"][0] == 503, "upstream error relayed"),
    ]
    for ok, what in checks:
        if not ok:
            fail(f"traffic: {what} did not happen: {facts}")


def start_stack(tmp, frugal_bin, mock_bin, extra=""):
    mock = Proc([mock_bin, "--threads", "2"])
    mock_url = "http://127.0.0.1:" + mock.wait_for(r"PORT=(\d+)")
    with open(os.path.join(tmp, "policy.yaml"), "w") as f:
        f.write(POLICY)
    cfg = os.path.join(tmp, "frugal.yaml")
    with open(cfg, "w") as f:
        f.write(config_text(os.path.join(tmp, "data"), mock_url, extra))
    gw = Proc([frugal_bin, "serve", "--config", cfg])
    url = "http://127.0.0.1:" + gw.wait_for(r"listening on 127\.0\.0\.1:(\d+)")
    admin = "http://127.0.0.1:" + gw.wait_for(r"admin API .* on 127\.0\.0\.1:(\d+)")
    return mock, gw, url, admin


def ledger_figures(url):
    """Total cost and baseline (exact decimals) and escalations, from the ledger's API."""
    s, _, b = http("GET", url + "/v1/frugal/costs?from=0")
    if s != 200:
        fail(f"/v1/frugal/costs: {s} {b}")
    totals = json.loads(b)["totals"]
    s, _, b = http("GET", url + "/v1/frugal/ledger?from=0&limit=1000")
    if s != 200:
        fail(f"/v1/frugal/ledger: {s} {b}")
    escalations = {}
    for row in json.loads(b)["rows"]:
        tiers = [t for t in row["tiers"] if t["status"] != "verifier"]
        for i, t in enumerate(tiers[:-1]):
            escalations[(row["route"], str(i + 1))] = escalations.get((row["route"], str(i + 1)), 0) + 1
    return Decimal(totals["cost_usd"]), Decimal(totals["baseline_usd"]), escalations


def run_promtool(frugal_bin, mock_bin):
    with tempfile.TemporaryDirectory(prefix="frugal-promtool-") as tmp:
        mock, gw, url, admin = start_stack(tmp, frugal_bin, mock_bin)
        try:
            check_traffic(traffic(url))
            s, h, text = http("GET", admin + "/metrics")
            if s != 200 or not h.get("Content-Type", "").startswith("text/plain; version=0.0.4"):
                fail(f"/metrics: {s} {h}")
            for family in ("gen_ai_client_token_usage", "frugal_cost_usd_total", "frugal_escalations_total",
                           "frugal_upstream_requests_total", "frugal_overhead_seconds", "frugal_budget_spend_usd",
                           "frugal_engine_decode_tokens_total", "frugal_cache_memory_entries",
                           "frugal_cache_memory_bytes"):
                if f"# TYPE {family} " not in text:
                    fail(f"/metrics lacks {family}")
            # The cheap tier's answer was stored: one entry, some bytes, one store.
            gauges = {l.split(" ")[0]: float(l.split(" ")[1]) for l in text.splitlines()
                      if l.startswith(("frugal_cache_memory_", "frugal_cache_stores_total "))}
            if not (gauges.get("frugal_cache_memory_entries", 0) >= 1 and gauges.get("frugal_cache_memory_bytes", 0) > 0
                    and gauges.get("frugal_cache_stores_total", 0) >= 1):
                fail(f"cache gauges after a stored answer: {gauges}")
            r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True, capture_output=True,
                               timeout=60)
            if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
                fail(f"promtool check metrics (exit {r.returncode}):\n{r.stdout}{r.stderr}\n--- scrape:\n{text}")
            print(f"promtool check metrics: clean ({len(text.splitlines())} lines)")
        finally:
            gw.stop()
            mock.stop()


def run_access_log(frugal_bin, mock_bin):
    """The access log (one JSON line per request, no prompt, answer or key), the warnings
    for failed upstream attempts, and /metrics behind the admin token."""
    with tempfile.TemporaryDirectory(prefix="frugal-access-log-") as tmp:
        log_path = os.path.join(tmp, "access.jsonl")
        mock, gw, url, admin = start_stack(tmp, frugal_bin, mock_bin,
                                    f"  access_log: {log_path}\nadmin_token: metrics-admin-token\n")
        try:
            facts = traffic(url)
            check_traffic(facts)
            # Refused before any answer source: a model name over the 256-byte limit.
            s, h, _ = chat(url, None, model="m" * 300)
            if s != 400:
                fail(f"an over-long model name got {s}")
            facts["refused"] = (s, h)
            ids = {k: facts[k][1].get("x-request-id") for k in ("cheap", "hit", "escalation", "error", "refused")}
            lines = []
            deadline = time.monotonic() + 20  # the writer flushes every 200 ms
            while time.monotonic() < deadline:
                with open(log_path) as f:
                    lines = f.read().splitlines()
                if len(lines) >= 5:
                    break
                time.sleep(0.1)
            if len(lines) != 5:
                fail(f"expected 5 access-log lines, got {len(lines)}: {lines}")
            text = "\n".join(lines)
            for secret in ("Which colour is the sky?", "sk-metrics-test", facts["answer_text"] or "?!"):
                if secret in text:
                    fail(f"the access log contains {secret!r}: {text}")
            rows = {json.loads(line)["request_id"]: json.loads(line) for line in lines}
            if set(rows) != set(ids.values()):
                fail(f"access-log request ids {sorted(rows)} != responses' {ids}")
            esc, hit, err = rows[ids["escalation"]], rows[ids["hit"]], rows[ids["error"]]
            checks = [
                (esc["tier"] == 2 and esc["tiers_tried"] == 2 and esc["route"] == "classify", "escalation line"),
                (Decimal(str(esc["cost_usd"])) == Decimal(facts["escalation"][1]["x-frugal-cost-usd"]), "cost"),
                (hit["cache"] == "hit" and hit["cost_usd"] == 0, "cache-hit line"),
                (err["status"] == 503 and err["upstream_attempts"] == 2, "upstream-error line"),
                (rows[ids["refused"]]["end"] == "refused" and rows[ids["refused"]]["status"] == 400, "refused line"),
                (all(r["trace_id"] and r["duration_us"] >= r["overhead_us"] >= 0 for r in rows.values()), "times"),
            ]
            for ok, what in checks:
                if not ok:
                    fail(f"access log: {what} wrong: {text}")
            warns = [l for l in gw.lines if " warn: " in l and ids["error"] in l]
            if len(warns) != 2 or "retrying" not in warns[0] or "no attempt left" not in warns[1]:
                fail(f"expected two warnings for the 503s of {ids['error']}, got {warns}")
            # /metrics follows the admin endpoints' rule: with an admin_token, only its bearer.
            if http("GET", admin + "/metrics")[0] != 403:
                fail("/metrics without the admin token was not refused")
            s, _, body = http("GET", admin + "/metrics", headers={"authorization": "Bearer metrics-admin-token"})
            if s != 200 or 'frugal_requests_total{status="503"} 1' not in body or \
                    'frugal_requests_total{status="400"} 1' not in body:
                fail(f"/metrics with the admin token: {s}")
            print(f"access log: {len(lines)} lines, no prompt, answer or key; 2 upstream warnings; /metrics guarded")
        finally:
            gw.stop()
            mock.stop()


class OtlpReceiver:
    """A loopback OTLP/HTTP receiver that keeps every (path, body) it is sent."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        received = self.received = []
        cv = self.cv = threading.Condition()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with cv:
                    received.append((self.path, body))
                    cv.notify_all()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def has_trace(self, trace_id):
        raw = bytes.fromhex(trace_id)  # spans carry the trace id as 16 raw bytes
        with self.cv:
            return any(p == "/v1/traces" and raw in b for p, b in self.received)

    def wait_trace(self, trace_id, timeout=20):
        deadline = time.monotonic() + timeout
        while not self.has_trace(trace_id):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def run_reload(frugal_bin, mock_bin):
    """telemetry: applies at a reload, for the requests that finish afterwards."""
    from http.client import HTTPConnection
    with tempfile.TemporaryDirectory(prefix="frugal-telemetry-reload-") as tmp:
        a, b = OtlpReceiver(), OtlpReceiver()
        mock = Proc([mock_bin, "--threads", "2"])
        mock_url = "http://127.0.0.1:" + mock.wait_for(r"PORT=(\d+)")
        cfg_path = os.path.join(tmp, "frugal.yaml")
        log_path = os.path.join(tmp, "access.jsonl")

        def write_config(telemetry):
            text = f"""data_dir: {tmp}/data
server: {{ listen: ["127.0.0.1:0"], threads: 2, watch_interval: 0 }}
providers:
  mock: {{ kind: openai, base_url: "{mock_url}/v1" }}
passthrough:
  - {{ prefix: "", provider: mock }}
telemetry:
{telemetry}"""
            with open(cfg_path + ".new", "w") as f:
                f.write(text)
            os.replace(cfg_path + ".new", cfg_path)  # write-then-rename

        otlp = "  otlp: {{ endpoint: \"{}\", flush_interval: 20ms, export_interval: 1h }}\n"
        write_config(otlp.format(a.url))  # metrics: the default
        gw = Proc([frugal_bin, "serve", "--config", cfg_path])
        try:
            url = "http://127.0.0.1:" + gw.wait_for(r"listening on 127\.0\.0\.1:(\d+)")
            admin = "http://127.0.0.1:" + gw.wait_for(r"admin API .* on 127\.0\.0\.1:(\d+)")
            counter = [0]

            def request(extra=None):
                counter[0] += 1
                trace_id = f"{counter[0]:032x}"
                body = {"model": "plain-model", "messages": [{"role": "user", "content": "hi"}]}
                body.update(extra or {})
                s, h, _ = http("POST", url + "/v1/chat/completions", body,
                               {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
                if s != 200:
                    fail(f"request {counter[0]}: {s}")
                return trace_id, h.get("x-request-id")

            def reload():
                return http("POST", admin + "/admin/reload", {})

            t1, _ = request()
            if not a.wait_trace(t1):
                fail("receiver A never got the first request's span")
            if os.path.exists(log_path):
                fail("an access log was written while it was off")
            deadline = time.monotonic() + 10
            while True:  # recorded when the request finished, which may trail its answer
                s, _, text = http("GET", admin + "/metrics")
                if s == 200 and 'frugal_requests_total{status="200"} 1' in text:
                    break
                if time.monotonic() > deadline:
                    fail(f"/metrics is not served by default: {s}")
                time.sleep(0.05)

            # A stream in flight across the reload: its first chunk has arrived, 9 more follow.
            conn = HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
            conn.request("POST", "/v1/chat/completions", json.dumps({
                "model": "plain-model", "stream": True, "messages": [{"role": "user", "content": "hi"}],
                "mock": {"chunks": 10, "chunk_delay_ms": 100}}), {"content-type": "application/json"})
            stream = conn.getresponse()
            if stream.status != 200:
                fail(f"the streamed request got {stream.status}")
            first = stream.readline()  # through the chunked decoding
            if not first:
                fail("the streamed request sent nothing")

            write_config(f"  access_log: {log_path}\n" + otlp.format(b.url))
            s, _, body = reload()
            if s != 200 or json.loads(body).get("restart_required") != []:
                fail(f"reload: {s} {body}")
            t3, rid3 = request()
            if not b.wait_trace(t3):
                fail("receiver B never got the span of the request after the reload")
            if a.has_trace(t3):
                fail("the request after the reload was still exported to A")
            deadline = time.monotonic() + 20
            logged = []
            while time.monotonic() < deadline:
                if os.path.exists(log_path):
                    with open(log_path) as f:
                        logged = [json.loads(l)["request_id"] for l in f.read().splitlines()]
                if rid3 in logged:
                    break
                time.sleep(0.05)
            if rid3 not in logged:
                fail(f"the request after the reload is not in the access log: {logged}")

            rest = (first + stream.read()).decode()
            conn.close()
            if rest.count("data: ") < 11 or "data: [DONE]" not in rest:
                fail(f"the stream in flight across the reload did not finish intact: {rest!r}")

            # Metrics kept counting across the reload (reset, they could not reach 3).
            deadline = time.monotonic() + 10
            while True:
                s, _, text = http("GET", admin + "/metrics")
                m = re.search(r'^frugal_requests_total\{status="200"\} (\d+)', text, re.M)
                if s == 200 and m and int(m.group(1)) == 3:
                    break
                if time.monotonic() > deadline:
                    fail(f"/metrics after the reload: {s} {m and m.group(0)}")
                time.sleep(0.05)

            # A key that needs a restart: reported, the running value kept; metrics off: 404.
            # (and shared_state, read once at start: never connected to, the port is closed)
            write_config(f"  metrics: {{ enabled: false, max_label_values: 50 }}\n  access_log: {log_path}\n"
                         + otlp.format(b.url) + 'shared_state: { url: "redis://127.0.0.1:9" }\n')
            s, _, body = reload()
            if s != 200 or json.loads(body).get("restart_required") != ["telemetry.metrics.max_label_values",
                                                                        "shared_state"]:
                fail(f"reload with a changed max_label_values: {s} {body}")
            gw.wait_for(r"(telemetry\.metrics\.max_label_values changed .* needs a restart)")
            if http("GET", admin + "/metrics")[0] != 404:
                fail("/metrics still served after a reload turned metrics off")

            # A log file that cannot be opened rejects the reload; the running log keeps going.
            write_config(f"  access_log: {tmp}/no-such-dir/access.jsonl\n" + otlp.format(b.url))
            s, _, body = reload()
            if s != 400 or "no-such-dir" not in body:
                fail(f"a reload with an unopenable access log: {s} {body}")
            _, rid5 = request()
            deadline = time.monotonic() + 20
            while rid5 not in logged and time.monotonic() < deadline:
                with open(log_path) as f:
                    logged = [json.loads(l)["request_id"] for l in f.read().splitlines()]
                time.sleep(0.05)
            if rid5 not in logged:
                fail("after a rejected reload the access log stopped")
            print("reload: access log on, OTLP moved to B for the next request, the stream in flight intact; "
                  "max_label_values reported as restart-only; an unopenable log rejected")
        finally:
            gw.stop()
            mock.stop()
            a.stop()
            b.stop()


def prom_query(prom_url, q):
    s, _, b = http("GET", prom_url + "/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    if s != 200:
        return None
    res = json.loads(b)["data"]["result"]
    return res


def run_prometheus(frugal_bin, mock_bin):
    with tempfile.TemporaryDirectory(prefix="frugal-prometheus-") as tmp:
        mock, gw, url, admin = start_stack(tmp, frugal_bin, mock_bin)
        prom = None
        try:
            target = admin.removeprefix("http://")
            prom_cfg = os.path.join(tmp, "prometheus.yml")
            with open(prom_cfg, "w") as f:
                f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: frugal
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
""")
            port = free_port()
            prom = Proc(["prometheus", f"--config.file={prom_cfg}", f"--storage.tsdb.path={tmp}/tsdb",
                         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h",
                         "--log.level=warn"], cwd=tmp)
            prom_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http("GET", prom_url + "/-/ready", timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or prom.p.poll() is not None:
                    fail("prometheus did not become ready:\n" + "\n".join(prom.lines[-30:]))
                time.sleep(0.2)

            check_traffic(traffic(url))
            cost, baseline, escalations = ledger_figures(admin)
            if cost <= 0 or not escalations:
                fail(f"the ledger shows no cost or no escalation: {cost} {escalations}")

            # Poll Prometheus until its latest scrape carries the ledger's figures (bounded).
            want = {
                "sum(frugal_cost_usd_total)": cost,
                'frugal_budget_spend_usd{budget="everything"}': cost,  # a global budget books every cost
                'frugal_budget_limit_usd{budget="everything",limit="hard"}': Decimal(100),
                "sum(frugal_baseline_usd_total)": baseline,
                "sum(frugal_savings_usd_total) - sum(frugal_overspend_usd_total)": baseline - cost,
            }
            got = {}
            deadline = time.monotonic() + 60
            while True:
                got = {}
                for q in want:
                    r = prom_query(prom_url, q)
                    got[q] = Decimal(r[0]["value"][1]) if r else None
                esc = prom_query(prom_url, 'sum by (route, tier) (frugal_escalations_total{job="frugal"})') or []
                got_esc = {(e["metric"].get("route"), e["metric"].get("tier")): int(float(e["value"][1])) for e in esc}
                ok = all(got[q] is not None and abs(got[q] - want[q]) <= Decimal("1e-9") for q in want)
                if ok and got_esc == escalations:
                    break
                if time.monotonic() > deadline:
                    fail(f"Prometheus disagrees with the ledger: want {want} {escalations}, got {got} {got_esc}")
                time.sleep(0.5)
            # The upstream error and its retry are counted per attempt.
            r = prom_query(prom_url, 'sum(frugal_upstream_requests_total{outcome="http_503"})')
            if not r or int(float(r[0]["value"][1])) != 2:
                fail(f"expected 2 upstream attempts answered 503, got {r}")
            r = prom_query(prom_url, 'sum(frugal_cache_requests_total{result="hit"})')
            if not r or int(float(r[0]["value"][1])) != 1:
                fail(f"expected 1 cache hit, got {r}")
            print(f"Prometheus agrees with the ledger: cost {cost} USD, baseline {baseline} USD, "
                  f"escalations {escalations}")
        finally:
            if prom:
                prom.stop()
            gw.stop()
            mock.stop()


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("promtool", "prometheus", "access_log", "reload"):
        print(__doc__)
        return 2
    mode, frugal_bin, mock_bin = sys.argv[1:]
    if mode == "access_log":
        run_access_log(frugal_bin, mock_bin)
        return 0
    if mode == "reload":
        run_reload(frugal_bin, mock_bin)
        return 0
    ensure_tools()
    if mode == "promtool":
        run_promtool(frugal_bin, mock_bin)
    else:
        run_prometheus(frugal_bin, mock_bin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
