#!/usr/bin/env bash
# npm run bench:scorer: the scorer against the data scientists' original score.py
# (served unchanged by azureml-inference-server-http) and against a bare Node
# server (the ceiling of any Node service here). Installs wrk from Debian when it
# is missing, sets up the original's own virtual environment (bench/scorer/.venv,
# not the project's .venv, from the hashed lock bench/scorer/baseline/requirements.txt),
# makes sure the compiled model exists, then runs bench.ts (which builds the scorer
# workspace with tsc and measures the compiled output, as the image runs it).
#   bash bench/scorer/run.sh lock   regenerates the lock from requirements.in
#   BENCH_ONLY=shadow               only the shadow mirroring comparison (no original)
#   BENCH_ONLY=payload-log          only payload logging at 100 % vs off (no original)
#   BENCH_ONLY=drift                only drift monitoring on vs off (no original)
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ROOT"
BENCH_VENV="$ROOT/bench/scorer/.venv"
REQ="$ROOT/bench/scorer/baseline/requirements.txt"

if [ "${1:-}" = lock ]; then
  # pip-tools from a throwaway environment, as scripts/model.sh lock does.
  tools="$(mktemp -d)"
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check pip-tools==7.6.2
  (cd bench/scorer/baseline && PIP_FIND_LINKS='' "$tools/bin/pip-compile" -q --generate-hashes --strip-extras \
    --no-emit-index-url --no-emit-find-links --output-file requirements.txt requirements.in)
  rm -rf "$tools"
  info "bench/scorer/baseline/requirements.txt regenerated"
  exit 0
fi

if ! command -v wrk >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "wrk is missing; run this as root or install it: apt-get install -y wrk"
  command -v apt-get >/dev/null || die "apt-get not found: install wrk with this system's package manager"
  step "installing wrk (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends wrk
fi

stamp="$BENCH_VENV/.req-sha"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
# BENCH_ONLY=shadow, payload-log or drift measures the scorer against itself: the original is not started.
case "${BENCH_ONLY:-}" in shadow | payload-log | drift) only_scorer=1 ;; *) only_scorer=0 ;; esac
if [ "$only_scorer" = 0 ] && { [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; }; then
  step "original's virtual environment bench/scorer/.venv (azureml-inference-server-http, catboost; pinned and hashed)"
  python3 -m venv --clear "$BENCH_VENV"
  "$BENCH_VENV/bin/pip" install --disable-pip-version-check -q --require-hashes --no-deps --only-binary :all: -r "$REQ"
  echo "$want" > "$stamp"
fi
[ "$(nproc)" -lt 2 ] || command -v taskset >/dev/null || die "taskset is missing (util-linux); the mirroring comparison pins the scorers to cores"
[ -f build/model/fnol-1.0.0.onnx ] || { step "compiling the model"; npm run -s model:build; }
step "benchmark: scorer vs the original score.py vs bare Node, on loopback ($(nproc) cores)"
exec node --require tsx/cjs bench/scorer/bench.ts "$@"
