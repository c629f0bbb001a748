#!/usr/bin/env bash
# Installs dependencies, builds (release preset) and runs the whole
# test suite: unit, integration and SDK end-to-end tests. GPU-only tests are labelled
# `gpu` and skip visibly without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
ctest --preset release --timeout 600
