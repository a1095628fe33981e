#!/usr/bin/env bash
# Start a real OCI distribution registry (Debian's docker-registry) on 127.0.0.1:PORT with
# filesystem storage under DIR.
# Usage: scripts/peers/registry-up.sh DIR PORT [HTPASSWD_FILE]
#   prints the address; PID in DIR/pid; log in DIR/registry.log.
# Plain HTTP: clients need --insecure / --dest-tls-verify=false.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR PORT [HTPASSWD_FILE]" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd); port=$2; auth=""
if [ $# -ge 3 ]; then auth="auth:
  htpasswd:
    realm: imgtool-test
    path: $3"; fi
cat > "$dir/config.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$auth
YML
docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
  case "$code" in 200|401) echo "127.0.0.1:$port"; exit 0;; esac
  kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
  sleep 0.1
done
echo "registry did not start; see $dir/registry.log" >&2
tail -n 20 "$dir/registry.log" >&2 || true
exit 1
