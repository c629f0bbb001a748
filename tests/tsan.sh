#!/usr/bin/env bash
# ThreadSanitizer run of the concurrency tests (not part of CI: see README, "Test it").
# Builds the tsan preset for the test binaries labelled `concurrency` (the gateway's
# ledger lane and I/O-thread spread, the cache's single flight and blocking pool, the
# router's ledger, the engine's scheduler, thread pool and served Backend, the OTLP
# exporter) and runs them.
# Usage: bash tests/tsan.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(gateway_unit_test cache_tests cache_crash_writer router_test ledger_crash_child
         engine_compute_test engine_backend_test otlp_test)
cmake --preset tsan
cmake --build --preset tsan -j "$(nproc)" --target "${targets[@]}"
# TSAN_OPTIONS (halt_on_error) come from the tsan test preset (CMakePresets.json).
ctest --preset tsan -L concurrency --timeout 1800 "$@"
