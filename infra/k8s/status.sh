#!/usr/bin/env bash
# Reports on the test cluster: built or not, which images, each daemon (pid alive + its health
# endpoint), each node's readiness and whether it holds the current images.
#
# Usage: status.sh           exit 0 = up and healthy, 3 = down, 1 = broken (half up, or a node not Ready)
#        status.sh --host    compare the host with up.sh's snapshot from before the cluster came up;
#                            exit 0 = same, 1 = differs (listed on stderr), 2 = no snapshot
# stdout (only): KEY=VALUE lines: BUILT, IMAGE_PAUSE, IMAGE_MS2M, one <COMPONENT>=healthy|unhealthy|
# stopped per daemon, NODE_<NODE>=Ready|NotReady|unknown, IMAGES_<NODE>=present|missing|unknown, STATE.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/env.sh
. "$HERE/env.sh"

if [ "${1:-}" = --host ]; then
  if host_check; then log "the host is as up.sh found it"; exit 0; else exit $?; fi
fi
[ $# -eq 0 ] || die "usage: status.sh [--host]"

key() { local k=${1^^}; echo "${k//-/_}"; }

built=no
[ -f "$MS2M_K8S/build/k8s.done" ] && [ -f "$MS2M_K8S/build/runtime.done" ] && [ -x "$K8S_BIN/kubelet" ] && [ -x "$K8S_BIN/containerd" ] && built=yes
echo "BUILT=$built"
log "built: $built ($K8S_BIN)"

# shellcheck disable=SC2034  # set by images.env, listed so set -u holds when it is absent
IMAGE_PAUSE='' IMAGE_MS2M='' IMAGE_PAUSE_TAR='' IMAGE_MS2M_TAR=''
# shellcheck source=/dev/null
[ -f "$IMAGES_ENV" ] && . "$IMAGES_ENV"
echo "IMAGE_PAUSE=$IMAGE_PAUSE"
echo "IMAGE_MS2M=$IMAGE_MS2M"
log "images: ${IMAGE_PAUSE:-none} ${IMAGE_MS2M:-}"

alive=0 ok=0 total=0
for c in $COMPONENTS; do
  total=$((total + 1))
  if pid=$(daemon_pid "$c"); then
    alive=$((alive + 1))
    if healthy "$c"; then s=healthy; ok=$((ok + 1)); else s=unhealthy; fi
    log "$(printf '  %-26s pid %-8s %s' "$c" "$pid" "$s")"
  else
    s=stopped
    log "$(printf '  %-26s %-12s %s' "$c" '' "$s")"
  fi
  echo "$(key "$c")=$s"
done

nodes_ok=1
for n in $NODES; do
  r=unknown imgs=unknown
  if healthy kube-apiserver; then
    r=$(kube get node "$n" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
    case $r in True) r=Ready ;; '') r=unknown ;; *) r=NotReady ;; esac
  fi
  if healthy "containerd-$n" && [ -n "$IMAGE_MS2M" ]; then
    have=$(ctr_on "$n" images ls -q 2>/dev/null || true)
    imgs=present
    for ref in "$IMAGE_PAUSE" "$IMAGE_MS2M"; do grep -qxF "$ref" <<<"$have" || imgs=missing; done
  fi
  [ "$r" = Ready ] || nodes_ok=0
  log "  node $n: $r, current images $imgs"
  echo "NODE_$(key "$n")=$r"
  echo "IMAGES_$(key "$n")=$imgs"
done

if [ "$alive" -eq 0 ]; then state=down
elif [ "$ok" -eq "$total" ] && [ "$nodes_ok" = 1 ]; then state=up
else state=broken
fi
echo "STATE=$state"
log "cluster: $state"
case $state in up) exit 0 ;; down) exit 3 ;; *) exit 1 ;; esac
