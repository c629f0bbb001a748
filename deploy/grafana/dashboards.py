#!/usr/bin/env python3
"""frugal's Grafana dashboards, written as code: one function per dashboard.

  python3 deploy/grafana/dashboards.py           writes deploy/grafana/dashboards/*.json
  python3 deploy/grafana/dashboards.py --check   exits 1 if a committed file differs

The JSON files are what Grafana provisions (deploy/grafana/provisioning/); this script
is their source, so a panel's query is written once. tests/integration/dashboards_test.py
runs every panel's query against a Prometheus that scraped frugal under load.
docs/operations.md says what each panel answers.

Standard library only.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dashboards")

DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
RANGE = "$__range"

# Label filters by template variable. The cost family carries model as the tier's model
# (a route's name for it); the GenAI families carry the upstream's model name.
COST = 'route=~"$route",model=~"$model",team=~"$team"'
ROUTE = 'route=~"$route"'
ANSWERS = 'route=~"$route",model=~"$model"'
GENAI = 'gen_ai_request_model=~"$model"'
ENGINE = 'model=~"$model"'
TEAM = 'team=~"$team"'


def var_datasource():
    return {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []}


def var_query(name, metric, label=None, label_text=None):
    q = f"label_values({metric}, {label or name})"
    return {"name": name, "label": label_text or name.capitalize(), "type": "query", "datasource": DS,
            "definition": q, "query": {"query": q, "refId": f"{name}-values"},
            "includeAll": True, "allValue": ".*", "multi": True, "refresh": 2, "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0,
            "regex": "", "options": []}


def target(expr, legend="", ref="A", instant=False):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": ref, "range": not instant,
         "instant": instant}
    return t


def panel(kind, title, description, exprs, unit=None, w=12, h=8, options=None, instant=False, extra=None):
    p = {"type": kind, "title": title, "description": description, "datasource": DS,
         "gridPos": {"h": h, "w": w, "x": 0, "y": 0},
         "targets": [target(e, l, chr(ord("A") + i), instant) for i, (e, l) in enumerate(exprs)],
         "fieldConfig": {"defaults": {}, "overrides": []}, "options": options or {}}
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                                 "showPoints": "never", "spanNulls": True}
        p["options"].setdefault("legend", {"displayMode": "list", "placement": "bottom", "showLegend": True})
        p["options"].setdefault("tooltip", {"mode": "multi", "sort": "desc"})
    if kind == "stat":
        p["options"].setdefault("reduceOptions", {"calcs": ["lastNotNull"], "fields": "", "values": False})
        p["options"].setdefault("colorMode", "value")
        p["options"].setdefault("graphMode", "none")
    if kind == "bargauge":
        p["options"].setdefault("reduceOptions", {"calcs": ["lastNotNull"], "fields": "", "values": False})
        p["options"].setdefault("orientation", "horizontal")
        p["options"].setdefault("displayMode", "gradient")
    if kind == "piechart":
        p["options"].setdefault("reduceOptions", {"calcs": ["lastNotNull"], "fields": "", "values": False})
        p["options"].setdefault("pieType", "donut")
        p["options"].setdefault("legend", {"displayMode": "table", "placement": "right", "showLegend": True,
                                           "values": ["value", "percent"]})
    p.update(extra or {})
    return p


def ts(title, description, exprs, unit=None, **kw):
    return panel("timeseries", title, description, exprs, unit, **kw)


def stat(title, description, expr, unit=None, w=4, h=4):
    return panel("stat", title, description, [(expr, title)], unit, w=w, h=h, instant=True)


def layout(panels):
    """Rows left to right, top to bottom, by each panel's width and height."""
    x = y = row_h = 0
    for i, p in enumerate(panels):
        g = p["gridPos"]
        if x + g["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        g["x"], g["y"] = x, y
        x += g["w"]
        row_h = max(row_h, g["h"])
        p["id"] = i + 1
    return panels


def dashboard(uid, title, description, variables, panels):
    return {
        "uid": uid, "title": title, "description": description, "tags": ["frugal"], "editable": True,
        "timezone": "browser", "schemaVersion": 39, "version": 1, "refresh": "30s", "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"}, "timepicker": {},
        "templating": {"list": [var_datasource()] + variables},
        "annotations": {"list": []}, "links": [{"type": "dashboards", "tags": ["frugal"], "asDropdown": True,
                                                 "title": "frugal", "includeVars": True, "keepTime": True}],
        "panels": layout(panels),
    }


