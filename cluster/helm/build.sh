#!/usr/bin/env bash
# Builds helm (pinned in cluster/helm/build/go.mod) from the Go module proxy
# into the version cache ($FNOL_HELM_CACHE, default
# ~/.cache/fnol/helm/<helm version>/bin/helm). Only cmd/helm is built, with
# -trimpath and without debug information. A warm cache returns at once; a
# cold build prints its progress every 20 s.
#
# Options: --check  exit 0 if the binary is cached and current, 1 if not; build nothing.
#          --force  rebuild even when the cache is current.
#          --print  build if needed, then print the binary's path (one line on stdout).
source "$(dirname "$0")/lib.sh"

mode="build"
print=""
case "${1:-}" in
  --check) mode="check" ;;
  --force) mode="force" ;;
  --print) print=1 ;;
  "") ;;
  *) die "unknown option '$1' (expected --check, --force or --print)" ;;
esac

stamp_file="$HELM_BIN/.inputs"
stamp="$(go_build_stamp "$HELM_SRC/build")"

cached() {
  [ -x "$HELM" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]
}

if [ -n "$print" ]; then
  # Progress goes to stderr so that stdout carries the path alone.
  if ! cached; then bash "$0" >&2 || exit; fi
  echo "$HELM"
  exit 0
fi

go_build_gate "$mode" "$HELM_CACHE" "helm $HELM_VERSION in $HELM_BIN" cached

export CGO_ENABLED=0
pkg="helm.sh/helm/v3/cmd/helm"
# The Kubernetes version helm assumes offline (helm template, helm lint) is the
# one of the client-go it is built with, as helm's own release build sets it.
k8s_minor="$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' "$HELM_SRC/build/go.mod")"
[ -n "$k8s_minor" ] || die "cannot read the k8s.io/client-go version from cluster/helm/build/go.mod"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for var in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X helm.sh/helm/v3/$var.k8sVersionMajor=1 -X helm.sh/helm/v3/$var.k8sVersionMinor=$k8s_minor"
done

staging="$HELM_BIN.partial"
rm -rf "$staging"
mkdir -p "$staging"
log="$staging/build.log"
total_start="$(now)"

step "Building helm $HELM_VERSION from the Go module proxy"
info "output: $HELM_BIN (GOMODCACHE=$(go env GOMODCACHE), GOCACHE=$(go env GOCACHE))"
cd "$HELM_SRC/build" || exit
info "resolving packages (downloads the modules pinned by cluster/helm/build/go.sum unless GOMODCACHE has them)"
t0="$(now)"
total="$(go list -mod=readonly -deps "$pkg" 2>>"$log" | grep -c .)" ||
  die "could not resolve the helm packages; the last lines of $log say why"
info "$total packages resolved in $(elapsed "$t0")"

go_build_with_progress compiling "$total" "$log" \
  go build -mod=readonly -trimpath -v -ldflags "$ldflags" -o "$staging/helm" "$pkg" || {
  tail -n 20 "$log" >&2
  die "the helm build failed (last lines above; whole log $log)"
}

got="$("$staging/helm" version --template '{{.Version}}' 2>/dev/null)" ||
  die "the built binary does not run: $staging/helm version"
[ "$got" = "$HELM_VERSION" ] || die "the built helm reports version '$got', expected $HELM_VERSION"
echo "$stamp" >"$staging/.inputs"
rm -rf "$HELM_BIN"
mv "$staging" "$HELM_BIN"
step "Built helm $HELM_VERSION in $(elapsed "$total_start"): $HELM ($(du -h "$HELM" | cut -f1))"
