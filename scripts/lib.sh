# Shared shell helpers for the project scripts. Sourced, not executed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export FNOL_ARTIFACTS="${FNOL_ARTIFACTS:-$ROOT/../shared/fnol}"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
