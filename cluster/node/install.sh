#!/usr/bin/env bash
# Installs what the real node needs from Debian's archive: containerd (the
# container runtime), runc, the CNI plugins (bridge, host-local, loopback,
# portmap), iptables and conntrack (for kube-proxy), iproute2 (the bridge and
# veths). Idempotent: installs only what is missing. Needs root.
source "$(dirname "$0")/../lib.sh"

PACKAGES=(containerd runc containernetworking-plugins iptables conntrack iproute2)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  info "node packages are installed: ${PACKAGES[*]}"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root (run as root, or: sudo apt-get install ${missing[*]})"
command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} with this system's package manager"

step "Installing ${missing[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian package may start containerd as a system service; the node runs
# its own instance with its own socket and state, so the system one is not needed.
info "installed: ${missing[*]}"
