#!/usr/bin/env bash
# Stop a dockerd started by dockerd-up.sh DIR, remove its containers' mounts and its exec root.
# Usage: scripts/peers/dockerd-down.sh DIR
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(cd "$1" 2>/dev/null && pwd) || exit 0
if [ -S "$dir/docker.sock" ]; then
  ids=$(DOCKER_HOST="unix://$dir/docker.sock" /usr/bin/docker ps -aq 2>/dev/null)
  [ -n "$ids" ] && DOCKER_HOST="unix://$dir/docker.sock" /usr/bin/docker rm -f -v $ids >/dev/null 2>&1
fi
if [ -f "$dir/pid" ]; then
  pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$dir/pid"
fi
# Anything still mounted below the data or exec root (overlay layers, netns, shm).
er=$(cat "$dir/exec-root" 2>/dev/null || true)
for root in "$dir/data" ${er:+"$er"}; do
  grep -F " $root/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
done
[ -n "$er" ] && rm -rf "$er"
exit 0
