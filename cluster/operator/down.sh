#!/usr/bin/env bash
# Removes what cluster/operator/up.sh installed: the operator's namespace,
# ServiceAccount, RBAC and Deployment. The CRD, and so every FnolModel, stays;
# their scorer Deployments keep serving without the operator.
source "$(dirname "$0")/../lib.sh"
gen="$CLUSTER_DIR/operator"
[ -f "$gen/operator.yaml" ] || { info "the operator is not installed (no $gen/operator.yaml)"; exit 0; }
if kubectl_admin get --raw /readyz >/dev/null 2>&1; then
  kubectl_admin delete -f "$gen/operator.yaml" --ignore-not-found --wait=true --timeout=120s | sed 's/^/    /'
fi
rm -rf "$gen"
info "operator removed"
