#!/usr/bin/env bash
# The deploy stages' render of the operator install: scripts/render-operator.sh
# with the images recorded by the build (pipeline/image-digests.sh), by digest.
#   pipeline/render-operator-digests.sh --images FILE [--out FILE]
# Refuses an image without a sha256 digest: a tag can be moved to another image
# between the build and the deploy.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
usage="usage: pipeline/render-operator-digests.sh --images FILE [--out FILE]"
images="" out=()
while [ $# -gt 0 ]; do
  case "$1" in
    --images) [ $# -ge 2 ] || die "--images needs a file; $usage"; images="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a file; $usage"; out=(--out "$2"); shift 2 ;;
    *) die "unknown argument $1; $usage" ;;
  esac
done
[ -n "$images" ] || die "$usage"
[ -f "$images" ] || die "--images $images does not exist; it is the build's images artifact (images.json)"
ref() {
  # shellcheck disable=SC2016 # JavaScript, not shell: ${...} is a template literal for node.
  node -e '
    const [file, kind] = process.argv.slice(1);
    let doc;
    try { doc = JSON.parse(require("fs").readFileSync(file, "utf8")); }
    catch (e) { console.error(`${file} is not JSON: ${e.message}`); process.exit(1); }
    const ref = doc && doc[kind];
    if (typeof ref !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._\/:-]*@sha256:[0-9a-f]{64}$/.test(ref)) {
      console.error(`${file}: "${kind}" is ${JSON.stringify(ref)}, not an image pinned by digest (REPO@sha256:<64 hex>)`);
      process.exit(1);
    }
    console.log(ref);
  ' "$images" "$1"
}
scorer="$(ref scorer)" || die "no scorer image by digest in $images"
operator="$(ref operator)" || die "no operator image by digest in $images"
exec bash "$ROOT/scripts/render-operator.sh" --operator-image "$operator" --scorer-image "$scorer" "${out[@]}"
