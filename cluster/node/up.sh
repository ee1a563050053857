#!/usr/bin/env bash
# Adds a real node to the running local cluster (cluster/up.sh runs this when
# FNOL_REAL_NODE=1): containerd from Debian, kubelet and kube-proxy of the
# pinned Kubernetes build, and a bridge network with host-local IPAM. Pods on it
# run real containers from images imported into containerd (cluster/node/load-image.sh).
#
# The node is named fnol-real-node, labelled fnol.local/node-kind=real and
# tainted fnol.local/real-node=true:NoSchedule, so only pods that tolerate the
# taint (the scorer's, with a matching nodeSelector) land on it.
#
# Everything it creates is recorded so that cluster/node/down.sh removes it:
# processes (.cluster/pids/), mounts and state (.cluster/node/), the bridge
# fnol0 and its veths, iptables rules (kube-proxy --cleanup, CNI chains).
# Needs root, cgroups, overlayfs and iptables.
source "$(dirname "$0")/node-lib.sh"

[ "$(id -u)" -eq 0 ] || die "the real node needs root (kubelet, containerd and the bridge network manage the host)"
[ -s "$ADMIN_KUBECONFIG" ] || die "the control plane is not running; start it with npm run cluster:up"
bash "$CLUSTER_SRC/node/install.sh"
for b in kubelet kube-proxy; do
  [ -x "$K8S_BIN/$b" ] || die "$K8S_BIN/$b is missing; rebuild with: FNOL_K8S_NODE_BINARIES=1 bash cluster/build.sh --force"
done
grep -qw overlay /proc/filesystems || die "the kernel has no overlayfs, which containerd's snapshotter needs"

if [ -n "$(pid_of kubelet)" ] && [ -n "$(pid_of containerd)" ] && [ -n "$(pid_of kube-proxy)" ]; then
  info "the real node $NODE_NAME is already running"
  exit 0
fi
bash "$CLUSTER_SRC/node/down.sh" --quiet
for p in "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT" "$KUBE_PROXY_HEALTHZ_PORT" "$KUBE_PROXY_METRICS_PORT"; do
  ! port_in_use "$p" || die "port $p, needed by the real node's kubelet or kube-proxy, is in use; stop that process or set FNOL_KUBELET_PORT, FNOL_KUBELET_HEALTHZ_PORT, FNOL_KUBE_PROXY_HEALTHZ_PORT, FNOL_KUBE_PROXY_METRICS_PORT"
done

step "Real node $NODE_NAME (containerd $(containerd --version | awk '{print $3}'), kubelet $K8S_VERSION)"
mkdir -p "$NODE_DIR"/{containerd,kubelet,pod-logs,cni/net.d,cni/ipam} "$PIDS" "$LOGS"

# Certificates: the kubelet's client identity (Node authorizer, NodeRestriction),
# its serving certificate (the API server verifies it against the local CA) and
# kube-proxy's identity (bound to system:node-proxier by the default policy).
umask 077
issue_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "clientAuth"
issue_cert kubelet-serving "/CN=$NODE_NAME" "serverAuth" "IP:$NODE_IP, DNS:$NODE_NAME"
issue_cert kube-proxy "/CN=system:kube-proxy" "clientAuth"
for who in kubelet-client kube-proxy; do
  write_kubeconfig "$KCFG/$who.kubeconfig" "$who" "" "client-certificate-data: $(base64 -w0 "$PKI/$who.crt")" \
    "client-key-data: $(base64 -w0 "$PKI/$who.key")"
done
umask 022

if [ ! -s "$NODE_DIR/sysctl.saved" ]; then
  for k in "${NODE_SYSCTLS[@]}"; do
    [ ! -r "/proc/sys/$k" ] || echo "$k $(cat "/proc/sys/$k")"
  done >"$NODE_DIR/sysctl.saved"
fi

