#!/usr/bin/env bash
# Fetches the Gateway API CRDs (standard channel) of the release the pinned
# Traefik supports into the cache ($FNOL_INGRESS_CACHE/gateway-api/<version>/standard):
# the module sigs.k8s.io/gateway-api at GATEWAY_API_VERSION from the Go module
# proxy (go mod download), its checksum compared with GATEWAY_API_SUM
# (cluster/ingress/lib.sh), then config/crd/standard/*.yaml copied out of it.
# cluster/ingress/up.sh applies them. A warm cache returns at once.
#
# Options: --check  exit 0 if the CRDs are cached for the pinned version and checksum, 1 if not.
source "$(dirname "$0")/lib.sh"

mode="fetch"
case "${1:-}" in
  --check) mode="check" ;;
  "") ;;
  *) die "unknown option '$1' (expected --check)" ;;
esac

# The pin must be the release Traefik is built against: its Gateway provider
# watches exactly the kinds and versions of that release.
build_version="$(awk -v m="$GATEWAY_API_MODULE" '{ sub(/^require[ \t]+/, "") } $1 == m { print $2; exit }' "$INGRESS_SRC/build/go.mod")"
build_sum="$(awk -v m="$GATEWAY_API_MODULE" -v v="$GATEWAY_API_VERSION" '$1 == m && $2 == v { print $3; exit }' "$INGRESS_SRC/build/go.sum")"
[ "$build_version" = "$GATEWAY_API_VERSION" ] ||
  die "cluster/ingress/lib.sh pins $GATEWAY_API_MODULE $GATEWAY_API_VERSION but Traefik $TRAEFIK_VERSION is built against ${build_version:-no version of it} (cluster/ingress/build/go.mod); set GATEWAY_API_VERSION and GATEWAY_API_SUM to that release"
[ "$build_sum" = "$GATEWAY_API_SUM" ] ||
  die "cluster/ingress/lib.sh pins $GATEWAY_API_MODULE $GATEWAY_API_VERSION with checksum $GATEWAY_API_SUM, cluster/ingress/build/go.sum says ${build_sum:-nothing}; correct GATEWAY_API_SUM"

stamp="$GATEWAY_API_MODULE@$GATEWAY_API_VERSION $GATEWAY_API_SUM"
cached() {
  [ -f "$GATEWAY_API_CRDS/.inputs" ] && [ "$(cat "$GATEWAY_API_CRDS/.inputs")" = "$stamp" ] &&
    compgen -G "$GATEWAY_API_CRDS/*.yaml" >/dev/null
}
if [ "$mode" = "check" ]; then
  cached
  exit $?
fi
if cached; then
  info "Gateway API $GATEWAY_API_VERSION CRDs (standard channel): cached in $GATEWAY_API_CRDS"
  exit 0
fi

command -v go >/dev/null || die "go is not installed; install Go 1.26 or newer (https://go.dev/dl/)"
step "Fetching the Gateway API $GATEWAY_API_VERSION CRDs (standard channel) from the Go module proxy"
# Outside any module, so only the proxy and the checksum database decide what is downloaded.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
json="$(cd "$work" && go mod download -json "$GATEWAY_API_MODULE@$GATEWAY_API_VERSION" 2>"$work/err")" || {
  cat "$work/err" >&2
  die "go mod download $GATEWAY_API_MODULE@$GATEWAY_API_VERSION failed (above); check the network and GOPROXY ($(go env GOPROXY))"
}
field() { printf '%s\n' "$json" | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" | head -1; }
dir="$(field Dir)"
sum="$(field Sum)"
err="$(field Error)"
[ -z "$err" ] || die "go mod download $GATEWAY_API_MODULE@$GATEWAY_API_VERSION: $err"
[ "$sum" = "$GATEWAY_API_SUM" ] ||
  die "$GATEWAY_API_MODULE@$GATEWAY_API_VERSION has checksum '$sum', expected $GATEWAY_API_SUM (cluster/ingress/lib.sh); refusing to install it"
[ -d "$dir/config/crd/standard" ] || die "$dir/config/crd/standard is missing from the downloaded module"

staging="$GATEWAY_API_CRDS.partial"
rm -rf "$staging"
mkdir -p "$staging"
cp "$dir"/config/crd/standard/*.yaml "$staging/"
chmod 644 "$staging"/*.yaml
# Every file must be a CRD of the bundle and channel asked for.
for f in "$staging"/*.yaml; do
  { grep -q "^kind: CustomResourceDefinition" "$f" &&
    grep -q "gateway.networking.k8s.io/bundle-version: $GATEWAY_API_VERSION\$" "$f" &&
    grep -q "gateway.networking.k8s.io/channel: standard\$" "$f"; } ||
    die "$(basename "$f") in $GATEWAY_API_MODULE@$GATEWAY_API_VERSION is not a standard-channel $GATEWAY_API_VERSION CRD"
done
echo "$stamp" >"$staging/.inputs"
rm -rf "$GATEWAY_API_CRDS"
mv "$staging" "$GATEWAY_API_CRDS"
info "$(find "$GATEWAY_API_CRDS" -name '*.yaml' | wc -l) CRDs in $GATEWAY_API_CRDS ($GATEWAY_API_SUM)"
