#!/usr/bin/env bash
# Stops the local Prometheus (npm run monitoring:down): exactly the processes
# whose pids cluster/monitoring/up.sh recorded in .cluster/pids/ (prometheus and
# its pod discovery, prometheus-sd), and
# removes its data (series of a cluster that is gone or going). Idempotent:
# with nothing running it only says so. Works with the cluster stopped;
# cluster/down.sh calls it.
#
# Options: --purge  also remove the token and configuration (.cluster/monitoring/)
source "$(dirname "$0")/lib.sh"

purge=0 locked=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    --locked) locked=1 ;; # used by up.sh, which already holds the lock
    *) die "unknown option '$arg' (expected --purge)" ;;
  esac
done

if [ ! -d "$MONITORING_STATE" ] && [ ! -f "$PIDS/prometheus.pid" ]; then
  info "no Prometheus state in $MONITORING_STATE: nothing to stop"
  exit 0
fi
mkdir -p "$MONITORING_STATE"
if [ "$locked" -eq 0 ]; then
  exec 9>"$MONITORING_STATE/lock"
  flock 9
fi

# Prometheus finishes its rule evaluations and closes its database on SIGTERM.
if pid="$(stop_recorded prometheus)"; then
  info "stopped Prometheus (pid $pid)"
else
  info "Prometheus was not running"
fi
if pid="$(stop_recorded prometheus-sd)"; then info "stopped its pod discovery (pid $pid)"; fi
rm -rf "$MONITORING_DATA" "$MONITORING_STATE/port" "$MONITORING_TARGETS"

if [ "$purge" -eq 1 ]; then
  rm -f "$MONITORING_STATE/token" "$MONITORING_CONFIG" "$MONITORING_STATE/check.log"
  info "removed Prometheus' token and configuration in $MONITORING_STATE"
fi
