#!/usr/bin/env bash
# The main job, end to end on this machine: the FNOL model compiled, published to
# the model store, served by the operator from a FnolModel on a local Kubernetes
# cluster with a real node, the example records scored through the Ingress, and
# a drifted batch (every claim notified late, in snow) raising the drift alert in
# the local Prometheus.
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

step "1/9 install (npm packages, Python environment)"
bash scripts/setup.sh

step "2/9 compile the CatBoost models to one ONNX graph (parity gate included)"
bash scripts/model.sh build
bash scripts/model.sh predict --model build/model/fnol-1.0.0.onnx

step "3/9 local Kubernetes: control plane, a real node, the Ingress controller (a cold build takes a while)"
FNOL_REAL_NODE=1 bash cluster/up.sh
bash cluster/ingress/up.sh
KUBECTL="$(bash -c 'source cluster/lib.sh; echo "$K8S_BIN/kubectl"')"
kc() { "$KUBECTL" "$@"; }

step "4/9 model store (Azurite) on the node's bridge address, publish 1.0.0"
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

step "5/9 images (buildah, locally assembled base) in the node's containerd; the operator as pods, from manifests/"
kc get namespace "$NS" >/dev/null 2>&1 || kc create namespace "$NS"
kc label --overwrite namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null
# The demo's operator watches the demo namespace only, so it leaves alone the
# FnolModels of operators the test suites start on the same cluster.
bash cluster/operator/up.sh --watch-namespace "$NS"

step "6/9 the operator's pods on the real node"
kc -n fnol-system get pods -o wide
info "leader: $(kc -n fnol-system get lease fnol-operator -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || echo 'not elected yet')"

step "7/9 the FnolModel: version 1.0.0 on the real node, exposed at http://$HOST/"
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

step "8/9 score the example records through the Ingress (Host: $HOST, 127.0.0.1:$INGRESS_PORT)"
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

step "9/9 monitoring: Prometheus scrapes the scorer pods; a drifted batch raises the drift alert"
t_drift="$(now)"
# Without the demo's admin KUBECONFIG: up.sh checks Prometheus' own token, and
# kubectl would otherwise present the admin certificate beside it.
env -u KUBECONFIG bash cluster/monitoring/up.sh
PROM_API="$(bash -c 'source cluster/monitoring/lib.sh; echo "http://$HOST_IP:$MONITORING_PORT"')"
# 1,000 claims from the training CSV as the graph receives them, every one reported
# 30 to 364 days after the loss and in snow: two inputs moved, the rest as trained.
drifted="build/demo-drifted-claims.json"
"$PY" - "$FNOL_ARTIFACTS/Data_Scientist_Interview_Task.csv" >"$drifted" <<'PY'
import json, math, random, sys
sys.path.insert(0, "model")
from fnol_model.fnol import read_graph_inputs
df = read_graph_inputs(sys.argv[1]).sample(n=1000, random_state=13)
rng = random.Random(13)
records = []
for row in df.to_dict(orient="records"):
    record = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
    record["Weather_conditions"] = "SNOW,ICE,FOG"
    record["Notification_period"] = rng.randint(30, 364)
    records.append(record)
print(json.dumps({"records": records}))
PY
# Each pod needs DRIFT_MIN_RECORDS (1,000) in its window before it reports a PSI.
for _ in $(seq 1 8); do
  curl -fsS -o /dev/null -H "Host: $HOST" -H 'content-type: application/json' --data-binary "@$drifted" \
    "http://127.0.0.1:$INGRESS_PORT/score" || die "the drifted batch was refused through the Ingress"
done
info "sent 8 x 1,000 drifted claims through the Ingress; waiting for Prometheus to scrape and evaluate (15 s each)"
alerts=""
for i in $(seq 1 120); do
  # shellcheck disable=SC2016 # the single-quoted text is JavaScript, not shell
  alerts="$(curl -fsS "$PROM_API/api/v1/alerts" 2>/dev/null | node -e '
let text = ""; process.stdin.on("data", (c) => (text += c)).on("end", () => {
  const alerts = JSON.parse(text).data.alerts.filter((a) => a.labels.alertname === "FnolInputDrift");
  for (const a of alerts) console.log(`${a.labels.alertname} ${a.state} feature=${a.labels.feature} PSI=${Number(a.value).toFixed(2)} (${a.labels.namespace}/${a.labels.fnolmodel})`);
});' 2>/dev/null || true)"
  [ -n "$alerts" ] && break
  [ $((i % 15)) -eq 0 ] && info "  no drift alert yet after $i s"
  sleep 1
done
[ -n "$alerts" ] || die "no FnolInputDrift alert in Prometheus ($PROM_API/alerts) within 120 s; see $PROM_API/targets and the pods' /metrics"
info "Prometheus $PROM_API/api/v1/alerts:"
while IFS= read -r line; do info "  $line"; done <<<"$alerts"
info "pending for 15 minutes before it fires (manifests/monitoring/rules/drift.rules.yaml); runbook docs/operations.md#fnolinputdrift"
info "monitoring step took $(elapsed "$t_drift")"

step "done in $(elapsed "$start")"
info "model      fnol 1.0.0, sha256 $MODEL_SHA, published at $MODEL_URI"
info "serving    $(kc -n "$NS" get fm fnol -o jsonpath='{.status.readyReplicas}') ready scorer pods on the real node, FnolModel $NS/fnol $(kc -n "$NS" get fm fnol -o jsonpath='{.status.phase}')"
info "endpoint   curl -H 'Host: $HOST' http://127.0.0.1:$INGRESS_PORT/score -d '{\"data\": [[...37 values...]]}'"
info "look       KUBECONFIG=.cluster/kubeconfig $KUBECTL -n $NS get fm,deploy,svc,ingress,pods"
info "operator   $(kc -n fnol-system get deploy fnol-operator -o jsonpath='{.status.readyReplicas}') ready pods in fnol-system (logs: kubectl -n fnol-system logs deployment/fnol-operator)"
info "prometheus $PROM_API/alerts (drift alerts pending), $PROM_API/graph?g0.expr=scorer_input_drift_psi"
info "stop       npm run stop (the cluster with the operator and the FnolModel, the ingress controller, Prometheus, the model stores)"
