#!/usr/bin/env bash
# Installs the container tools the image scripts use (buildah, podman, runc,
# debootstrap) from the Debian archive when one of them is missing. CI starts
# from a fresh machine, so nothing here may rely on a manual install.
source "$(dirname "$0")/lib.sh"

missing=()
for tool in buildah podman runc debootstrap skopeo; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -eq 0 ]; then
  info "container tools present: $(buildah --version | head -1)"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; run this script as root or install them: apt-get install -y buildah podman runc debootstrap skopeo"
step "installing container tools: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends buildah podman runc debootstrap skopeo \
  containernetworking-plugins slirp4netns uidmap binutils ca-certificates
info "installed: $(buildah --version | head -1)"
