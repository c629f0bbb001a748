#!/usr/bin/env bash
# Builds frugal's container image without a container registry:
#   1. debootstrap makes a minimal Debian bookworm root file system from Debian's
#      packages (the mirror apt uses) and `podman import` turns it into the base image
#      localhost/frugal-base:bookworm (skipped when that image exists; --rebase redoes it);
#   2. `podman build` runs deploy/image/Containerfile on a `git archive` of HEAD: a build
#      stage compiles frugal, the runtime stage holds it and the libraries it links.
#
#   bash deploy/image/build.sh [--tag localhost/frugal:latest] [--rebase] [--jobs N]
#                              [--isolation chroot]
#
# --isolation chroot runs the RUN steps with buildah's chroot isolation instead of an OCI
# runtime: for hosts where crun cannot start containers (nested sandboxes, hybrid cgroups:
# "cgroups in hybrid mode not supported", setrlimit refused).
# Needs root (or a rootless podman set up for debootstrap's chroot), podman and
# debootstrap (apt-get install podman debootstrap). Run it:
#   podman run -d --name frugal -p 8080:8080 -v frugal-data:/var/lib/frugal \
#     -e OPENAI_API_KEY=... localhost/frugal:latest
#   curl -fsS http://127.0.0.1:8080/healthz
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

tag=localhost/frugal:latest
base=localhost/frugal-base:bookworm
rebase=0
isolation=()
jobs=$(nproc)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
while (($#)); do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --rebase) rebase=1; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --isolation) isolation=(--isolation "$2"); shift 2 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in podman debootstrap git; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing (apt-get install podman debootstrap)" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/frugal-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ((rebase)) || ! podman image exists "$base"; then
  echo "build.sh: debootstrap bookworm from $mirror"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # What a base image leaves out: apt caches, docs and man pages, the package lists.
  rm -rf "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/lib/apt/lists/* \
         "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/locale/*
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
    > "$work/rootfs/etc/dpkg/dpkg.cfg.d/01-nodoc"
  tar -C "$work/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$base"
  rm -rf "$work/rootfs"
fi

echo "build.sh: building $tag from $(git -C "$root" rev-parse --short HEAD)"
mkdir "$work/context"
git -C "$root" archive HEAD | tar -C "$work/context" -x
podman build "${isolation[@]}" --format docker --build-arg BASE="$base" --build-arg JOBS="$jobs" \
  -f "$work/context/deploy/image/Containerfile" -t "$tag" "$work/context"
podman image ls "$tag"
