#!/usr/bin/env bash
# Puts the project's scorer and operator images into the real node's containerd
# and prints their references, one "NAME REF" line each on stdout (progress on
# stderr): what cluster/operator/up.sh (kustomize) and the Helm end-to-end
# test (test/helm/install.test.ts) install the operator with.
#
# 1. builds the images (images/build.sh) whose archive is missing or older than
#    its sources;
# 2. imports each into the node's containerd as fnol.local/<name>:<content tag>,
#    so a rebuilt image is a new tag and Deployments using it roll.
source "$(dirname "$0")/../node/node-lib.sh"
cd "$ROOT" || exit

for arg in "$@"; do die "unknown argument $arg (cluster/operator/images.sh takes none)"; done
{ [ -n "$(pid_of kubelet)" ] && [ -n "$(pid_of containerd)" ]; } ||
  die "the real node is not running; start the cluster with FNOL_REAL_NODE=1 npm run cluster:up"

# An archive is stale when any file the image is built from is newer.
stale() {
  local archive="build/images/fnol-$1.oci.tar"
  [ -s "$archive" ] || return 0
  [ -n "$(find "$1" lib "Dockerfile.$1" package.json package-lock.json .npmrc tsconfig.json tsconfig.build.json images \
    -type f -newer "$archive" -not -path '*/test/*' -print -quit 2>/dev/null)" ]
}
to_build=()
for name in scorer operator; do
  if stale "$name"; then to_build+=("$name"); fi
done
if [ "${#to_build[@]}" -gt 0 ]; then
  step "Building the ${to_build[*]} image(s) (images/build.sh; a few minutes each)" >&2
  bash images/build.sh "${to_build[@]}" >&2
else
  step "Images: build/images/fnol-{scorer,operator}.oci.tar are newer than their sources" >&2
fi

for name in scorer operator; do
  archive="build/images/fnol-$name.oci.tar"
  ref="fnol.local/$name:$(sha256sum "$archive" | cut -c1-12)"
  if ! ctr_k8s images ls -q | grep -qx "$ref"; then
    bash "$CLUSTER_SRC/node/load-image.sh" "$archive" "$ref" >/dev/null
    # Earlier builds: a running container keeps its snapshot, new pods use this tag.
    ctr_k8s images ls -q | grep "^fnol.local/$name:" | grep -vx "$ref" |
      xargs -r ctr --address "$CONTAINERD_SOCK" --namespace k8s.io images rm >/dev/null || true
  fi
  info "$ref is in the node's containerd" >&2
  echo "$name $ref"
done
