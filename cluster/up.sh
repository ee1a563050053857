#!/usr/bin/env bash
# Starts the local Kubernetes control plane on 127.0.0.1 (npm run cluster:up):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with
# $FNOL_KWOK_NODES (default 2) simulated nodes. Builds the binaries first if the
# cache is cold. Idempotent: a healthy running cluster is left as it is; a
# partly running one is stopped and started again.
#
# Writes .cluster/kubeconfig (cluster admin), .cluster/logs/<component>.log and
# .cluster/pids/<component>.pid. Stop it with cluster/down.sh (npm run cluster:down).
source "$(dirname "$0")/lib.sh"

for tool in openssl ss setsid flock; do
  command -v "$tool" >/dev/null || die "$tool is not installed; install it (Debian: apt-get install openssl iproute2 util-linux)"
done

start_all="$(now)"
bash "$CLUSTER_SRC/build.sh"

mkdir -p "$PKI" "$KCFG" "$LOGS" "$PIDS"
exec 9>"$CLUSTER_DIR/lock"
flock 9

# A start-up that fails part-way stops whatever it had started (logs are kept).
started_ok=0
cleanup_on_failure() {
  if [ "$started_ok" -ne 1 ]; then
    warn "start-up failed; stopping the components it started (logs stay in $LOGS)"
    bash "$CLUSTER_SRC/down.sh" --locked >/dev/null 2>&1 || true
  fi
}
trap cleanup_on_failure EXIT

# ---------------------------------------------------------------- state check
healthy() {
  local c
  for c in "${COMPONENTS[@]}"; do [ -n "$(pid_of "$c")" ] || return 1; done
  kubectl_admin get --raw /readyz >/dev/null 2>&1
}
real_node_wanted_but_missing() {
  [ "${FNOL_REAL_NODE:-0}" = "1" ] && { [ -z "$(pid_of kubelet)" ] || [ -z "$(pid_of containerd)" ]; }
}

any_running() {
  local c
  for c in "${COMPONENTS[@]}"; do [ -n "$(pid_of "$c")" ] && return 0; done
  return 1
}

if healthy; then
  if real_node_wanted_but_missing; then
    step "The local cluster is running; adding the real node"
    bash "$CLUSTER_SRC/node/up.sh"
  fi
  started_ok=1
  step "The local cluster is already running (kubeconfig $ADMIN_KUBECONFIG)"
  exit 0
fi
if any_running; then
  step "The local cluster is only partly running: restarting it"
  bash "$CLUSTER_SRC/down.sh" --locked
fi

for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT"; do
  if port_in_use "$p"; then
    holder="$(ss -Hltnp "sport = :$p" | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -1 | sed 's/users:(("\(.*\)",pid=/\1, pid /')"
    die "port $p is already in use (by ${holder:-another process}); stop that process or choose other ports with FNOL_APISERVER_PORT, FNOL_ETCD_PORT, FNOL_ETCD_PEER_PORT, FNOL_KCM_PORT, FNOL_SCHEDULER_PORT, FNOL_KWOK_PORT"
  fi
done

# ---------------------------------------------------------------- certificates
# A local CA signs every serving and client certificate; it is generated once
# and kept (so kubeconfigs stay valid across restarts) until cluster/down.sh --purge.
step "Certificates (local CA in $PKI)"
umask 077

