#!/usr/bin/env bash
# Stops everything the local story starts (npm run stop): Prometheus, the
# ingress controller, the local cluster with its real node and the operator,
# and every model store of this checkout, then checks that nothing is left
# (cluster/check-clean.sh). Each part is stopped even if another fails;
# idempotent: with nothing running it only says so.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
rc=0
step "stopping Prometheus, the ingress controller, the local cluster and the model stores"
bash cluster/monitoring/down.sh || rc=1
bash cluster/ingress/down.sh || rc=1
bash cluster/down.sh || rc=1
bash store/down.sh || rc=1
step "checking that nothing is left"
bash cluster/check-clean.sh || rc=1
[ "$rc" -eq 0 ] || die "something did not stop (above)"
info "everything stopped"
