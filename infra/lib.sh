# shellcheck shell=bash
# Shared helpers for the infra/ensure-*.sh scripts. Sourced, never executed.
#
# Contract shared by all scripts: stdout carries only the machine-readable
# result (a path or KEY=VALUE lines), so callers can capture it with $(...);
# everything meant for humans goes to stderr with a "[ms2m] " prefix.

MS2M_CACHE=${MS2M_CACHE:-$HOME/.cache/ms2m}
export MS2M_CACHE

log() { printf '[ms2m] %s\n' "$*" >&2; }

# die LINE...: first line is the error, further lines say what to do.
die() {
  printf '[ms2m] ERROR: %s\n' "$1" >&2
  shift
  [ $# -eq 0 ] || printf '[ms2m]        %s\n' "$@" >&2
  exit 1
}

# report_failures: a script under `set -e` that stops on a command without a message of its own (a
# rabbitmqctl that failed, say) names the command and where it was, instead of exiting 1 in silence.
report_failures() {
  set -E
  trap 'rc=$?; log "stopped: \`$BASH_COMMAND\` failed (exit $rc) at ${BASH_SOURCE[0]##*/}:$LINENO"' ERR
}

# Indent a block of captured output so it reads as part of our log.
log_block() { sed 's/^/[ms2m]   | /' >&2; }

# version_ge A B: true when version A >= B. Falls back to sort -V where dpkg
# is absent (non-Debian CI images).
version_ge() {
  if command -v dpkg >/dev/null 2>&1; then
    dpkg --compare-versions "$1" ge "$2"
  else
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
  fi
}

# port_open HOST PORT: a plain TCP connect. Wrapped in `timeout` because a
# filtered remote port would otherwise hang for the kernel's SYN timeout.
port_open() {
  # shellcheck disable=SC2016  # $0/$1 are expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.5 s.
wait_until() {
  local limit=$1 what=$2 start=$SECONDS
  shift 2
  until "$@"; do
    if (( SECONDS - start >= limit )); then
      log "gave up waiting ${limit}s for $what"
      return 1
    fi
    sleep 0.5
  done
}

# with_lock NAME: serialise the slow path of a script across concurrent runs
# (parallel CI jobs, two terminals). The lock fd stays open until exit, so
# anything started under the lock that may outlive the script (daemons, and
# tools that spawn them, like rabbitmqctl starting epmd) must be run with
# `{MS2M_LOCK_FD}>&-`; otherwise the daemon holds the lock forever.
with_lock() {
  mkdir -p "$MS2M_CACHE/locks"
  exec {MS2M_LOCK_FD}>"$MS2M_CACHE/locks/$1.lock"
  if ! flock -n "$MS2M_LOCK_FD"; then
    log "another ms2m run holds the $1 lock; waiting for it"
    flock "$MS2M_LOCK_FD"
  fi
}
