#!/usr/bin/env bash
# Imports an image archive (OCI or docker-archive tar, e.g. from buildah push
# oci-archive:...) into the real node's containerd, where pods find it without
# a registry. Pods must not try to pull it: use a fixed tag (not :latest) or
# imagePullPolicy: Never/IfNotPresent.
#
# Usage: cluster/node/load-image.sh ARCHIVE [IMAGE_NAME]
#   IMAGE_NAME (e.g. fnol.local/scorer:1.0) names the image; needed when the
#   archive's index carries no name (as buildah's oci-archive output).
source "$(dirname "$0")/node-lib.sh"

[ $# -ge 1 ] || die "usage: cluster/node/load-image.sh ARCHIVE [IMAGE_NAME]"
[ -f "$1" ] || die "image archive $1 not found"
[ -n "$(pid_of containerd)" ] || die "the real node is not running; start it with FNOL_REAL_NODE=1 npm run cluster:up"
args=()
[ -z "${2:-}" ] || args=(--index-name "$2")
ctr_k8s images import "${args[@]}" "$1"

# An archive written by buildah names its manifest as given (e.g. fnol-scorer:latest).
# The CRI looks images up by their normalized names (docker.io/library/fnol-scorer:latest),
# so a short name is re-tagged normalized and the short one removed.
ctr_k8s images ls -q | while read -r ref; do
  case "$ref" in
    sha256:* | */*) ;;
    *)
      ctr_k8s images tag --force "$ref" "docker.io/library/$ref" >/dev/null
      ctr_k8s images rm "$ref" >/dev/null
      info "named $ref docker.io/library/$ref for the kubelet"
      ;;
  esac
done