def cost_vars():
    return [var_query("route", "frugal_cost_usd_total"), var_query("model", "frugal_cost_usd_total"),
            var_query("team", "frugal_cost_usd_total")]


def inc(metric, flt, window=RANGE, by=None):
    agg = f"sum by ({by}) " if by else "sum"
    return f"{agg}(increase({metric}{{{flt}}}[{window}]))"


def rate(metric, flt, by=None, window=RATE):
    agg = f"sum by ({by}) " if by else "sum"
    return f"{agg}(rate({metric}{{{flt}}}[{window}]))"


def difference(a, b):
    """a − b where either side may lack a series (a missing one counts as 0)."""
    return f"({a} or {b} * 0) - ({b} or {a} * 0)"


def quantiles(metric, by, flt, qs=(0.5, 0.95, 0.99)):
    return [(f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{flt}}}[{RATE}])))",
             f"p{round(q * 100)} {{{{{by}}}}}") for q in qs]


def overview():
    savings = difference(inc("frugal_savings_usd_total", COST), inc("frugal_overspend_usd_total", COST))
    baseline = inc("frugal_baseline_usd_total", COST)
    all_requests = 'sum(rate(frugal_requests_total[' + RATE + ']))'
    errors = 'sum(rate(frugal_requests_total{status=~"5.."}[' + RATE + ']))'
    return dashboard("frugal-overview", "frugal / Overview", "Spend, savings, traffic, errors and frugal's own overhead.",
                     cost_vars(), [
        stat("Spend", "USD charged by upstreams in the time range (every tier and verifier call tried).",
             inc("frugal_cost_usd_total", COST), "currencyUSD"),
        stat("Baseline", "What the routes' reference models would have charged for the same answers.",
             baseline, "currencyUSD"),
        stat("Savings", "Baseline minus spend in the time range (negative: the cascades cost more).",
             savings, "currencyUSD"),
        stat("Savings %", "Savings as a share of the baseline.", f"100 * ({savings}) / {baseline}", "percent"),
        stat("Requests", "Chat requests finished in the time range, every status.",
             "sum(increase(frugal_requests_total[" + RANGE + "]))", "short"),
        stat("Error rate", "Share of chat requests answered with a 5xx status in the time range.",
             f'(sum(increase(frugal_requests_total{{status=~"5.."}}[{RANGE}])) or vector(0)) / '
             f"sum(increase(frugal_requests_total[{RANGE}]))", "percentunit"),
        ts("Spend and baseline (USD per hour)", "Where the money goes, against what it would have cost.",
           [(f"3600 * {rate('frugal_cost_usd_total', COST)}", "spend"),
            (f"3600 * {rate('frugal_baseline_usd_total', COST)}", "baseline"),
            (f"3600 * ({difference(rate('frugal_savings_usd_total', COST), rate('frugal_overspend_usd_total', COST))})",
             "savings")], "currencyUSD"),
        ts("Requests by status", "Chat requests per second by the HTTP status the client got (499: it left first).",
           [("sum by (status) (rate(frugal_requests_total[" + RATE + "]))", "{{status}}")], "reqps"),
        ts("Error rate", "Share of chat requests answered with a 5xx status.",
           [(f"({errors} or {all_requests} * 0) / {all_requests}", "5xx share")], "percentunit"),
        ts("Overhead p50 / p99", "Time frugal spends on a request itself, upstream waits excluded.",
           [(f"histogram_quantile({q}, sum by (le) (rate(frugal_overhead_seconds_bucket[{RATE}])))", f"p{round(q * 100)}")
            for q in (0.5, 0.99)], "s"),
        ts("Requests in flight", "Requests being served right now, per frugal instance.",
           [("sum by (instance) (frugal_requests_in_flight)", "{{instance}}")], "short", w=24, h=6),
    ])


