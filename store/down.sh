#!/usr/bin/env bash
# Stops the local model stores started by store/up.sh: every one of this
# checkout (each folder .azurite/<host>-<port>/), or with FNOL_STORE_HOST or
# FNOL_STORE_PORT set only the one on that address. Their data stays; pass
# --purge to delete it too.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
purge=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    *) die "unknown option '$arg' (expected --purge)" ;;
  esac
done

if [ -n "${FNOL_STORE_HOST:-}${FNOL_STORE_PORT:-}" ]; then dirs=("$STORE_DIR"); else mapfile -t dirs < <(store_dirs); fi
# A store started before stores had their own folders: .azurite/azurite.pid.
[ -f "$STORE_ROOT/azurite.pid" ] && dirs+=("$STORE_ROOT")

stopped=0
for dir in "${dirs[@]}"; do
  name="${dir#"$STORE_ROOT"}"
  name="${name#/}"
  if pid="$(store_pid "$dir")"; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    info "model store ${name:-(legacy)} stopped (pid $pid)"
    stopped=$((stopped + 1))
  fi
  rm -f "$dir/azurite.pid"
  if [ "$purge" -eq 1 ]; then
    rm -rf "$dir/data"
    info "model store ${name:-(legacy)}: data deleted"
  fi
done
[ "$stopped" -gt 0 ] || info "no model store of this checkout was running"
