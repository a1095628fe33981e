#!/usr/bin/env bash
# Start a real OCI distribution registry (Debian's docker-registry) on 127.0.0.1:PORT with
# filesystem storage under DIR.
# Usage: scripts/peers/registry-up.sh DIR PORT [HTPASSWD_FILE]
#   prints the address; PID in DIR/pid; log in DIR/registry.log.
# Flavours (environment):
#   REGISTRY_TLS_CERT, REGISTRY_TLS_KEY   serve HTTPS with this certificate (PEM)
#   REGISTRY_TOKEN_REALM, REGISTRY_TOKEN_SERVICE, REGISTRY_TOKEN_ISSUER, REGISTRY_TOKEN_ROOTCERT
#                                         distribution's `token` auth (instead of htpasswd)
# Plain HTTP (default): clients need --insecure / --dest-tls-verify=false.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR PORT [HTPASSWD_FILE]" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd); port=$2; auth=""; tls=""; scheme=http
if [ $# -ge 3 ]; then auth="auth:
  htpasswd:
    realm: imgtool-test
    path: $3"; fi
if [ -n "${REGISTRY_TOKEN_REALM:-}" ]; then auth="auth:
  token:
    realm: $REGISTRY_TOKEN_REALM
    service: ${REGISTRY_TOKEN_SERVICE:-imgtool-test}
    issuer: ${REGISTRY_TOKEN_ISSUER:-imgtool-test-issuer}
    rootcertbundle: $REGISTRY_TOKEN_ROOTCERT"; fi
if [ -n "${REGISTRY_TLS_CERT:-}" ]; then scheme=https; tls="  tls:
    certificate: $REGISTRY_TLS_CERT
    key: $REGISTRY_TLS_KEY"; fi
cat > "$dir/config.yml" <<YML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$tls
$auth
YML
docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 1 100); do
  code=$(curl -sk -o /dev/null -w '%{http_code}' "$scheme://127.0.0.1:$port/v2/" || true)
  case "$code" in 200|401) echo "127.0.0.1:$port"; exit 0;; esac
  kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
  sleep 0.1
done
echo "registry did not start; see $dir/registry.log" >&2
tail -n 20 "$dir/registry.log" >&2 || true
exit 1
