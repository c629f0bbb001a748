#!/usr/bin/env bash
# Installs every Debian and npm dependency frugal needs to build, test and benchmark.
# Idempotent: packages already present are skipped by apt/npm; safe to run repeatedly.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

debs=(
  # build
  build-essential cmake ninja-build pkg-config git ca-certificates
  # libraries (fixed choices)
  libboost1.81-dev libcurl4-openssl-dev libsimdjson-dev libyaml-cpp-dev librocksdb-dev doctest-dev
  # PCRE2: Unicode-aware regex for the BPE pre-tokenizer patterns
  libpcre2-dev
  # zlib: the PNG of `frugal calibrate --plot` (already pulled in by librocksdb-dev)
  zlib1g-dev
  # OpenSSL's libcrypto: SHA-256 of virtual keys and their random secrets
  libssl-dev
  # mimalloc: frugal's malloc (per-thread free lists that glibc's 7-entry tcache lacks
  # under many concurrent requests; docs/PERFORMANCE.md, "Allocator")
  libmimalloc-dev
  # fuzzing (tests/fuzz/run.sh): clang 14 and its runtime, which holds libFuzzer and
  # the sanitizers for clang; a new machine has neither
  clang libclang-rt-14-dev
  # real servers and load tools used by tests and benchmarks
  nginx-light wrk nodejs npm openssl
  # shared_state tests: three replicas sharing limits through a Redis on loopback
  redis-server
  # bench/soak.sh's client and its verdict (standard library only)
  python3
  # promtool and a Prometheus server for tests/integration/prometheus_test.py
  prometheus
  # tests/integration/deploy_test.py: compose and kustomize output parsed as YAML;
  # kubectl kustomize renders deploy/k8s
  python3-yaml kubernetes-client
)

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from outside Debian (e.g. nodesource); accept an existing one.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
# Likewise a kubectl from elsewhere (any kubectl with `kustomize` renders deploy/k8s).
if command -v kubectl >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == kubernetes-client ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Debian starts nginx on install; our tests start their own instances on loopback.
  if command -v systemctl >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true; fi
  "${sudo_cmd[@]}" service nginx stop >/dev/null 2>&1 || true
  # Likewise Prometheus: the test runs its own on loopback.
  if command -v systemctl >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
  "${sudo_cmd[@]}" service prometheus stop >/dev/null 2>&1 || true
else
  echo "install-deps: Debian packages present"
fi

# npm packages for the SDK end-to-end tests (versions pinned in tests/e2e/package.json).
if [[ ! -d $root/tests/e2e/node_modules/openai ]] || [[ $root/tests/e2e/package.json -nt $root/tests/e2e/node_modules ]]; then
  echo "install-deps: npm install in tests/e2e"
  (cd "$root/tests/e2e" && npm install --no-audit --no-fund --loglevel=error)
  touch "$root/tests/e2e/node_modules"
else
  echo "install-deps: npm packages present"
fi
