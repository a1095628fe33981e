#!/usr/bin/env bash
# Start an isolated dockerd (Debian's docker.io) with its own data root, exec root and socket under DIR.
# Usage: scripts/peers/dockerd-up.sh DIR
#   prints DOCKER_HOST (unix://DIR/docker.sock); PID in DIR/pid; log in DIR/dockerd.log.
# Then:  DOCKER_HOST=unix://DIR/docker.sock /usr/bin/docker load -i FILE
# No networking set-up (containers run with --network none); overlay2 storage; it runs its own
# containerd under the exec root. The default runtime is runc-caps.py: runc that drops only the
# capabilities this host's bounding set lacks, so --privileged works in sandboxes too.
# Call /usr/bin/docker (20.10, matching this daemon): another docker CLI may come first on PATH.
# Needs root.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
  echo "dockerd already running for $dir (pid $(cat "$dir/pid"))" >&2; exit 1
fi
# The exec root holds unix sockets: keep it short (sun_path is 108 bytes).
exec_root=$(mktemp -d /tmp/dx.XXXXXX)
echo "$exec_root" > "$dir/exec-root"
mkdir -p "$dir/data"
cat > "$dir/daemon.json" <<JSON
{
  "runtimes": { "runc-caps": { "path": "$here/runc-caps.py" } },
  "default-runtime": "runc-caps"
}
JSON
dockerd --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$exec_root" \
  --pidfile "$dir/dockerd.pid" -H "unix://$dir/docker.sock" --storage-driver=overlay2 \
  --iptables=false --ip6tables=false --bridge=none --ip-masq=false --userland-proxy=false \
  > "$dir/dockerd.log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 1 200); do
  DOCKER_HOST="unix://$dir/docker.sock" /usr/bin/docker version >/dev/null 2>&1 && { echo "unix://$dir/docker.sock"; exit 0; }
  kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
  sleep 0.1
done
echo "dockerd did not start; see $dir/dockerd.log" >&2
tail -n 20 "$dir/dockerd.log" >&2 || true
exit 1
