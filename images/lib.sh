# Settings and helpers of the image scripts, on top of scripts/lib.sh. Sourced,
# not executed.
# shellcheck source=../scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/scripts/lib.sh"
# shellcheck source=versions.env
source "$ROOT/images/versions.env"

IMAGES_CACHE="${FNOL_IMAGES_CACHE:-$HOME/.cache/fnol-images}"
IMAGES_OUT="${FNOL_IMAGES_OUT:-$ROOT/build/images}"
mkdir -p "$IMAGES_CACHE" "$IMAGES_OUT"

# vfs storage and chroot isolation work inside an unprivileged container, where
# overlay mounts and user namespaces are not available.
export STORAGE_DRIVER=vfs
export BUILDAH_ISOLATION=chroot
bah() { buildah --storage-driver vfs "$@"; }
pod() { podman --storage-driver vfs --runtime runc --cgroup-manager cgroupfs "$@"; }
# Containers here may not raise resource limits to the host's hard limits
# (runc fails with "error setting rlimit"), so each run gets explicit lower ones.
POD_RUN_LIMITS=(--ulimit nofile=8192:8192 --ulimit nproc=4096:4096)
pod_run() { pod run "${POD_RUN_LIMITS[@]}" "$@"; }

# A build step (RUN) gets 1024 open files unless the build says otherwise: too
# few for npm ci reading a warm cache, which then fails with EMFILE now and then.
# Each step gets as many as this shell may open, up to 65536 (a step cannot be
# given more than the hard limit here).
build_nofile() {
  local hard
  hard="$(ulimit -Hn)"
  if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
  echo "$hard"
}
BUILD_NOFILE="$(build_nofile)"
BUILD_LIMITS=(--ulimit "nofile=$BUILD_NOFILE:$BUILD_NOFILE")
bud() { bah bud "${BUILD_LIMITS[@]}" "$@"; }

# Prints the value of one label of a local image, or nothing.
image_label() {
  bah inspect --type image --format "{{index .ImageAnnotations \"$2\"}}{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

# Size in bytes of a local image (sum of its uncompressed layers).
image_size() {
  pod image inspect --format '{{.Size}}' "$1"
}

human_mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
