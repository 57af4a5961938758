#!/usr/bin/env bash
# Ensures a Temporal server is reachable (by default a local dev server on
# 127.0.0.1:7233, Web UI on :8233) and that ms2m's custom search attributes
# exist. Prints on stdout (only):
#   MS2M_TEMPORAL_ADDRESS=<host:port>
#   MS2M_TEMPORAL_UI=<url>
#   MS2M_TEMPORAL_BIN=<path of the temporal CLI>
#
# Env: MS2M_TEMPORAL_ADDRESS (use an existing server, never start one),
#      MS2M_TEMPORAL_UI, MS2M_TEMPORAL_BIN, MS2M_CACHE.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

NAMESPACE=default
# Keyword (exact match) because the UI and the TS code filter on them with
# equality, e.g. Ms2mService="orders" AND Ms2mPhase="cutover".
SEARCH_ATTRIBUTES=(Ms2mService Ms2mSourceNode Ms2mTargetNode Ms2mStrategy Ms2mPhase)

TEMPORAL=$(bash "$HERE/ensure-temporal.sh")

HOST=127.0.0.1 PORT=7233 UI_PORT=8233
ADDRESS=${MS2M_TEMPORAL_ADDRESS:-$HOST:$PORT}
UI=${MS2M_TEMPORAL_UI:-http://$HOST:$UI_PORT}
STATE=$MS2M_CACHE/temporal
SERVER_LOG=$STATE/server.log
PIDFILE=$STATE/server.pid

# The dev server runs one history shard, and each shard reads its task queues at most
# transferProcessorMaxPollRPS times a second (default 20): every workflow task and activity
# task is one such read, so under any steady load each dispatch waited ~50 ms for its turn
# (measured: a chain of 20 activities took 2.0 s; with these settings 0.28 s). A production
# cluster spreads this over hundreds of shards; one shard needs the limit raised.
DYNAMIC_CONFIG=(
  --dynamic-config-value history.transferProcessorMaxPollRPS=2000
  --dynamic-config-value history.timerProcessorMaxPollRPS=2000
  --dynamic-config-value history.visibilityProcessorMaxPollRPS=2000
)

tctl() { timeout 20 "$TEMPORAL" --address "$ADDRESS" --command-timeout 15s "$@"; }
healthy() { tctl operator cluster health >/dev/null 2>&1; }

ensure_search_attributes() {
  local listing name type missing=()
  listing=$(tctl operator search-attribute list --namespace "$NAMESPACE" 2>&1) ||
    { printf '%s\n' "$listing" | log_block; die "could not list search attributes of namespace '$NAMESPACE' on $ADDRESS."; }
  for name in "${SEARCH_ATTRIBUTES[@]}"; do
    # Text listing: "  Name  Type" rows.
    type=$(awk -v n="$name" '$1 == n { print $2; exit }' <<<"$listing")
    if [ -z "$type" ]; then
      missing+=("$name")
    elif [ "$type" != Keyword ]; then
      die "search attribute $name already exists with type $type, but ms2m needs Keyword." \
          "Search attributes cannot be retyped; use a fresh dev server (delete $STATE/dev.db) or remove it with 'temporal operator search-attribute remove'."
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "creating search attributes in namespace $NAMESPACE: ${missing[*]}"
  for name in "${missing[@]}"; do
    out=$(tctl operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type Keyword 2>&1) ||
      { printf '%s\n' "$out" | log_block; die "could not create search attribute $name on $ADDRESS."; }
  done
}

emit() {
  echo "MS2M_TEMPORAL_ADDRESS=$ADDRESS"
  echo "MS2M_TEMPORAL_UI=$UI"
  echo "MS2M_TEMPORAL_BIN=$TEMPORAL"
}

# Never start anything for an explicitly configured server: a silent local
# substitute would hide a misconfiguration.
if [ -n "${MS2M_TEMPORAL_ADDRESS:-}" ]; then
  healthy || die "Temporal at MS2M_TEMPORAL_ADDRESS=$ADDRESS is not healthy ('temporal operator cluster health' failed)." \
                 "Start it, or unset MS2M_TEMPORAL_ADDRESS to get a local dev server."
  ensure_search_attributes
  log "using Temporal at $ADDRESS"
  emit
  exit 0
fi

server_pid_alive() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && grep -qa 'start-dev' "/proc/$pid/cmdline" 2>/dev/null
}

# A dev server of ours started before the dispatch settings above is restarted with them
# (its workflows are in its database and go on where they were).
if server_pid_alive && ! tr '\0' ' ' <"/proc/$(cat "$PIDFILE")/cmdline" | grep -q 'transferProcessorMaxPollRPS'; then
  log "restarting the temporal dev server with the dispatch settings (history.transferProcessorMaxPollRPS)"
  kill "$(cat "$PIDFILE")" 2>/dev/null || true
  for _ in $(seq 1 100); do server_pid_alive || break; sleep 0.1; done
  rm -f "$PIDFILE"
fi

if ! healthy; then
  with_lock temporal-server
  if ! healthy; then
    mkdir -p "$STATE"
    if server_pid_alive || port_open "$HOST" "$PORT"; then
      # Ours still booting, or someone else's: starting another would only fail
      # to bind. Give it the same grace period a fresh start gets.
      log "something is on $HOST:$PORT but not healthy yet; waiting for it"
    else
      log "starting temporal dev server on $ADDRESS (UI :$UI_PORT, db $STATE/dev.db, log $SERVER_LOG)"
      # setsid: own session, so the server outlives this script and the
      # terminal/CI step that ran it and does not receive its Ctrl-C.
      setsid nohup "$TEMPORAL" server start-dev \
        --ip "$HOST" --port "$PORT" --ui-port "$UI_PORT" \
        --db-filename "$STATE/dev.db" --log-level warn "${DYNAMIC_CONFIG[@]}" \
        </dev/null >>"$SERVER_LOG" 2>&1 {MS2M_LOCK_FD}>&- &
      echo $! >"$PIDFILE"
    fi
    start=$SECONDS
    until healthy; do
      if [ -s "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null && ! port_open "$HOST" "$PORT"; then
        tail -n 30 "$SERVER_LOG" | log_block
        die "temporal dev server exited during startup (log above, full log $SERVER_LOG)."
      fi
      if (( SECONDS - start > 60 )); then
        tail -n 30 "$SERVER_LOG" 2>/dev/null | log_block
        die "Temporal on $ADDRESS not healthy after 60s (log $SERVER_LOG). If another program holds port $PORT, stop it or set MS2M_TEMPORAL_ADDRESS."
      fi
      sleep 0.5
    done
    log "temporal dev server healthy after $((SECONDS - start))s"
  fi
else
  log "Temporal already healthy on $ADDRESS"
fi

ensure_search_attributes
port_open "$HOST" "$UI_PORT" || log "warning: nothing answers on the Web UI port $UI_PORT (server started with --headless?)"
emit
