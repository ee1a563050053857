# Settings and helpers of the local cluster scripts, on top of scripts/lib.sh.
# Sourced, not executed.
#
# Every setting can be overridden from the environment; defaults keep everything
# on 127.0.0.1 and inside the repository's .cluster/ folder.
# shellcheck disable=SC2034 # the settings here are used by the scripts that source this file
CLUSTER_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../scripts/lib.sh
source "$CLUSTER_SRC/../scripts/lib.sh"

# Versions, all pinned by cluster/build/go.mod (etcd is the release Kubernetes
# itself is tested with).
K8S_VERSION="$(awk '{ sub(/^require[ \t]+/, "") } $1 == "k8s.io/kubernetes" { print $2; exit }' "$CLUSTER_SRC/build/go.mod")"
ETCD_VERSION="$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ { print $2; exit }' "$CLUSTER_SRC/build/go.mod")"
KWOK_VERSION="$(awk '$1 == "sigs.k8s.io/kwok" && $2 ~ /^v/ { print $2; exit }' "$CLUSTER_SRC/build/go.mod")"
{ [ -n "$K8S_VERSION" ] && [ -n "$ETCD_VERSION" ] && [ -n "$KWOK_VERSION" ]; } ||
  die "cannot read the Kubernetes, etcd and kwok versions from cluster/build/go.mod"

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

# stop_recorded NAME: stops a process started by start/start_bin (SIGTERM, then
# SIGKILL if it is still there after 15 s) and removes its pid file. Prints the
# pid it stopped; returns 1 if the process was not running.
stop_recorded() {
  local name="$1" pid
  pid="$(pid_of "$name")"
  if [ -z "$pid" ]; then
    rm -f "$PIDS/$name.pid"
    return 1
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do
    [ -d "/proc/$pid" ] || break
    sleep 0.25
  done
  if [ -d "/proc/$pid" ]; then
    warn "$name (pid $pid) did not stop within 15 s of SIGTERM: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 20); do
      [ -d "/proc/$pid" ] || break
      sleep 0.25
    done
  fi
  rm -f "$PIDS/$name.pid"
  echo "$pid"
}

# issue_cert NAME SUBJECT USAGE [SANS]: $PKI/NAME.crt and .key, an EC P-256 leaf
# certificate signed by the local CA (kept if both exist already; run with umask 077).
issue_cert() {
  local name="$1" subj="$2" usage="$3" sans="${4:-}"
  [ -s "$PKI/$name.crt" ] && [ -s "$PKI/$name.key" ] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature, keyEncipherment"
    echo "extendedKeyUsage = $usage"
    [ -z "$sans" ] || echo "subjectAltName = $sans"
  } >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 825 -extfile "$PKI/$name.ext" \
    -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
  info "$name: $subj"
}

# write_kubeconfig FILE USER NAMESPACE FIELD...: a kubeconfig (mode 0600) for the
# local API server, the CA embedded, with the user's credential FIELDs ("key:
# value" lines: a client certificate and key, a token or a tokenFile) and, when
# NAMESPACE is not empty, that default namespace.
write_kubeconfig() {
  local file="$1" user="$2" namespace="$3" field
  shift 3
  (
    umask 077
    {
      printf 'apiVersion: v1\nkind: Config\nclusters:\n  - name: fnol-local\n    cluster:\n'
      printf '      server: https://%s:%s\n' "$HOST_IP" "$APISERVER_PORT"
      printf '      certificate-authority-data: %s\n' "$(base64 -w0 "$PKI/ca.crt")"
      printf 'users:\n  - name: %s\n    user:\n' "$user"
      for field in "$@"; do printf '      %s\n' "$field"; done
      printf 'contexts:\n  - name: fnol-local\n    context:\n      cluster: fnol-local\n      user: %s\n' "$user"
      [ -z "$namespace" ] || printf '      namespace: %s\n' "$namespace"
      printf 'current-context: fnol-local\n'
    } >"$file"
  )
}

# A cached Go build (cluster/build.sh, cluster/ingress/build.sh).
# go_build_stamp DIR: names the inputs of the build in DIR (go.mod, go.sum, Go version).
go_build_stamp() {
  echo "$(cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-16) go=$(go env GOVERSION 2>/dev/null || echo none)"
}

# go_build_gate MODE CACHE WHAT CACHED_FN: the start every cached build shares.
# MODE check exits with CACHED_FN's answer; MODE build exits 0 when CACHED_FN
# says the cache is current. Otherwise it takes CACHE's build lock (fd 8),
# waiting for a concurrent build and checking again after it, checks that go is
# installed, and returns so that the caller builds.
go_build_gate() {
  local mode="$1" cache="$2" what="$3" cached_fn="$4"
  if [ "$mode" = "check" ]; then
    "$cached_fn"
    exit $?
  fi
  if [ "$mode" = "build" ] && "$cached_fn"; then
    info "$what: cached and current"
    exit 0
  fi
  mkdir -p "$cache"
  exec 8>"$cache/.build.lock"
  if ! flock -n 8; then
    info "another build into $cache is running; waiting for it to finish"
    flock 8
    if [ "$mode" = "build" ] && "$cached_fn"; then
      info "$what: cached and current"
      exit 0
    fi
  fi
  command -v go >/dev/null || die "go is not installed; install Go 1.26 or newer (https://go.dev/dl/)"
}

# go_build_with_progress LABEL TOTAL LOG CMD...: runs a go build (-v output
# appended to LOG) and prints, every 20 s, how many of the TOTAL packages it has
# compiled (packages already in GOCACHE are not listed, so a warm build
# finishes early). Returns the build's exit status.
go_build_with_progress() {
  local label="$1" total="$2" log="$3" start rc pid
  shift 3
  start="$(now)"
  info "$label: started $(date -u +%H:%M:%S) UTC, log $log"
  "$@" >"$log.step" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 20); do
      sleep 1
      kill -0 "$pid" 2>/dev/null || break
    done
    if kill -0 "$pid" 2>/dev/null; then
      info "$label: $(elapsed "$start"), $(grep -vc '^go: downloading' "$log.step") of ~$total packages compiled (now: $(tail -1 "$log.step" | cut -c1-60))"
    fi
  done
  rc=0
  wait "$pid" || rc=$?
  cat "$log.step" >>"$log"
  rm -f "$log.step"
  [ "$rc" -ne 0 ] || info "$label: done in $(elapsed "$start")"
  return "$rc"
}
