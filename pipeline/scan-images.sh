#!/usr/bin/env bash
# Scans built images for known vulnerabilities with Trivy, before they are pushed.
#   pipeline/scan-images.sh [--engine docker|podman] [--out DIR] IMAGE...
# Policy: the step fails on any CRITICAL or HIGH vulnerability that has a fixed
# version (--ignore-unfixed): those are fixable now by a rebuild or an upgrade.
# Unfixed ones and lower severities are reported, not failed on; the full
# report of every image (all severities, JSON) goes to DIR (default
# build/scan) for the pipeline artifact. An accepted finding is listed in
# .trivyignore with its reason and an expiry date (docs/pipeline.md).
#
# Each image is saved to an archive and Trivy reads the archive: the scanner
# gets no container-engine socket and no registry credentials. Trivy runs
# from its image (TRIVY_IMAGE, pinned), or as `trivy` on PATH if present.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
# 0.69.4 to 0.69.6 were malicious releases (March 2026); any other is fine.
TRIVY_IMAGE="${TRIVY_IMAGE:-docker.io/aquasec/trivy:0.70.0}"
usage="usage: pipeline/scan-images.sh [--engine docker|podman] [--out DIR] IMAGE..."
engine=docker out="$ROOT/build/scan"
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
[ $# -gt 0 ] || die "$usage"
case "$engine" in docker | podman) ;; *) die "--engine must be docker or podman, not $engine" ;; esac
case "$TRIVY_IMAGE" in *:0.69.4* | *:0.69.5* | *:0.69.6*) die "TRIVY_IMAGE $TRIVY_IMAGE is a known malicious Trivy release; pin another" ;; esac
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/fnol-scan.XXXXXX")"
trap 'rm -rf "$work"' EXIT

trivy() {
  if command -v trivy >/dev/null; then
    command trivy "$@"
  else
    "$engine" run --rm -v "$work:/scan" -v "$out:/out" -v "${TRIVY_CACHE:-$HOME/.cache/trivy}:/root/.cache/trivy" \
      "$TRIVY_IMAGE" "$@"
  fi
}
mkdir -p "${TRIVY_CACHE:-$HOME/.cache/trivy}"
cp "$ROOT/.trivyignore" "$work/trivyignore"

failed=0
for image in "$@"; do
  name="$(printf '%s' "${image##*/}" | tr -c 'A-Za-z0-9._-' '_')"
  step "scanning $image"
  "$engine" save -o "$work/$name.tar" "$image"
  in="$work/$name.tar" report="$out/$name.trivy.json" ignore="$work/trivyignore"
  command -v trivy >/dev/null || { in="/scan/$name.tar" report="/out/$name.trivy.json" ignore="/scan/trivyignore"; }
  # The whole report first (never fails the step), then the policy.
  trivy image --quiet --input "$in" --format json --output "$report" --scanners vuln
  if trivy image --quiet --input "$in" --scanners vuln --severity CRITICAL,HIGH --ignore-unfixed \
    --ignorefile "$ignore" \
    --exit-code 1 --format table; then
    info "$image: no critical or high vulnerability with a fix"
  else
    failed=$((failed + 1))
    warn "$image: critical or high vulnerabilities with a fixed version (above); rebuild on a patched base or upgrade the package"
  fi
done
[ "$failed" -eq 0 ] || die "$failed of $# images break the scan policy; reports in $out"
