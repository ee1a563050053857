#!/usr/bin/env bash
# Pipeline stage ClusterTest: the suites that need the local cluster (the
# operator's and fnolctl's integration suites, the cluster's own suites and the
# end-to-end suites), on the project's local cluster with its real node, as
# `npm test` runs them; JUnit in reports/junit/cluster.xml. Then the cluster,
# the ingress controller and the model store are stopped and the machine is
# checked for leftovers. Needs root (the real node: containerd, kubelet,
# iptables); on a hosted agent it re-runs itself with sudo.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "the cluster suites need root (the real node) and sudo is not installed"
  exec sudo -E env "PATH=$PATH" "HOME=$HOME" bash "$0" "$@"
fi
mkdir -p reports/junit
# FNOL_CACHE_DIR: one folder for the cached builds (the pipeline's Cache@2 path).
if [ -n "${FNOL_CACHE_DIR:-}" ]; then
  export FNOL_K8S_CACHE="$FNOL_CACHE_DIR/k8s" FNOL_INGRESS_CACHE="$FNOL_CACHE_DIR/ingress"
  export FNOL_PROMETHEUS_CACHE="$FNOL_CACHE_DIR/prometheus"
fi
export FNOL_REAL_NODE="${FNOL_REAL_NODE:-1}"
rc=0
step "mocha: cluster, integration and end-to-end suites (JUnit reports/junit/cluster.xml)"
npx mocha 'operator/test/integration/**/*.test.ts' 'cli/test/integration/**/*.test.ts' 'cluster/test/**/*.test.ts' \
  'test/e2e/**/*.test.ts' --reporter xunit --reporter-option output=reports/junit/cluster.xml || rc=1
step "stopping everything the suites started"
bash scripts/stop.sh || rc=1 # and checks that nothing is left (cluster/check-clean.sh)
exit "$rc"
