#!/usr/bin/env bash
# What tests/doctest_main.cpp does with a run's outcome, which every doctest entry relies on:
# a filter matching no case fails; a case that skips itself prints the marker CTest's
# SKIP_REGULAR_EXPRESSION turns into "Skipped"; a failure is never hidden behind a skip.
# Usage: doctest_main_selftest.sh SELFTEST_BIN
set -uo pipefail
bin=$1
status=0
expect() {  # NAME WANT_RC WANT_MARKER(yes|no) ARGS...
  local name=$1 want_rc=$2 want_marker=$3
  shift 3
  local out rc marker=no
  out=$("$bin" "$@" 2>&1)
  rc=$?
  grep -q FRUGAL_TESTS_SKIPPED <<<"$out" && marker=yes
  if [[ $rc != "$want_rc" || $marker != "$want_marker" ]]; then
    echo "FAIL $name: exit $rc (want $want_rc), skip marker $marker (want $want_marker)"
    printf '%s\n' "$out"
    status=1
  else
    echo "ok   $name"
  fi
}
expect "a filter that matches nothing fails" 1 no "-tc=no such case"
expect "a passing case passes" 0 no "-tc=selftest: passes"
expect "a skipping case is reported as skipped" 0 yes "-tc=selftest: skips itself"
expect "a pass and a skip: skipped" 0 yes "-tc=selftest: passes,selftest: skips itself"
expect "a failure beside a skip fails, no skip marker" 1 no "-tc=selftest: skips itself,selftest: fails"
exit $status
