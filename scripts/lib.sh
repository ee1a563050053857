# The project's shell library: the settings and helpers every script shares.
# Sourced, not executed. The cluster, ingress and image scripts source their
# own lib.sh for their settings, which sources this one for the helpers.
# shellcheck disable=SC2034 # the settings here are used by the scripts that source this file
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export FNOL_ARTIFACTS="${FNOL_ARTIFACTS:-$ROOT/../shared/fnol}"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# now: seconds since the epoch with a fractional part; elapsed START: the time
# since START (a value of now) as 1m05s.
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { d = e - s; printf "%dm%02ds", d / 60, d % 60 }'; }
