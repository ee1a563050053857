#!/usr/bin/env bash
# Checks that nothing of the local cluster is left on this machine once it is
# stopped (npm run cluster:down; npm test runs this after its suites when the
# run itself started and stopped the cluster): no process, listening port of
# the ingress controller (Ingress, TLS, admin, Gateway), mount, network
# namespace, network interface, iptables rule or kubelet cgroup; nor the local
# Prometheus (its process or port) or a model store of this checkout (an
# Azurite with its data under .azurite/, recorded in a pid file or not). Prints
# each leftover and exits 1 if there is any. npm run stop stops all of them.
source "$(dirname "$0")/node/node-lib.sh"
source "$CLUSTER_SRC/ingress/lib.sh"
source "$CLUSTER_SRC/monitoring/lib.sh"
source "$ROOT/store/lib.sh"
PROMETHEUS_CACHE="${FNOL_PROMETHEUS_CACHE:-$HOME/.cache/fnol/prometheus}"

left=0
leftover() {
  printf '    left behind: %s\n' "$*"
  left=$((left + 1))
}

# Processes: anything running one of our binaries or naming our state folder,
# and any process in a pod cgroup.
for p in /proc/[0-9]*; do
  pid="${p#/proc/}"
  { [ "$pid" != "$$" ] && [ "$pid" != "$BASHPID" ]; } || continue
  exe="$(readlink "$p/exe" 2>/dev/null || true)"
  cmd="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline" || true)"
  case "$exe" in
    "$K8S_BIN"/* | "$TRAEFIK" | "$TRAEFIK (deleted)") leftover "process $pid $cmd"; continue ;;
  esac
  case "$exe" in
    "$PROMETHEUS_CACHE"/*) leftover "process $pid (Prometheus) $cmd"; continue ;;
  esac
  case "$cmd" in
    *"$CLUSTER_DIR/"* | *"$CONTAINERD_SOCK"*) leftover "process $pid $cmd"; continue ;;
    # A model store of this checkout, also one whose pid file was lost or overwritten.
    *azurite-blob*"--location $STORE_ROOT/"*) leftover "process $pid (model store) $cmd"; continue ;;
  esac
  if grep -q kubepods "$p/cgroup" 2>/dev/null; then leftover "process $pid in a pod cgroup: $cmd"; fi
done

# The ingress controller's ports (its Ingress and Gateway entry points among
# them) and Prometheus': still taken means one outlived the cluster, or another
# process holds a port the next ingress:up or monitoring:up needs.
for p in "$INGRESS_PORT" "$INGRESS_TLS_PORT" "$INGRESS_ADMIN_PORT" "$GATEWAY_PORT" "$MONITORING_PORT"; do
  if port_in_use "$p"; then
    leftover "listening port $p ($(ss -Hltnp "sport = :$p" 2>/dev/null | head -1 | awk '{print $NF}'))"
  fi
done

# Mounts under the state folder, and pod network namespaces.
while read -r m; do leftover "mount $m"; done < <(findmnt -rn -o TARGET | awk -v d="$CLUSTER_DIR/" 'index($0, d) == 1')
for ns in /var/run/netns/cni-*; do
  [ -e "$ns" ] && leftover "network namespace $ns"
done

# Network interfaces: the bridge and the host ends of pod veths (cni's veth<8 hex>).
ip link show "$BRIDGE" >/dev/null 2>&1 && leftover "network interface $BRIDGE"
while read -r name; do leftover "network interface $name"; done < <(ip -o link show type veth 2>/dev/null |
  awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep -E '^veth[0-9a-f]{8}$' || true)

# iptables: kube-proxy's and the kubelet's chains, CNI rules for our network.
for ipt in iptables ip6tables; do
  command -v "$ipt-save" >/dev/null || continue
  while read -r rule; do leftover "$ipt: $rule"; done < <("$ipt-save" 2>/dev/null | grep -E '(^:|-j |-A )(KUBE-|CNI-)|fnol-node' || true)
done

# Cgroups the kubelet created.
for d in /sys/fs/cgroup/*/kubepods* /sys/fs/cgroup/kubepods*; do
  [ -d "$d" ] && leftover "cgroup $d"
done

# Pid files of model stores that still name a live store.
while read -r d; do
  if pid="$(store_pid "$d")"; then leftover "model store ${d#"$ROOT"/} (pid $pid)"; fi
done < <(store_dirs)

[ "$left" -eq 0 ] || die "$left leftovers of the local cluster (above); npm run stop removes them"
info "nothing of the local cluster is left: no process, ingress, Gateway or Prometheus port, model store, mount, network namespace, interface, iptables rule or cgroup"
