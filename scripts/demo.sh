#!/usr/bin/env bash
# The main job, end to end on this machine: the FNOL model compiled, published to
# the model store, served by the operator from a FnolModel on a local Kubernetes
# cluster with a real node, and the example records scored through the Ingress.
#
# The operator runs as pods on the real node, installed from manifests/ as on
# AKS (cluster/operator/up.sh). Leaves the cluster, the operator, the ingress
# controller and the model store running to look around; the last lines say
# how to stop them. DEMO_NAMESPACE, DEMO_HOST change
# where the FnolModel goes.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
start="$(now)"
NS="${DEMO_NAMESPACE:-fnol-demo}"
HOST="${DEMO_HOST:-fnol.local}"
INGRESS_PORT="${FNOL_INGRESS_PORT:-18081}"
NODE_IP="${FNOL_NODE_IP:-10.250.0.1}"
export KUBECONFIG="$ROOT/.cluster/kubeconfig"
mkdir -p build

step "1/8 install (npm packages, Python environment)"
bash scripts/setup.sh

step "2/8 compile the CatBoost models to one ONNX graph (parity gate included)"
bash scripts/model.sh build
bash scripts/model.sh predict --model build/model/fnol-1.0.0.onnx

step "3/8 local Kubernetes: control plane, a real node, the Ingress controller (a cold build takes a while)"
FNOL_REAL_NODE=1 bash cluster/up.sh
bash cluster/ingress/up.sh
KUBECTL="$(bash -c 'source cluster/lib.sh; echo "$K8S_BIN/kubectl"')"
kc() { "$KUBECTL" "$@"; }

step "4/8 model store (Azurite) on the node's bridge address, publish 1.0.0"
export FNOL_STORE_HOST="$NODE_IP"
# The demo starts from an empty local store: versions are immutable, and a
# previous demo may have published a 1.0.0 built by another compiler version.
bash store/down.sh --purge >/dev/null 2>&1 || true
bash store/up.sh
AZURE_STORAGE_CONNECTION_STRING="$(bash store/connection-string.sh)"
export AZURE_STORAGE_CONNECTION_STRING
published="$(npx tsx cli/src/publish-model.ts --version 1.0.0 --json)"
MODEL_URI="$(node -e 'console.log(JSON.parse(process.argv[1]).uri)' "$published")"
MODEL_SHA="$(node -e 'console.log(JSON.parse(process.argv[1]).sha256)' "$published")"
# Locally the pods read the published blob anonymously; in production the scorer
# gets a SAS token from spec.model.credentialsSecretRef over https.
node -e "
const { BlobServiceClient } = require('@azure/storage-blob');
BlobServiceClient.fromConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING)
  .getContainerClient(new URL(process.argv[1]).pathname.split('/')[2]).setAccessPolicy('blob')
  .catch((e) => { console.error('error: ' + e.message); process.exit(1); });" "$MODEL_URI"
info "model URI $MODEL_URI"
info "sha256    $MODEL_SHA"

step "5/8 images (buildah, locally assembled base) in the node's containerd; the operator as pods, from manifests/"
kc get namespace "$NS" >/dev/null 2>&1 || kc create namespace "$NS"
kc label --overwrite namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null
# The demo's operator watches the demo namespace only, so it leaves alone the
# FnolModels of operators the test suites start on the same cluster.
bash cluster/operator/up.sh --watch-namespace "$NS"

step "6/8 the operator's pods on the real node"
kc -n fnol-system get pods -o wide
info "leader: $(kc -n fnol-system get lease fnol-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || echo 'not elected yet')"

step "7/8 the FnolModel: version 1.0.0 on the real node, exposed at http://$HOST/"
kc apply -f - <<YAML
apiVersion: serving.fnol.io/v1alpha1
kind: FnolModel
metadata:
  name: fnol
  namespace: $NS
spec:
  model:
    version: 1.0.0
    uri: $MODEL_URI
    sha256: $MODEL_SHA
  replicas: 2
  resources:
    requests: { cpu: 100m, memory: 256Mi }
    limits: { cpu: '1', memory: 1Gi }
  nodeSelector:
    fnol.local/node-kind: real
  tolerations:
    - { key: fnol.local/real-node, operator: Exists, effect: NoSchedule }
  ingress:
    host: $HOST
    path: /
    className: nginx
YAML
info "waiting for the FnolModel to be Ready (pods load the model and pass its self-test)"
for i in $(seq 1 180); do
  phase="$(kc -n "$NS" get fm fnol -o jsonpath='{.status.phase}' 2>/dev/null || true)"
  [ "$phase" = "Ready" ] && break
  [ $((i % 10)) -eq 0 ] && info "  phase ${phase:-Pending} after $((i)) s"
  sleep 1
done
kc -n "$NS" get fm fnol
kc -n "$NS" get pods -o wide
[ "$phase" = "Ready" ] || { kc -n "$NS" describe fm fnol | tail -20; die "the FnolModel did not become Ready; its conditions and events are above; the operator's log: kubectl -n fnol-system logs deployment/fnol-operator"; }

step "8/8 score the example records through the Ingress (Host: $HOST, 127.0.0.1:$INGRESS_PORT)"
body='{"data": [[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37], [37,36,35,34,33,32,31,30,29,28,27,26,25,24,23,22,21,20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1]]}'
result=""
for _ in $(seq 1 30); do
  result="$(curl -fsS -H "Host: $HOST" -H 'content-type: application/json' -d "$body" "http://127.0.0.1:$INGRESS_PORT/score" 2>/dev/null)" && break
  sleep 1
done
[ -n "$result" ] || die "no answer through the Ingress; see 'kubectl -n $NS get ingress' and .cluster/logs/traefik.log"
info "POST http://$HOST/score (the original smoke rows)"
info "-> $result"
first=$("$PY" - "$FNOL_ARTIFACTS/Data_Scientist_Interview_Task.csv" <<'PY'
import json, sys
sys.path.insert(0, "model")
from fnol_model.fnol import FEATURES, read_training_csv
row = read_training_csv(sys.argv[1]).iloc[0]
print(json.dumps({"records": [{f: (row[f] if isinstance(row[f], str) else float(row[f])) for f in FEATURES}]}))
PY
)
info "POST http://$HOST/score (the first CSV row as a named record)"
info "-> $(curl -fsS -H "Host: $HOST" -H 'content-type: application/json' -d "$first" "http://127.0.0.1:$INGRESS_PORT/score")"

step "done in $(elapsed "$start")"
info "model      fnol 1.0.0, sha256 $MODEL_SHA, published at $MODEL_URI"
info "serving    $(kc -n "$NS" get fm fnol -o jsonpath='{.status.readyReplicas}') ready scorer pods on the real node, FnolModel $NS/fnol $(kc -n "$NS" get fm fnol -o jsonpath='{.status.phase}')"
info "endpoint   curl -H 'Host: $HOST' http://127.0.0.1:$INGRESS_PORT/score -d '{\"data\": [[...37 values...]]}'"
info "look       KUBECONFIG=.cluster/kubeconfig $KUBECTL -n $NS get fm,deploy,svc,ingress,pods"
info "operator   $(kc -n fnol-system get deploy fnol-operator -o jsonpath='{.status.readyReplicas}') ready pods in fnol-system (logs: kubectl -n fnol-system logs deployment/fnol-operator)"
info "stop       npm run stop (the cluster with the operator and the FnolModel, the ingress controller, Prometheus, the model stores)"
