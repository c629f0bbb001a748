#!/usr/bin/env bash
# `frugal prices`: the built-in catalogue as a table and as JSON, one model by name or
# dated alias, and an unknown model (exit 1) or a bad option (exit 2).
# Usage: prices.sh FRUGAL_BIN
set -u
frugal=$1
fail=0
check() {  # check DESCRIPTION EXPECTED_RC PATTERN -- command...
  local what=$1 want=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [[ $rc -ne $want ]]; then
    echo "FAIL: $what: exit $rc, expected $want"; echo "$out" | head -5; fail=1
  elif ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: $what: output does not match '$pattern'"; echo "$out" | head -5; fail=1
  else
    echo "ok: $what"
  fi
}

check "prices --help" 0 "frugal prices" -- "$frugal" prices --help
check "table header" 0 "^price catalogue [0-9.]+ \([0-9]{4}-[0-9]{2}-[0-9]{2}\), USD per 1M tokens" -- "$frugal" prices
check "table row" 0 "^anthropic +claude-sonnet-4-5 +3\.00 +0\.30 +3\.75 +6\.00 +15\.00 +50% +official" -- "$frugal" prices
check "table sources" 0 "^  openai: https://" -- "$frugal" prices
check "one model by alias" 0 "claude-haiku-4-5 +1\.00 +0\.10 +1\.25 +2\.00 +5\.00" -- "$frugal" prices --model claude-haiku-4-5-20251001
check "json" 0 '"model":"gpt-4o-mini","provider":"openai".*"input_usd":"0.15","cached_input_usd":"0.075"' -- "$frugal" prices --json --model gpt-4o-mini
check "unknown model" 1 "not in the built-in price catalogue" -- "$frugal" prices --model mystery-model
check "bad option" 2 "usage: frugal prices" -- "$frugal" prices --bogus
# --model selects exactly one row.
rows=$("$frugal" prices --model gpt-4o | grep -cE '^openai ')
if [[ $rows -ne 1 ]]; then echo "FAIL: --model gpt-4o printed $rows rows"; fail=1; fi
exit $fail
