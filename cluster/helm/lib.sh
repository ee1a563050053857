# Settings shared by the helm scripts. Sourced, not executed.
#
# helm is built from the Go module proxy at the version pinned in
# cluster/helm/build/go.mod (go.sum holds the checksums the Go checksum
# database gives for it) and cached per version. The chart tests
# (charts/fnol-operator/test/) and the Helm end-to-end test run this binary.
# Every setting can be overridden from the environment.
# shellcheck disable=SC2034 # the settings here are used by the scripts that source this file
HELM_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
source "$HELM_SRC/../lib.sh"

HELM_VERSION="$(awk '{ sub(/^require[ \t]+/, "") } $1 == "helm.sh/helm/v3" { print $2; exit }' "$HELM_SRC/build/go.mod")"
[ -n "$HELM_VERSION" ] || die "cannot read the helm version from cluster/helm/build/go.mod"

# Binary cache, one folder per helm version.
HELM_CACHE="${FNOL_HELM_CACHE:-$HOME/.cache/fnol/helm}"
HELM_BIN="$HELM_CACHE/$HELM_VERSION/bin"
HELM="$HELM_BIN/helm"
