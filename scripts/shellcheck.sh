#!/usr/bin/env bash
# Runs shellcheck on every shell script of the repository (tracked or new, not
# git-ignored; settings in .shellcheckrc). Installs shellcheck from the Debian
# archive when it is missing, as root; otherwise says how to install it.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

if ! command -v shellcheck >/dev/null; then
  [ "$(id -u)" -eq 0 ] ||
    die "shellcheck is not installed; run this script as root to install it, or: sudo apt-get install -y shellcheck"
  command -v apt-get >/dev/null || die "apt-get not found: install shellcheck with this system's package manager"
  step "installing shellcheck (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends shellcheck
  info "installed: shellcheck $(shellcheck --version | awk '/^version:/ { print $2 }')"
fi

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.sh' | sort -u)
else
  mapfile -t files < <(find . \( -name node_modules -o -name .venv -o -name .git -o -name build -o -name .cluster \) -prune \
    -o -name '*.sh' -type f -print | sort)
fi
[ "${#files[@]}" -gt 0 ] || die "no shell scripts found under $ROOT"
# Files deleted in the work tree but still in the index are skipped.
existing=()
for f in "${files[@]}"; do [ -f "$f" ] && existing+=("$f"); done
shellcheck "${existing[@]}"
info "shellcheck: ${#existing[@]} scripts clean"