def cost():
    def by(label, title, what):
        return ts(f"Spend by {title} (USD per hour)", f"USD charged per hour, split by {what}.",
                  [(f"3600 * {rate('frugal_cost_usd_total', COST, label)}", "{{" + label + "}}")], "currencyUSD")
    save = difference(rate("frugal_savings_usd_total", COST, "route"), rate("frugal_overspend_usd_total", COST, "route"))
    return dashboard("frugal-cost", "frugal / Cost", "Where the money goes: by request type, route, model, team and key.",
                     cost_vars(), [
        by("request_type", "request type", "the policy's request type"),
        by("route", "route", "the policy's route (passthrough: no route)"),
        by("model", "model", "the model of each tier tried (a rejected tier's cost stays with its model)"),
        by("team", "team", "the team (x-frugal-team or the key's team; empty: none)"),
        by("key_id", "key", "API key id (the hash `frugal key-id` prints)"),
        ts("Savings by route (USD per hour)", "Baseline minus cost per route; below zero a route's cascade costs more "
           "than its reference model would.", [(f"3600 * ({save})", "{{route}}")], "currencyUSD"),
        panel("bargauge", "Spend in the time range by route", "Total USD per route over the dashboard's time range.",
              [(inc("frugal_cost_usd_total", COST, by="route"), "{{route}}")], "currencyUSD", instant=True),
        panel("bargauge", "Spend in the time range by team", "Total USD per team over the dashboard's time range.",
              [(inc("frugal_cost_usd_total", COST, by="team"), "{{team}}")], "currencyUSD", instant=True),
    ])


def cascade():
    answers = rate("frugal_tier_answers_total", ANSWERS, "route, tier")
    escal = rate("frugal_escalations_total", ROUTE, "route, tier")
    a_or_0 = f"({answers} or {escal} * 0)"
    e_or_0 = f"({escal} or {answers} * 0)"
    cost_per_answer = (f"sum by (route, model) (increase(frugal_cost_usd_total{{{ANSWERS}}}[{RANGE}])) "
                       f"/ on (route, model) group_right () "
                       f"(sum by (route, tier, model) (increase(frugal_tier_answers_total{{{ANSWERS}}}[{RANGE}])) > 0)")
    return dashboard("frugal-cascade", "frugal / Cascade", "How each cascade tier does: answers, escalations and why, "
                     "and what an accepted answer costs.",
                     [var_query("route", "frugal_tier_answers_total"), var_query("model", "frugal_tier_answers_total")], [
        ts("Acceptance rate per tier", "Of the requests that reached a tier, the share it answered "
           "(answers / (answers + escalations)).", [(f"{a_or_0} / ({a_or_0} + {e_or_0})", "{{route}} tier {{tier}}")],
           "percentunit"),
        ts("Answers per tier", "Answers the clients got, per route and tier (cache hits excluded).",
           [(answers, "{{route}} tier {{tier}}")], "reqps"),
        ts("Escalations per tier", "Requests a tier passed on to the next one (rejected by its rule, or failed).",
           [(escal, "{{route}} tier {{tier}}")], "reqps"),
        panel("piechart", "Escalation reasons", "The acceptance signal that rejected the tier (error: the tier failed).",
              [(inc("frugal_escalations_total", ROUTE, by="reason"), "{{reason}}")], "short", instant=True),
        panel("bargauge", "Cost per accepted answer per tier (USD)", "A tier's spend in the time range (its rejected "
              "attempts included) divided by the answers it gave.",
              [(cost_per_answer, "{{route}} tier {{tier}} ({{model}})")], "currencyUSD", w=24, instant=True),
    ])


