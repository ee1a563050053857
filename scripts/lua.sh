#!/usr/bin/env bash
# Runs Debian's Lua interpreter with the given arguments:
#
#   scripts/lua.sh [--lua 5.4|5.1] [--print | FILE.lua ARGS...]
#
# Lua 5.4 by default; 5.1 is the language Argo CD's health checks run in (its
# embedded interpreter implements Lua 5.1), so the chart's health check of
# FnolModel is tested with both. --print prints the interpreter's path (one line).
#
# It comes from Debian's lua5.X and liblua5.X-0 packages, unpacked into the
# cache with `apt-get download` and `dpkg-deb -x`: nothing is installed on the
# system. A cached copy is used as it is; with none, the package index is
# refreshed when the download fails (as root, or through sudo without a
# password: a fresh CI machine), as scripts/prometheus.sh does.
#
# Env: FNOL_LUA_CACHE (~/.cache/fnol/lua)
source "$(dirname "$0")/lib.sh"

lua_version="5.4"
if [ "${1:-}" = "--lua" ]; then
  lua_version="${2:-}"
  shift 2 || true
fi
case "$lua_version" in
  5.1 | 5.4) ;;
  *) die "--lua takes 5.1 or 5.4, not '$lua_version'" ;;
esac
cache="${FNOL_LUA_CACHE:-$HOME/.cache/fnol/lua}/$lua_version"

cached() {
  local dir
  for dir in "$cache"/*/; do
    if [ -x "$dir/bin/lua" ]; then
      echo "${dir%/}/bin/lua"
      return 0
    fi
  done
  return 1
}

install_lua() {
  mkdir -p "$cache"
  exec 8>"$cache/.install.lock"
  flock 8
  if cached >/dev/null; then return 0; fi
  { command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; } ||
    die "Lua $lua_version is not in $cache and apt-get/dpkg-deb are missing: this needs a Debian or Ubuntu machine (packages lua$lua_version, liblua$lua_version-0)"
  local work deb version target
  work="$(mktemp -d)"
  # shellcheck disable=SC2064 # the folder is known now
  trap "rm -rf '$work'" EXIT
  download() { (cd "$work" && apt-get download -q "lua$lua_version" "liblua$lua_version-0") >&2; }
  if ! download; then
    local as_root=()
    if [ "$(id -u)" -ne 0 ]; then
      sudo -n true 2>/dev/null ||
        die "apt-get download lua$lua_version failed (no package index?); run this script as root once to refresh it, or: sudo apt-get update"
      as_root=(sudo -n)
    fi
    info "refreshing the package index (apt-get update)" >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    download || die "apt-get download lua$lua_version liblua$lua_version-0 failed; check the apt sources (both are in Debian bookworm and later)"
  fi
  deb="$(find "$work" -maxdepth 1 -name "lua${lua_version}_*.deb" -print -quit)"
  [ -n "$deb" ] || die "apt-get download lua$lua_version left no .deb in $work"
  version="$(dpkg-deb -f "$deb" Version)"
  [[ "$version" =~ ^[A-Za-z0-9.+~:-]+$ ]] || die "unexpected version '$version' in $deb"
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  target="$cache/${version//:/_}"
  rm -rf "$target.new"
  mkdir -p "$target.new/bin" "$target.new/lib"
  cp -a "$work/root/usr/lib/"*/"liblua$lua_version.so."* "$target.new/lib/"
  install -m 0755 "$work/root/usr/bin/lua$lua_version" "$target.new/bin/lua$lua_version"
  # The interpreter finds its library beside it, not on the system (the
  # wrapper expands LD_LIBRARY_PATH and its arguments when it runs).
  # shellcheck disable=SC2016
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s/bin/lua%s" "$@"\n' \
    "$target" "$target" "$lua_version" >"$target.new/bin/lua"
  chmod 0755 "$target.new/bin/lua"
  rm -rf "$target"
  mv "$target.new" "$target"
  "$target/bin/lua" -v >/dev/null || die "the unpacked Lua does not run: $target/bin/lua -v"
  info "Lua $lua_version ($version) unpacked into $target (Debian packages, nothing installed on the system)" >&2
}

lua="$(cached)" || { install_lua && lua="$(cached)"; } || die "Lua is not in $cache after unpacking it"
if [ "${1:-}" = "--print" ]; then
  echo "$lua"
  exit 0
fi
exec "$lua" "$@"
