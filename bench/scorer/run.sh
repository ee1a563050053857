#!/usr/bin/env bash
# npm run bench:scorer: the scorer against the Azure ML-style Python baseline.
# Sets up the baseline's own virtual environment (bench/scorer/.venv, not the
# project's .venv), makes sure the compiled model exists, then runs bench.ts.
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ROOT"
BENCH_VENV="$ROOT/bench/scorer/.venv"
REQ="$ROOT/bench/scorer/baseline/requirements.txt"
stamp="$BENCH_VENV/.req-sha"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  step "baseline virtual environment bench/scorer/.venv (azureml-inference-server-http, catboost)"
  [ -x "$BENCH_VENV/bin/python" ] || python3 -m venv "$BENCH_VENV"
  "$BENCH_VENV/bin/pip" install --disable-pip-version-check -q -r "$REQ"
  echo "$want" > "$stamp"
fi
[ -f build/model/fnol-1.0.0.onnx ] || { step "compiling the model"; npm run -s model:build; }
step "benchmark: scorer vs baseline on loopback ($(nproc) cores)"
exec node --require tsx/cjs bench/scorer/bench.ts "$@"
