#!/usr/bin/env bash
# Starts the image built by deploy/image/build.sh against bench's mock upstream and asks
# it /healthz, /readyz and one chat request. Not part of the test suite.
#
#   bash deploy/image/smoke.sh [--tag localhost/frugal:latest] [--mock build/dev/bench/mock_upstream]
#                              [--port 18080] [--chroot]
#
# Default: `podman run --network host` with the image's own entrypoint, user and volume
# (an anonymous one, removed with the container). --chroot, for hosts where no OCI runtime can start a container (see build.sh):
# `podman create` + `podman mount`, then the image's CMD run with chroot(8) as the image's
# user 10001, so the image's file system (its libraries, its user, its config) is what
# runs, without the runtime's namespaces and limits.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tag=localhost/frugal:latest
mock=$root/build/dev/bench/mock_upstream
port=18080
mode=run
while (($#)); do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --mock) mock=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --chroot) mode=chroot; shift ;;
    *) echo "smoke.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
pids=()
ctr=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n $ctr ]]; then
    [[ $mode == chroot ]] && { umount "$mnt/proc" 2>/dev/null || true; podman umount "$ctr" >/dev/null || true; }
    podman rm -f -v "$ctr" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$mock" --threads 1 >"$work/mock.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q 'PORT=' "$work/mock.log" && break; sleep 0.1; done
mock_port=$(sed -n 's/.*PORT=\([0-9]*\).*/\1/p' "$work/mock.log" | head -1)
[[ -n $mock_port ]] || { echo "smoke.sh: the mock upstream did not start" >&2; exit 1; }

# The image's config, with the port moved off 8080 and the mock as the OpenAI upstream.
cat >"$work/frugal.yaml" <<EOF
data_dir: /var/lib/frugal
server: { listen: ["127.0.0.1:$port"] }
providers:
  openai: { kind: openai, base_url: "http://127.0.0.1:$mock_port/v1", api_key: sk-smoke }
passthrough: [{ prefix: "", provider: openai }]
telemetry: { metrics: { enabled: true } }
EOF
chmod 0644 "$work/frugal.yaml"

if [[ $mode == run ]]; then
  ctr=frugal-smoke-$$  # named first, so that cleanup removes it even when the start fails
  podman run -d --name "$ctr" --network host -v "$work/frugal.yaml:/etc/frugal/smoke.yaml:ro" \
    "$tag" serve --config /etc/frugal/smoke.yaml >/dev/null
  logs() { podman logs "$ctr" 2>&1 | tail -20; }
  in_image() { podman exec "$ctr" "$@"; }
else
  ctr=$(podman create "$tag")
  mnt=$(podman mount "$ctr")
  cp "$work/frugal.yaml" "$mnt/etc/frugal/smoke.yaml"
  mount -t proc proc "$mnt/proc" 2>/dev/null || echo "smoke.sh: no /proc in the chroot (mount refused)"
  user=$(podman image inspect "$tag" --format '{{.Config.User}}')
  entry=$(podman image inspect "$tag" --format '{{index .Config.Entrypoint 0}}')
  chroot --userspec="$user" "$mnt" "$entry" serve --config /etc/frugal/smoke.yaml >"$work/frugal.log" 2>&1 &
  pids+=($!)
  logs() { tail -20 "$work/frugal.log"; }
  in_image() { chroot --userspec="$user" "$mnt" "$@"; }
fi

for _ in $(seq 150); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
echo "== /healthz through the image's curl (its HEALTHCHECK command)"
in_image curl -fsS "http://127.0.0.1:$port/healthz" || { logs; exit 1; }
echo
echo "== /readyz"
curl -fsS "http://127.0.0.1:$port/readyz" || { logs; exit 1; }
echo
echo "== POST /v1/chat/completions"
curl -fsS -D "$work/headers" "http://127.0.0.1:$port/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello?"}]}' || { logs; exit 1; }
echo
grep -i '^x-frugal-\(provider\|model\|cost-usd\)' "$work/headers"
echo "== frugal runs as: $(in_image id -u)"
echo "== image size: $(podman image inspect "$tag" --format '{{.Size}}') bytes"
podman image ls "$tag"
