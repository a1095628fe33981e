#!/usr/bin/env bash
# Start an isolated containerd (own root, state and socket under DIR); the CRI plugin is disabled.
# Usage: scripts/peers/containerd-up.sh DIR
#   prints the socket path (DIR/containerd.sock); PID in DIR/pid; log in DIR/containerd.log.
# Then:  ctr -a DIR/containerd.sock -n k8s.io images import --no-unpack --all-platforms --digests FILE
# Needs root. Snapshotters known to work: native, overlayfs.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd)
if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
  echo "containerd already running for $dir (pid $(cat "$dir/pid"))" >&2; exit 1
fi
cat > "$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[debug]
  address = "$dir/debug.sock"
  level = "warn"
[plugins."io.containerd.snapshotter.v1.overlayfs"]
  root_path = "$dir/root/overlay"
TOML
containerd --config "$dir/config.toml" > "$dir/containerd.log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 1 100); do
  ctr -a "$dir/containerd.sock" version >/dev/null 2>&1 && { echo "$dir/containerd.sock"; exit 0; }
  kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
  sleep 0.1
done
echo "containerd did not start; see $dir/containerd.log" >&2
tail -n 20 "$dir/containerd.log" >&2 || true
exit 1
