#!/usr/bin/env bash
# Pipeline step "publish the model" (Model stage, inside AzureCLI@2).
#   pipeline/publish-model.sh --version X.Y.Z [--account NAME] [--container NAME] [--out DIR]
# With AZURE_STORAGE_CONNECTION_STRING set (the local store, tests) it publishes
# with that. Otherwise it uses the Azure CLI's signed-in identity to issue a
# short-lived user-delegation SAS for the container (no storage key anywhere),
# kept in a private temporary file that is deleted on exit and never printed.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

version="" account="" container="${FNOL_MODEL_CONTAINER:-models}" out="build/model/publish"
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="$2"; shift 2 ;;
    --account) account="$2"; shift 2 ;;
    --container) container="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) die "unknown argument $1; usage: pipeline/publish-model.sh --version X.Y.Z [--account NAME] [--container NAME] [--out DIR]" ;;
  esac
done
[ -n "$version" ] || die "--version is required"

if [ -z "${AZURE_STORAGE_CONNECTION_STRING:-}" ]; then
  [ -n "$account" ] || die "no AZURE_STORAGE_CONNECTION_STRING and no --account: name the storage account to publish to"
  command -v az >/dev/null || die "the Azure CLI (az) is needed to sign in to storage account $account"
  sas_file="$(mktemp)"
  chmod 600 "$sas_file"
  trap 'rm -f "$sas_file"' EXIT
  expiry="$(date -u -d '+1 hour' '+%Y-%m-%dT%H:%MZ')"
  step "issuing a user-delegation SAS for $account/$container (valid until $expiry)"
  az storage container generate-sas --account-name "$account" --name "$container" \
    --permissions racwl --expiry "$expiry" --auth-mode login --as-user --https-only -o tsv >"$sas_file"
  export AZURE_STORAGE_ACCOUNT_URL="https://$account.blob.core.windows.net"
  export AZURE_STORAGE_SAS_FILE="$sas_file"
fi

step "publishing model fnol $version to container $container"
npx tsx cli/src/publish-model.ts --version "$version" --container "$container" --out "$out"
