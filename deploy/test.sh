#!/usr/bin/env bash
# The README's test command; CI (.ci/run) runs exactly this. Installs dependencies, then
#  1. the release preset (-O3; warnings shown, not fatal): build, then the whole suite;
#  2. the asan preset (ASan + UBSan, Debug, -Werror, no benchmarks): build, then the whole
#     suite again under the sanitizers;
#  3. the fuzz targets for a bounded time (tests/fuzz/run.sh).
# There are no GPU tests (the engine runs on CPUs). A test that cannot run here (a fixture
# or nginx missing) is reported by CTest as "Skipped", never as "Passed".
# FRUGAL_TEST_SKIP_ASAN=1 stops after step 1 (a quick local run; CI never sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
jobs=$(nproc)

cmake --preset release
cmake --build --preset release -j "$jobs"
# -j: the integration and e2e suites mostly wait on loopback I/O; every test uses its own
# ports (port 0) and temporary directories.
ctest --preset release --timeout 600 -j "$jobs"

if [[ ${FRUGAL_TEST_SKIP_ASAN:-0} != 1 ]]; then
  cmake --preset asan
  cmake --build --preset asan -j "$jobs"
  # ASAN_OPTIONS/UBSAN_OPTIONS come from the asan test preset (CMakePresets.json).
  ctest --preset asan --timeout 900 -j "$jobs"
fi

# Every libFuzzer target (tests/fuzz/) built with clang and run FUZZ_SECONDS (default 20)
# each over a copy of its committed corpus; a finding fails the run.
bash tests/fuzz/run.sh
