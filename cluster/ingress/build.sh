#!/usr/bin/env bash
# Builds the ingress controller (Traefik, pinned in cluster/ingress/build/go.mod)
# from the Go module proxy into the version cache
# ($FNOL_INGRESS_CACHE, default ~/.cache/fnol/ingress/<traefik version>/bin/traefik).
# A warm cache returns at once; a cold build prints its progress every 20 s.
#
# Options: --check  exit 0 if the binary is cached and current, 1 if not; build nothing.
#          --force  rebuild even when the cache is current.
source "$(dirname "$0")/lib.sh"

mode="build"
case "${1:-}" in
  --check) mode="check" ;;
  --force) mode="force" ;;
  "") ;;
  *) die "unknown option '$1' (expected --check or --force)" ;;
esac

# The stamp ties the cached binary to the exact inputs that produced it.
stamp_file="$INGRESS_BIN/.inputs"
stamp="$(go_build_stamp "$INGRESS_SRC/build")"

cached() {
  [ -x "$TRAEFIK" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]
}

# One build at a time per cache (a test run and a shell may both ask for it).
go_build_gate "$mode" "$INGRESS_CACHE" "Traefik $TRAEFIK_VERSION in $INGRESS_BIN" cached

export CGO_ENABLED=0
pkg="github.com/traefik/traefik/v3/cmd/traefik"
ldflags="-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION"
ldflags+=" -X github.com/traefik/traefik/v3/pkg/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"

staging="$INGRESS_BIN.partial"
rm -rf "$staging"
mkdir -p "$staging"
log="$staging/build.log"
total_start="$(now)"

step "Building Traefik $TRAEFIK_VERSION from the Go module proxy"
info "output: $INGRESS_BIN (GOMODCACHE=$(go env GOMODCACHE), GOCACHE=$(go env GOCACHE))"
cd "$INGRESS_SRC/build" || exit
info "resolving packages (downloads the modules pinned by cluster/ingress/build/go.sum unless GOMODCACHE has them)"
t0="$(now)"
total="$(go list -mod=readonly -deps "$pkg" 2>>"$log" | grep -c .)" ||
  die "could not resolve the Traefik packages; the last lines of $log say why"
info "$total packages resolved in $(elapsed "$t0")"

go_build_with_progress compiling "$total" "$log" \
  go build -mod=readonly -trimpath -v -ldflags "$ldflags" -o "$staging/traefik" "$pkg" || {
  tail -n 20 "$log" >&2
  die "the Traefik build failed (last lines above; whole log $log)"
}

"$staging/traefik" version >/dev/null 2>&1 || die "the built binary does not run: $staging/traefik version"
echo "$stamp" >"$staging/.inputs"
rm -rf "$INGRESS_BIN"
mv "$staging" "$INGRESS_BIN"
step "Built Traefik $TRAEFIK_VERSION in $(elapsed "$total_start"): $TRAEFIK ($(du -h "$TRAEFIK" | cut -f1))"
