#!/usr/bin/env bash
# Pipeline step "compile the model" (Model stage).
#   pipeline/model.sh --version X.Y.Z
# 1.0.0 is the data scientists' delivered model, compiled as is; any other
# version is the retrained recipe (npm run model:train) under that number.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
version=""
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="$2"; shift 2 ;;
    *) die "unknown argument $1; usage: pipeline/model.sh --version X.Y.Z" ;;
  esac
done
[ -n "$version" ] || die "--version is required"
if [ "$version" = "1.0.0" ]; then
  MODEL_VERSION="$version" bash scripts/model.sh build
else
  MODEL_VERSION="$version" bash scripts/model.sh train
fi
[ -f "build/model/fnol-$version.onnx" ] || die "the compiler did not write build/model/fnol-$version.onnx"
info "compiled build/model/fnol-$version.onnx ($(sha256sum "build/model/fnol-$version.onnx" | cut -c1-16)...)"
