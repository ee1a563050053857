#!/usr/bin/env bash
# Stops the local ingress controller (npm run ingress:down): exactly the
# process whose pid cluster/ingress/up.sh recorded in .cluster/pids/traefik.pid.
# Idempotent: with nothing running it only says so. Works with the cluster
# stopped (it does not touch the API server; the IngressClass and RBAC objects
# go with the cluster's data).
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

if [ "$purge" -eq 1 ]; then
  rm -f "$INGRESS_STATE/token" "$INGRESS_STATE/kubeconfig" "$INGRESS_STATE/ca.crt" "$INGRESS_CONFIG"
  info "removed the controller's token, kubeconfig and configuration in $INGRESS_STATE"
fi
