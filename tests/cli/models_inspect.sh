#!/usr/bin/env bash
# `frugal models inspect` on the llama-2 fixture: exits 0 and names the architecture.
# Usage: tests/cli/models_inspect.sh FRUGAL_BIN FIXTURE.gguf   (exit 77: fixture missing)
set -uo pipefail
frugal_bin=$1 fixture=$2
[[ -f $fixture ]] || { echo "models_inspect: fixture $fixture not found, skipping" >&2; exit 77; }
out=$("$frugal_bin" models inspect "$fixture" 2>&1)
rc=$?
printf '%s\n' "$out"
if ((rc != 0)); then echo "models_inspect: exit status $rc, expected 0" >&2; exit 1; fi
if ! grep -Eq 'general\.architecture.*llama' <<<"$out"; then
  echo "models_inspect: no 'general.architecture ... llama' line in the output" >&2; exit 1
fi
