#!/usr/bin/env bash
# Reports whether the local cluster is running. Exit status 0 when every
# component runs and the API server is ready, 1 otherwise.
#
# Options: --env  print only machine-readable KEY=VALUE lines (paths and versions)
#                 instead of the human-readable summary.
source "$(dirname "$0")/lib.sh"

running=1
for c in "${COMPONENTS[@]}"; do [ -n "$(pid_of "$c")" ] || running=0; done
ready=0
if [ "$running" -eq 1 ] && [ -s "$ADMIN_KUBECONFIG" ] && kubectl_admin get --raw /readyz >/dev/null 2>&1; then
  ready=1
fi

if [ "${1:-}" = "--env" ]; then
  echo "K8S_VERSION=$K8S_VERSION"
  echo "ETCD_VERSION=$ETCD_VERSION"
  echo "KWOK_VERSION=$KWOK_VERSION"
  echo "K8S_BIN=$K8S_BIN"
  echo "KUBECONFIG=$ADMIN_KUBECONFIG"
  echo "CLUSTER_DIR=$CLUSTER_DIR"
  echo "APISERVER=https://$HOST_IP:$APISERVER_PORT"
  echo "READY=$ready"
else
  step "Local cluster (Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
  extra=()
  [ ! -d "$CLUSTER_DIR/node" ] || extra=(containerd kubelet kube-proxy)
  for c in "${COMPONENTS[@]}" "${extra[@]}"; do
    pid="$(pid_of "$c")"
    if [ -n "$pid" ]; then state="running, pid $pid"; else state="stopped"; fi
    info "$(printf '%-24s %s' "$c" "$state")"
  done
  if [ "$ready" -eq 1 ]; then
    info "API server https://$HOST_IP:$APISERVER_PORT is ready; kubeconfig $ADMIN_KUBECONFIG"
    kubectl_admin get nodes -o wide 2>/dev/null | sed 's/^/    /'
    if [ -f "$CLUSTER_DIR/operator/operator.yaml" ]; then
      info "operator (npm run cluster:operator):"
      kubectl_admin -n fnol-system get deployment,pods -o wide 2>/dev/null | sed 's/^/    /'
    fi
  else
    info "not ready; start it with npm run cluster:up"
  fi
fi
[ "$ready" -eq 1 ]
