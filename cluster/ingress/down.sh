#!/usr/bin/env bash
# Stops the local ingress controller (npm run ingress:down): exactly the
# process whose pid cluster/ingress/up.sh recorded in .cluster/pids/traefik.pid.
# Idempotent: with nothing running it only says so. Works with the cluster
# stopped. With the cluster running, it then deletes the Gateway and the
# GatewayClass that up.sh created (nothing serves them any more; HTTPRoutes
# attached to the Gateway stay, unserved, until it is back). The Gateway API
# CRDs, the IngressClass and the RBAC objects stay: the CRDs hold other
# components' HTTPRoutes, and all of them go with the cluster's data
# (npm run cluster:down).
#
# Options: --purge  also remove the controller's token, kubeconfig and configuration (.cluster/ingress/)
source "$(dirname "$0")/lib.sh"

purge=0 locked=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    --locked) locked=1 ;; # used by up.sh, which already holds the lock
    *) die "unknown option '$arg' (expected --purge)" ;;
  esac
done

if [ ! -d "$INGRESS_STATE" ] && [ ! -f "$PIDS/traefik.pid" ]; then
  info "no ingress controller state in $INGRESS_STATE: nothing to stop"
  exit 0
fi
mkdir -p "$INGRESS_STATE"
if [ "$locked" -eq 0 ]; then
  exec 9>"$INGRESS_STATE/lock"
  flock 9
fi

# Traefik stops accepting, lets open requests finish (graceTimeOut 5 s), then exits.
if pid="$(stop_recorded traefik)"; then
  info "stopped the ingress controller (traefik, pid $pid)"
else
  info "the ingress controller was not running"
fi

# Not when up.sh restarts the controller (--locked): it keeps its Gateway.
if [ "$locked" -eq 0 ] && [ -s "$ADMIN_KUBECONFIG" ] && kubectl_admin get --raw /readyz >/dev/null 2>&1; then
  if kubectl_admin delete gateway "$GATEWAY_NAME" -n "$GATEWAY_NAMESPACE" --ignore-not-found --wait=false --request-timeout=15s >/dev/null 2>&1 &&
    kubectl_admin delete gatewayclass "$GATEWAY_CLASS" --ignore-not-found --wait=false --request-timeout=15s >/dev/null 2>&1; then
    info "deleted Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME and GatewayClass $GATEWAY_CLASS"
  elif kubectl_admin get crd gateways.gateway.networking.k8s.io >/dev/null 2>&1; then
    warn "could not delete Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME or GatewayClass $GATEWAY_CLASS; delete them with kubectl, or they go with npm run cluster:down"
  fi
fi

if [ "$purge" -eq 1 ]; then
  rm -f "$INGRESS_STATE/token" "$INGRESS_STATE/kubeconfig" "$INGRESS_STATE/ca.crt" "$INGRESS_CONFIG"
  info "removed the controller's token, kubeconfig and configuration in $INGRESS_STATE"
fi
