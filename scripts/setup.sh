#!/usr/bin/env bash
# Installs everything the project needs from its own files: npm packages from the
# lockfile and the model compiler's Python packages in .venv from model/requirements.txt
# (every package pinned with its sha256, installed with --require-hashes). Idempotent: a
# second run only checks that both are current.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

command -v node >/dev/null || die "node is not installed; install Node.js 20.19 or newer"
command -v python3 >/dev/null || die "python3 is not installed; install Python 3.11"

stamp_npm="node_modules/.fnol-lock-sha"
want_npm="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp_npm" ] || [ "$(cat "$stamp_npm")" != "$want_npm" ]; then
  step "npm ci (packages from package-lock.json)"
  npm ci --no-audit --no-fund
  echo "$want_npm" > "$stamp_npm"
else
  info "npm packages are current"
fi

stamp_py="$VENV/.fnol-req-sha"
want_py="$(sha256sum model/requirements.txt | cut -d' ' -f1)"
if [ ! -f "$stamp_py" ] || [ "$(cat "$stamp_py")" != "$want_py" ]; then
  step "Python virtual environment .venv (model/requirements.txt, every package pinned and hashed)"
  # A fresh environment each time the lock changes: nothing outside the lock stays installed.
  python3 -m venv --clear "$VENV"
  # --require-hashes: pip refuses any file whose sha256 is not in the lock; --no-deps:
  # the lock already lists every transitive package; --only-binary: no build step runs.
  "$PY" -m pip install --disable-pip-version-check -q --require-hashes --no-deps --only-binary :all: \
    -r model/requirements.txt
  echo "$want_py" > "$stamp_py"
else
  info "Python packages are current"
fi
