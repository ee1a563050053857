#!/usr/bin/env bash
# Removes the real node (cluster/down.sh runs this first): its pods are deleted
# through the API while the kubelet still runs (so it stops containers and
# releases their network properly), then kube-proxy, the kubelet and containerd
# stop; leftover containers, network namespaces, mounts under .cluster/node/,
# the bridge, the node's iptables rules and the Node object are removed.
# Idempotent; with nothing to do it says nothing (or only with --verbose).
#
# Options: --purge  also delete containerd's image store (.cluster/node/)
source "$(dirname "$0")/node-lib.sh"

quiet=0 purge=0
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --purge) purge=1 ;;
    *) die "unknown option '$arg' (expected --purge)" ;;
  esac
done
say() { [ "$quiet" -eq 1 ] || info "$@"; }

[ -d "$NODE_DIR" ] || exit 0
[ "$(id -u)" -eq 0 ] || die "removing the real node needs root"

api_up() { [ -s "$ADMIN_KUBECONFIG" ] && kubectl_admin get --raw /readyz >/dev/null 2>&1; }

# 1. Let the kubelet stop its pods while it still can.
if [ -n "$(pid_of kubelet)" ] && api_up && kubectl_admin get node "$NODE_NAME" >/dev/null 2>&1; then
  # Cordoned first, so the replacements their controllers create are not
  # scheduled here again.
  kubectl_admin cordon "$NODE_NAME" >/dev/null 2>&1 || true
  kubectl_admin delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
    --grace-period 5 --wait=false >/dev/null 2>&1 || true
  for _ in $(seq 120); do
    [ -z "$(kubectl_admin get pods -A --field-selector "spec.nodeName=$NODE_NAME" -o name 2>/dev/null)" ] && break
    sleep 0.5
  done
  say "pods on $NODE_NAME stopped"
fi

# stop NAME: stops a recorded process of the node.
stop() {
  local pid
  if pid="$(stop_recorded "$1")"; then say "stopped $1 (pid $pid)"; fi
}

stop kube-proxy
stop kubelet
if api_up; then
  kubectl_admin delete node "$NODE_NAME" --ignore-not-found >/dev/null 2>&1 || true
fi

# 2. Containers the kubelet did not get to: kill their tasks, remember their
# network namespaces, delete them. Then containerd stops.
netns=()
if [ -n "$(pid_of containerd)" ]; then
  for id in $(ctr_k8s containers ls -q 2>/dev/null); do
    while read -r ns; do netns+=("$ns"); done < <(ctr_k8s containers info "$id" 2>/dev/null | grep -o '/var/run/netns/cni-[0-9a-f-]*' | sort -u)
    ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    ctr_k8s tasks delete -f "$id" >/dev/null 2>&1 || true
    ctr_k8s containers delete "$id" >/dev/null 2>&1 || true
  done
fi
stop containerd
# Shims of our containerd (they name its socket on their command line).
for p in /proc/[0-9]*; do
  cmd="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline" || true)"
  case "$cmd" in
    *containerd-shim*"-address $CONTAINERD_SOCK "*)
      kill -KILL "${p#/proc/}" 2>/dev/null || true
      say "stopped containerd shim (pid ${p#/proc/})"
      ;;
  esac
done
for ns in "${netns[@]}"; do
  umount "$ns" 2>/dev/null || true
  rm -f "$ns"
done

# 3. Mounts under the node's folder (volumes, rootfs, shm), deepest first.
findmnt -rn -o TARGET | awk -v d="$NODE_DIR/" 'index($0, d) == 1' | sort -r | while read -r m; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "could not unmount $m"
done

# 4. Network: kube-proxy's iptables chains, CNI rules for our network, the bridge.
if [ -x "$K8S_BIN/kube-proxy" ] && iptables -t nat -S KUBE-SERVICES >/dev/null 2>&1; then
  "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || warn "kube-proxy --cleanup failed; check iptables -t nat -S"
  say "removed kube-proxy's iptables rules"
fi
for table in nat filter; do
  { iptables -t "$table" -S 2>/dev/null || true; } | { grep -F 'name: \"fnol-node\"' || true; } | { grep '^-A' || true; } |
    sed 's/^-A/-D/' | while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null || true; done
done
# The kubelet's own chains (its localnet firewall and the canaries it watches to
# detect a flushed ruleset), in IPv4 and IPv6 tables.
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for hook in INPUT OUTPUT; do
    while "$ipt" -w -t filter -D "$hook" -j KUBE-FIREWALL 2>/dev/null; do :; done
  done
  for table in filter nat mangle; do
    for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      if "$ipt" -w -t "$table" -S "$chain" >/dev/null 2>&1; then
        "$ipt" -w -t "$table" -F "$chain" 2>/dev/null || true
        "$ipt" -w -t "$table" -X "$chain" 2>/dev/null || warn "$ipt: could not delete chain $chain in table $table"
      fi
    done
  done
done
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link del "$BRIDGE"
  say "removed bridge $BRIDGE"
fi

# 5. Cgroups the kubelet created (empty once its containers are gone), deepest first.
for ctl in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  [ -d "$ctl/kubepods" ] || [ -d "$ctl/kubepods.slice" ] || continue
  find "$ctl"kubepods* -depth -type d -exec rmdir {} \; 2>/dev/null || true
done

# 6. Kernel settings back to what they were before the node started.
if [ -s "$NODE_DIR/sysctl.saved" ]; then
  while read -r k v; do
    [ "$(cat "/proc/sys/$k" 2>/dev/null)" = "$v" ] || echo "$v" >"/proc/sys/$k" 2>/dev/null || warn "could not restore $k=$v"
  done <"$NODE_DIR/sysctl.saved"
  rm -f "$NODE_DIR/sysctl.saved"
fi

rm -rf "$NODE_DIR/cni/ipam"
if findmnt -rn -o TARGET | awk -v d="$NODE_DIR/" 'index($0, d) == 1' | grep -q .; then
  warn "some mounts under $NODE_DIR remain (see findmnt); its files are left in place"
elif [ "$purge" -eq 1 ]; then
  rm -rf "$NODE_DIR"
else
  rm -rf "$NODE_DIR/kubelet/pods"
fi
