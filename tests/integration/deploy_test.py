#!/usr/bin/env python3
"""The deployment kit checked offline (no container runtime, no cluster).

  deploy_test.py compose FRUGAL   deploy/compose: compose.yaml parsed and checked (services,
                                  ports, mounts, named volumes, healthchecks, dependencies),
                                  `promtool check config` on the Prometheus config, the
                                  collector's pipelines, Grafana's provisioning,
                                  `frugal config check` on the mounted config and policy,
                                  and the admin listener: Prometheus scrapes frugal's
                                  admin.listen with its token and an allowed Host, and the
                                  admin port is not published beyond the host's loopback
  deploy_test.py k8s FRUGAL       deploy/k8s: `kubectl kustomize` renders the base and the
                                  redis overlay; every object validated against the Kubernetes
                                  schemas (tests/e2e/k8s_validate.mjs: npm kubernetes-models,
                                  the ServiceMonitor through @kubernetes-models/prometheus-
                                  operator); probes, selectors, volumes and the rendered
                                  config checked (the admin listener on the container and
                                  Service port `admin`, which the ServiceMonitor scrapes
                                  with the token; probes on `http`); `frugal config check`
                                  on each rendered ConfigMap

Needs python3-yaml; exit 77 (skip) when promtool, kubectl, node or the npm packages are
missing. Every check names the file and what was expected.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed (apt-get install python3-yaml)")
    sys.exit(77)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
COMPOSE = os.path.join(ROOT, "deploy", "compose")
K8S = os.path.join(ROOT, "deploy", "k8s")
E2E = os.path.join(ROOT, "tests", "e2e")
SKIP = 77

problems = []


def check(ok, what):
    if not ok:
        problems.append(what)
    return ok


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def finish(summary):
    if problems:
        print("FAIL:\n  " + "\n  ".join(problems))
        sys.exit(1)
    print(summary)
    return 0


def config_check(frugal, path, env=None):
    r = subprocess.run([frugal, "config", "check", path], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, FRUGAL_ADMIN_TOKEN="test-token", **(env or {})))
    return r.returncode, (r.stdout + r.stderr).strip()


# --- compose ---

def published(service):
    """(host address or "", host port, container port) of each published port."""
    out = set()
    for p in service.get("ports", []):
        parts = str(p).split(":")
        addr = parts[0] if len(parts) == 3 else ""
        out.add((addr, int(parts[-2]), int(parts[-1])))
    return out


def port_pairs(service):
    return {(h, c) for _, h, c in published(service)}


def mounts(service):
    out = {}
    for v in service.get("volumes", []):
        parts = v.split(":")
        out[parts[1]] = (parts[0], parts[2:] == ["ro"])
    return out


def run_compose(frugal):
    if not shutil.which("promtool"):
        skip("promtool is not installed (Debian's prometheus package)")
    path = os.path.join(COMPOSE, "compose.yaml")
    doc = yaml.safe_load(open(path))
    services = doc.get("services", {})
    want = {"frugal": (8080, 8080), "otel-collector": (4318, 4318), "prometheus": (9090, 9090), "grafana": (3000, 3000)}
    check(set(services) == set(want), f"compose.yaml: services {sorted(services)} != {sorted(want)}")
    for name, pair in want.items():
        s = services.get(name, {})
        check(pair in port_pairs(s), f"compose.yaml: {name} does not publish {pair[0]}:{pair[1]}")
        check(bool(s.get("image")), f"compose.yaml: {name} has no image")
    named = set((doc.get("volumes") or {}).keys())
    for name, s in services.items():
        for target, (source, _) in mounts(s).items():
            if source.startswith(".") or source.startswith("/"):
                check(os.path.exists(os.path.join(COMPOSE, source)),
                      f"compose.yaml: {name} mounts {source}, which does not exist")
            else:
                check(source in named, f"compose.yaml: {name} mounts volume {source}, not declared under volumes")
        for dep, cond in (s.get("depends_on") or {}).items():
            check(dep in services, f"compose.yaml: {name} depends on unknown {dep}")
            if cond.get("condition") == "service_healthy":
                check("healthcheck" in services.get(dep, {}),
                      f"compose.yaml: {name} waits for {dep} to be healthy, which has no healthcheck")
    for name in ("frugal", "prometheus", "grafana"):
        hc = services.get(name, {}).get("healthcheck", {})
        test = hc.get("test", [])
        check(isinstance(test, list) and test[:1] == ["CMD"] and any("http://127.0.0.1:" in t for t in test),
              f"compose.yaml: {name} has no CMD healthcheck against its own HTTP port: {test}")
        check(all(k in hc for k in ("interval", "timeout", "retries")), f"compose.yaml: {name} healthcheck incomplete")

    # frugal: the config directory (not single files: an edit replaces the inode, which a file
    # bind mount would not follow) and the data volume.
    f = services.get("frugal", {})
    m = mounts(f)
    check(m.get("/etc/frugal") == ("./frugal", True), f"compose.yaml: frugal must mount ./frugal at /etc/frugal:ro, got {m}")
    check(m.get("/var/lib/frugal", ("",))[0] in named, "compose.yaml: frugal's /var/lib/frugal is not a named volume")
    check(f.get("command", [])[-1:] == ["/etc/frugal/frugal.yaml"], f"compose.yaml: frugal command {f.get('command')}")
    check("/healthz" in " ".join(f.get("healthcheck", {}).get("test", [])), "compose.yaml: frugal's healthcheck is not /healthz")
    env = f.get("environment", {})
    check(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://otel-collector:4318",
          f"compose.yaml: frugal's OTLP endpoint {env.get('OTEL_EXPORTER_OTLP_ENDPOINT')}")

    cfg_path = os.path.join(COMPOSE, "frugal", "frugal.yaml")
    cfg = yaml.safe_load(open(cfg_path))
    check(cfg.get("data_dir") == "/var/lib/frugal", f"frugal.yaml: data_dir {cfg.get('data_dir')} is not the volume")
    check(cfg.get("server", {}).get("listen") == ["0.0.0.0:8080"], "frugal.yaml: must listen on 0.0.0.0:8080")
    check(cfg.get("telemetry", {}).get("metrics", {}).get("enabled") is True, "frugal.yaml: metrics are off")
    # frugal listens on 0.0.0.0: without keys it starts only with auth written out
    # (required: keys are created through the admin listener; off: anyone may spend).
    check(cfg.get("auth") in ("required", "off"), f"frugal.yaml: auth {cfg.get('auth')!r}: on 0.0.0.0 with no "
          "virtual keys frugal refuses to start unless auth is written out")
    admin = cfg.get("admin") or {}
    check(admin.get("listen") == "0.0.0.0:8081",
          f"frugal.yaml: admin.listen {admin.get('listen')!r}: Prometheus in another container cannot reach it")
    check(admin.get("token") == "${FRUGAL_ADMIN_TOKEN}" and "admin_token" not in cfg,
          "frugal.yaml: admin.token must be ${FRUGAL_ADMIN_TOKEN} (the compose secret Prometheus sends)")
    for addr, host, container in published(f):
        check(container != 8081 or addr in ("127.0.0.1", "[::1]"),
              f"compose.yaml: frugal publishes its admin port beyond the host's loopback: {addr}:{host}:{container}")
        check(container != 8081 or host == 8081, "compose.yaml: the admin port must be published on the same port "
              "(its Host check compares the port)")
    rc, out = config_check(frugal, cfg_path)
    check(rc == 0, f"frugal config check {cfg_path}: {out}")

    # Prometheus: promtool on a copy whose token file exists (compose provides it as a secret).
    prom_path = os.path.join(COMPOSE, "prometheus", "prometheus.yml")
    prom = yaml.safe_load(open(prom_path))
    secret = services.get("prometheus", {}).get("secrets", [{}])[0]
    token_file = prom["scrape_configs"][0].get("authorization", {}).get("credentials_file", "")
    check(token_file == f"/run/secrets/{secret.get('target')}",
          f"prometheus.yml: credentials_file {token_file} is not the compose secret {secret}")
    check(secret.get("source") in (doc.get("secrets") or {}), "compose.yaml: prometheus's secret is not declared")
    targets = {j["job_name"]: j["static_configs"][0]["targets"] for j in prom["scrape_configs"]}
    check(targets.get("frugal") == ["frugal:8081"],
          f"prometheus.yml: frugal target {targets.get('frugal')} is not the admin listener frugal:8081")
    # Prometheus sends Host: frugal:8081, a name: the admin listener answers 403 unless it is allowed.
    check(any(h in (admin.get("allowed_hosts") or []) for h in ("frugal", "frugal:8081")),
          f"frugal.yaml: admin.allowed_hosts {admin.get('allowed_hosts')} refuses Prometheus's Host frugal:8081")
    check(targets.get("otel-collector") == ["otel-collector:8889"], f"prometheus.yml: collector target {targets}")
    with tempfile.TemporaryDirectory() as tmp:
        token = os.path.join(tmp, "token")
        with open(token, "w") as fh:
            fh.write("test-token\n")
        copy = os.path.join(tmp, "prometheus.yml")
        with open(copy, "w") as fh:
            fh.write(open(prom_path).read().replace(token_file, token))
        r = subprocess.run(["promtool", "check", "config", copy], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"promtool check config {prom_path}: {r.stdout}{r.stderr}")

    # The collector: OTLP/HTTP in on the published port, Prometheus exporter where Prometheus scrapes.
    col = yaml.safe_load(open(os.path.join(COMPOSE, "otel-collector", "config.yaml")))
    check(col["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318"), "collector: OTLP/HTTP not on 4318")
    check(col["exporters"]["prometheus"]["endpoint"].endswith(":8889"), "collector: Prometheus exporter not on 8889")
    check(col["exporters"]["prometheus"].get("namespace") == "otel",
          "collector: without namespace: otel its frugal_* series would double the dashboards' sums")
    for pname, p in col["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for c in p.get(kind, []):
                check(c in col.get(kind, {}), f"collector: pipeline {pname} names undefined {kind[:-1]} {c}")
    check("prometheus" in col["service"]["pipelines"]["metrics"]["exporters"], "collector: metrics not exported")
    check(col["service"]["pipelines"]["metrics"]["receivers"] == ["otlp"], "collector: metrics not from OTLP")

    # Grafana: datasource -> the prometheus service; dashboards provider path = the mount.
    g = mounts(services.get("grafana", {}))
    ds = yaml.safe_load(open(os.path.join(ROOT, "deploy", "grafana", "provisioning", "datasources", "prometheus.yaml")))
    check(ds["datasources"][0]["url"] == "http://prometheus:9090", f"grafana datasource url {ds['datasources'][0]['url']}")
    check(ds["datasources"][0]["type"] == "prometheus", "grafana datasource is not prometheus")
    prov = yaml.safe_load(open(os.path.join(ROOT, "deploy", "grafana", "provisioning", "dashboards", "frugal.yaml")))
    dash_path = prov["providers"][0]["options"]["path"]
    check(g.get(dash_path, ("",))[0] == "../grafana/dashboards", f"grafana: {dash_path} is not the dashboards mount {g}")
    for sub in ("datasources", "dashboards"):
        check(g.get(f"/etc/grafana/provisioning/{sub}", ("",))[0] == f"../grafana/provisioning/{sub}",
              f"grafana: provisioning/{sub} not mounted")
    home = services.get("grafana", {}).get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
    check(os.path.exists(os.path.join(ROOT, "deploy", "grafana", "dashboards", os.path.basename(home))),
          f"grafana: home dashboard {home} does not exist")
    return finish(f"compose: {len(services)} services, ports, mounts, healthchecks, promtool, collector, "
                  f"grafana provisioning and frugal config check all agree")


# --- kubernetes ---

def kustomize(kubectl, path):
    r = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        problems.append(f"kubectl kustomize {path}: {r.stderr}")
        return []
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def validate(objects, where):
    r = subprocess.run(["node", os.path.join(E2E, "k8s_validate.mjs")], input=json.dumps(objects), text=True,
                       capture_output=True, timeout=120, cwd=E2E)
    check(r.returncode == 0, f"{where}: schema validation:\n{r.stdout}{r.stderr}")
    return r.stdout.count("\nok ") + r.stdout.startswith("ok ")


def by_kind(objects):
    out = {}
    for o in objects:
        out.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    return out


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_frugal_objects(objs, where, frugal, tmp):
    k = by_kind(objs)
    dep = k.get("Deployment", {}).get("frugal")
    if not check(dep is not None, f"{where}: no Deployment frugal"):
        return None
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    c = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("http") == 8080, f"{where}: container port http is not 8080: {ports}")
    check(ports.get("admin") == 8081, f"{where}: container port admin is not 8081: {ports}")
    check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{where}: readiness is not /readyz")
    check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{where}: liveness is not /healthz")
    for probe in ("readinessProbe", "livenessProbe"):
        check(c[probe]["httpGet"].get("port") in ("http", 8080), f"{where}: {probe} port")
    sc = {**pod["spec"].get("securityContext", {}), **c.get("securityContext", {})}
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, f"{where}: not run as non-root")
    check(matches(dep["spec"]["selector"]["matchLabels"], labels), f"{where}: Deployment selector misses its pods")
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts_ = {m["name"]: m for m in c["volumeMounts"]}
    cfg_vol = vols.get(mounts_.get("config", {}).get("name", ""), {})
    cm_name = cfg_vol.get("configMap", {}).get("name")
    cm = k.get("ConfigMap", {}).get(cm_name)
    check(cm is not None, f"{where}: the config volume names ConfigMap {cm_name}, which is not rendered")
    check(mounts_.get("config", {}).get("mountPath") == "/etc/frugal" and "subPath" not in mounts_.get("config", {}),
          f"{where}: the ConfigMap must be mounted at /etc/frugal without subPath (a subPath never updates)")
    check(c["args"][-1] == "/etc/frugal/frugal.yaml", f"{where}: args {c['args']}")
    check(mounts_.get("data", {}).get("mountPath") == "/var/lib/frugal", f"{where}: no data volume at /var/lib/frugal")
    svc = k.get("Service", {}).get("frugal")
    if check(svc is not None, f"{where}: no Service frugal"):
        check(matches(svc["spec"]["selector"], labels), f"{where}: Service selector misses the pods")
        check(any(p.get("targetPort") == "http" for p in svc["spec"]["ports"]), f"{where}: Service targetPort")
        check({p["name"]: p.get("targetPort") for p in svc["spec"]["ports"]}.get("admin") == "admin",
              f"{where}: the Service has no port admin -> the container's admin port")
    hpa = k.get("HorizontalPodAutoscaler", {}).get("frugal")
    if check(hpa is not None, f"{where}: no HPA"):
        ref = hpa["spec"]["scaleTargetRef"]
        check((ref["kind"], ref["name"]) == ("Deployment", "frugal"), f"{where}: HPA target {ref}")
        check(hpa["spec"]["minReplicas"] <= dep["spec"]["replicas"] <= hpa["spec"]["maxReplicas"],
              f"{where}: replicas outside the HPA's range")
    pdb = k.get("PodDisruptionBudget", {}).get("frugal")
    if check(pdb is not None, f"{where}: no PodDisruptionBudget"):
        check(matches(pdb["spec"]["selector"]["matchLabels"], labels), f"{where}: PDB selector misses the pods")
        check(("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"]),
              f"{where}: PDB needs exactly one of minAvailable and maxUnavailable")
        if "minAvailable" in pdb["spec"]:
            check(pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], f"{where}: the PDB would block every drain")
    sm = k.get("ServiceMonitor", {}).get("frugal")
    if check(sm is not None, f"{where}: no ServiceMonitor"):
        check(matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})),
              f"{where}: ServiceMonitor selector misses the Service")
        ep = sm["spec"]["endpoints"][0]
        check(ep.get("port") in {p["name"] for p in svc["spec"]["ports"]} and ep.get("path") == "/metrics",
              f"{where}: ServiceMonitor endpoint {ep}")
        check(ep.get("port") == "admin", f"{where}: /metrics is served only on the admin listener, "
              f"the ServiceMonitor scrapes port {ep.get('port')}")
        check(ep.get("authorization", {}).get("credentials", {}).get("key") == "admin-token",
              f"{where}: ServiceMonitor does not send the admin token")
    if cm:
        check(set(cm["data"]) == {"frugal.yaml", "policy.yaml"}, f"{where}: ConfigMap keys {sorted(cm['data'])}")
        d = os.path.join(tmp, where.replace("/", "_"))
        os.makedirs(d)
        for name, text in cm["data"].items():
            with open(os.path.join(d, name), "w") as fh:
                fh.write(text)
        cfg = yaml.safe_load(cm["data"]["frugal.yaml"])
        check(cfg.get("data_dir") == "/var/lib/frugal", f"{where}: data_dir {cfg.get('data_dir')}")
        check(cfg.get("server", {}).get("listen") == ["0.0.0.0:8080"], f"{where}: frugal must listen on 0.0.0.0:8080")
        check(cfg.get("telemetry", {}).get("metrics", {}).get("enabled") is True, f"{where}: metrics are off")
        # On 0.0.0.0 with no virtual keys frugal refuses to start unless auth is written out.
        check(cfg.get("auth") in ("required", "off"), f"{where}: auth {cfg.get('auth')!r} is not written out")
        admin = cfg.get("admin") or {}
        check(admin.get("listen") == f"0.0.0.0:{ports.get('admin')}",
              f"{where}: admin.listen {admin.get('listen')!r} is not the container port admin on every interface")
        check(admin.get("token") == "${FRUGAL_ADMIN_TOKEN}" and "admin_token" not in cfg,
              f"{where}: admin.token must be ${{FRUGAL_ADMIN_TOKEN}} (the Secret's admin-token the ServiceMonitor sends)")
        env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}) for e in c.get("env", [])}
        check(env.get("FRUGAL_ADMIN_TOKEN", {}).get("key") == "admin-token",
              f"{where}: FRUGAL_ADMIN_TOKEN is not the Secret's admin-token")
        rc, out = config_check(frugal, os.path.join(d, "frugal.yaml"))
        check(rc == 0, f"{where}: frugal config check: {out}")
    return k, dep, vols, cfg if cm else {}


def run_k8s(frugal):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        skip("kubectl is not installed (Debian's kubernetes-client)")
    if not shutil.which("node") or not os.path.isdir(os.path.join(E2E, "node_modules", "kubernetes-models")):
        skip("node or tests/e2e/node_modules/kubernetes-models is missing (bash deploy/install-deps.sh)")
    # The validator must refuse what the API server would: a self-check with broken objects.
    bad = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"replicas": "two", "selector": {}, "template": {"spec": {"containers": [{"name": "a"}]}}}},
           {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "y"},
            "spec": {"endpoints": [{"port": 8080}]}}]
    r = subprocess.run(["node", os.path.join(E2E, "k8s_validate.mjs")], input=json.dumps(bad), text=True,
                       capture_output=True, timeout=120, cwd=E2E)
    check(r.returncode == 1 and r.stdout.count("ERROR") == 2, f"the validator accepted broken objects: {r.stdout}{r.stderr}")

    validated = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = kustomize(kubectl, os.path.join(K8S, "base"))
        validated += validate(base, "base")
        res = check_frugal_objects(base, "base", frugal, tmp)
        if res:
            k, dep, vols, _ = res
            claim = vols.get("data", {}).get("persistentVolumeClaim", {}).get("claimName")
            check(claim in k.get("PersistentVolumeClaim", {}), f"base: the data volume's claim {claim} is not rendered")
            check(dep["spec"]["strategy"]["type"] == "Recreate",
                  "base: a ReadWriteOnce data volume needs the Recreate strategy (RocksDB locks it)")
            check(k["HorizontalPodAutoscaler"]["frugal"]["spec"]["maxReplicas"] == 1,
                  "base: without shared state budgets are per process: one replica")

        overlay = kustomize(kubectl, os.path.join(K8S, "overlays", "redis"))
        validated += validate(overlay, "overlays/redis")
        res = check_frugal_objects(overlay, "overlays/redis", frugal, tmp)
        if res:
            k, dep, vols, cfg = res
            check(dep["spec"]["replicas"] >= 2, f"overlays/redis: {dep['spec']['replicas']} replicas")
            check("ephemeral" in vols.get("data", {}) and "persistentVolumeClaim" not in vols.get("data", {}),
                  f"overlays/redis: the data volume must be per pod: {vols.get('data')}")
            check("PersistentVolumeClaim" not in k, "overlays/redis: the base's shared claim is still rendered")
            url = (cfg.get("shared_state") or {}).get("url", "")
            m = re.fullmatch(r"redis://([\w.-]+):(\d+)", url)
            redis_svc = k.get("Service", {}).get(m.group(1) if m else "")
            check(m is not None and redis_svc is not None, f"overlays/redis: shared_state {url!r} names no rendered Service")
            if m and redis_svc:
                check(int(m.group(2)) in {p["port"] for p in redis_svc["spec"]["ports"]},
                      f"overlays/redis: Redis Service has no port {m.group(2)}")
                rdep = k.get("Deployment", {}).get("frugal-redis")
                check(rdep is not None and matches(redis_svc["spec"]["selector"], rdep["spec"]["template"]["metadata"]["labels"]),
                      "overlays/redis: the Redis Service selects no Redis pod")
            check(k["HorizontalPodAutoscaler"]["frugal"]["spec"]["maxReplicas"] > dep["spec"]["replicas"],
                  "overlays/redis: the HPA cannot scale out")
    return finish(f"k8s: base ({len(base)} objects) and overlays/redis ({len(overlay)} objects) render with "
                  f"{kubectl}; {validated} objects valid against the schemas; probes, selectors, volumes, config agree")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("compose", "k8s"):
        print(__doc__)
        return 2
    return run_compose(sys.argv[2]) if sys.argv[1] == "compose" else run_k8s(sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