# Network: the bridge carries the node address (so the API server reaches the
# kubelet without leaving the machine) and is the pods' gateway.
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
fi
ip addr replace "$NODE_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
info "bridge $BRIDGE $NODE_IP/24 (pods: $POD_CIDR)"
cat >"$NODE_DIR/cni/net.d/10-fnol.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "fnol-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$NODE_DIR/cni/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF

RESTRICT_OOM=false
if ! (echo -1 >/proc/self/oom_score_adj) 2>/dev/null; then
  RESTRICT_OOM=true
  info "this host does not let root lower OOM scores (no CAP_SYS_RESOURCE): container OOM scores are clamped"
fi
# containerd: its own socket, state and configuration, separate from any system instance.
cat >"$NODE_DIR/containerd/config.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without CAP_SYS_RESOURCE (as in some VMs and containers) a process may not
  # lower its OOM score; clamp container scores at containerd's own instead of failing.
  restrict_oom_score_adj = $RESTRICT_OOM
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$NODE_DIR/cni/net.d"
    max_conf_num = 1
EOF
start_bin containerd "$(command -v containerd)" --config "$NODE_DIR/containerd/config.toml" --log-level warn
wait_for "containerd is serving" 30 containerd ctr_k8s version

# Images built here, as no registry is reachable: the pod infrastructure
# ("pause") image and a small HTTP server the tests run on the node.
# local_image NAME SOURCE_DIR BINARY
local_image() {
  local name="$1" src="$2" bin="$NODE_DIR/images/$3"
  if ! ctr_k8s images ls -q | grep -qx "$name"; then
    mkdir -p "$NODE_DIR/images"
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bin" .)
    python3 "$CLUSTER_SRC/node/oci-image.py" "$bin" "$name" "$bin.oci.tar" >/dev/null
    ctr_k8s images import "$bin.oci.tar" >/dev/null
    ctr_k8s images label "$name" io.cri-containerd.pinned=pinned >/dev/null
  fi
  info "image $name is in containerd"
}
local_image "$PAUSE_IMAGE" "$CLUSTER_SRC/node/pause" pause
local_image "$ECHO_IMAGE" "$CLUSTER_SRC/node/echo" echo

cat >"$NODE_DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: $HOST_IP
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: "$PKI/ca.crt" }
authorization: { mode: Webhook }
tlsCertFile: "$PKI/kubelet-serving.crt"
tlsPrivateKeyFile: "$PKI/kubelet-serving.key"
containerRuntimeEndpoint: "unix://$CONTAINERD_SOCK"
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
podLogsDir: "$NODE_DIR/pod-logs"
clusterDomain: cluster.local
registerNode: true
registerWithTaints:
  - { key: fnol.local/real-node, value: "true", effect: NoSchedule }
evictionHard: { memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2% }
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
maxPods: 30
EOF
start_bin kubelet "$K8S_BIN/kubelet" \
  --config "$NODE_DIR/kubelet/config.yaml" \
  --kubeconfig "$KCFG/kubelet-client.kubeconfig" \
  --root-dir "$NODE_DIR/kubelet" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
  --node-labels "fnol.local/node-kind=real" \
  --v 1

cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $NODE_NAME
clientConnection: { kubeconfig: "$KCFG/kube-proxy.kubeconfig" }
clusterCIDR: $POD_CIDR
healthzBindAddress: $HOST_IP:$KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: $HOST_IP:$KUBE_PROXY_METRICS_PORT
nodePortAddresses: ["$NODE_IP/32"]
iptables: { localhostNodePorts: false }
conntrack: { maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
oomScoreAdj: 0
EOF
start_bin kube-proxy "$K8S_BIN/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml" --v 1

node_ready() {
  [ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = "True" ]
}
wait_for "node $NODE_NAME is Ready" 120 kubelet node_ready
wait_for "kube-proxy is healthy" 60 kube-proxy curl -fsS "http://$HOST_IP:$KUBE_PROXY_HEALTHZ_PORT/healthz"
info "schedule onto it with: nodeSelector fnol.local/node-kind=real and a toleration for fnol.local/real-node"
