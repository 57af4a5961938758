#!/usr/bin/env bash
# Ensures a RabbitMQ broker with the management plugin is reachable and prints
# on stdout (only):
#   MS2M_AMQP_URL=<amqp url>
#   MS2M_AMQP_MGMT_URL=<management http url with credentials>
#
# The management API is required, not optional: ms2m reads queue
# ready/unacked counters from it to decide when a migration may cut over.
#
# Env: MS2M_AMQP_URL / MS2M_AMQP_MGMT_URL (use an existing broker), MS2M_CACHE.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

mgmt_ok() { curl -fsS -m 5 -o /dev/null "$1/api/overview" 2>/dev/null; }

# url_host_port URL DEFAULT_PORT -> "host port" (userinfo and path stripped).
url_host_port() {
  local rest=${1#*://}
  rest=${rest%%/*}
  rest=${rest##*@}
  if [[ $rest == \[*\]* ]]; then               # [ipv6]:port
    local h=${rest%%]*}
    h=${h#[}
    local p=${rest#*]}
    p=${p#:}
    echo "$h ${p:-$2}"
  elif [[ $rest == *:* ]]; then
    echo "${rest%%:*} ${rest##*:}"
  else
    echo "$rest $2"
  fi
}

emit() {
  echo "MS2M_AMQP_URL=$1"
  echo "MS2M_AMQP_MGMT_URL=$2"
}

# Mirrors the server-side guard: guest/guest only works over loopback, which is
# all a local dev stack needs.
LOCAL_AMQP=amqp://guest:guest@127.0.0.1:5672
LOCAL_MGMT=http://guest:guest@127.0.0.1:15672

# 1. An externally provided broker: verify only, never install or start.
if [ -n "${MS2M_AMQP_URL:-}" ]; then
  default_port=5672
  [[ $MS2M_AMQP_URL == amqps://* ]] && default_port=5671
  read -r host port < <(url_host_port "$MS2M_AMQP_URL" "$default_port")
  mgmt=${MS2M_AMQP_MGMT_URL:-http://guest:guest@$host:15672}
  port_open "$host" "$port" || die "MS2M_AMQP_URL points at $host:$port, which does not accept connections. Start that broker or unset MS2M_AMQP_URL to get a local one."
  mgmt_ok "$mgmt" || die "the management API at ${mgmt#*@} does not answer (GET /api/overview)." \
    "Enable it on that broker (rabbitmq-plugins enable rabbitmq_management) or set MS2M_AMQP_MGMT_URL."
  log "using RabbitMQ at $host:$port"
  emit "$MS2M_AMQP_URL" "$mgmt"
  exit 0
fi

# Warm path: both ports already answer.
if port_open 127.0.0.1 5672 && mgmt_ok "$LOCAL_MGMT"; then
  log "RabbitMQ already running on 127.0.0.1:5672 (management on :15672)"
  emit "$LOCAL_AMQP" "$LOCAL_MGMT"
  exit 0
fi

with_lock rabbitmq

# The Debian wrappers switch to the rabbitmq user themselves when run as root,
# so the server and rabbitmqctl agree on the Erlang cookie.
have_server() { command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ]; }
export PATH=$PATH:/usr/sbin:/sbin

if ! port_open 127.0.0.1 5672; then
  if ! have_server; then
    [ "$(id -u)" = 0 ] || die "RabbitMQ is not running and not installed; as root run: apt-get install -y rabbitmq-server (or set MS2M_AMQP_URL)."
    command -v apt-get >/dev/null || die "RabbitMQ is not running and this host has no apt-get; start a broker with the management plugin and set MS2M_AMQP_URL."
    log "installing rabbitmq-server from the system's apt sources"
    export DEBIAN_FRONTEND=noninteractive
    if ! out=$(apt-get install -y -q rabbitmq-server 2>&1 {MS2M_LOCK_FD}>&-); then
      # Only refresh the indexes when they are the problem: update is slow and
      # the brief's machines come with fresh lists.
      if grep -qE 'Unable to locate package|has no installation candidate|404' <<<"$out"; then
        log "package lists look stale; running apt-get update"
        apt-get update -q >&2 {MS2M_LOCK_FD}>&-
        out=$(apt-get install -y -q rabbitmq-server 2>&1 {MS2M_LOCK_FD}>&-) || { printf '%s\n' "$out" | log_block; die "apt-get install rabbitmq-server failed (above)."; }
      else
        printf '%s\n' "$out" | log_block
        die "apt-get install rabbitmq-server failed (above)."
      fi
    fi
  fi
  # -detached rather than systemd/invoke-rc.d: CI containers have no init
  # system and Debian's policy-rc.d there forbids starting services on install.
  log "starting rabbitmq-server -detached"
  # Queues hold file handles; with the usual 1024 a broker with about a thousand durable queues hangs
  # in its restart. The limit is the broker's (inherited), not this script's concern otherwise.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  rabbitmq-server -detached >&2 {MS2M_LOCK_FD}>&- || die "rabbitmq-server -detached failed; see /var/log/rabbitmq/."
  wait_until 90 "RabbitMQ to accept AMQP connections on 127.0.0.1:5672" port_open 127.0.0.1 5672 ||
    { tail -n 30 /var/log/rabbitmq/rabbit@*.log 2>/dev/null | log_block; die "RabbitMQ did not come up; logs in /var/log/rabbitmq/."; }
  # The listener opens before boot finishes; await_startup waits for the rest
  # (plugins, vhosts) so the next rabbitmq-plugins call does not race it.
  timeout 60 rabbitmqctl -q await_startup >/dev/null 2>&1 {MS2M_LOCK_FD}>&- || log "rabbitmqctl await_startup did not confirm; continuing because :5672 answers"
fi

if ! mgmt_ok "$LOCAL_MGMT"; then
  command -v rabbitmq-plugins >/dev/null 2>&1 ||
    die "the broker on 127.0.0.1:5672 has no management API on :15672 and rabbitmq-plugins is not available here;" \
        "enable rabbitmq_management on that broker or point MS2M_AMQP_URL/MS2M_AMQP_MGMT_URL elsewhere."
  log "enabling rabbitmq_management"
  out=$(rabbitmq-plugins enable rabbitmq_management 2>&1 {MS2M_LOCK_FD}>&-) || { printf '%s\n' "$out" | log_block; die "rabbitmq-plugins enable rabbitmq_management failed (above)."; }
  wait_until 60 "the management API on :15672" mgmt_ok "$LOCAL_MGMT" ||
    die "management API did not answer at http://127.0.0.1:15672/api/overview; check /var/log/rabbitmq/."
fi

log "RabbitMQ ready on 127.0.0.1:5672 (management on :15672)"
emit "$LOCAL_AMQP" "$LOCAL_MGMT"
