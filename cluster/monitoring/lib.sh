# Settings shared by the local Prometheus scripts. Sourced, not executed.
#
# Prometheus comes from Debian's prometheus package, unpacked into a cache by
# scripts/prometheus.sh, and runs as a host process (like the ingress
# controller) that discovers the local cluster's pods through the API server
# with a ServiceAccount token, scrapes the scorer and operator pods and
# evaluates manifests/monitoring/rules/. Every setting can be overridden from
# the environment.
# shellcheck disable=SC2034 # the settings here are used by the scripts that source this file
MONITORING_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$MONITORING_SRC/../lib.sh"

# Loopback port of Prometheus' web UI and HTTP API.
MONITORING_PORT="${FNOL_PROMETHEUS_PORT:-19090}"

# Identity: ServiceAccount with a bound token (TokenRequest) and the read-only
# ClusterRole in cluster/monitoring/rbac.yaml.
MONITORING_NAMESPACE="fnol-monitoring"
MONITORING_SA="prometheus"
MONITORING_TOKEN_SECONDS="${FNOL_PROMETHEUS_TOKEN_SECONDS:-86400}"

MONITORING_STATE="$CLUSTER_DIR/monitoring"
MONITORING_CONFIG="$MONITORING_STATE/prometheus.yml"
MONITORING_DATA="$MONITORING_STATE/data"
# Pod targets for file_sd, written by cluster/monitoring/pod-discovery.ts.
MONITORING_TARGETS="$MONITORING_STATE/pod-targets.json"
MONITORING_RULES="$ROOT/manifests/monitoring/rules"
