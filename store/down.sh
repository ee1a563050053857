#!/usr/bin/env bash
# Stops the local model store started by store/up.sh. Its data stays in
# .azurite/data; pass --purge to delete it too.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
pidfile="$ROOT/.azurite/azurite.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  info "model store stopped (pid $pid)"
else
  info "model store is not running"
fi
rm -f "$pidfile"
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$ROOT/.azurite/data"
  info "model store data deleted"
fi
