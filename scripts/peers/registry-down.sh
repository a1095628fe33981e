#!/usr/bin/env bash
# Stop the registry started by registry-up.sh DIR (by its recorded PID only).
# Usage: scripts/peers/registry-down.sh DIR
set -u
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1; pid=$(cat "$dir/pid" 2>/dev/null) || exit 0
rm -f "$dir/pid"
kill "$pid" 2>/dev/null || exit 0
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
kill -9 "$pid" 2>/dev/null; exit 0
