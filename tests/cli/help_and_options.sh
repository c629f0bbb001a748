#!/usr/bin/env bash
# Every subcommand answers --help (usage on stdout, exit 0) without touching its
# arguments; an unknown --log-level is a usage error (exit 2); the README's example
# config passes `frugal config check`.
# Usage: help_and_options.sh FRUGAL_BIN REPO_ROOT
set -u
frugal=$1
root=$2
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

check "serve --help" 0 "frugal serve" -- "$frugal" serve --help
check "pull --help" 0 "frugal pull REPO FILE" -- "$frugal" pull --help
check "pull REPO --help" 0 "frugal pull REPO FILE" -- "$frugal" pull some/repo --help
check "models inspect --help" 0 "frugal models inspect FILE" -- "$frugal" models inspect --help
check "models --help" 0 "frugal models inspect" -- "$frugal" models --help
check "config check --help" 0 "frugal config check FILE" -- "$frugal" config check --help
check "config --help" 0 "frugal config default" -- "$frugal" config --help
check "key-id --help" 0 "frugal key-id" -- "$frugal" key-id --help
check "key-id -h" 0 "frugal key-id" -- "$frugal" key-id -h
check "costs --help" 0 "frugal costs" -- "$frugal" costs --help
check "tokenize --help" 0 "frugal tokenize" -- "$frugal" tokenize --help
check "version --help" 0 "frugal version" -- "$frugal" version --help
# --help must not have been taken as the argument (a key id is 'k' + 16 hex digits).
out=$("$frugal" key-id --help 2>&1)
if grep -qE '^k[0-9a-f]{16}$' <<<"$out"; then echo "FAIL: key-id --help printed a key id"; fail=1; fi

check "unknown --log-level" 2 "unknown --log-level 'verbose'" -- "$frugal" serve --log-level verbose
check "--log-level without a value" 2 "--log-level needs" -- "$frugal" serve --log-level
check "unknown command" 2 "unknown command" -- "$frugal" frobnicate --help

# The example config the README names exists and is valid (no environment needed).
check "config check deploy/examples/frugal.yaml" 0 "valid" -- \
  env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u OPENAI_BASE_URL -u ANTHROPIC_BASE_URL \
  "$frugal" config check "$root/deploy/examples/frugal.yaml"
grep -q "deploy/examples/frugal.yaml" "$root/README.md" || { echo "FAIL: README no longer names the example"; fail=1; }

exit $fail