def cache():
    hits = rate("frugal_cache_requests_total", ROUTE + ',result="hit"', "route")
    looked = rate("frugal_cache_requests_total", ROUTE + ',result=~"hit|miss"', "route")
    return dashboard("frugal-cache", "frugal / Cache", "The exact response cache: hit ratio, single flight, what it saved.",
                     [var_query("route", "frugal_cache_requests_total")], [
        ts("Hit ratio by route", "Hits among cacheable lookups (hit + miss; bypassed requests excluded).",
           [(f"({hits} or {looked} * 0) / {looked}", "{{route}}")], "percentunit"),
        ts("Lookups by result", "hit, miss, or bypass (not cacheable, or the cache is off for the route).",
           [(rate("frugal_cache_requests_total", ROUTE, "route, result"), "{{route}} {{result}}")], "reqps"),
        ts("Single-flight followers", "Hits served by following another request's live answer instead of a "
           "second upstream call.", [(rate("frugal_cache_followers_total", ROUTE, "route"), "{{route}}")], "reqps"),
        ts("Saved by the cache (USD per hour)", "The baseline of the answers served from the cache.",
           [("3600 * " + rate("frugal_savings_usd_total", ROUTE + ',model="(cache)"', "route"), "{{route}}")],
           "currencyUSD"),
        ts("Entries in memory", "Answers held in the memory tier (every stored answer is also on disk).",
           [("sum(frugal_cache_memory_entries)", "entries")], "short"),
        ts("Bytes in memory", "The memory tier's size, bounded by cache.memory.",
           [("sum(frugal_cache_memory_bytes)", "bytes")], "bytes"),
    ])


def latency():
    return dashboard("frugal-latency", "frugal / Latency", "Upstream time to first token, per output token and per "
                     "operation, and what went wrong upstream.",
                     [var_query("model", "gen_ai_client_operation_duration_seconds_count", "gen_ai_request_model")], [
        ts("Time to first token by model", "From dispatching a tier to its first answer byte.",
           quantiles("gen_ai_server_time_to_first_token_seconds", "gen_ai_request_model", GENAI), "s"),
        ts("Time per output token by model", "After the first token; for a non-streamed answer, the body's transfer.",
           quantiles("gen_ai_server_time_per_output_token_seconds", "gen_ai_request_model", GENAI), "s"),
        ts("Operation duration by model", "From dispatching a tier to its last byte, retries and fallbacks included.",
           quantiles("gen_ai_client_operation_duration_seconds", "gen_ai_request_model", GENAI), "s"),
        ts("Upstream errors by provider", "Upstream HTTP attempts that failed: http_<status>, or error (no usable answer).",
           [(rate("frugal_upstream_requests_total", 'outcome!="ok"', "provider, outcome"), "{{provider}} {{outcome}}")],
           "reqps"),
        ts("Retries and fallbacks by provider", "Attempts after the first: the same target again (retry) or the next "
           "one (fallback).", [(rate("frugal_upstream_requests_total", 'attempt!="first"', "provider, attempt"),
                                "{{provider}} {{attempt}}")], "reqps"),
        ts("Upstream attempts by provider", "Every upstream HTTP attempt, by outcome.",
           [(rate("frugal_upstream_requests_total", "", "provider, outcome"), "{{provider}} {{outcome}}")], "reqps"),
    ])


