#!/usr/bin/env bash
# The model compiler's commands, run in the project's Python environment.
#   build   compile ../shared/fnol (or $FNOL_ARTIFACTS) to build/model/fnol-1.0.0.onnx + model card
#   train   retrain the recipe from the CSV and compile it as 1.1.0
#   test    pytest suite of the compiler (parity included)
#   predict print a compiled model's predictions for the example records
#   compile compile any single CatBoost model: compile <model.cbm> --out <model.onnx> [--data <csv>] [--reference-data <csv>]
#   soak    property check on many random models (default 200), summary in build/model/soak.json
#   lock    regenerate model/requirements.txt (pinned, with sha256 hashes) from model/requirements.in
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
[ -x "$PY" ] || bash scripts/setup.sh
export PYTHONPATH="$ROOT/model${PYTHONPATH:+:$PYTHONPATH}"
cmd="${1:-}"; shift || true
case "$cmd" in
  build) exec "$PY" -m fnol_model build --version "${MODEL_VERSION:-1.0.0}" --out build/model "$@" ;;
  train)
    out="build/model/fnol-${MODEL_VERSION:-1.1.0}.onnx"
    if [ -f "$out" ] && [ -z "$(find model/fnol_model "$FNOL_ARTIFACTS" -newer "$out" -type f -print -quit)" ]; then
      info "$out is newer than the compiler and the training data: not retraining (delete it to force)"
      exit 0
    fi
    exec "$PY" -m fnol_model train --version "${MODEL_VERSION:-1.1.0}" --out build/model "$@" ;;
  predict) exec "$PY" -m fnol_model predict "$@" ;;
  compile) exec "$PY" -m fnol_model compile "$@" ;;
  soak) exec "$PY" -m fnol_model soak --out build/model/soak.json "$@" ;;
  test) exec "$PY" -m pytest model/tests -q "$@" ;;
  lock)
    # pip-tools runs from a throwaway environment: it is a tool for maintainers, not a
    # dependency of the compiler. The lock pins every transitive package with the hashes
    # of all its published files, so the same lock installs on every Linux/macOS machine.
    tools="$(mktemp -d)"
    python3 -m venv "$tools"
    "$tools/bin/pip" install -q --disable-pip-version-check pip-tools==7.6.2
    (cd model && PIP_FIND_LINKS='' "$tools/bin/pip-compile" -q --generate-hashes --strip-extras --no-emit-index-url \
      --no-emit-find-links --output-file requirements.txt requirements.in)
    rm -rf "$tools"
    info "model/requirements.txt regenerated; run npm run setup to install it" ;;
  *) die "usage: scripts/model.sh build|train|test|predict|compile|soak|lock [args]" ;;
esac
