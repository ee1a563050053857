#!/usr/bin/env bash
# Builds the scorer and operator images locally with buildah, on the locally
# assembled base images (images/base.sh), and keeps each as an OCI archive in
# build/images/ for importing into containerd. Usage:
#   images/build.sh [scorer] [operator]     (both when none is named)
# Prints each build's steps, time and size, then checks both (images/check.sh).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(scorer operator)
for t in "${targets[@]}"; do
  case "$t" in scorer | operator) ;; *) die "unknown image \"$t\"; choose scorer and/or operator" ;; esac
done

bash images/base.sh

version="$(node -p 'require("./package.json").version')"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- 2>/dev/null || revision="$revision-dirty"
source_url="$(git config --get remote.origin.url 2>/dev/null || echo https://dev.azure.com/fnol/fnol-serving)"
# Behind a TLS-inspecting proxy the npm registry's certificate chain ends in the
# proxy's CA: hand the CA bundle Node.js trusts here to the build as a secret.
secret_args=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  secret_args=(--secret "id=npm_ca,src=$NODE_EXTRA_CA_CERTS")
fi
# With vfs every cached layer is a full copy of the root filesystem, which makes
# a layered build 3-6 times slower than building each stage in one container
# (npm's cache mount keeps npm ci fast). FNOL_IMAGE_LAYERS=true turns layers on.
layers="${FNOL_IMAGE_LAYERS:-false}"
summary="$IMAGES_OUT/images.tsv"
: >"$summary.new"

for name in "${targets[@]}"; do
  image="localhost/fnol-$name"
  log="$IMAGES_OUT/build-$name.log"
  step "building $image:$version (Dockerfile.$name) on $BASE_IMAGE / $RUNTIME_BASE_IMAGE; log $log"
  started="$(now)"
  started_s=$SECONDS
  previous_id="$(bah inspect --type image --format '{{.FromImageID}}' "$image:latest" 2>/dev/null || true)"
  set +e
  bud --layers="$layers" --force-rm --isolation chroot --network host "${secret_args[@]}" \
    -f "Dockerfile.$name" \
    --build-arg NODE_IMAGE="$BASE_IMAGE" \
    --build-arg RUNTIME_IMAGE="$RUNTIME_BASE_IMAGE" \
    --build-arg VERSION="$version" \
    --build-arg VCS_REF="$revision" \
    --build-arg SOURCE_URL="$source_url" \
    -t "$image:$version" -t "$image:latest" . 2>&1 | tee "$log" | grep --line-buffered -E '^(\[[0-9]+/[0-9]+] )?(STEP [0-9]+/[0-9]+|COMMIT)|^Error|^error' | sed -u 's/^/    /'
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    tail -30 "$log" >&2
    die "building $image failed (exit $rc); the full log is $log"
  fi
  secs=$((SECONDS - started_s))
  # The image this build replaced is left untagged; remove it so storage does not grow.
  current_id="$(bah inspect --type image --format '{{.FromImageID}}' "$image:latest")"
  if [ -n "$previous_id" ] && [ "$previous_id" != "$current_id" ]; then
    bah rmi "$previous_id" >/dev/null 2>&1 || true
  fi
  size="$(image_size "$image:latest")"
  info "$image:$version built in $(elapsed "$started"), $(human_mb "$size")"
  archive="$IMAGES_OUT/fnol-$name.oci.tar"
  rm -f "$archive"
  bah push --quiet "$image:latest" "oci-archive:$archive:fnol-$name:latest"
  info "OCI archive $archive (reference fnol-$name:latest)"
  printf '%s\t%s\t%s\t%s\n' "$name" "$image:$version" "$size" "$secs" >>"$summary.new"
done
mv "$summary.new" "$summary"
# Base images replaced by a newer key are untagged; remove those no image uses.
for id in $(bah images --filter dangling=true --filter label=io.fnol.base.key -q 2>/dev/null); do
  bah rmi "$id" >/dev/null 2>&1 || true
done

bash images/check.sh "${targets[@]/#/localhost/fnol-}"
