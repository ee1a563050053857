#!/usr/bin/env bash
# Writes a kubeconfig that authenticates as a ServiceAccount of the local
# cluster, with a short-lived token from the TokenRequest API, so a process (the
# operator, say) runs with exactly the rights that ServiceAccount's RBAC grants.
#
# Usage: cluster/sa-kubeconfig.sh NAMESPACE SERVICEACCOUNT [OUTPUT] [DURATION]
#   OUTPUT   default .cluster/kubeconfigs/sa-<namespace>-<serviceaccount>.kubeconfig
#   DURATION token lifetime, default 2h (the API server caps it at 48h)
# The ServiceAccount must exist. Prints the path of the kubeconfig written.
source "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || die "usage: cluster/sa-kubeconfig.sh NAMESPACE SERVICEACCOUNT [OUTPUT] [DURATION]"
ns="$1" sa="$2"
out="${3:-$KCFG/sa-$ns-$sa.kubeconfig}"
duration="${4:-2h}"

[ -s "$ADMIN_KUBECONFIG" ] || die "no local cluster kubeconfig at $ADMIN_KUBECONFIG; start the cluster with npm run cluster:up"
kubectl_admin get serviceaccount "$sa" --namespace "$ns" >/dev/null 2>&1 ||
  die "ServiceAccount $ns/$sa does not exist (create it first: kubectl create serviceaccount $sa -n $ns)"

token="$(kubectl_admin create token "$sa" --namespace "$ns" --duration "$duration" --audience "$SA_ISSUER")"
mkdir -p "$(dirname "$out")"
write_kubeconfig "$out" "$ns-$sa" "$ns" "token: $token"
echo "$out"
