#!/usr/bin/env bash
# Records the digests of the pushed images, so that every later stage deploys
# exactly what this run built and scanned, whatever the tag points at later.
#   pipeline/image-digests.sh [--engine docker|podman] [--out FILE] scorer=REF operator=REF
# Writes FILE (default build/images/images.json):
#   {"scorer": "REPO@sha256:...", "operator": "REPO@sha256:..."}
# and sets the pipeline variables scorerImage and operatorImage.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
usage="usage: pipeline/image-digests.sh [--engine docker|podman] [--out FILE] scorer=REF operator=REF"
engine=docker out="$ROOT/build/images/images.json"
while [ $# -gt 0 ]; do
  case "$1" in
    --engine | --out)
      [ $# -ge 2 ] || die "$1 needs a value; $usage"
      if [ "$1" = --engine ]; then engine="$2"; else out="$2"; fi
      shift 2
      ;;
    -*) die "unknown option $1; $usage" ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || die "$usage"
declare -A refs=()
for arg in "$@"; do
  kind="${arg%%=*}" ref="${arg#*=}"
  case "$kind" in scorer | operator) ;; *) die "\"$arg\" is not scorer=REF or operator=REF; $usage" ;; esac
  repo="${ref%%@*}"
  [[ "${repo##*/}" == *:* ]] && repo="${repo%:*}"
  # The registry's digest for this repository (RepoDigests has one per repository pushed to).
  digest="$("$engine" image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" | grep -m1 "^$repo@sha256:" || true)"
  [[ "$digest" =~ ^[^@]+@sha256:[0-9a-f]{64}$ ]] ||
    die "$ref has no registry digest for $repo: push it first (the digest exists only once the registry has the image)"
  refs[$kind]="$digest"
  info "$kind: $digest"
done
{ [ -n "${refs[scorer]:-}" ] && [ -n "${refs[operator]:-}" ]; } || die "$usage"
mkdir -p "$(dirname "$out")"
printf '{\n  "scorer": "%s",\n  "operator": "%s"\n}\n' "${refs[scorer]}" "${refs[operator]}" >"$out"
echo "##vso[task.setvariable variable=scorerImage]${refs[scorer]}"
echo "##vso[task.setvariable variable=operatorImage]${refs[operator]}"
info "wrote $out"
