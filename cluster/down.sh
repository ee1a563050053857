#!/usr/bin/env bash
# Stops the local cluster (npm run cluster:down): exactly the processes whose
# pids cluster/up.sh recorded in .cluster/pids/, newest component first, then
# removes the etcd data so the next start is a fresh cluster. Idempotent: with
# nothing running it only says so.
#
# Options: --purge   also remove certificates, kubeconfigs and logs (all of .cluster/)
# Env:     FNOL_CLUSTER_KEEP_DATA=1  keep the etcd data (the next start resumes it)
source "$(dirname "$0")/lib.sh"

purge=0 locked=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    --locked) locked=1 ;; # used by up.sh, which already holds the lock
    *) die "unknown option '$arg' (expected --purge)" ;;
  esac
done

if [ ! -d "$CLUSTER_DIR" ]; then
  info "no local cluster state in $CLUSTER_DIR: nothing to stop"
  exit 0
fi
if [ "$locked" -eq 0 ]; then
  exec 9>"$CLUSTER_DIR/lock"
  flock 9
fi

# The local Prometheus (cluster/monitoring/) watches the cluster: it stops first.
if [ -d "$CLUSTER_DIR/monitoring" ]; then
  bash "$CLUSTER_SRC/monitoring/down.sh"
fi

# A real node (FNOL_REAL_NODE=1) goes first, while the API can still drain it.
if [ -d "$CLUSTER_DIR/node" ]; then
  node_args=()
  [ "$purge" -eq 0 ] || node_args=(--purge)
  bash "$CLUSTER_SRC/node/down.sh" "${node_args[@]}"
fi

stopped=0
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
  name="${COMPONENTS[$i]}"
  if pid="$(stop_recorded "$name")"; then
    info "stopped $name (pid $pid)"
    stopped=$((stopped + 1))
  fi
done

[ "$stopped" -gt 0 ] || info "no local cluster process was running"

if [ "${FNOL_CLUSTER_KEEP_DATA:-0}" != "1" ]; then
  # The cluster's objects are gone, and with them the operator install
  # (cluster/operator/up.sh) this file describes.
  rm -rf "$ETCD_DATA" "$CLUSTER_DIR/operator"
fi
if [ "$purge" -eq 1 ]; then
  rm -rf "$PKI" "$KCFG" "$LOGS" "$PIDS" "$ETCD_DATA" "$ADMIN_KUBECONFIG"
  info "removed certificates, kubeconfigs, logs and data in $CLUSTER_DIR"
fi
[ "$locked" -eq 1 ] || info "local cluster stopped"
