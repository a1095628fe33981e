#!/usr/bin/env bash
# Install the real peer tools imgtool's interoperability tests use as oracles (Debian/Ubuntu).
# Usage: scripts/peers/install.sh        (needs root; safe to run twice; installs only what is missing)
set -euo pipefail
need=()
for b in skopeo umoci containerd ctr docker-registry zstd curl htpasswd openssl; do
  command -v "$b" >/dev/null 2>&1 || need+=("$b")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing peers (missing: ${need[*]})" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq skopeo umoci containerd docker-registry zstd curl apache2-utils openssl >/dev/null
