#!/usr/bin/env bash
# Install the real peer tools imgtool's interoperability tests use as oracles (Debian/Ubuntu).
# docker.io (20.10), podman (4.3) and buildah are clients the docker/podman interop tests drive;
# busybox-static gives those tests a shell to run inside the images they build.
# Usage: scripts/peers/install.sh        (needs root; safe to run twice; installs only what is missing)
set -euo pipefail
need=()
for b in skopeo umoci containerd ctr docker-registry zstd curl htpasswd openssl dockerd podman buildah busybox; do
  command -v "$b" >/dev/null 2>&1 || need+=("$b")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing peers (missing: ${need[*]})" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq skopeo umoci containerd docker-registry zstd curl apache2-utils openssl \
  docker.io podman buildah busybox-static >/dev/null
