# Settings shared by the ingress controller scripts. Sourced, not executed.
#
# The controller is Traefik, built from the Go module proxy at the version
# pinned in cluster/ingress/build/go.mod, run as a host process that watches
# the local cluster's Ingress objects and serves them on 127.0.0.1.
# Every setting can be overridden from the environment.
# shellcheck disable=SC2034 # the settings here are used by the scripts that source this file
INGRESS_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$INGRESS_SRC/../lib.sh"

TRAEFIK_VERSION="$(awk '{ sub(/^require[ \t]+/, "") } $1 == "github.com/traefik/traefik/v3" { print $2; exit }' "$INGRESS_SRC/build/go.mod")"
[ -n "$TRAEFIK_VERSION" ] || die "cannot read the Traefik version from cluster/ingress/build/go.mod"

# Binary cache, one folder per Traefik version.
INGRESS_CACHE="${FNOL_INGRESS_CACHE:-$HOME/.cache/fnol/ingress}"
INGRESS_BIN="$INGRESS_CACHE/$TRAEFIK_VERSION/bin"
TRAEFIK="$INGRESS_BIN/traefik"

# Loopback ports: the entry points serving Ingress traffic (HTTP and HTTPS),
# and the one for the controller's own health check (/ping) and metrics.
INGRESS_PORT="${FNOL_INGRESS_PORT:-18081}"
INGRESS_ADMIN_PORT="${FNOL_INGRESS_ADMIN_PORT:-18082}"
INGRESS_TLS_PORT="${FNOL_INGRESS_TLS_PORT:-18443}"
# The Gateway's HTTP listener: an entry point of its own, so HTTPRoutes and
# Ingresses never compete for the same host and path.
GATEWAY_PORT="${FNOL_GATEWAY_PORT:-18083}"

# The IngressClass the controller serves: the class of the FnolModel examples
# (manifests/examples/), which operator/src/reconcilers/ingress.ts copies from
# spec.ingress.className into the Ingress.
INGRESS_CLASS="${FNOL_INGRESS_CLASS:-nginx}"

# Identity: the controller runs as this ServiceAccount with a bound token
# (TokenRequest) and the least-privilege ClusterRole in
# cluster/ingress/rbac.yaml.
INGRESS_NAMESPACE="fnol-ingress"
INGRESS_SA="traefik"
INGRESS_TOKEN_SECONDS="${FNOL_INGRESS_TOKEN_SECONDS:-86400}"

# Gateway API: the standard-channel CRDs of the release the pinned Traefik is
# built against (sigs.k8s.io/gateway-api in cluster/ingress/build/go.mod),
# fetched from the Go module proxy; the checksum is the one the proxy and the
# checksum database give for that module version (go.sum's h1: line).
GATEWAY_API_MODULE="sigs.k8s.io/gateway-api"
GATEWAY_API_VERSION="v1.4.0"
GATEWAY_API_SUM="h1:ZwlNM6zOHq0h3WUX2gfByPs2yAEsy/EenYJB78jpQfQ="
GATEWAY_API_CRDS="$INGRESS_CACHE/gateway-api/$GATEWAY_API_VERSION/standard"
# The GatewayClass Traefik serves (its controllerName is fixed by Traefik) and
# the one Gateway ingress:up creates, in the controller's namespace, accepting
# HTTPRoutes from every namespace.
GATEWAY_CLASS="${FNOL_GATEWAY_CLASS:-traefik}"
GATEWAY_CONTROLLER="traefik.io/gateway-controller"
GATEWAY_NAME="fnol"
GATEWAY_NAMESPACE="$INGRESS_NAMESPACE"

INGRESS_STATE="$CLUSTER_DIR/ingress"
INGRESS_KUBECONFIG="$INGRESS_STATE/kubeconfig"
INGRESS_CONFIG="$INGRESS_STATE/traefik.yaml"
