#!/usr/bin/env bash
# Brings up the local ms2m dev stack (CRIU, RabbitMQ + management, Temporal dev
# server with ms2m's search attributes) and prints its coordinates as
# KEY=VALUE lines on stdout, also saved to $MS2M_CACHE/stack.env:
#   MS2M_CRIU, MS2M_AMQP_URL, MS2M_AMQP_MGMT_URL,
#   MS2M_TEMPORAL_ADDRESS, MS2M_TEMPORAL_UI, MS2M_TEMPORAL_BIN
# and, with --observe (or when its Prometheus already runs), MS2M_PROMETHEUS_URL, MS2M_METRICS_TARGETS.
# Safe to re-run; when everything is already up it only checks and returns.
#
# Usage: stack.sh [--observe]   --observe: also a Prometheus scraping the workers (infra/ensure-prometheus.sh)
#
# Typical use:  set -a; . "${MS2M_CACHE:-$HOME/.cache/ms2m}/stack.env"; set +a
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

observe=
case "${1:-}" in
  --observe) observe=1 ;;
  "") ;;
  *) die "unknown option $1; usage: stack.sh [--observe]" ;;
esac
start=$SECONDS
mkdir -p "$MS2M_CACHE"

# Each step's stdout is captured as-is; a failing step has already explained
# itself on stderr, so just stop.
log "== criu"
criu=$(bash "$HERE/ensure-criu.sh") || die "CRIU step failed (see above)."
# The node agents make their TLS certificates (page streams, lazy pages) with openssl.
if ! command -v openssl >/dev/null; then
  [ "$(id -u)" = 0 ] || die "openssl is missing; as root run: apt-get install -y openssl"
  log "installing openssl (the node agents' TLS certificates)"
  out=$(apt-get install -y -q openssl 2>&1) || { apt-get update -q >/dev/null 2>&1; out=$(apt-get install -y -q openssl 2>&1); } ||
    { printf '%s\n' "$out" | log_block; die "apt-get install openssl failed (above)."; }
fi
log "== rabbitmq"
amqp=$(bash "$HERE/ensure-rabbitmq.sh") || die "RabbitMQ step failed (see above)."
log "== temporal"
temporal=$(bash "$HERE/ensure-temporal-server.sh") || die "Temporal step failed (see above)."

env_lines=$(printf 'MS2M_CRIU=%s\n%s\n%s\n' "$criu" "$amqp" "$temporal")
# A Prometheus started by an earlier --observe keeps being announced, so the workers keep registering.
if [ -n "$observe" ] || curl -fsS -m 2 -o /dev/null "http://127.0.0.1:${MS2M_PROMETHEUS_PORT:-19090}/-/ready" 2>/dev/null || [ -n "${MS2M_PROMETHEUS_URL:-}" ]; then
  log "== prometheus"
  prometheus=$(bash "$HERE/ensure-prometheus.sh") || die "Prometheus step failed (see above)."
  env_lines=$(printf '%s\n%s\n' "$env_lines" "$prometheus")
fi

# Write-then-rename so a reader never sees a half-written file.
printf '%s\n' "$env_lines" >"$MS2M_CACHE/stack.env.tmp"
mv "$MS2M_CACHE/stack.env.tmp" "$MS2M_CACHE/stack.env"

log "stack ready in $((SECONDS - start))s; environment in $MS2M_CACHE/stack.env"
printf '%s\n' "$env_lines"