if [ ! -s "$PKI/ca.crt" ] || [ ! -s "$PKI/ca.key" ]; then
  rm -f "$PKI"/*.crt "$PKI"/*.key "$PKI"/*.pub "$KCFG"/*
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=fnol-local-cluster-ca" -days 3650 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/ca.crt" 2>/dev/null
  info "ca: /CN=fnol-local-cluster-ca"
fi
issue_cert etcd-server "/CN=fnol-etcd" "serverAuth, clientAuth" "IP:127.0.0.1, DNS:localhost"
issue_cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" "clientAuth"
issue_cert apiserver "/CN=kube-apiserver" "serverAuth" \
  "IP:127.0.0.1, IP:$SERVICE_IP, IP:$NODE_IP, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local"
issue_cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" "clientAuth"
issue_cert admin "/O=system:masters/CN=fnol-admin" "clientAuth"
issue_cert kube-controller-manager "/CN=system:kube-controller-manager" "clientAuth"
issue_cert kube-scheduler "/CN=system:kube-scheduler" "clientAuth"
issue_cert kwok "/CN=fnol-kwok" "clientAuth"
issue_cert kcm-serving "/CN=kube-controller-manager" "serverAuth" "IP:127.0.0.1, DNS:localhost"
issue_cert scheduler-serving "/CN=kube-scheduler" "serverAuth" "IP:127.0.0.1, DNS:localhost"
# Service account tokens are signed with this key and verified with its public half.
if [ ! -s "$PKI/sa.key" ]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
  openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  info "sa: service account token signing key"
fi

# kubeconfig FILE CERT_NAME: a kubeconfig with the client certificate embedded.
kubeconfig() {
  write_kubeconfig "$1" "$2" default "client-certificate-data: $(base64 -w0 "$PKI/$2.crt")" \
    "client-key-data: $(base64 -w0 "$PKI/$2.key")"
}
kubeconfig "$ADMIN_KUBECONFIG" admin
kubeconfig "$KCFG/kube-controller-manager.kubeconfig" kube-controller-manager
kubeconfig "$KCFG/kube-scheduler.kubeconfig" kube-scheduler
kubeconfig "$KCFG/kwok.kubeconfig" kwok
umask 022

step "Starting the control plane on $HOST_IP (API server port $APISERVER_PORT)"
mkdir -p "$ETCD_DATA"
chmod 700 "$ETCD_DATA"
# The local cluster's etcd data is thrown away with the cluster (cluster:down
# deletes it), so etcd does not wait for the disk: on a busy shared disk one
# fdatasync took 1.5 s and a write outlived the API server's deadline
# ("etcdserver: request timed out"). FNOL_ETCD_FSYNC=1 makes it sync again.
etcd_sync=(--unsafe-no-fsync)
[ "${FNOL_ETCD_FSYNC:-0}" = 1 ] && etcd_sync=()
start etcd \
  --name fnol-local --data-dir "$ETCD_DATA" \
  --listen-client-urls "https://$HOST_IP:$ETCD_PORT" --advertise-client-urls "https://$HOST_IP:$ETCD_PORT" \
  --listen-peer-urls "http://$HOST_IP:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://$HOST_IP:$ETCD_PEER_PORT" \
  --initial-cluster "fnol-local=http://$HOST_IP:$ETCD_PEER_PORT" \
  --cert-file "$PKI/etcd-server.crt" --key-file "$PKI/etcd-server.key" \
  --client-cert-auth --trusted-ca-file "$PKI/ca.crt" \
  --log-level warn --quota-backend-bytes 2147483648 "${etcd_sync[@]}"
etcd_health() {
  curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key" \
    "https://$HOST_IP:$ETCD_PORT/health"
}
wait_for "etcd $ETCD_VERSION is healthy" 30 etcd etcd_health

start kube-apiserver \
  --bind-address "$APISERVER_BIND" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
  --etcd-servers "https://$HOST_IP:$ETCD_PORT" --etcd-cafile "$PKI/ca.crt" \
  --etcd-certfile "$PKI/apiserver-etcd-client.crt" --etcd-keyfile "$PKI/apiserver-etcd-client.key" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" --anonymous-auth=false \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction \
  --service-account-issuer "$SA_ISSUER" --api-audiences "$SA_ISSUER" \
  --service-account-signing-key-file "$PKI/sa.key" --service-account-key-file "$PKI/sa.pub" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --allow-privileged=false --profiling=false \
  --v 1
wait_for "kube-apiserver $K8S_VERSION is ready" 90 kube-apiserver kubectl_admin get --raw /readyz

start kube-controller-manager \
  --kubeconfig "$KCFG/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig "$KCFG/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig "$KCFG/kube-controller-manager.kubeconfig" \
  --bind-address "$HOST_IP" --secure-port "$KCM_PORT" \
  --tls-cert-file "$PKI/kcm-serving.crt" --tls-private-key-file "$PKI/kcm-serving.key" \
  --client-ca-file "$PKI/ca.crt" \
  --controllers '*' --use-service-account-credentials \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --leader-elect=false --profiling=false --v 1
wait_for "kube-controller-manager is healthy" 60 kube-controller-manager \
  curl -fsS --cacert "$PKI/ca.crt" "https://$HOST_IP:$KCM_PORT/healthz"

start kube-scheduler \
  --kubeconfig "$KCFG/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig "$KCFG/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig "$KCFG/kube-scheduler.kubeconfig" \
  --bind-address "$HOST_IP" --secure-port "$SCHEDULER_PORT" \
  --tls-cert-file "$PKI/scheduler-serving.crt" --tls-private-key-file "$PKI/scheduler-serving.key" \
  --client-ca-file "$PKI/ca.crt" \
  --leader-elect=false --profiling=false --v 1
wait_for "kube-scheduler is healthy" 60 kube-scheduler \
  curl -fsS --cacert "$PKI/ca.crt" "https://$HOST_IP:$SCHEDULER_PORT/healthz"

# ---------------------------------------------------------------- simulated nodes
step "Simulated nodes (kwok $KWOK_VERSION)"
kubectl_admin apply -f "$CLUSTER_SRC/manifests/kwok-rbac.yaml" >/dev/null
start kwok \
  --kubeconfig "$KCFG/kwok.kubeconfig" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --config "$CLUSTER_SRC/manifests/kwok-stages.yaml" \
  --node-lease-duration-seconds 40 \
  --cidr 10.244.0.1/16 --node-ip 10.244.0.1 \
  --server-address "$HOST_IP:$KWOK_PORT"
for i in $(seq 0 $((KWOK_NODES - 1))); do
  sed "s/__NAME__/kwok-node-$i/" "$CLUSTER_SRC/manifests/kwok-node.yaml"
  echo "---"
done | kubectl_admin apply -f - >/dev/null
nodes_ready() {
  [ "$(kubectl_admin get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c '^True$')" -ge "$KWOK_NODES" ]
}
wait_for "$KWOK_NODES nodes are Ready" 60 kwok nodes_ready
wait_for "the default ServiceAccount exists" 60 kube-controller-manager \
  kubectl_admin get serviceaccount default --namespace default

if [ "${FNOL_REAL_NODE:-0}" = "1" ]; then
  bash "$CLUSTER_SRC/node/up.sh"
fi

started_ok=1
step "Local cluster ready in $(elapsed "$start_all")"
info "kubeconfig: $ADMIN_KUBECONFIG   (export KUBECONFIG=$ADMIN_KUBECONFIG)"
info "kubectl:    $K8S_BIN/kubectl"
info "logs:       $LOGS/"
info "stop with:  npm run cluster:down"
