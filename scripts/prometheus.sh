#!/usr/bin/env bash
# Makes sure Prometheus and promtool are in the cache and prints the folder that
# holds them (one line, e.g. ~/.cache/fnol/prometheus/2.42.0+ds-5+deb12u1/bin).
#
# They come from Debian's prometheus package, unpacked into the cache with
# `apt-get download` and `dpkg-deb -x`: nothing is installed on the system and
# no service is set up or started. A cached copy is used as it is; with none,
# the package index is refreshed when the download fails (as root, or through
# sudo without a password: a fresh CI machine), as scripts/shellcheck.sh does
# for shellcheck.
#
# Env: FNOL_PROMETHEUS_CACHE (~/.cache/fnol/prometheus)
source "$(dirname "$0")/lib.sh"

for arg in "$@"; do die "unknown option '$arg' (scripts/prometheus.sh takes none)"; done
cache="${FNOL_PROMETHEUS_CACHE:-$HOME/.cache/fnol/prometheus}"

cached() {
  local dir
  for dir in "$cache"/*/bin; do
    if [ -x "$dir/prometheus" ] && [ -x "$dir/promtool" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}
if cached; then exit 0; fi

mkdir -p "$cache"
exec 8>"$cache/.install.lock"
flock 8
if cached; then exit 0; fi

{ command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; } ||
  die "Prometheus is not in $cache and apt-get/dpkg-deb are missing: this needs a Debian or Ubuntu machine (package prometheus)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
download() { (cd "$work" && apt-get download -q prometheus) >&2; }
if ! download; then
  # The package index may be missing or stale on a fresh machine: refresh it
  # as root, or with sudo where it needs no password (CI agents).
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null ||
      die "apt-get download prometheus failed (no package index?); run this script as root once to refresh it, or: sudo apt-get update"
    as_root=(sudo -n)
  fi
  info "refreshing the package index (apt-get update)" >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  download || die "apt-get download prometheus failed; check the apt sources (the package is in Debian bookworm and later)"
fi
deb="$(find "$work" -maxdepth 1 -name 'prometheus_*.deb' -print -quit)"
[ -n "$deb" ] || die "apt-get download prometheus left no .deb in $work"
version="$(dpkg-deb -f "$deb" Version)"
[[ "$version" =~ ^[A-Za-z0-9.+~:-]+$ ]] || die "unexpected version '$version' in $deb"
dpkg-deb -x "$deb" "$work/root"
target="$cache/${version//:/_}"
mkdir -p "$target.new/bin"
install -m 0755 "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$target.new/bin/"
rm -rf "$target"
mv "$target.new" "$target"
info "Prometheus $version unpacked into $target/bin (Debian package, no service installed)" >&2
echo "$target/bin"
