#!/usr/bin/env bash
# One CycloneDX SBOM per image, from the lockfile: the npm packages the image's
# `npm ci --omit=dev --workspace W` installs (npm sbom), written to
# DIR/scorer.cdx.json and DIR/operator.cdx.json.
#   pipeline/sbom.sh [--out DIR]        (default build/sbom)
# npm sbom runs without --omit dev on purpose: with it, npm 11 leaves out
# @kubernetes/client-node's whole subtree (reached through `overrides`). The
# workspace's SBOM without it lists exactly the production packages; the test
# (pipeline/test/unit/sbom.test.ts) compares it with npm run deps:prod.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
out="$ROOT/build/sbom"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a folder"; out="$2"; shift 2 ;;
    *) die "unknown argument $1; usage: pipeline/sbom.sh [--out DIR]" ;;
  esac
done
mkdir -p "$out"
for ws in scorer operator; do
  npm sbom --sbom-format cyclonedx --sbom-type application --workspace "$ws" >"$out/$ws.cdx.json.new" 2>"$out/$ws.cdx.log" ||
    { cat "$out/$ws.cdx.log" >&2; die "npm sbom failed for the $ws workspace"; }
  # The document describes the image, not the repository folder it was made in.
  # shellcheck disable=SC2016 # JavaScript, not shell: ${...} is a template literal for node.
  node -e '
    const fs = require("fs");
    const [file, name, version] = process.argv.slice(1);
    const bom = JSON.parse(fs.readFileSync(file, "utf8"));
    if (bom.bomFormat !== "CycloneDX" || !Array.isArray(bom.components)) throw new Error(`${file} is not a CycloneDX document`);
    bom.metadata.component = { ...bom.metadata.component, name, version, "bom-ref": `${name}@${version}`, purl: undefined };
    fs.writeFileSync(file, JSON.stringify(bom, null, 2) + "\n");
  ' "$out/$ws.cdx.json.new" "fnol-$ws" "$(node -p "require('./$ws/package.json').version")"
  mv "$out/$ws.cdx.json.new" "$out/$ws.cdx.json"
  rm -f "$out/$ws.cdx.log"
  info "$out/$ws.cdx.json: $(node -p "require('$out/$ws.cdx.json').components.length") components"
done
