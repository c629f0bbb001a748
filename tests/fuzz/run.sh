#!/usr/bin/env bash
# Builds the libFuzzer fuzzers of tests/fuzz/ with clang (every library they reach is
# instrumented, with ASan and UBSan) and runs each for FUZZ_SECONDS over a COPY of its
# committed corpus, so that CI never grows the corpus. Exits non-zero when a fuzzer
# finds a crash, a sanitizer report, a leak, a timeout or a violated invariant; the
# input is kept under $FUZZ_BUILD_DIR/artifacts/ and its replay command printed.
#
#   tests/fuzz/run.sh                        # all targets, 20 s each
#   FUZZ_SECONDS=300 tests/fuzz/run.sh sse_stream ledger_row
#
# Environment: FUZZ_SECONDS (20), FUZZ_SEED (1; 0 = random), FUZZ_BUILD_DIR (build/fuzz), FUZZ_RSS_MB (2048),
# FUZZ_BUILD_JOBS (nproc). Needs clang and libclang-rt-14-dev (deploy/install-deps.sh).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build/fuzz}
seconds=${FUZZ_SECONDS:-20}
# A fixed seed by default, so that CI's short run explores the same way each time (a gate,
# not a search); FUZZ_SEED=0 lets libFuzzer pick one, for longer runs that look for more.
seed=${FUZZ_SEED:-1}
rss_mb=${FUZZ_RSS_MB:-2048}
jobs=${FUZZ_BUILD_JOBS:-$(nproc)}

# Largest input per target: a few times the largest corpus file, small enough that
# the fuzzer's time goes into structure rather than length.
declare -A max_len=(
  [http_request]=8192 [openai_body]=16384 [anthropic_body]=16384 [sse_stream]=16384
  [ledger_row]=4096 [cache_entry]=8192 [config_yaml]=4096 [policy_yaml]=4096
  [replay_log]=4096  # not in the default list (CI time): run.sh replay_log
)
if (($# > 0)); then targets=("$@"); else targets=(http_request openai_body anthropic_body sse_stream ledger_row cache_entry config_yaml policy_yaml); fi
for t in "${targets[@]}"; do
  [[ -n ${max_len[$t]:-} ]] || { echo "run.sh: unknown fuzz target '$t' (known: ${!max_len[*]})" >&2; exit 2; }
done

t0=$SECONDS
# Optimised enough to fuzz fast, asserts kept (no NDEBUG): they are invariants too.
# Only the fuzz_* targets and the libraries they link are built. (FRUGAL_BUILD_BENCH
# stays on: the integration tests' CMake needs the mock upstream's target to exist.)
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -Wno-dev \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DFRUGAL_LIBFUZZER=ON -DFRUGAL_WERROR=OFF >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$jobs" --target "${targets[@]/#/fuzz_}"
echo "fuzz: clang build took $((SECONDS - t0)) s"

artifacts=$build/artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/frugal-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  cp "$root/tests/fuzz/$t/corpus/"* "$work/$t/"
  rm -f "$artifacts/$t-"*
  log=$build/fuzz_$t.log
  rc=0
  "$build/tests/fuzz/fuzz_$t" "$work/$t" -max_total_time="$seconds" -rss_limit_mb="$rss_mb" \
    -max_len="${max_len[$t]}" -timeout=10 -print_final_stats=1 -seed="$seed" \
    -artifact_prefix="$artifacts/$t-" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  cov0=$(sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' "$log" | head -1)
  cov1=$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
  corpus=$(find "$work/$t" -type f | wc -l)
  if ((rc == 0)); then
    echo "fuzz $t: ok, ${execs:-?} execs in ${secs:-$seconds} s, coverage ${cov0:-?} -> ${cov1:-?} (+$(( ${cov1:-0} - ${cov0:-0} ))), corpus $(ls "$root/tests/fuzz/$t/corpus" | wc -l) -> $corpus"
  else
    failed+=("$t")
    echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} execs; log $log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz invariant|.*runtime error|artifact_prefix|Test unit written)' "$log" | head -8 | sed 's/^/  /' || true
    for a in "$artifacts/$t-"*; do
      [[ -e $a ]] && echo "  replay: $build/tests/fuzz/fuzz_$t $a  (then add it to tests/fuzz/$t/corpus/ as crash-<what>)"
    done
  fi
done
echo "fuzz: ${#targets[@]} targets, $((SECONDS - t0)) s in all, ${#failed[@]} failed${failed:+: ${failed[*]}}"
((${#failed[@]} == 0))
