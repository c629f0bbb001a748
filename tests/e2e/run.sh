#!/usr/bin/env bash
# Starts the mock upstream and frugal (built-in default config, OPENAI_BASE_URL and
# ANTHROPIC_BASE_URL pointed at the mock, which speaks both protocols and checks the
# Anthropic key) on loopback, then runs the SDK end-to-end tests with node's test runner.
# The tests get FRUGAL_URL (…/v1), FRUGAL_ROOT (no /v1, what ANTHROPIC_BASE_URL takes),
# FRUGAL_ADMIN (the admin listener),
# MOCK_URL and FRUGAL_LOG (frugal's log, at debug level, for the usage hand-off lines).
# Usage: tests/e2e/run.sh FRUGAL_BIN MOCK_BIN [TEST_FILE...]
# FRUGAL_SERVE_ARGS (env, whitespace-separated) adds arguments to `frugal serve`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
frugal_bin=$1 mock_bin=$2
shift 2
tests=("$@")
((${#tests[@]})) || tests=("$here"/*.test.mjs)

if [[ ! -d $here/node_modules/openai || ! -d $here/node_modules/@anthropic-ai/sdk ]]; then
  echo "e2e: node_modules missing; run deploy/install-deps.sh first" >&2
  exit 1
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_for() {  # FILE REGEX
  for _ in $(seq 1 1200); do  # up to 60 s: a loaded machine, a sanitizer build
    if grep -Eo "$2" "$1" >/dev/null 2>&1; then grep -Eo "$2" "$1" | head -1; return 0; fi
    sleep 0.05
  done
  echo "e2e: timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; return 1
}

"$mock_bin" --port 0 --require-anthropic-key sk-ant-upstream >"$work/mock.log" 2>&1 & pids+=($!)
mock_port=$(wait_for "$work/mock.log" 'PORT=[0-9]+' | cut -d= -f2)
OPENAI_BASE_URL="http://127.0.0.1:$mock_port/v1" OPENAI_API_KEY=sk-upstream \
ANTHROPIC_BASE_URL="http://127.0.0.1:$mock_port" ANTHROPIC_API_KEY=sk-ant-upstream \
  "$frugal_bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" --log-level debug ${FRUGAL_SERVE_ARGS:-} >"$work/frugal.log" 2>&1 & pids+=($!)
port=$(wait_for "$work/frugal.log" 'listening on 127\.0\.0\.1:[0-9]+' | sed 's/.*://')
admin_port=$(wait_for "$work/frugal.log" 'admin API .* on 127\.0\.0\.1:[0-9]+' | sed 's/.*://')

export FRUGAL_URL="http://127.0.0.1:$port/v1" FRUGAL_ROOT="http://127.0.0.1:$port" MOCK_URL="http://127.0.0.1:$mock_port"
export FRUGAL_ADMIN="http://127.0.0.1:$admin_port"  # the admin listener (/admin, /v1/frugal, /metrics)
export FRUGAL_LOG="$work/frugal.log"
# Tests that start their own gateway (otlp.test.mjs) take the binaries from here.
export FRUGAL_BIN="$(realpath "$frugal_bin")" MOCK_BIN="$(realpath "$mock_bin")"
cd "$here"
node --test --test-reporter=spec "${tests[@]}"
