#!/usr/bin/env bash
# Checks built images against the project's image rules:
#   non-root numeric USER, OCI labels (source, revision, version), the expected
#   entrypoint, size within the goal (scorer 250 MB, operator 150 MB), and
#   onnxruntime binaries: linux-x64 only in the scorer, none in the operator.
# Usage: images/check.sh [--engine podman|docker] IMAGE...
# The kind (scorer/operator) is taken from the image name.
source "$(dirname "$0")/lib.sh"

engine=podman
if [ "${1:-}" = "--engine" ]; then engine="$2"; shift 2; fi
[ $# -gt 0 ] || die "usage: images/check.sh [--engine podman|docker] IMAGE..."
case "$engine" in
  podman) eng() { pod "$@"; } ;;
  docker) eng() { docker "$@"; } ;;
  *) die "--engine must be podman or docker, not $engine" ;;
esac

failures=0
fail() { printf '    FAIL %s\n' "$*" >&2; failures=$((failures + 1)); }
ok() { printf '    ok   %s\n' "$*"; }

for image in "$@"; do
  case "$image" in
    *scorer*) kind=scorer goal=250000000 entry='[node dist/scorer/src/main.js]' ;;
    *operator*) kind=operator goal=150000000 entry='[node dist/operator/src/main.js]' ;;
    *) die "cannot tell whether $image is the scorer or the operator image from its name" ;;
  esac
  step "checking $image ($kind)"
  user="$(eng image inspect --format '{{.Config.User}}' "$image")"
  uid="${user%%:*}"
  if [[ "$uid" =~ ^[0-9]+$ ]] && [ "$uid" -ne 0 ]; then ok "user $user (numeric, non-root)"; else fail "user \"$user\" is not a numeric non-root user"; fi
  for label in source revision version; do
    value="$(eng image inspect --format "{{index .Config.Labels \"org.opencontainers.image.$label\"}}" "$image")"
    if [ -n "$value" ] && [ "$value" != "<no value>" ]; then ok "label org.opencontainers.image.$label=$value"; else fail "label org.opencontainers.image.$label is missing"; fi
  done
  got="$(eng image inspect --format '{{.Config.Entrypoint}}' "$image")"
  if [ "$got" = "$entry" ]; then ok "entrypoint $got"; else fail "entrypoint $got, expected $entry"; fi
  size="$(eng image inspect --format '{{.Size}}' "$image")"
  if [ "$size" -le "$goal" ]; then ok "size $(human_mb "$size") (goal <= $(human_mb "$goal"))"; else fail "size $(human_mb "$size") is over the goal of $(human_mb "$goal")"; fi

  ctr="$(eng create "$image")"
  ort="$(eng export "$ctr" | tar -t | grep -E '(^|/)node_modules/onnxruntime-node/bin/.+\.(node|so[.0-9]*|dylib|dll)$' || true)"
  eng rm "$ctr" >/dev/null
  if [ "$kind" = scorer ]; then
    others="$(grep -v '/linux/x64/' <<<"$ort" | grep . || true)"
    if [ -n "$others" ]; then fail "onnxruntime binaries for other platforms: $(echo "$others" | tr '\n' ' ')"; else ok "onnxruntime binaries: linux-x64 only"; fi
    { grep -q 'linux/x64/onnxruntime_binding.node' <<<"$ort" && grep -q 'linux/x64/libonnxruntime.so' <<<"$ort"; } ||
      fail "the linux-x64 onnxruntime binaries are missing"
  else
    if [ -n "$ort" ]; then fail "the operator image contains onnxruntime binaries"; else ok "no onnxruntime"; fi
  fi
done
[ "$failures" -eq 0 ] || die "$failures image check(s) failed"
info "all image checks passed"
