#!/usr/bin/env bash
# Starts the local ingress controller (npm run ingress:up): Traefik, run on
# this host against the local cluster, with
# - its Kubernetes Ingress provider, serving every Ingress of class
#   $FNOL_INGRESS_CLASS (default nginx, the class of the FnolModel examples) on
#   http://127.0.0.1:$FNOL_INGRESS_PORT (default 18081), and
# - its Kubernetes Gateway provider: the Gateway API CRDs (standard channel),
#   GatewayClass $FNOL_GATEWAY_CLASS (traefik) and Gateway fnol-ingress/fnol,
#   whose HTTP listener serves the HTTPRoutes of every namespace attached to it
#   on http://127.0.0.1:$FNOL_GATEWAY_PORT (default 18083).
#
# Needs a running cluster (npm run cluster:up). Builds Traefik if it is not
# cached. Idempotent: with the controller already running on the same
# settings it only renews the controller's token when half its lifetime has
# passed; with other settings it restarts the controller.
#
# Env: FNOL_INGRESS_PORT (18081, HTTP), FNOL_INGRESS_TLS_PORT (18443, HTTPS),
#      FNOL_INGRESS_ADMIN_PORT (18082, /ping and /metrics),
#      FNOL_GATEWAY_PORT (18083, the Gateway's HTTP listener), FNOL_GATEWAY_CLASS (traefik),
#      FNOL_INGRESS_CLASS (nginx), FNOL_INGRESS_DEFAULT_CLASS=1 (make that class the
#      cluster default), FNOL_INGRESS_ACCESS_LOG=1 (log every request),
#      FNOL_INGRESS_CACHE (~/.cache/fnol/ingress).
source "$(dirname "$0")/lib.sh"

for arg in "$@"; do die "unknown option '$arg' (cluster/ingress/up.sh takes none; settings come from FNOL_INGRESS_* and FNOL_GATEWAY_* variables)"; done
PORTS=("$INGRESS_PORT" "$INGRESS_TLS_PORT" "$INGRESS_ADMIN_PORT" "$GATEWAY_PORT")
for p in "${PORTS[@]}"; do
  { [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ]; } ||
    die "FNOL_INGRESS_PORT, FNOL_INGRESS_TLS_PORT, FNOL_INGRESS_ADMIN_PORT and FNOL_GATEWAY_PORT must be port numbers (got '$INGRESS_PORT', '$INGRESS_TLS_PORT', '$INGRESS_ADMIN_PORT', '$GATEWAY_PORT')"
done
[ "$(printf '%s\n' "${PORTS[@]}" | sort -u | wc -l)" -eq "${#PORTS[@]}" ] ||
  die "FNOL_INGRESS_PORT, FNOL_INGRESS_TLS_PORT, FNOL_INGRESS_ADMIN_PORT and FNOL_GATEWAY_PORT must differ (got $INGRESS_PORT, $INGRESS_TLS_PORT, $INGRESS_ADMIN_PORT, $GATEWAY_PORT)"
