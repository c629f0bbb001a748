#!/usr/bin/env bash
# Installs dependencies, builds frugal (release preset) and starts the gateway.
# Arguments go to `frugal serve` (e.g. --config FILE, --listen HOST:PORT, --data-dir DIR).
# With no --config the built-in default serves on 127.0.0.1:8080 with provider `openai`
# from OPENAI_BASE_URL / OPENAI_API_KEY.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target frugal
exec build/release/gateway/frugal serve "$@"
