#!/usr/bin/env bash
# `frugal pull` against a real Range-capable server: Debian's nginx on loopback serving
# the llama-2 fixture at the hub's URL layout. Checks a fresh download, a resume from a
# pre-created partial .part (206), a complete .part (416) and the non-TTY progress lines.
# Usage: tests/cli/pull_nginx.sh FRUGAL_BIN FIXTURE.gguf   (exit 77: nginx missing)
set -euo pipefail
frugal_bin=$1 fixture=$2
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx_bin ]] || { echo "pull_nginx: nginx not installed, skipping" >&2; exit 77; }

work=$(mktemp -d)
pids=()
cleanup() { [[ -s $work/nginx.log ]] && cat "$work/nginx.log" >&2; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

mkdir -p "$work/www/org/tiny-GGUF/resolve/main" "$work/nginx/logs"
chmod 755 "$work"  # nginx workers may run as another user (nobody when started as root)
cp "$fixture" "$work/www/org/tiny-GGUF/resolve/main/tiny.gguf"
chmod -R a+rX "$work/www"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log $work/nginx/logs/access.log;
  server { listen 127.0.0.1:$port; root $work/www; }
}
NGINX
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/org/tiny-GGUF/resolve/main/tiny.gguf" && break
  sleep 0.05
done
export HF_ENDPOINT="http://127.0.0.1:$port"
size=$(stat -c %s "$fixture")

# 1. fresh download; stderr is not a TTY here, so progress comes as plain lines
"$frugal_bin" pull org/tiny-GGUF tiny.gguf --dir "$work/a" 2>"$work/a.err" >"$work/a.out" || { cat "$work/a.err"; exit 1; }
cmp "$fixture" "$work/a/tiny.gguf"
grep -q "tiny.gguf: 100%" "$work/a.err" || { echo "no progress lines:"; cat "$work/a.err"; exit 1; }
[[ $(cat "$work/a.out") == "$work/a/tiny.gguf" ]]

# 2. resume: a partial .part (first 100000 bytes) is continued with Range
mkdir -p "$work/b"
head -c 100000 "$fixture" >"$work/b/tiny.gguf.part"
"$frugal_bin" pull org/tiny-GGUF tiny.gguf --dir "$work/b" 2>"$work/b.err"
cmp "$fixture" "$work/b/tiny.gguf"
[[ ! -e $work/b/tiny.gguf.part ]]
grep -q "resumed at" "$work/b.err" || { cat "$work/b.err"; exit 1; }
grep -q '" 206 ' "$work/nginx/logs/access.log" || { echo "nginx served no 206:"; cat "$work/nginx/logs/access.log"; exit 1; }

# 3. a complete .part: nginx answers 416 and the file is renamed into place
mkdir -p "$work/c"
cp "$fixture" "$work/c/tiny.gguf.part"
"$frugal_bin" pull org/tiny-GGUF tiny.gguf --dir "$work/c" 2>"$work/c.err"
cmp "$fixture" "$work/c/tiny.gguf"
grep -q '" 416 ' "$work/nginx/logs/access.log" || { echo "nginx served no 416"; exit 1; }

# 4. a missing file is a clear error and exit status 1
if "$frugal_bin" pull org/tiny-GGUF nope.gguf --dir "$work/d" 2>"$work/d.err"; then exit 1; fi
grep -q "404" "$work/d.err"
echo "pull_nginx: ok ($size bytes)"
