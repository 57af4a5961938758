#!/usr/bin/env bash
# Ensures a Prometheus that scrapes ms2m's workers is running (Debian's prometheus package, installed when
# missing) and prints on stdout (only):
#   MS2M_PROMETHEUS_URL=<its HTTP API and UI>
#   MS2M_METRICS_TARGETS=<directory where each ms2m worker writes its address (file-based discovery)>
#
# It scrapes every second (a migration on this stack takes about one) and loads ms2m's alert rules
# (infra/observability/alerts.yml, reloaded when they change). Its data lives in $MS2M_CACHE/prometheus.
#
# Env: MS2M_PROMETHEUS_URL (use an existing Prometheus: verified, never started; its scrape configuration
#      is then yours, see infra/observability/README.md), MS2M_PROMETHEUS_PORT (default 19090), MS2M_CACHE.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

STATE=$MS2M_CACHE/prometheus
TARGETS=$STATE/targets
PORT=${MS2M_PROMETHEUS_PORT:-19090}
URL=http://127.0.0.1:$PORT
PIDFILE=$STATE/prometheus.pid
LOGFILE=$STATE/prometheus.log
ready() { curl -fsS -m 3 -o /dev/null "$1/-/ready" 2>/dev/null; }

if [ -n "${MS2M_PROMETHEUS_URL:-}" ]; then
  ready "$MS2M_PROMETHEUS_URL" || die "MS2M_PROMETHEUS_URL=$MS2M_PROMETHEUS_URL does not answer /-/ready." \
    "Start that Prometheus, or unset MS2M_PROMETHEUS_URL to get a local one."
  log "using Prometheus at $MS2M_PROMETHEUS_URL"
  echo "MS2M_PROMETHEUS_URL=$MS2M_PROMETHEUS_URL"
  [ -z "${MS2M_METRICS_TARGETS:-}" ] || echo "MS2M_METRICS_TARGETS=$MS2M_METRICS_TARGETS"
  exit 0
fi

with_lock prometheus
export PATH=$PATH:/usr/sbin:/sbin
mkdir -p "$TARGETS"

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  [ "$(id -u)" = 0 ] || die "Prometheus is not installed; as root run: apt-get install -y --no-install-recommends prometheus (or set MS2M_PROMETHEUS_URL)."
  command -v apt-get >/dev/null || die "Prometheus is not installed and this host has no apt-get; install Prometheus 2.x and put prometheus and promtool in PATH, or set MS2M_PROMETHEUS_URL."
  log "installing prometheus from the system's apt sources (about 30 s)"
  export DEBIAN_FRONTEND=noninteractive
  # The package would start its own daemon on :9090; ours runs with ms2m's configuration instead.
  policy_made=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_made=1
  fi
  apt_install() { apt-get install -y -q --no-install-recommends prometheus 2>&1 {MS2M_LOCK_FD}>&-; }
  out=$(apt_install) || { apt-get update -q >/dev/null 2>&1 {MS2M_LOCK_FD}>&-; out=$(apt_install); } || {
    [ -z "$policy_made" ] || rm -f /usr/sbin/policy-rc.d
    printf '%s\n' "$out" | tail -n 20 | log_block
    die "apt-get install prometheus failed (above)."
  }
  [ -z "$policy_made" ] || rm -f /usr/sbin/policy-rc.d
  log "installed $(prometheus --version 2>&1 | head -n 1)"
fi

# The rules are copied next to the configuration, so a checkout that moves or goes away breaks nothing.
rules_changed=
if ! cmp -s "$HERE/observability/alerts.yml" "$STATE/alerts.yml"; then
  out=$(promtool check rules "$HERE/observability/alerts.yml" 2>&1) || { printf '%s\n' "$out" | log_block; die "infra/observability/alerts.yml does not pass promtool check rules (above)."; }
  cp "$HERE/observability/alerts.yml" "$STATE/alerts.yml"
  rules_changed=1
fi
cat >"$STATE/prometheus.yml.new" <<YAML
# Written by infra/ensure-prometheus.sh: ms2m's workers announce themselves in targets/ (one file each).
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: ms2m
    file_sd_configs:
      - files: ['$TARGETS/*.json']
        refresh_interval: 1s
YAML
if ! cmp -s "$STATE/prometheus.yml.new" "$STATE/prometheus.yml"; then mv "$STATE/prometheus.yml.new" "$STATE/prometheus.yml"; rules_changed=1; else rm -f "$STATE/prometheus.yml.new"; fi

ours_alive() { local pid; pid=$(cat "$PIDFILE" 2>/dev/null) && [ -n "$pid" ] && grep -qa prometheus "/proc/$pid/cmdline" 2>/dev/null; }

if ready "$URL"; then
  ours_alive || die "something else answers as a Prometheus on 127.0.0.1:$PORT; stop it, or set MS2M_PROMETHEUS_PORT (or MS2M_PROMETHEUS_URL to use it)."
  if [ -n "$rules_changed" ]; then
    curl -fsS -m 10 -X POST "$URL/-/reload" >/dev/null || die "Prometheus at $URL refused to reload its configuration (log $LOGFILE)."
    log "Prometheus at $URL: configuration reloaded"
  else
    log "Prometheus already running at $URL"
  fi
else
  port_open 127.0.0.1 "$PORT" && die "port $PORT is taken by something that is not a Prometheus; set MS2M_PROMETHEUS_PORT."
  log "starting Prometheus at $URL (data $STATE/data, log $LOGFILE)"
  setsid nohup prometheus --config.file="$STATE/prometheus.yml" --storage.tsdb.path="$STATE/data" \
    --storage.tsdb.retention.time=7d --web.listen-address="127.0.0.1:$PORT" --web.enable-lifecycle \
    </dev/null >>"$LOGFILE" 2>&1 {MS2M_LOCK_FD}>&- &
  echo $! >"$PIDFILE"
  start=$SECONDS
  until ready "$URL"; do
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      tail -n 20 "$LOGFILE" | log_block
      die "Prometheus exited during startup (log above, full log $LOGFILE)."
    fi
    (( SECONDS - start < 60 )) || { tail -n 20 "$LOGFILE" | log_block; die "Prometheus at $URL not ready after 60 s (log $LOGFILE)."; }
    sleep 0.5
  done
  log "Prometheus ready after $((SECONDS - start)) s"
fi
echo "MS2M_PROMETHEUS_URL=$URL"
echo "MS2M_METRICS_TARGETS=$TARGETS"
