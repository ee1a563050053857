# Settings of the real node, on top of cluster/lib.sh. Sourced, not executed.
# shellcheck disable=SC2034 # the settings here are used by the scripts that source this file
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

NODE_NAME="${FNOL_NODE_NAME:-fnol-real-node}"
NODE_DIR="$CLUSTER_DIR/node"
# The bridge is host-only (no uplink): it carries the node address and the pods.
BRIDGE="${FNOL_NODE_BRIDGE:-fnol0}"
POD_CIDR="${FNOL_NODE_POD_CIDR:-10.250.0.0/24}"
KUBELET_PORT="${FNOL_KUBELET_PORT:-10250}"
KUBELET_HEALTHZ_PORT="${FNOL_KUBELET_HEALTHZ_PORT:-10248}"
KUBE_PROXY_HEALTHZ_PORT="${FNOL_KUBE_PROXY_HEALTHZ_PORT:-10256}"
KUBE_PROXY_METRICS_PORT="${FNOL_KUBE_PROXY_METRICS_PORT:-10249}"
CONTAINERD_SOCK="$NODE_DIR/containerd/containerd.sock"
CNI_BIN="${FNOL_CNI_BIN:-/usr/lib/cni}"
PAUSE_IMAGE="fnol.local/pause:1.0"
ECHO_IMAGE="fnol.local/echo:1.0"
# Stopped in this order by cluster/node/down.sh.
NODE_COMPONENTS=(kube-proxy kubelet containerd)

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# Kernel settings the node changes (the CNI bridge turns on IPv4 forwarding; the
# kubelet sets its kernel tunables): saved by up.sh, restored by down.sh.
NODE_SYSCTLS=(net/ipv4/ip_forward vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
