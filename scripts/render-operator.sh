#!/usr/bin/env bash
# Renders the operator install with kustomize (`kubectl kustomize`) for given
# images, as one YAML file: the one way the install is rendered, by the
# pipeline (manifests/, the AKS install) and by the local cluster
# (cluster/operator/, the same install placed on the local real node).
#
#   scripts/render-operator.sh --operator-image REF --scorer-image REF
#       [--base DIR] [--env NAME=VALUE]... [--out FILE]
#
# It writes a kustomization, in a temporary folder, over the base DIR
# (default manifests/) that sets the images with kustomize's images: field:
# fnol-operator, the operator container's image, and fnol-scorer, the image
# the operator gives scorer pods (FNOL_SCORER_IMAGE; manifests/kustomizeconfig.yaml).
# Each REF is name:tag, name@sha256:digest or name:tag@sha256:digest.
# --env sets a variable of the operator container (the local cluster's watched
# namespace and model hosts). The result goes to FILE (default
# build/manifests/operator.yaml; - for stdout).
#
# kubectl: $KUBECTL if set, else the local cluster's pinned kubectl when it is
# built (cluster/lib.sh K8S_BIN), else kubectl on PATH.
# shellcheck source=../cluster/lib.sh
source "$(dirname "$0")/../cluster/lib.sh"

usage="usage: scripts/render-operator.sh --operator-image REF --scorer-image REF [--base DIR] [--env NAME=VALUE]... [--out FILE]"
operator_image="" scorer_image="" base="$ROOT/manifests" out="$ROOT/build/manifests/operator.yaml"
envs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --operator-image | --scorer-image | --base | --env | --out)
      [ $# -ge 2 ] || die "$1 needs a value; $usage"
      case "$1" in
        --operator-image) operator_image="$2" ;;
        --scorer-image) scorer_image="$2" ;;
        --base) base="$2" ;;
        --env) envs+=("$2") ;;
        --out) out="$2" ;;
      esac
      shift 2
      ;;
    *) die "unknown argument $1; $usage" ;;
  esac
done
{ [ -n "$operator_image" ] && [ -n "$scorer_image" ]; } || die "$usage"
[ -f "$base/kustomization.yaml" ] || die "--base $base has no kustomization.yaml"

# image_entry FLAG NAME REF: one entry of images: setting image NAME to REF.
image_entry() {
  local flag="$1" name="$2" ref="$3" repo digest="" tag=""
  [[ "$ref" =~ ^[A-Za-z0-9][A-Za-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$ ]] ||
    die "$flag \"$ref\" is not an image reference (name:tag or name@sha256:<64 hex digits>)"
  repo="${ref%%@*}"
  [ "$repo" = "$ref" ] || digest="${ref#*@}"
  if [[ "${repo##*/}" == *:* ]]; then
    tag="${repo##*:}"
    repo="${repo%:*}"
  fi
  [ -n "$tag" ] || [ -n "$digest" ] || die "$flag \"$ref\" has neither a tag nor a digest; give name:tag or name@sha256:..."
  printf '  - name: %s\n    newName: %s\n' "$name" "$repo"
  [ -z "$tag" ] || printf "    newTag: '%s'\n" "$tag"
  [ -z "$digest" ] || printf '    digest: %s\n' "$digest"
}

if [ -n "${KUBECTL:-}" ]; then
  kubectl="$KUBECTL"
elif [ -x "$K8S_BIN/kubectl" ]; then
  kubectl="$K8S_BIN/kubectl"
elif command -v kubectl >/dev/null; then
  kubectl="$(command -v kubectl)"
else
  die "kubectl not found: install it, set KUBECTL, or build the local cluster's (npm run cluster:build)"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/fnol-render-operator.XXXXXX")"
trap 'rm -rf "$work"' EXIT
{
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n'
  printf 'resources:\n  - %s\n' "$(realpath --relative-to="$work" "$base")"
  printf 'images:\n'
  image_entry --operator-image fnol-operator "$operator_image"
  image_entry --scorer-image fnol-scorer "$scorer_image"
  if [ "${#envs[@]}" -gt 0 ]; then
    printf 'patches:\n  - target: { kind: Deployment, name: fnol-operator }\n    patch: |-\n'
    printf '      apiVersion: apps/v1\n      kind: Deployment\n      metadata: { name: fnol-operator }\n'
    printf '      spec:\n        template:\n          spec:\n            containers:\n'
    printf '              - name: operator\n                env:\n'
    for kv in "${envs[@]}"; do
      name="${kv%%=*}"
      value="${kv#*=}"
      { [ "$name" != "$kv" ] && [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; } ||
        die "--env \"$kv\" is not NAME=VALUE with a variable name of letters, digits and _"
      [[ "$value" != *$'\n'* ]] || die "--env $name: the value has a line break"
      # Single-quoted YAML: a quote is written twice.
      printf "                  - { name: %s, value: '%s' }\n" "$name" "${value//\'/\'\'}"
    done
  fi
} >"$work/kustomization.yaml"

if [ "$out" = "-" ]; then
  "$kubectl" kustomize "$work"
else
  mkdir -p "$(dirname "$out")"
  "$kubectl" kustomize "$work" >"$out.new"
  mv "$out.new" "$out"
  info "wrote $out (operator $operator_image, scorer $scorer_image)"
fi
