#!/usr/bin/env bash
# Prints on stdout (only) the absolute path of a working `temporal` CLI.
#
# Why build it: @temporalio/testing normally downloads the CLI at test time,
# which needs general internet access that these hosts do not have. The Go
# module proxy is reachable, so we `go install` it once into the cache.
# Pinned to v1.5.1 because v1.6.0+ carries a `replace` directive in go.mod,
# which `go install pkg@version` refuses.
#
# Env: MS2M_TEMPORAL_BIN (use this binary), MS2M_CACHE.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

CLI_MODULE=github.com/temporalio/cli/cmd/temporal
CLI_VERSION=v1.5.1
MIN_GO=1.22
BIN=$MS2M_CACHE/bin/temporal
BUILD_LOG=$MS2M_CACHE/temporal-build.log

works() { [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

if [ -n "${MS2M_TEMPORAL_BIN:-}" ]; then
  # An explicit choice that does not work is a configuration error, not
  # something to paper over with a 5-minute build.
  works "$MS2M_TEMPORAL_BIN" || die "MS2M_TEMPORAL_BIN=$MS2M_TEMPORAL_BIN is not a working temporal CLI ('--version' failed)."
  readlink -f "$MS2M_TEMPORAL_BIN"
  exit 0
fi
if p=$(command -v temporal 2>/dev/null) && works "$p"; then
  readlink -f "$p"
  exit 0
fi
if works "$BIN"; then
  echo "$BIN"
  exit 0
fi

# A build started outside these scripts (or by a run that lost our lock)
# may already be under way; a second concurrent build would only race it for
# the same output file. The [i] keeps pgrep from matching a shell whose own
# command line contains this pattern.
foreign_build() { pgrep -f "go [i]nstall github.com/temporalio/cli" >/dev/null; }

with_lock temporal-build
if foreign_build; then
  log "a 'go install' of the temporal CLI is already running; waiting for it (up to 20 min)"
  wait_until 1200 "the running temporal CLI build" bash -c '! pgrep -f "go [i]nstall github.com/temporalio/cli" >/dev/null' || true
fi
if works "$BIN"; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 ||
  die "no temporal CLI found (MS2M_TEMPORAL_BIN unset, none on PATH, none in $MS2M_CACHE/bin) and no Go toolchain to build one." \
      "Either set MS2M_TEMPORAL_BIN=/path/to/temporal (https://github.com/temporalio/cli/releases)," \
      "or install Go >= $MIN_GO (https://go.dev/dl/) and re-run; it will 'go install $CLI_MODULE@$CLI_VERSION'."
go_ver=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
version_ge "${go_ver:-0}" "$MIN_GO" ||
  die "Go $go_ver is too old to build the temporal CLI; install Go >= $MIN_GO or set MS2M_TEMPORAL_BIN."

# Build into a private GOBIN and move the result in, so a killed build never
# leaves a truncated binary at $BIN.
tmp_bin=$MS2M_CACHE/bin/.build.$$
mkdir -p "$tmp_bin"
trap 'rm -rf "$tmp_bin"' EXIT
log "building temporal CLI $CLI_VERSION with $(go version | cut -d' ' -f3) (several minutes on a cold Go cache; log: $BUILD_LOG)"
start=$SECONDS
if ! GOBIN=$tmp_bin go install "$CLI_MODULE@$CLI_VERSION" >"$BUILD_LOG" 2>&1 {MS2M_LOCK_FD}>&-; then
  tail -n 30 "$BUILD_LOG" | log_block
  die "go install $CLI_MODULE@$CLI_VERSION failed (log above, full log $BUILD_LOG)." \
      "It needs the Go module proxy (GOPROXY=$(go env GOPROXY)); otherwise set MS2M_TEMPORAL_BIN."
fi
mv "$tmp_bin/temporal" "$BIN"
works "$BIN" || die "the freshly built $BIN does not run ('temporal --version' failed)."
log "temporal CLI built in $((SECONDS - start))s: $BIN"
echo "$BIN"
