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
stamp="$(cat "$INGRESS_SRC/build/go.mod" "$INGRESS_SRC/build/go.sum" | sha256sum | cut -c1-16) go=$(go env GOVERSION 2>/dev/null || echo none)"

cached() {
  [ -x "$TRAEFIK" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]
}

if [ "$mode" = "check" ]; then
  cached
  exit $?
fi
if [ "$mode" = "build" ] && cached; then
  info "Traefik $TRAEFIK_VERSION is cached in $INGRESS_BIN"
  exit 0
fi

# One build at a time per cache (a test run and a shell may both ask for it).
mkdir -p "$INGRESS_CACHE"
exec 8>"$INGRESS_CACHE/.build.lock"
if ! flock -n 8; then
  info "another build into $INGRESS_CACHE is running; waiting for it to finish"
  flock 8
  if [ "$mode" = "build" ] && cached; then
    info "Traefik $TRAEFIK_VERSION is cached in $INGRESS_BIN"
    exit 0
  fi
fi

command -v go >/dev/null || die "go is not installed; install Go 1.26 or newer (https://go.dev/dl/)"

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
cd "$INGRESS_SRC/build"
info "resolving packages (downloads the modules pinned by cluster/ingress/build/go.sum unless GOMODCACHE has them)"
t0="$(now)"
total="$(go list -mod=readonly -deps "$pkg" 2>>"$log" | grep -c .)" ||
  die "could not resolve the Traefik packages; the last lines of $log say why"
info "$total packages resolved in $(elapsed "$t0")"

t0="$(now)"
info "compiling: started $(date -u +%H:%M:%S) UTC, log $log"
go build -mod=readonly -trimpath -v -ldflags "$ldflags" -o "$staging/traefik" "$pkg" >"$log.step" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  for _ in $(seq 20); do
    sleep 1
    kill -0 "$pid" 2>/dev/null || break
  done
  if kill -0 "$pid" 2>/dev/null; then
    info "compiling: $(elapsed "$t0"), $(grep -vc '^go: downloading' "$log.step") of ~$total packages compiled (now: $(tail -1 "$log.step" | cut -c1-60))"
  fi
done
rc=0
wait "$pid" || rc=$?
cat "$log.step" >>"$log"
rm -f "$log.step"
if [ "$rc" -ne 0 ]; then
  tail -n 20 "$log" >&2
  die "the Traefik build failed (last lines above; whole log $log)"
fi
info "compiled in $(elapsed "$t0")"

"$staging/traefik" version >/dev/null 2>&1 || die "the built binary does not run: $staging/traefik version"
echo "$stamp" >"$staging/.inputs"
rm -rf "$INGRESS_BIN"
mv "$staging" "$INGRESS_BIN"
step "Built Traefik $TRAEFIK_VERSION in $(elapsed "$total_start"): $TRAEFIK ($(du -h "$TRAEFIK" | cut -f1))"
