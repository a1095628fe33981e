#!/usr/bin/env bash
# Write podman/buildah configuration for an isolated store under DIR and print the environment for it.
# Usage: eval "$(scripts/peers/podman-env.sh DIR)"   then podman load/save/run, buildah … use only DIR.
# What this sandbox needs (measured, see docs): overlay storage in temp dirs, cgroupfs, a file events
# log, host network namespace, and explicit ulimits (no CAP_SYS_RESOURCE: podman run would fail to
# raise rlimits). Needs root.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd)
mkdir -p "$dir/graph" "$dir/run" "$dir/tmp"
cat > "$dir/storage.conf" <<TOML
[storage]
driver = "overlay"
graphroot = "$dir/graph"
runroot = "$dir/run"
TOML
cat > "$dir/containers.conf" <<TOML
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
tmp_dir = "$dir/tmp"
TOML
cat <<ENV
export CONTAINERS_STORAGE_CONF='$dir/storage.conf'
export CONTAINERS_CONF='$dir/containers.conf'
export TMPDIR='$dir/tmp'
ENV