[[ "$INGRESS_CLASS" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "FNOL_INGRESS_CLASS '$INGRESS_CLASS' is not a valid IngressClass name (lower-case DNS subdomain)"
{ [[ "$GATEWAY_CLASS" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] && [ "${#GATEWAY_CLASS}" -le 253 ]; } ||
  die "FNOL_GATEWAY_CLASS '$GATEWAY_CLASS' is not a valid GatewayClass name (lower-case DNS subdomain)"

start_all="$(now)"
mkdir -p "$INGRESS_STATE" "$LOGS" "$PIDS"
# Own lock (fd 9 of this process only: cluster/up.sh may call this script while holding the cluster lock).
exec 9>"$INGRESS_STATE/lock"
flock 9

{ [ -s "$ADMIN_KUBECONFIG" ] && kubectl_admin get --raw /readyz >/dev/null 2>&1; } ||
  die "the local cluster is not running (no ready API server behind $ADMIN_KUBECONFIG); start it with npm run cluster:up"

bash "$INGRESS_SRC/build.sh"
bash "$INGRESS_SRC/gateway-api.sh"

# ---------------------------------------------------------------- cluster objects
step "Ingress controller identity and IngressClass '$INGRESS_CLASS'"
kubectl_admin apply --server-side --force-conflicts --field-manager fnol-ingress -f "$INGRESS_SRC/rbac.yaml" >/dev/null
default_class="false"
[ "${FNOL_INGRESS_DEFAULT_CLASS:-0}" != "1" ] || default_class="true"
kubectl_admin apply --server-side --force-conflicts --field-manager fnol-ingress -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: $INGRESS_CLASS
  labels:
    app.kubernetes.io/managed-by: fnol-local-cluster
  annotations:
    ingressclass.kubernetes.io/is-default-class: "$default_class"
spec:
  controller: traefik.io/ingress-controller
EOF
info "ServiceAccount $INGRESS_NAMESPACE/$INGRESS_SA, ClusterRole fnol-ingress-controller, IngressClass $INGRESS_CLASS (default: $default_class)"

step "Gateway API $GATEWAY_API_VERSION (standard channel), GatewayClass '$GATEWAY_CLASS' and Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME"
# Server-side apply takes the CRDs over from any other installer: the
# controller watches exactly the kinds and versions of this release.
kubectl_admin apply --server-side --force-conflicts --field-manager fnol-ingress -f "$GATEWAY_API_CRDS" >/dev/null
kubectl_admin wait --for condition=Established --timeout=60s -f "$GATEWAY_API_CRDS" >/dev/null ||
  die "the Gateway API CRDs in $GATEWAY_API_CRDS were not established within 60 s (see .cluster/logs/kube-apiserver.log)"
# The listener's port must be the port of one of Traefik's entry points (that
# is how the Gateway provider maps a listener to an entry point); HTTPRoutes
# from any namespace may attach to it.
kubectl_admin apply --server-side --force-conflicts --field-manager fnol-ingress -f - >/dev/null <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: $GATEWAY_CLASS
  labels:
    app.kubernetes.io/managed-by: fnol-local-cluster
spec:
  controllerName: $GATEWAY_CONTROLLER
  description: Traefik on the host of the local cluster (cluster/ingress/up.sh)
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: $GATEWAY_NAME
  namespace: $GATEWAY_NAMESPACE
  labels:
    app.kubernetes.io/managed-by: fnol-local-cluster
spec:
  gatewayClassName: $GATEWAY_CLASS
  listeners:
    - name: http
      protocol: HTTP
      port: $GATEWAY_PORT
      allowedRoutes:
        namespaces:
          from: All
        kinds:
          - kind: HTTPRoute
EOF
info "CRDs from $GATEWAY_API_CRDS; Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME: listener http, port $GATEWAY_PORT, HTTPRoutes from all namespaces"

# ---------------------------------------------------------------- credentials
# A bound ServiceAccount token (TokenRequest) in a file; the kubeconfig names
# the file, and the Kubernetes client re-reads it, so renewing the file renews
# the running controller's credentials without a restart.
token_file="$INGRESS_STATE/token"
token_valid() {
  [ -s "$token_file" ] || return 1
  local age=$(($(date +%s) - $(stat -c %Y "$token_file")))
  [ "$age" -lt $((INGRESS_TOKEN_SECONDS / 2)) ] || return 1
  # A cluster recreated since (new etcd) no longer knows the token's ServiceAccount.
  [ "$("$K8S_BIN/kubectl" --kubeconfig "$INGRESS_KUBECONFIG" auth can-i watch ingresses.networking.k8s.io --all-namespaces 2>/dev/null)" = "yes" ]
}
if ! token_valid; then
  umask 077
  kubectl_admin create token "$INGRESS_SA" --namespace "$INGRESS_NAMESPACE" \
    --duration "${INGRESS_TOKEN_SECONDS}s" --audience "$SA_ISSUER" >"$token_file.new"
  mv "$token_file.new" "$token_file"
  write_kubeconfig "$INGRESS_KUBECONFIG" "$INGRESS_NAMESPACE-$INGRESS_SA" "" "tokenFile: $token_file"
  umask 022
  info "new token for $INGRESS_NAMESPACE/$INGRESS_SA, valid $((INGRESS_TOKEN_SECONDS / 3600)) h ($token_file)"
fi

# ---------------------------------------------------------------- static configuration
access_log=""
if [ "${FNOL_INGRESS_ACCESS_LOG:-0}" = "1" ]; then access_log="accessLog: {}"; fi
config="$(
  cat <<EOF
# Written by cluster/ingress/up.sh; changes are overwritten.
global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  # Routers without entry points (the Ingresses') go to the two marked asDefault only.
  web:
    address: "$HOST_IP:$INGRESS_PORT"
    asDefault: true
    transport:
      lifeCycle:
        graceTimeOut: 5s
  websecure:
    address: "$HOST_IP:$INGRESS_TLS_PORT"
    asDefault: true
    http:
      # Every route is served over TLS here too, with the certificate of the
      # Ingress's spec.tls Secret for its host (Traefik's own default certificate otherwise).
      tls: {}
    transport:
      lifeCycle:
        graceTimeOut: 5s
  # The Gateway's listener (port $GATEWAY_PORT): only HTTPRoutes are served here.
  gateway:
    address: "$HOST_IP:$GATEWAY_PORT"
    transport:
      lifeCycle:
        graceTimeOut: 5s
  traefik:
    address: "$HOST_IP:$INGRESS_ADMIN_PORT"
ping:
  entryPoint: traefik
metrics:
  prometheus:
    entryPoint: traefik
providers:
  providersThrottleDuration: 500ms
  kubernetesIngress:
    ingressClass: $INGRESS_CLASS
    # Prefix paths match whole path elements, as the Ingress API specifies.
    strictPrefixMatching: true
    # A Service without ready endpoints answers 503 (not 404) while it rolls out.
    allowEmptyServices: true
    ingressEndpoint:
      ip: $HOST_IP
  kubernetesGateway:
    # The address written into each Gateway's status.addresses.
    statusAddress:
      ip: $HOST_IP
log:
  level: INFO
  noColor: true
$access_log
EOF
)"

# The Gateway is served once Traefik has marked it Accepted and Programmed for
# its current generation, and its listener's entry point takes connections.
gateway_programmed() {
  local want got
  want="$(kubectl_admin get gateway "$GATEWAY_NAME" -n "$GATEWAY_NAMESPACE" -o jsonpath='{.metadata.generation}')"
  got="$(kubectl_admin get gateway "$GATEWAY_NAME" -n "$GATEWAY_NAMESPACE" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}={.observedGeneration} {end}')"
  [[ " $got " == *" Accepted=$want "* ]] && [[ " $got " == *" Programmed=$want "* ]] &&
    curl -sS -o /dev/null "http://$HOST_IP:$GATEWAY_PORT/"
}
wait_gateway() {
  wait_for "Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME is Accepted and Programmed, its listener answers on port $GATEWAY_PORT" 60 traefik gateway_programmed
}

pid="$(pid_of traefik)"
if [ -n "$pid" ]; then
  if [ "$config" = "$(cat "$INGRESS_CONFIG" 2>/dev/null)" ] &&
    curl -fsS "http://$HOST_IP:$INGRESS_ADMIN_PORT/ping" >/dev/null 2>&1; then
    wait_gateway
    step "The ingress controller is already running (pid $pid): http://$HOST_IP:$INGRESS_PORT (Ingress), http://$HOST_IP:$GATEWAY_PORT (Gateway)"
    exit 0
  fi
  step "The ingress controller runs with other settings or does not answer: restarting it"
  bash "$INGRESS_SRC/down.sh" --locked
fi

for p in "${PORTS[@]}"; do
  if port_in_use "$p"; then
    die "port $p is already in use ($(ss -Hltnp "sport = :$p" | head -1 | awk '{print $NF}')); stop that process or choose other ports with FNOL_INGRESS_PORT, FNOL_INGRESS_TLS_PORT, FNOL_INGRESS_ADMIN_PORT and FNOL_GATEWAY_PORT"
  fi
done
printf '%s\n' "$config" >"$INGRESS_CONFIG"

# ---------------------------------------------------------------- start
step "Starting Traefik $TRAEFIK_VERSION on http://$HOST_IP:$INGRESS_PORT (IngressClass $INGRESS_CLASS) and http://$HOST_IP:$GATEWAY_PORT (Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME)"
t0="$(now)"
# No in-cluster variables: the Kubernetes client must use the kubeconfig.
unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
export KUBECONFIG="$INGRESS_KUBECONFIG"
start_bin traefik "$TRAEFIK" --configFile="$INGRESS_CONFIG"
ping_ok() { curl -fsS "http://$HOST_IP:$INGRESS_ADMIN_PORT/ping"; }
wait_for "Traefik answers on http://$HOST_IP:$INGRESS_ADMIN_PORT/ping" 60 traefik ping_ok
# The provider logs this once it has its kubeconfig; it then lists and watches
# (a refusal or an unreachable API server is logged as "Provider error, retrying").
provider_started() { grep -q 'Creating cluster-external Provider client' "$LOGS/traefik.log"; }
wait_for "the Kubernetes Ingress provider started" 30 traefik provider_started
wait_gateway

step "Ingress controller ready in $(elapsed "$start_all") (start-up $(elapsed "$t0"))"
info "serves:  http://$HOST_IP:$INGRESS_PORT and https://$HOST_IP:$INGRESS_TLS_PORT (Ingresses of class $INGRESS_CLASS; unknown hosts get 404)"
info "         http://$HOST_IP:$GATEWAY_PORT (HTTPRoutes attached to Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME)"
info "health:  http://$HOST_IP:$INGRESS_ADMIN_PORT/ping   metrics: http://$HOST_IP:$INGRESS_ADMIN_PORT/metrics"
info "log:     $LOGS/traefik.log"
info "stop with: npm run ingress:down"
