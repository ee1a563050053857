#!/usr/bin/env bash
# Runs every test of the project: lint and type checks, the model compiler's
# pytest suite (parity included) and every mocha suite (unit, integration on the
# local cluster, end to end). Installs what it needs first. Prints one closing
# line "N passed, N failed" over all runners.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
bash scripts/setup.sh

mkdir -p reports
step "lint: eslint, prettier, ruff, shellcheck; typecheck: tsc, mypy"
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --check .; die "files are not formatted: run npm run format"; }
"$VENV/bin/ruff" check model
"$VENV/bin/ruff" format --check model
(cd model && "$VENV/bin/mypy")
bash scripts/shellcheck.sh
npx tsc -p tsconfig.json --noEmit

step "model: compile 1.0.0 and retrain 1.1.0"
bash scripts/model.sh build
bash scripts/model.sh train

passed=0 failed=0
step "pytest: model compiler and parity"
set +e
"$PY" -m pytest model/tests -q -p no:cacheprovider --junitxml=reports/pytest.xml 2>&1 | tee reports/pytest.log
py_rc=${PIPESTATUS[0]}
set -e
p=$(grep -Eo '[0-9]+ passed' reports/pytest.log | tail -1 | cut -d' ' -f1 || true); passed=$((passed + ${p:-0}))
f=$( (grep -Eo '[0-9]+ (failed|error)' reports/pytest.log || true) | awk '{s+=$1} END {print s+0}'); failed=$((failed + f))
if [ "$py_rc" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); fi

step "mocha: TypeScript unit, integration and end-to-end suites"
# The local cluster gets its real node (containerd, kubelet, kube-proxy), so the
# suites that run real containers run too; FNOL_REAL_NODE=0 leaves it out.
export FNOL_REAL_NODE="${FNOL_REAL_NODE:-1}"
cluster_was_running=0
bash cluster/status.sh >/dev/null 2>&1 && cluster_was_running=1
set +e
npx mocha --reporter spec '{lib,scorer,operator,cli,cluster,pipeline,bench,test}/**/*.test.ts' 2>&1 | tee reports/mocha.log
mocha_rc=${PIPESTATUS[0]}
set -e
p=$(grep -Eo '[0-9]+ passing' reports/mocha.log | tail -1 | cut -d' ' -f1 || true); passed=$((passed + ${p:-0}))
f=$(grep -Eo '[0-9]+ failing' reports/mocha.log | tail -1 | cut -d' ' -f1 || true); failed=$((failed + ${f:-0}))
if [ "$mocha_rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then failed=$((failed + 1)); fi

# The suites stop the cluster, its real node and the Ingress controller they
# started; check that the machine is as clean as before.
clean_rc=0
if [ "$cluster_was_running" -eq 1 ] || [ "${FNOL_CLUSTER_KEEP:-0}" = "1" ]; then
  step "teardown: not checked (the cluster ran before the tests, or FNOL_CLUSTER_KEEP=1, and is left running)"
else
  step "teardown: nothing of the local cluster left behind"
  if bash cluster/check-clean.sh; then passed=$((passed + 1)); else clean_rc=1 failed=$((failed + 1)); fi
fi

echo
echo "$passed passed, $failed failed"
[ "$py_rc" -eq 0 ] && [ "$mocha_rc" -eq 0 ] && [ "$clean_rc" -eq 0 ]
