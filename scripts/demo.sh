#!/usr/bin/env bash
# The main job, end to end on this machine: compile the FNOL model, serve it with
# the scorer and score the example records over HTTP.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
start=$(date +%s)

step "1/4 install (npm packages, Python environment)"
bash scripts/setup.sh

step "2/4 compile the CatBoost models to ONNX (parity gate included)"
bash scripts/model.sh build
MODEL="$ROOT/build/model/fnol-1.0.0.onnx"
SHA=$(sha256sum "$MODEL" | cut -d' ' -f1)

step "3/4 the compiled graph's predictions for the example records (onnxruntime, in process)"
bash scripts/model.sh predict --model "$MODEL"

step "4/4 serve it with the scorer and score the example records over HTTP"
PORT="${DEMO_SCORER_PORT:-18080}"
LOG="$ROOT/build/demo-scorer.log"
MODEL_URI="file://$MODEL" MODEL_SHA256="$SHA" MODEL_NAME=fnol MODEL_VERSION=1.0.0 PORT="$PORT" \
  node --require tsx/cjs scorer/src/main.ts >"$LOG" 2>&1 &
scorer_pid=$!
trap 'kill $scorer_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 $scorer_pid 2>/dev/null || { cat "$LOG"; die "the scorer exited; its log is above"; }
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || die "the scorer did not become ready; see $LOG"
body='{"data": [[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37], [37,36,35,34,33,32,31,30,29,28,27,26,25,24,23,22,21,20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1]]}'
info "POST /score $body"
info "-> $(curl -fsS -H 'content-type: application/json' -d "$body" "http://127.0.0.1:$PORT/score")"
first=$("$PY" - "$FNOL_ARTIFACTS/Data_Scientist_Interview_Task.csv" <<'PY'
import json, sys
sys.path.insert(0, "model")
from fnol_model.fnol import FEATURES, read_training_csv
row = read_training_csv(sys.argv[1]).iloc[0]
print(json.dumps({"records": [{f: (row[f] if isinstance(row[f], str) else float(row[f])) for f in FEATURES}]}))
PY
)
info "POST /score (first CSV row as a named record)"
info "-> $(curl -fsS -H 'content-type: application/json' -d "$first" "http://127.0.0.1:$PORT/score")"

step "done in $(( $(date +%s) - start )) s"
info "model:  $MODEL (sha256 $SHA)"
info "card:   build/model/fnol-1.0.0.model-card.json"
