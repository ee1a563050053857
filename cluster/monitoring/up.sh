#!/usr/bin/env bash
# Starts the local Prometheus (npm run monitoring:up): Debian's Prometheus, run
# on this host against the local cluster, discovering pods through the API
# server (Kubernetes service discovery, role pod), scraping the scorer and
# operator pods that carry the prometheus.io/* annotations (jobs of
# manifests/monitoring/scrape-configs.yaml) and evaluating the rule files of
# manifests/monitoring/rules/. Web UI and HTTP API: http://127.0.0.1:$FNOL_PROMETHEUS_PORT.
#
# Debian builds Prometheus without Kubernetes service discovery: a small host
# process (cluster/monitoring/pod-discovery.ts, pid file prometheus-sd) lists
# the pods with the ServiceAccount's token and writes them as file_sd targets
# with the labels Kubernetes discovery gives, so the jobs' relabeling is the
# one clusters use.
#
# Needs a running cluster (npm run cluster:up); pods are scraped where this host
# reaches them (the real node's pods, FNOL_REAL_NODE=1). Unpacks Prometheus into
# its cache if needed (scripts/prometheus.sh). Idempotent: with Prometheus
# already running on the same port it rewrites the configuration and reloads
# it (SIGHUP: rule files and scrape jobs are read again), and renews the token
# when half its lifetime has passed.
#
# Env: FNOL_PROMETHEUS_PORT (19090), FNOL_PROMETHEUS_CACHE (~/.cache/fnol/prometheus),
#      FNOL_PROMETHEUS_TOKEN_SECONDS (86400)
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit

for arg in "$@"; do die "unknown option '$arg' (cluster/monitoring/up.sh takes none; settings come from FNOL_PROMETHEUS_* variables)"; done
{ [[ "$MONITORING_PORT" =~ ^[0-9]+$ ]] && [ "$MONITORING_PORT" -ge 1 ] && [ "$MONITORING_PORT" -le 65535 ]; } ||
  die "FNOL_PROMETHEUS_PORT must be a port number (got '$MONITORING_PORT')"

start_all="$(now)"
mkdir -p "$MONITORING_STATE" "$LOGS" "$PIDS"
# Own lock (fd 9 of this process only).
exec 9>"$MONITORING_STATE/lock"
flock 9

{ [ -s "$ADMIN_KUBECONFIG" ] && kubectl_admin get --raw /readyz >/dev/null 2>&1; } ||
  die "the local cluster is not running (no ready API server behind $ADMIN_KUBECONFIG); start it with npm run cluster:up"

PROM_BIN="$(bash "$ROOT/scripts/prometheus.sh")"

# ---------------------------------------------------------------- identity
step "Prometheus identity: ServiceAccount $MONITORING_NAMESPACE/$MONITORING_SA (reads pods)"
kubectl_admin apply --server-side --force-conflicts --field-manager fnol-monitoring -f "$MONITORING_SRC/rbac.yaml" >/dev/null

token_file="$MONITORING_STATE/token"
token_valid() {
  [ -s "$token_file" ] || return 1
  local age=$(($(date +%s) - $(stat -c %Y "$token_file")))
  [ "$age" -lt $((MONITORING_TOKEN_SECONDS / 2)) ] || return 1
  # A cluster recreated since (new etcd) no longer knows the token's ServiceAccount.
  [ "$("$K8S_BIN/kubectl" --server "https://$HOST_IP:$APISERVER_PORT" --certificate-authority "$PKI/ca.crt" \
    --token "$(cat "$token_file")" auth can-i watch pods --all-namespaces 2>/dev/null)" = "yes" ]
}
if ! token_valid; then
  umask 077
  kubectl_admin create token "$MONITORING_SA" --namespace "$MONITORING_NAMESPACE" \
    --duration "${MONITORING_TOKEN_SECONDS}s" --audience "$SA_ISSUER" >"$token_file.new"
  mv "$token_file.new" "$token_file"
  umask 022
  info "new token for $MONITORING_NAMESPACE/$MONITORING_SA, valid $((MONITORING_TOKEN_SECONDS / 3600)) h ($token_file)"
fi

# ---------------------------------------------------------------- configuration
config="$(node --import tsx "$MONITORING_SRC/render-config.ts" --targets "$MONITORING_TARGETS")" ||
  die "cannot write the Prometheus configuration (cluster/monitoring/render-config.ts failed above)"
printf '%s\n' "$config" >"$MONITORING_CONFIG.new"
"$PROM_BIN/promtool" check config "$MONITORING_CONFIG.new" >"$MONITORING_STATE/check.log" 2>&1 || {
  cat "$MONITORING_STATE/check.log" >&2
  die "promtool check config refused the configuration (above); fix manifests/monitoring/"
}
mv "$MONITORING_CONFIG.new" "$MONITORING_CONFIG"

api="http://$HOST_IP:$MONITORING_PORT"
ready() { curl -fsS "$api/-/ready"; }
node_bin="$(readlink -f "$(command -v node)")"
start_discovery() {
  start_bin prometheus-sd "$node_bin" --import tsx "$MONITORING_SRC/pod-discovery.ts" \
    --api-server "https://$HOST_IP:$APISERVER_PORT" --ca "$PKI/ca.crt" --token "$token_file" --out "$MONITORING_TARGETS"
  wait_for "pod discovery listed the pods ($MONITORING_TARGETS)" 60 prometheus-sd test -s "$MONITORING_TARGETS"
}
pid="$(pid_of prometheus)"
if [ -n "$pid" ] && [ "$(cat "$MONITORING_STATE/port" 2>/dev/null)" = "$MONITORING_PORT" ] && ready >/dev/null 2>&1; then
  [ -n "$(pid_of prometheus-sd)" ] || start_discovery
  kill -HUP "$pid"
  step "Prometheus is already running (pid $pid): configuration and rules reloaded; $api"
  exit 0
fi
if [ -n "$pid" ] || [ -n "$(pid_of prometheus-sd)" ]; then
  step "Prometheus runs on another port or does not answer: restarting it"
  bash "$MONITORING_SRC/down.sh" --locked
fi
if port_in_use "$MONITORING_PORT"; then
  die "port $MONITORING_PORT is already in use ($(ss -Hltnp "sport = :$MONITORING_PORT" | head -1 | awk '{print $NF}')); stop that process or choose another port with FNOL_PROMETHEUS_PORT"
fi

# ---------------------------------------------------------------- start
step "Starting pod discovery and Prometheus on $api"
t0="$(now)"
rm -f "$MONITORING_TARGETS"
start_discovery
mkdir -p "$MONITORING_DATA"
echo "$MONITORING_PORT" >"$MONITORING_STATE/port"
start_bin prometheus "$PROM_BIN/prometheus" \
  --config.file="$MONITORING_CONFIG" \
  --storage.tsdb.path="$MONITORING_DATA" \
  --storage.tsdb.retention.time=2d \
  --web.listen-address="$HOST_IP:$MONITORING_PORT" \
  --web.console.templates="$MONITORING_STATE/consoles" \
  --web.console.libraries="$MONITORING_STATE/console_libraries"
wait_for "Prometheus is ready on $api" 60 prometheus ready

step "Prometheus ready in $(elapsed "$start_all") (start-up $(elapsed "$t0"))"
info "targets: $api/targets   rules: $api/rules   alerts: $api/alerts"
info "rules:   $MONITORING_RULES/*.rules.yaml (npm run monitoring:up again reloads them)"
info "logs:    $LOGS/prometheus.log, $LOGS/prometheus-sd.log"
info "stop with: npm run monitoring:down (npm run cluster:down stops it too)"
