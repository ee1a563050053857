# The local model store's settings and helpers (store/up.sh, store/down.sh,
# cluster/check-clean.sh). Sourced. Each store (one address and port) has its
# own folder .azurite/<host>-<port>/ with its pid file, log and data, so a
# second store on another address (the demo's on the node's bridge, a test
# run's on loopback) never overwrites the first one's pid file.
# shellcheck disable=SC2034 # the settings here are used by the scripts that source this file
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
STORE_ROOT="$ROOT/.azurite"
STORE_PORT="${FNOL_STORE_PORT:-10000}"
# FNOL_STORE_HOST: the address to listen on; loopback by default, the real node's
# bridge address when pods must read the models (npm run demo).
STORE_HOST="${FNOL_STORE_HOST:-127.0.0.1}"
STORE_DIR="$STORE_ROOT/$STORE_HOST-$STORE_PORT"

# store_pid DIR: the pid recorded in DIR/azurite.pid if that process is alive
# and is an Azurite of this checkout (a reused pid is not ours).
store_pid() {
  local file="$1/azurite.pid" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "azurite-blob .*--location $STORE_ROOT/" || return 1
  echo "$pid"
}

# store_dirs: the folder of every store started from this checkout.
store_dirs() {
  local d
  for d in "$STORE_ROOT"/*-*/; do
    [ -d "$d" ] && printf '%s\n' "${d%/}"
  done
  return 0
}
