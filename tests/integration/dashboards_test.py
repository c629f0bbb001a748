#!/usr/bin/env python3
"""frugal's Grafana dashboards proven on real data.

  dashboards_test.py FRUGAL MOCK FIXTURE_GGUF

Debian's prometheus scrapes frugal's admin listener (/metrics is served only there; its
port is read from frugal's start-up line) on loopback (every second) while a scripted mixed load
runs: cheap tiers accepted, escalations, cache hits and single-flight followers, an
upstream error with its retry, a fallback, a team over its soft budget limit, and the
in-process engine (FIXTURE_GGUF as model and as speculative draft). Then every query of
every panel of deploy/grafana/dashboards/*.json, its template variables replaced by `.*`
and $__rate_interval / $__range by windows covering the load, is run through Prometheus's
HTTP API and must return at least one series with at least one finite value; a query
naming a metric frugal does not export fails, whatever the query returns. Each variable's
own query (label_values) must find values, and a panel filtered by a variable must
return a series for at least one of those values (so a filter on a label the metric
lacks is caught). The JSON files must equal what deploy/grafana/dashboards.py writes.

deploy/grafana/render.py runs the same load (`stack`, below) to draw docs/img/*.png.

Exit 77 (skip) when prometheus cannot be installed or the fixture is missing.
Standard library only; every process binds 127.0.0.1; every wait is a bounded poll.
"""
import contextlib
import concurrent.futures
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import telemetry_test as tt  # noqa: E402  (Proc, http, free_port, ensure_tools, skip, fail)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DASHBOARDS = os.path.join(ROOT, "deploy", "grafana", "dashboards")

POLICY = tt.POLICY + """  - { name: team-search, scope: { team: search }, per: day, soft: 0.0001, hard: 0.05 }
"""

ENGINE_MODEL = "local/llama-2-tiny-random"


def config_text(data_dir, mock_url, fixture):
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
  mock2:
    kind: openai
    base_url: {mock_url}/v1
    retry: {{ max_attempts: 1 }}
  local:
    kind: engine
    model: {fixture}
    draft_model: {fixture}
    threads: 1
    kv_memory: 8MiB
    max_batch: 4
    draft_tokens: 2
models:
  flaky: [mock/broken-model, mock2/plain-model]
passthrough:
  - {{ prefix: "", provider: mock }}
telemetry:
  metrics: {{ enabled: true, max_label_values: 20 }}
