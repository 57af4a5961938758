#!/usr/bin/env bash
# The one entry point to the two-node test cluster:
#   cluster.sh build              binaries from the Go proxy (build.sh; cold ~15 min, then seconds)
#   cluster.sh images             the pause and ms2m images (images.sh; needs the repo's dist/)
#   cluster.sh up                 build + images + up, each incremental; prints up.sh's KEY=VALUE lines
#   cluster.sh down [--purge]     teardown (down.sh)
#   cluster.sh status [--host]    status.sh (exit 0 up, 3 down, 1 broken)
# The repo whose dist/ goes into the ms2m image: $MS2M_REPO, else this script's ../..
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${MS2M_REPO:-$(cd "$HERE/../.." && pwd)}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  build) exec bash "$HERE/build.sh" "$@" ;;
  images) exec bash "$HERE/images.sh" "$REPO" ;;
  up)
    # Only up.sh's lines on stdout: it repeats the image refs.
    bash "$HERE/build.sh" >/dev/null
    bash "$HERE/images.sh" "$REPO" >/dev/null
    exec bash "$HERE/up.sh" ;;
  down) exec bash "$HERE/down.sh" "$@" ;;
  status) exec bash "$HERE/status.sh" "$@" ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
