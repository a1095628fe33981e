#!/usr/bin/env bash
# Build a minimal KIND-like node image offline and bring it into a dockerd with `docker import`.
# Usage: DOCKER_HOST=unix:///S/docker.sock scripts/peers/kind-node-image.sh IMAGE [SNAPSHOTTER]
#   IMAGE        name to give the image (e.g. imgtool-test/kind-node:1)
#   SNAPSHOTTER  the CRI snapshotter the node's containerd config names (default overlayfs)
# Prints IMAGE on success.
#
# The root filesystem holds the host's containerd, containerd-shim-runc-v2, runc and ctr with the
# shared libraries `ldd` lists for them (Debian's packages are dynamically linked), busybox-static
# as /bin/sh and the usual applets, a minimal /etc (passwd, group, containerd/config.toml) and
# /usr/local/bin/entrypoint, which mounts what containerd needs (/proc, /sys, /run and /tmp as
# tmpfs, /sys/fs/cgroup when absent) and execs containerd. Nothing is downloaded: this is a
# `docker import` of host files, not a debootstrap (no mirror, no package manager, ~100 MB, built
# in a few seconds).
#
# As KIND does, run it privileged with /var/lib/containerd as an anonymous volume, so containerd's
# overlayfs snapshotter is not stacked on the container's overlay root:
#   docker run -d --privileged --network none -v /var/lib/containerd \
#     --label io.x-k8s.kind.cluster=NAME --label io.x-k8s.kind.role=worker --name NODE IMAGE
# and wait until `docker exec NODE ctr version` answers. As with KIND's own node image,
# `-e KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER=native` switches the snapshotter at start. Like a
# KIND node, its containerd has namespace k8s.io, the CRI plugin with its snapshotter in `containerd config dump`, and `ctr` on
# PATH. Unlike one, it runs no systemd and no kubelet, and has no CNI configuration.
# Needs root; call Debian's /usr/bin/docker (20.10): another docker CLI may come first on PATH.
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 IMAGE [SNAPSHOTTER]" >&2; exit 2; }
image=$1
snapshotter=${2:-overlayfs}
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli=docker

find_bin() {
  local b=$1 p
  for p in "/usr/bin/$b" "/usr/sbin/$b" "/usr/local/bin/$b" "/bin/$b" "/sbin/$b"; do
    [ -x "$p" ] && { readlink -f "$p"; return 0; }
  done
  p=$(command -v "$b" 2>/dev/null) && [ -n "$p" ] && { readlink -f "$p"; return 0; }
  echo "$0: $b not found on this host (install containerd, runc and busybox-static)" >&2
  return 1
}

root=$(mktemp -d /tmp/kind-node-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc/containerd,proc,sys,dev,run,tmp,var/lib/containerd,kind/images,root}
chmod 1777 "$root/tmp"

# Binaries and the libraries they load (each at the path ldd resolves, plus the loader).
copy_lib() {
  local lib=$1
  [ -e "$lib" ] || return 0
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
}
for b in containerd containerd-shim-runc-v2 containerd-shim ctr runc; do
  if [ "$b" = containerd-shim ]; then src=$(find_bin "$b" 2>/dev/null) || continue; else src=$(find_bin "$b"); fi
  cp "$src" "$root/usr/bin/$b"
  ldd "$src" 2>/dev/null | awk '/=> \//{print $3} /^\s*\/[^ ]+ \(/{print $1}' | while read -r lib; do copy_lib "$lib"; done
done
# The dynamic loader's usual names (merged-/usr Debian: /lib64 -> usr/lib64 may not exist).
for l in /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1; do copy_lib "$l"; done

# busybox-static as the shell and tools.
bb=$(find_bin busybox)
if ! file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
  echo "$0: $bb is not statically linked (install busybox-static)" >&2; exit 1
fi
cp "$bb" "$root/bin/busybox"
for app in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$app" ] || [ -e "$root/usr/bin/$app" ] || ln -s busybox "$root/bin/$app"
done

cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$root/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
G
echo 'hosts: files' > "$root/etc/nsswitch.conf"
: > "$root/etc/hosts"

cat > "$root/etc/containerd/config.toml" <<TOML
# As in KIND's node image: config version 2, the CRI plugin on (without CNI it logs an error and
# serves anyway), its snapshotter named where \`containerd config dump\` shows it.
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "$snapshotter"
  # KIND saves disk space this way: images the CRI pulls keep no layer blobs once unpacked.
  discard_unpacked_layers = true
TOML

cat > "$root/usr/local/bin/entrypoint" <<'SH'
#!/bin/sh
# KIND-like node entrypoint: mount what containerd needs, then run it as PID 1.
set -e
mounted() { awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo 2>/dev/null; }
mounted /proc || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
if ! mounted /sys/fs/cgroup; then
  mkdir -p /sys/fs/cgroup
  mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
fi
mounted /run || mount -t tmpfs -o mode=755 tmpfs /run
mounted /tmp || mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /run/containerd /var/lib/containerd
# As KIND's entrypoint: another snapshotter on request (e.g. native where overlayfs cannot stack).
if [ -n "${KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER:-}" ]; then
  sed -i "s/^\( *snapshotter = \)\"[^\"]*\"/\1\"$KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER\"/" /etc/containerd/config.toml
fi
exec /usr/bin/containerd --config /etc/containerd/config.toml
SH
chmod 755 "$root/usr/local/bin/entrypoint"

tar -C "$root" --numeric-owner -cf - . | "$docker_cli" import \
  --change 'ENTRYPOINT ["/usr/local/bin/entrypoint"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  - "$image" >/dev/null
echo "$image"