"""


class Load:
    """The scripted mixed load; counts what the responses said."""

    def __init__(self, url):
        self.url = url
        self.sent = 0
        self.facts = {"tier1": 0, "tier2": 0, "hit": 0, "status_5xx": 0, "budget_warning": 0, "engine_ok": 0,
                      "fallback_ok": 0}
        self.round = 0

    def _chat(self, body, headers):
        s, h, _ = tt.http("POST", self.url + "/v1/chat/completions", body, headers, timeout=60)
        h = {k.lower(): v for k, v in h.items()}
        return s, h

    def request(self, kind, i):
        team = ("search", "support", "")[i % 3]
        headers = {"authorization": f"Bearer sk-load-{i % 2}"}
        if team:
            headers["x-frugal-team"] = team
        msg = [{"role": "user", "content": f"Question {i % 4}: which colour is the sky?"}]
        if kind == "cheap":  # route chat, tier-small accepted; repeats hit the cache
            headers["x-frugal-request-type"] = "chat"
            body = {"model": "auto", "messages": msg, "temperature": 0,
                    "mock": {"ttft_ms": 5 + 7 * (i % 5)}}
        elif kind == "stream":  # route chat, streamed, uncacheable (temperature 1)
            headers["x-frugal-request-type"] = "chat"
            body = {"model": "auto", "messages": msg, "stream": True, "temperature": 1,
                    "mock": {"ttft_ms": 10 + 11 * (i % 4), "chunks": 6, "chunk_delay_ms": 3}}
        elif kind == "classify":  # tier-small's log-probs decide; every other one escalates
            headers["x-frugal-request-type"] = "classify"
            small = [-3.0, -2.5, -4.0] if i % 2 else [-0.1, -0.2]
            body = {"model": "auto", "messages": msg, "temperature": 1,
                    "mock": {"ttft_ms": 8 + 5 * (i % 3),
                             "models": {"tier-small": {"logprobs": small},
                                        "tier-large": {"logprobs": [-0.1, -0.1], "ttft_ms": 40}}}}
        elif kind == "error":  # 503 on both attempts, relayed
            body = {"model": "plain-model", "messages": msg, "mock": {"status": 503}}
        elif kind == "fallback":  # mock/broken-model fails twice, mock2/plain-model answers
            body = {"model": "flaky", "messages": msg, "temperature": 1,
                    "mock": {"models": {"broken-model": {"status": 503}}}}
        elif kind == "engine":  # a new prompt each time (the cache would answer a repeat)
            body = {"model": ENGINE_MODEL, "max_tokens": 8, "temperature": 0, "stream": bool(i % 2),
                    "messages": [{"role": "system", "content": "You answer questions about the sky briefly."},
                                 {"role": "user", "content": f"Engine question {i}: which colour is the sky?"}]}
        elif kind == "follow":  # identical concurrent streams on a slow answer: single flight
            headers["x-frugal-request-type"] = "chat"
            body = {"model": "auto", "messages": [{"role": "user", "content": f"Follow {i}"}], "temperature": 0,
                    "stream": True, "mock": {"ttft_ms": 300, "chunks": 8, "chunk_delay_ms": 60}}
        else:
            raise ValueError(kind)
        s, h = self._chat(body, headers)
        return kind, s, h

    def record(self, kind, s, h):
        self.sent += 1
        f = self.facts
        if s >= 500:
            f["status_5xx"] += 1
        if h.get("x-frugal-cache") == "hit":
            f["hit"] += 1
        elif h.get("x-frugal-tier") in ("1", "2"):
            f["tier" + h["x-frugal-tier"]] += 1
        if "x-frugal-budget-warning" in h:
            f["budget_warning"] += 1
        if kind == "engine" and s == 200:
            f["engine_ok"] += 1
        if kind == "fallback" and s == 200:
            f["fallback_ok"] += 1

    def missing(self):
        """What the load is meant to show and has not yet."""
        f = self.facts
        return [k for k in ("tier1", "tier2", "hit", "status_5xx", "budget_warning", "engine_ok", "fallback_ok")
                if f[k] == 0]

    def run(self, seconds, workers=4, complete=False, max_seconds=90):
        """Rounds of mixed requests for `seconds`; with `complete`, on (up to max_seconds)
        until every kind of event has happened, however slow this build is."""
        kinds = ["cheap", "stream", "classify", "cheap", "engine", "classify", "stream", "cheap"]
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            while True:
                r = self.round
                self.round += 1
                batch = [(k, r * len(kinds) + j) for j, k in enumerate(kinds)]
                if r % 3 == 0:
                    batch += [("error", r), ("fallback", r)]
                if r % 4 == 1:
                    batch += [("follow", r)] * 3
                for fut in [pool.submit(self.request, k, i) for k, i in batch]:
                    self.record(*fut.result())
                elapsed = time.monotonic() - start
                if elapsed > seconds and (not complete or not self.missing() or elapsed > max_seconds):
                    break


@contextlib.contextmanager
def stack(frugal_bin, mock_bin, fixture, scrape_interval="1s"):
    """mock upstream, frugal (engine included) and a Prometheus scraping it, on loopback."""
    tt.ensure_tools()
    if not os.path.exists(fixture):
        tt.skip(f"the engine fixture {fixture} is missing")
    with tempfile.TemporaryDirectory(prefix="frugal-dashboards-") as tmp:
        procs = []
        try:
            mock = tt.Proc([mock_bin, "--threads", "2"])
            procs.append(mock)
            mock_url = "http://127.0.0.1:" + mock.wait_for(r"PORT=(\d+)")
            with open(os.path.join(tmp, "policy.yaml"), "w") as f:
                f.write(POLICY)
            cfg = os.path.join(tmp, "frugal.yaml")
            with open(cfg, "w") as f:
                f.write(config_text(os.path.join(tmp, "data"), mock_url, os.path.abspath(fixture)))
            gw = tt.Proc([frugal_bin, "serve", "--config", cfg])
            procs.append(gw)
            url = "http://127.0.0.1:" + gw.wait_for(r"listening on 127\.0\.0\.1:(\d+)", timeout=60)
            # /metrics is served only on the admin listener (admin.listen; here a free port).
            admin = "127.0.0.1:" + gw.wait_for(r"admin API .* on 127\.0\.0\.1:(\d+)", timeout=60)
            prom_cfg = os.path.join(tmp, "prometheus.yml")
            with open(prom_cfg, "w") as f:
                f.write(f"""global:
  scrape_interval: {scrape_interval}
  evaluation_interval: {scrape_interval}
scrape_configs:
  - job_name: frugal
    static_configs:
      - targets: ["{admin}"]
