#!/usr/bin/env python3
"""Draws the main Grafana panels as PNGs from real data, for docs/operations.md.

  python3 deploy/grafana/render.py [--build build/dev] [--seconds 60] [--out docs/img]

Runs the load of tests/integration/dashboards_test.py (mock upstream, frugal with the
engine fixture, Debian's prometheus scraping its admin listener's /metrics every second) for --seconds, then runs each
chosen panel's query (deploy/grafana/dashboards/*.json, variables set to All) over the
load's time range through Prometheus's HTTP API and draws it with matplotlib.

Needs Debian's python3-matplotlib (apt-get install python3-matplotlib) and a built tree
(frugal and mock_upstream under --build). Not part of the test suite.
"""
import argparse
import datetime
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import dashboards_test as dt  # noqa: E402

# (dashboard file, panel title, picture name[, "log": a logarithmic y axis])
PANELS = [
    ("overview.json", "Spend and baseline (USD per hour)", "overview-spend"),
    ("overview.json", "Requests by status", "overview-requests"),
    ("overview.json", "Overhead p50 / p99", "overview-overhead"),
    ("cost.json", "Spend by route (USD per hour)", "cost-by-route"),
    ("cost.json", "Spend by team (USD per hour)", "cost-by-team"),
    ("cascade.json", "Acceptance rate per tier", "cascade-acceptance"),
    ("cascade.json", "Escalation reasons", "cascade-reasons"),
    ("cascade.json", "Cost per accepted answer per tier (USD)", "cascade-cost-per-answer"),
    ("cache.json", "Hit ratio by route", "cache-hit-ratio"),
    ("latency.json", "Time to first token by model", "latency-ttft"),
    ("latency.json", "Retries and fallbacks by provider", "latency-retries"),
    ("engine.json", "Tokens per second", "engine-tokens"),
    ("engine.json", "Speculative acceptance", "engine-speculative"),
    ("budgets.json", "Spend against limits", "budgets-spend", "log"),
]


def legend(fmt, labels):
    if not fmt or fmt == "__auto":
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip()


def draw(plt, panel, series, instant, path, t_start, log=False):
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    ax.set_title(panel["title"], fontsize=11, loc="left")
    if instant:
        names = [n for n, _ in series]
        vals = [v for _, v in series]
        ax.barh(names, vals, color="#3274d9")
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
    else:
        for name, points in series:
            ax.plot([p[0] - t_start for p in points], [p[1] for p in points], label=name, linewidth=1.2)
        ax.set_xlabel("seconds into the load", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7, loc="upper left", ncol=2, frameon=False)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel({"currencyUSD": "USD", "percentunit": "share", "s": "seconds", "reqps": "requests/s"}.get(unit, ""),
                  fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "dev"))
    ap.add_argument("--fixture", default=os.path.join(ROOT, "..", "shared", "fixtures", "llama-2-tiny-random.gguf"))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "img"))
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("render.py needs matplotlib: apt-get install python3-matplotlib")
    frugal_bin = os.path.join(a.build, "gateway", "frugal")
    mock_bin = os.path.join(a.build, "bench", "mock_upstream")
    dashboards = dt.load_dashboards()
    os.makedirs(a.out, exist_ok=True)
    with dt.stack(frugal_bin, mock_bin, a.fixture) as (url, prom_url):
        t_start = time.time()
        load = dt.Load(url)
        load.run(seconds=a.seconds)
        dt.wait_scraped(prom_url, load.sent)
        t_end = time.time() + 2
        rng = f"{int(t_end - t_start) + 5}s"
        for file, title, name, *how in PANELS:
            panel = next(p for p in dashboards[file]["panels"] if p["title"] == title)
            values = {v["name"]: v.get("allValue", ".*") for v in dashboards[file]["templating"]["list"]}
            series = []
            instant = False
            for t in panel["targets"]:
                instant = t.get("instant", False)
                q = dt.substitute(t["expr"], values, "15s", rng)
                result, err = dt.run_query(prom_url, q, instant, t_start, t_end)
                if err or result is None:
                    sys.exit(f"{file} {title}: {err}\n{q}")
                for s in result:
                    label = legend(t.get("legendFormat"), s["metric"])
                    if instant:
                        series.append((label, float(s["value"][1])))
                    else:
                        series.append((label, [(float(x), float(v)) for x, v in s["values"]]))
            path = os.path.join(a.out, name + ".png")
            draw(plt, panel, series, instant, path, t_start, log="log" in how)
            print(f"{path}: {len(series)} series")
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        print(f"{load.sent} requests in {a.seconds:.0f} s ({load.facts}), drawn {when}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