def engine():
    return dashboard("frugal-engine", "frugal / Engine", "The in-process inference engine (kind: engine providers).",
                     [var_query("model", "frugal_engine_decode_tokens_total")], [
        ts("Tokens per second", "Generated (decode), prompt tokens run through the model (prefill), and prompt "
           "tokens attached from cached KV blocks instead (reused).",
           [(rate("frugal_engine_decode_tokens_total", ENGINE, "model"), "decode {{model}}"),
            (rate("frugal_engine_prefill_tokens_total", ENGINE, "model"), "prefill {{model}}"),
            (rate("frugal_engine_prefix_tokens_reused_total", ENGINE, "model"), "reused {{model}}")], "short"),
        ts("KV cache use", "KV blocks held by sequences, of the pool.",
           [(f"sum by (model) (frugal_engine_kv_blocks_used{{{ENGINE}}}) / "
             f"sum by (model) (frugal_engine_kv_blocks_total{{{ENGINE}}})", "{{model}}")], "percentunit"),
        ts("Batch and queue", "Sequences in the running batch and requests waiting for it.",
           [(f"sum by (model) (frugal_engine_running_requests{{{ENGINE}}})", "running {{model}}"),
            (f"sum by (model) (frugal_engine_waiting_requests{{{ENGINE}}})", "waiting {{model}}")], "short"),
        ts("Speculative acceptance", "Drafted tokens the target model accepted (needs a draft_model).",
           [(f"{rate('frugal_engine_speculative_accepted_tokens_total', ENGINE, 'model')} / "
             f"{rate('frugal_engine_speculative_drafted_tokens_total', ENGINE, 'model')}", "{{model}}")], "percentunit"),
    ])


def budgets():
    return dashboard("frugal-budgets", "frugal / Budgets", "Spend in each budget's window against its soft and hard limits.",
                     [{**var_query("budget", "frugal_budget_spend_usd"), "label": "Budget"},
                      var_query("team", "frugal_cost_usd_total")], [
        ts("Spend against limits", "Spend in the current window (resets when the window ends) and the limits.",
           [('sum by (budget) (frugal_budget_spend_usd{budget=~"$budget"})', "{{budget}} spend"),
            ('sum by (budget, limit) (frugal_budget_limit_usd{budget=~"$budget"})', "{{budget}} {{limit}} limit")],
           "currencyUSD", w=24),
        panel("bargauge", "Share of the soft limit", "Over 100%: requests are served with x-frugal-budget-warning.",
              [('frugal_budget_spend_usd{budget=~"$budget"} / on (budget) '
                'frugal_budget_limit_usd{budget=~"$budget",limit="soft"}', "{{budget}}")], "percentunit",
              instant=True, extra={"fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1}, "overrides": []}}),
        panel("bargauge", "Share of the hard limit", "At 100%: requests in the budget's scope are refused with 429.",
              [('frugal_budget_spend_usd{budget=~"$budget"} / on (budget) '
                'frugal_budget_limit_usd{budget=~"$budget",limit="hard"}', "{{budget}}")], "percentunit",
              instant=True, extra={"fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1}, "overrides": []}}),
        panel("bargauge", "Window ends in", "Time until each budget's window ends and its spend starts again at zero.",
              [('max by (budget) (frugal_budget_window_end_seconds{budget=~"$budget"}) - time()', "{{budget}}")], "s",
              instant=True),
        ts("Spend rate by team (USD per hour)", "What team budgets are spent on.",
           [(f"3600 * {rate('frugal_cost_usd_total', TEAM, 'team')}", "{{team}}")], "currencyUSD"),
    ])


DASHBOARDS = {"overview": overview, "cost": cost, "cascade": cascade, "cache": cache, "latency": latency,
              "engine": engine, "budgets": budgets}


def render_all():
    return {f"{name}.json": json.dumps(fn(), indent=2, sort_keys=False) + "\n" for name, fn in DASHBOARDS.items()}


def main():
    files = render_all()
    if sys.argv[1:] == ["--check"]:
        stale = []
        for name, text in files.items():
            path = os.path.join(OUT, name)
            if not os.path.exists(path) or open(path).read() != text:
                stale.append(name)
        extra = sorted(set(f for f in os.listdir(OUT) if f.endswith(".json")) - set(files))
        if stale or extra:
            print(f"dashboards out of date: {stale} {extra}; run python3 deploy/grafana/dashboards.py")
            return 1
        return 0
    os.makedirs(OUT, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(OUT, name), "w") as f:
            f.write(text)
    print(f"wrote {len(files)} dashboards to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