""")
            port = tt.free_port()
            prom = tt.Proc(["prometheus", f"--config.file={prom_cfg}", f"--storage.tsdb.path={tmp}/tsdb",
                            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h",
                            "--log.level=warn"], cwd=tmp)
            procs.append(prom)
            prom_url = f"http://127.0.0.1:{port}"
            poll(lambda: up(prom_url), 60, lambda: "prometheus did not scrape frugal:\n" + "\n".join(prom.lines[-30:]))
            yield url, prom_url
        finally:
            for p in reversed(procs):
                p.stop()


def up(prom_url):
    try:
        r = query(prom_url, 'up{job="frugal"} == 1')
    except OSError:
        return False
    return bool(r)


def poll(cond, seconds, why):
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            tt.fail(why())
        time.sleep(0.2)


def api(prom_url, path, params):
    s, _, b = tt.http("GET", prom_url + path + "?" + urllib.parse.urlencode(params, doseq=True), timeout=30)
    doc = json.loads(b) if b.startswith("{") else {"status": "error", "error": b}
    if s != 200 or doc.get("status") != "success":
        return None, doc.get("error", b)
    return doc["data"], None


def query(prom_url, q):
    data, _ = api(prom_url, "/api/v1/query", {"query": q})
    return data["result"] if data else None


def wait_scraped(prom_url, sent):
    """Until Prometheus's latest scrape counts every request sent."""
    def done():
        r = query(prom_url, "sum(frugal_requests_total)")
        return bool(r) and int(float(r[0]["value"][1])) >= sent
    poll(done, 30, lambda: f"Prometheus never saw {sent} requests: {query(prom_url, 'sum(frugal_requests_total)')}")


# --- the dashboards ---

def load_dashboards():
    out = {}
    for name in sorted(os.listdir(DASHBOARDS)):
        if name.endswith(".json"):
            with open(os.path.join(DASHBOARDS, name)) as f:
                out[name] = json.load(f)
    return out


VAR_REF = re.compile(r"\$\{?([A-Za-z_]\w*)(?::\w+)?\}?")
PROMQL_WORDS = {"or", "and", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                "group_right", "inf", "nan"}


