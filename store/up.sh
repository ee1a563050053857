#!/usr/bin/env bash
# Starts the local model store: Azurite's blob service on loopback, data under
# .azurite/. Idempotent: a running store is left as it is. The local store uses
# Azurite's well-known development account only; production uses Azure Blob
# Storage with credentials from the environment (see docs/pipeline.md).
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
port="${FNOL_STORE_PORT:-10000}"
# FNOL_STORE_HOST: the address to listen on; loopback by default, the real node's
# bridge address when pods must read the models (npm run demo).
host="${FNOL_STORE_HOST:-127.0.0.1}"
dir="$ROOT/.azurite"
mkdir -p "$dir"

ready() { node -e "require('net').connect($port, '$host').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"; }

if [ -f "$dir/azurite.pid" ] && kill -0 "$(cat "$dir/azurite.pid")" 2>/dev/null && ready; then
  info "model store already running: http://$host:$port/devstoreaccount1 (pid $(cat "$dir/azurite.pid"))"
  exit 0
fi
if ready; then
  die "port $port on $host is taken by another process; stop it or set FNOL_STORE_PORT"
fi
[ -x node_modules/.bin/azurite-blob ] || die "azurite is not installed; run npm run setup"
step "starting the model store (Azurite blob service) on $host:$port, data in .azurite/"
nohup node_modules/.bin/azurite-blob --blobHost "$host" --blobPort "$port" \
  --location "$dir/data" --skipApiVersionCheck --disableProductStyleUrl --disableTelemetry \
  >"$dir/azurite.log" 2>&1 &
echo $! >"$dir/azurite.pid"
for _ in $(seq 1 100); do
  ready && break
  kill -0 "$(cat "$dir/azurite.pid")" 2>/dev/null || { cat "$dir/azurite.log" >&2; die "Azurite exited during start-up (log above, .azurite/azurite.log)"; }
  sleep 0.2
done
ready || die "Azurite did not listen on $host:$port within 20 s; see .azurite/azurite.log"
info "model store ready: http://$host:$port/devstoreaccount1 (pid $(cat "$dir/azurite.pid"))"
info "to publish locally: export AZURE_STORAGE_CONNECTION_STRING=\"\$(bash store/connection-string.sh)\""
