# Settings and helpers shared by the local cluster scripts. Sourced, not executed.
#
# Every setting can be overridden from the environment; defaults keep everything
# on 127.0.0.1 and inside the repository's .cluster/ folder.
set -euo pipefail

CLUSTER_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$CLUSTER_SRC/.." && pwd)"
export ROOT

# Versions, all pinned by cluster/build/go.mod (etcd is the release Kubernetes
# itself is tested with).
K8S_VERSION="$(awk '{ sub(/^require[ \t]+/, "") } $1 == "k8s.io/kubernetes" { print $2; exit }' "$CLUSTER_SRC/build/go.mod")"
ETCD_VERSION="$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ { print $2; exit }' "$CLUSTER_SRC/build/go.mod")"
KWOK_VERSION="$(awk '$1 == "sigs.k8s.io/kwok" && $2 ~ /^v/ { print $2; exit }' "$CLUSTER_SRC/build/go.mod")"
[ -n "$K8S_VERSION" ] && [ -n "$ETCD_VERSION" ] && [ -n "$KWOK_VERSION" ] || {
  echo "error: cannot read the Kubernetes, etcd and kwok versions from cluster/build/go.mod" >&2
  exit 1
}

# Binary cache, one folder per Kubernetes version.
K8S_CACHE="${FNOL_K8S_CACHE:-$HOME/.cache/fnol/k8s}"
K8S_BIN="${FNOL_K8S_BIN:-$K8S_CACHE/$K8S_VERSION/bin}"

# Runtime state: certificates, kubeconfigs, etcd data, logs, process ids.
CLUSTER_DIR="${FNOL_CLUSTER_DIR:-$ROOT/.cluster}"
PKI="$CLUSTER_DIR/pki"
KCFG="$CLUSTER_DIR/kubeconfigs"
LOGS="$CLUSTER_DIR/logs"
PIDS="$CLUSTER_DIR/pids"
ETCD_DATA="$CLUSTER_DIR/etcd"
ADMIN_KUBECONFIG="$CLUSTER_DIR/kubeconfig"

# Loopback ports.
HOST_IP="127.0.0.1"
# The real node's address on its bridge (cluster/node/). Pods reach the API server
# there, through the kubernetes Service (10.96.0.1:443), so the API server listens
# on every address and advertises this one. Clients on the host use 127.0.0.1.
NODE_IP="${FNOL_NODE_IP:-10.250.0.1}"
APISERVER_BIND="${FNOL_APISERVER_BIND:-0.0.0.0}"
APISERVER_PORT="${FNOL_APISERVER_PORT:-6443}"
ETCD_PORT="${FNOL_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${FNOL_ETCD_PEER_PORT:-2380}"
KCM_PORT="${FNOL_KCM_PORT:-10257}"
SCHEDULER_PORT="${FNOL_SCHEDULER_PORT:-10259}"
KWOK_PORT="${FNOL_KWOK_PORT:-10247}"

# Simulated nodes managed by kwok.
KWOK_NODES="${FNOL_KWOK_NODES:-2}"

SERVICE_CIDR="10.96.0.0/16"
SERVICE_IP="10.96.0.1"
SA_ISSUER="https://kubernetes.default.svc.cluster.local"

# Components in start order; down.sh stops them in reverse.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Seconds since the epoch with a fractional part, and a duration formatter.
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { d = e - s; printf "%dm%02ds", d / 60, d % 60 }'; }

# pid_of COMPONENT: prints the recorded pid if that process is still ours
# (alive and running the binary we started), else nothing. A pid file holds
# "<pid> <binary path>".
pid_of() {
  local file="$PIDS/$1.pid" pid want exe
  [ -f "$file" ] || return 0
  read -r pid want <"$file" || true
  [ -n "$pid" ] && [ -n "$want" ] && [ -d "/proc/$pid" ] || return 0
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  if [ "$exe" = "$want" ] || [ "$exe" = "$want (deleted)" ]; then echo "$pid"; fi
}

# port_in_use PORT: true if something listens on 127.0.0.1:PORT or on all addresses.
port_in_use() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# start NAME ARGS...: runs the cached binary NAME in its own session (so it
# outlives this script and the shell or test run that started it) and records
# its pid. start_bin NAME BINARY ARGS... does the same for any binary.
start() {
  local name="$1"
  shift
  start_bin "$name" "$K8S_BIN/$name" "$@"
}
start_bin() {
  local name="$1" bin="$2"
  shift 2
  printf '\n=== %s started %s\n' "$name" "$(date -u +%FT%TZ)" >>"$LOGS/$name.log"
  # 8>&- 9>&-: the build and cluster locks stay with this script, not the component.
  setsid "$bin" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 8>&- 9>&- &
  echo "$! $(readlink -f "$bin")" >"$PIDS/$name.pid"
}

# wait_for LABEL TIMEOUT_S COMPONENT CMD...: polls CMD until it succeeds; fails
# early if COMPONENT's process has exited.
wait_for() {
  local label="$1" timeout="$2" comp="$3" t0
  shift 3
  t0="$(now)"
  for _ in $(seq $((timeout * 4))); do
    if "$@" >/dev/null 2>&1; then
      info "$label ($(elapsed "$t0"))"
      return 0
    fi
    if [ -n "$comp" ] && [ -z "$(pid_of "$comp")" ]; then
      tail -n 20 "$LOGS/$comp.log" >&2
      die "$comp exited during start-up; its log is $LOGS/$comp.log (last lines above)"
    fi
    sleep 0.25
  done
  [ -z "$comp" ] || tail -n 20 "$LOGS/$comp.log" >&2
  die "timed out after ${timeout}s waiting for: $label${comp:+ (log: $LOGS/$comp.log)}"
}

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
