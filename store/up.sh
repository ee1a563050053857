#!/usr/bin/env bash
# Starts a local model store: Azurite's blob service on FNOL_STORE_HOST
# (127.0.0.1) and FNOL_STORE_PORT (10000), with its pid file, log and data in
# .azurite/<host>-<port>/. Idempotent: a running store on that address is left
# as it is; a store on another address is another store with its own folder.
# The local store uses Azurite's well-known development account only;
# production uses Azure Blob Storage with credentials from the environment (see
# docs/pipeline.md).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
host="$STORE_HOST" port="$STORE_PORT" dir="$STORE_DIR"
mkdir -p "$dir"

ready() { node -e "require('net').connect($port, '$host').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"; }

if pid="$(store_pid "$dir")" && ready; then
  info "model store already running: http://$host:$port/devstoreaccount1 (pid $pid)"
  exit 0
fi
if ready; then
  die "port $port on $host is taken by another process; stop it (npm run store:down stops the stores of this checkout) or set FNOL_STORE_PORT"
fi
[ -x node_modules/.bin/azurite-blob ] || die "azurite is not installed; run npm run setup"
step "starting the model store (Azurite blob service) on $host:$port, data in ${dir#"$ROOT"/}/data"
nohup node_modules/.bin/azurite-blob --blobHost "$host" --blobPort "$port" \
  --location "$dir/data" --skipApiVersionCheck --disableProductStyleUrl --disableTelemetry \
  >"$dir/azurite.log" 2>&1 &
echo $! >"$dir/azurite.pid"
for _ in $(seq 1 100); do
  ready && break
  kill -0 "$(cat "$dir/azurite.pid")" 2>/dev/null || { cat "$dir/azurite.log" >&2; die "Azurite exited during start-up (log above, ${dir#"$ROOT"/}/azurite.log)"; }
  sleep 0.2
done
ready || die "Azurite did not listen on $host:$port within 20 s; see ${dir#"$ROOT"/}/azurite.log"
info "model store ready: http://$host:$port/devstoreaccount1 (pid $(cat "$dir/azurite.pid"))"
info "to publish locally: export AZURE_STORAGE_CONNECTION_STRING=\"\$(bash store/connection-string.sh)\""
