#!/usr/bin/env bash
# Runs the operator as pods on the local cluster's real node, from manifests/
# (through the overlay cluster/operator/kustomization.yaml, rendered by
# scripts/render-operator.sh as in the pipeline): npm run cluster:operator.
#
#   cluster/operator/up.sh [--watch-namespace NS]
#
# 1-2. builds the scorer and operator images when their sources changed and
#    imports them into the node's containerd (cluster/operator/images.sh);
# 3. applies the CRD, then the operator install with those images (rendered to
#    .cluster/operator/operator.yaml), and waits for the rollout.
#    --watch-namespace (or FNOL_OPERATOR_WATCH_NAMESPACE) limits it to one
#    namespace, so it leaves other FnolModels on the cluster (e.g. those of
#    operators started by the tests) alone.
# Remove it with cluster/operator/down.sh.
source "$(dirname "$0")/../node/node-lib.sh"
cd "$ROOT" || exit

watch_ns="${FNOL_OPERATOR_WATCH_NAMESPACE:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --watch-namespace) watch_ns="${2:?--watch-namespace needs a namespace}"; shift 2 ;;
    *) die "unknown argument $1; usage: cluster/operator/up.sh [--watch-namespace NS]" ;;
  esac
done
{ [ -n "$(pid_of kubelet)" ] && [ -n "$(pid_of containerd)" ]; } ||
  die "the real node is not running; start the cluster with FNOL_REAL_NODE=1 npm run cluster:up"
start_all="$(now)"

# ---------------------------------------------------------------- images
declare -A ref
while read -r name image; do ref[$name]="$image"; done < <(bash "$CLUSTER_SRC/operator/images.sh")
{ [ -n "${ref[scorer]:-}" ] && [ -n "${ref[operator]:-}" ]; } ||
  die "cluster/operator/images.sh did not give both image references (its output is above)"

# ---------------------------------------------------------------- install
step "Installing the operator (CRD, manifests/ through cluster/operator/kustomization.yaml)"
kubectl_admin apply -f crds/fnolmodel.yaml >/dev/null
kubectl_admin wait --for=condition=Established crd/fnolmodels.serving.fnol.io --timeout=60s >/dev/null
# Rendered as the pipeline renders manifests/ (scripts/render-operator.sh), to a
# file outside manifests/ so the tree stays clean; down.sh deletes what it lists.
gen="$CLUSTER_DIR/operator"
mkdir -p "$gen"
KUBECTL="$K8S_BIN/kubectl" bash scripts/render-operator.sh --base "$CLUSTER_SRC/operator" \
  --operator-image "${ref[operator]}" --scorer-image "${ref[scorer]}" \
  --env "WATCH_NAMESPACE=$watch_ns" --env "MODEL_ALLOWED_HOSTS=*.blob.core.windows.net,$NODE_IP" \
  --out "$gen/operator.yaml" >/dev/null
kubectl_admin apply -f "$gen/operator.yaml" | sed 's/^/    /'
info "waiting for the rollout (two replicas on $NODE_NAME; one leads)"
if ! kubectl_admin -n fnol-system rollout status deployment/fnol-operator --timeout=180s | sed 's/^/    /'; then
  kubectl_admin -n fnol-system get pods -o wide >&2 || true
  kubectl_admin -n fnol-system logs deployment/fnol-operator --tail=30 >&2 || true
  die "the operator did not become ready; its pods and last log lines are above (kubectl -n fnol-system describe pods)"
fi
step "Operator running in fnol-system in $(elapsed "$start_all")"
info "scorer image   ${ref[scorer]}"
info "operator image ${ref[operator]}"
info "watching       ${watch_ns:-all namespaces}"
info "logs           $K8S_BIN/kubectl --kubeconfig $ADMIN_KUBECONFIG -n fnol-system logs deployment/fnol-operator"