def metric_names(expr):
    """The metric names a PromQL expression reads: what is left once label matchers,
    range selectors, grouping lists, strings and function calls are taken out."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?", e):
        if not m.group(2) and m.group(1).lower() not in PROMQL_WORDS and not m.group(1).startswith("__"):
            names.add(m.group(1))
    return names


LABEL_VALUES = re.compile(r"^label_values\((\w+),\s*(\w+)\)$")


def substitute(expr, values, rate_window, range_window):
    def one(m):
        name = m.group(1)
        if name == "__rate_interval":
            return rate_window
        if name in ("__range", "__interval"):
            return range_window
        return values[name]
    return VAR_REF.sub(one, expr)


def structural_problems(name, d):
    problems = []
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        if key not in d:
            problems.append(f"{name}: no {key}")
    variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    ids, cells = set(), set()
    for p in d.get("panels", []):
        g = p.get("gridPos", {})
        if p.get("id") in ids:
            problems.append(f"{name}: duplicate panel id {p.get('id')}")
        ids.add(p.get("id"))
        if not (0 <= g.get("x", -1) and g.get("x", 0) + g.get("w", 99) <= 24 and g.get("h", 0) > 0):
            problems.append(f"{name}: panel {p.get('title')!r} has a bad gridPos {g}")
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    problems.append(f"{name}: panel {p.get('title')!r} overlaps another")
                    break
                cells.add((x, y))
            else:
                continue
            break
        refs = [t.get("refId") for t in p.get("targets", [])]
        if not refs or len(set(refs)) != len(refs):
            problems.append(f"{name}: panel {p.get('title')!r} has no targets or duplicate refIds")
        for t in p.get("targets", []):
            for v in VAR_REF.findall(t.get("expr", "")):
                if not v.startswith("__") and v not in variables:
                    problems.append(f"{name}: panel {p.get('title')!r} uses undefined variable ${v}")
    return problems


def check_dashboards(prom_url, t_start, rate_window):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "deploy", "grafana", "dashboards.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        tt.fail(r.stdout + r.stderr)
    dashboards = load_dashboards()
    expected = {f"{n}.json" for n in ("overview", "cost", "cascade", "cache", "latency", "engine", "budgets")}
    if set(dashboards) != expected:
        tt.fail(f"dashboards {sorted(dashboards)} != {sorted(expected)}")
    problems = []
    uids = [d.get("uid") for d in dashboards.values()]
    if len(set(uids)) != len(uids):
        problems.append(f"duplicate dashboard uids {uids}")
    for name, d in dashboards.items():
        problems += structural_problems(name, d)
    if problems:
        tt.fail("\n".join(problems))

    names, err = api(prom_url, "/api/v1/label/__name__/values", {})
    if names is None:
        tt.fail(f"metric names: {err}")
    exported = set(names)
    # The name check must see through `or vector(0)`, grouping lists and label names.
    probe = metric_names('(sum by (le, route) (rate(frugal_no_such_seconds_bucket{route=~"$route"}[5m])) '
                         'or vector(0)) / on (route) group_left () frugal_requests_in_flight > bool 0')
    if probe != {"frugal_no_such_seconds_bucket", "frugal_requests_in_flight"}:
        tt.fail(f"metric_names is wrong: {probe}")
    now = time.time()
    range_window = f"{int(now - t_start) + 5}s"
    failures, checked, seen_values = [], 0, {}
    for name, d in dashboards.items():
        variables = [v for v in d["templating"]["list"] if v["type"] == "query"]
        values = {}
        for v in variables:
            m = LABEL_VALUES.match(v["query"]["query"])
            if not m:
                failures.append(f"{name}: variable {v['name']}: unsupported query {v['query']['query']!r}")
                continue
            found, err = api(prom_url, f"/api/v1/label/{m.group(2)}/values", {"match[]": m.group(1)})
            if not found:
                failures.append(f"{name}: variable {v['name']} ({v['query']['query']}) found no values {err or ''}")
            values[v["name"]] = found or []
            seen_values[f"{name}:{v['name']}"] = found or []
        all_values = {v["name"]: v.get("allValue", ".*") for v in variables}
        all_values["datasource"] = "prometheus"
        for p in d["panels"]:
            for t in p["targets"]:
                checked += 1
                expr = t["expr"]
                where = f"{name}: panel {p['title']!r} {t['refId']}"
                missing = sorted(metric_names(expr) - exported)
                if missing:
                    failures.append(f"{where}: names metrics frugal does not export: {missing}")
                    continue
                q = substitute(expr, all_values, rate_window, range_window)
                result, err = run_query(prom_url, q, t.get("instant", False), t_start, now)
                if err or not result:
                    failures.append(f"{where}: {'error ' + err if err else 'no series'}\n    {q}")
                    continue
                if not any(finite(result)):
                    failures.append(f"{where}: only NaN/Inf values\n    {q}")
                    continue
                # A filter by a variable must match some value it offers.
                for var in sorted({v for v in VAR_REF.findall(expr) if v in values}):
                    ok = False
                    for value in values[var]:
                        vals = dict(all_values, **{var: re.escape(value).replace("\\", "\\\\")})
                        res, _ = run_query(prom_url, substitute(expr, vals, rate_window, range_window),
                                           t.get("instant", False), t_start, now)
                        if res:
                            ok = True
                            break
                    if not ok:
                        failures.append(f"{where}: no series for any value of ${var} {values[var]}")
    return checked, failures, seen_values


def run_query(prom_url, q, instant, start, end):
    if instant:
        data, err = api(prom_url, "/api/v1/query", {"query": q, "time": f"{end:.3f}"})
    else:
        data, err = api(prom_url, "/api/v1/query_range",
                        {"query": q, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"})
    return (data["result"] if data else None), err


def finite(result):
    for series in result:
        points = series.get("values") or [series.get("value")]
        for _, v in points:
            if not math.isnan(float(v)) and not math.isinf(float(v)):
                yield True


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    frugal_bin, mock_bin, fixture = sys.argv[1:]
    began = time.monotonic()
    with stack(frugal_bin, mock_bin, fixture) as (url, prom_url):
        t_start = time.time()
        load = Load(url)
        load.run(seconds=5, complete=True)
        f = load.facts
        if load.missing():
            tt.fail(f"the load did not produce {load.missing()}: {f}")
        wait_scraped(prom_url, load.sent)
        r = query(prom_url, "sum(frugal_cache_followers_total)")
        if not r or float(r[0]["value"][1]) < 1:
            tt.fail(f"no single-flight follower was counted: {r}")
        checked, failures, seen = check_dashboards(prom_url, t_start, "10s")
        if failures:
            tt.fail(f"{len(failures)} of {checked} panel queries failed:\n" + "\n".join(failures))
        print(f"{checked} panel queries of 7 dashboards returned series from {load.sent} requests "
              f"({f}); variables: {json.dumps(seen)}; {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
