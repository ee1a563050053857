#!/usr/bin/env bash
# Builds the local cluster's binaries from the Go module proxy into the version
# cache ($FNOL_K8S_CACHE, default ~/.cache/fnol/k8s/<kubernetes version>/bin):
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok
#   kubelet, kube-proxy (for a real node; a failure only warns)
# all pinned by cluster/build/go.mod and go.sum.
# A warm cache returns at once. A cold build takes tens of minutes on two cores
# and prints its progress every 20 seconds.
#
# Options: --check  exit 0 if the control plane binaries are cached, 1 if not; build nothing.
#          --force  rebuild even when the cache is current.
# Env:     FNOL_K8S_NODE_BINARIES=0  skip kubelet and kube-proxy.
source "$(dirname "$0")/lib.sh"

CORE=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

mode="build"
case "${1:-}" in
  --check) mode="check" ;;
  --force) mode="force" ;;
  "") ;;
  *) die "unknown option '$1' (expected --check or --force)" ;;
esac

# The stamp ties the cached binaries to the exact inputs that produced them.
stamp_file="$K8S_BIN/.inputs"
stamp="$(go_build_stamp "$CLUSTER_SRC/build")"

core_cached() {
  [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] || return 1
  local b
  for b in "${CORE[@]}"; do [ -x "$K8S_BIN/$b" ] || return 1; done
}

# One build at a time per cache (tests and shells may start the cluster together).
go_build_gate "$mode" "$K8S_CACHE" "Kubernetes $K8S_VERSION binaries in $K8S_BIN" core_cached

# Builds are static and path-independent, versioned like upstream releases so
# that kubectl and the API server report $K8S_VERSION.
export CGO_ENABLED=0
minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

staging="$K8S_BIN.partial"
rm -rf "$staging"
mkdir -p "$staging" "$(dirname "$K8S_BIN")"
log="$staging/build.log"

total_start="$(now)"
step "Building Kubernetes $K8S_VERSION, etcd $ETCD_VERSION and kwok $KWOK_VERSION from the Go module proxy"
info "output: $K8S_BIN (GOMODCACHE=$(go env GOMODCACHE), GOCACHE=$(go env GOCACHE))"

# kwok is built in the same module graph (its k8s.io dependencies replaced by
# the pinned tags), so it shares the compiled client-go with everything else.
CORE_PKGS=(go.etcd.io/etcd/server/v3 k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl sigs.k8s.io/kwok/cmd/kwok)
NODE_PKGS=(k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
(
  cd "$CLUSTER_SRC/build"
  info "resolving packages (downloads the modules pinned by cluster/build/go.sum unless GOMODCACHE has them)"
  total="$(go list -mod=readonly -deps "${CORE_PKGS[@]}" | grep -c .)"
  go_build_with_progress "control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok)" "$total" "$log" \
    go build -mod=readonly -trimpath -v -ldflags "$ldflags" -o "$staging/" "${CORE_PKGS[@]}"
) || die "the control plane build failed; the last lines of $log say why"
# go names the etcd server binary after its package path (.../server/v3).
mv "$staging/server" "$staging/etcd"

if [ "${FNOL_K8S_NODE_BINARIES:-1}" != "0" ]; then
  (
    cd "$CLUSTER_SRC/build"
    total="$(go list -mod=readonly -deps "${NODE_PKGS[@]}" | grep -c .)"
    go_build_with_progress "node binaries (kubelet, kube-proxy)" "$total" "$log" \
      go build -mod=readonly -trimpath -v -ldflags "$ldflags" -o "$staging/" "${NODE_PKGS[@]}"
  ) || warn "kubelet/kube-proxy did not build (see $log); the simulated-node cluster does not need them"
fi

echo "$stamp" >"$staging/.inputs"
rm -rf "$K8S_BIN"
mv "$staging" "$K8S_BIN"
step "Built in $(elapsed "$total_start"): $(cd "$K8S_BIN" && printf '%s ' *)"
