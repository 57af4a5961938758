#!/usr/bin/env bash
# Tears the test cluster down and leaves the host as up.sh found it. Only our own things are touched:
# daemons by their pid files, containers through ctr/runc on our sockets and roots, shims selected by
# our socket path, processes left in our nodes' cgroups, mounts under $MS2M_K8S_RUN, our bridges and
# cgroup dirs, the sysctls up.sh saved, our entries in the few host paths containerd, libcni and the
# kubelet hard-code, and the cluster's RabbitMQ user. Binaries and images are kept.
#
# Usage: down.sh [--purge]   --purge also deletes $MS2M_K8S_RUN (etcd data, PKI, logs).
# stdout (only): HOST_CLEAN=yes|no|unknown (the host compared with up.sh's snapshot from before).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/env.sh
. "$HERE/env.sh"

PURGE=0
case ${1:-} in
  --purge) PURGE=1 ;;
  '') ;;
  *) die "usage: down.sh [--purge]" ;;
esac
# up.sh calls us while it holds the lock.
[ "${MS2M_K8S_LOCK_HELD:-}" = 1 ] || with_lock k8s-cluster

T0=${EPOCHREALTIME/./}
step() { local us=$(( ${EPOCHREALTIME/./} - T0 )); log "$(printf '%3d.%01ds' $((us / 1000000)) $((us / 100000 % 10))) $*"; }

if [ ! -d "$MS2M_K8S_RUN" ]; then
  log "no cluster state in $MS2M_K8S_RUN: nothing to tear down"
  echo "HOST_CLEAN=unknown"
  exit 0
fi

# was_absent PATH: up.sh's snapshot shows PATH did not exist before the cluster came up.
was_absent() { [ -f "$HOST_BEFORE" ] && ! grep -qxF "path $1" "$HOST_BEFORE"; }

# 1. Kubelets first, so nothing restarts the containers we are about to kill.
kubelets=() containerds=()
for n in $NODES; do kubelets+=("kubelet-$n"); containerds+=("containerd-$n"); done
stop_daemons "${kubelets[@]}"
step "kubelets stopped"

# 2. Every task of our containerds, through ctr on our sockets (a shim outlives its containerd).
for n in $NODES; do
  healthy "containerd-$n" || continue
  tasks=$(ctr_on "$n" tasks ls -q 2>/dev/null || true)
  for t in $tasks; do ctr_on "$n" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
  for _ in $(seq 20); do
    [ -z "$(ctr_on "$n" tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"')" ] && break
    sleep 0.1
  done
  for t in $tasks; do ctr_on "$n" tasks delete -f "$t" >/dev/null 2>&1 || true; done
  for c in $(ctr_on "$n" containers ls -q 2>/dev/null || true); do ctr_on "$n" containers delete "$c" >/dev/null 2>&1 || true; done
done
step "tasks killed"
stop_daemons "${containerds[@]}"
step "containerds stopped"
# Both the apiserver and etcd hang in their graceful shutdown here (seconds, until KILLed). The
# apiserver, controller manager and scheduler hold no state of their own; etcd goes last, once
# nothing writes to it, and a KILL loses nothing its WAL has (written, not fsynced: the page cache
# survives a process). So each gets 1 s.
stop_daemons -t 1 kube-scheduler kube-controller-manager kube-apiserver registry
stop_daemons -t 1 etcd
step "control plane stopped"

# 3. What is left: the pods' shims (containerd stops one when its sandbox is removed, which the
#    stopped kubelet never asked for; selected by our socket path), and, if a containerd had died
#    first, containers in our runc roots and any process still in our nodes' cgroups (by
#    construction all of them are ours).
for n in $NODES; do
  root=$MS2M_K8S_RUN/$n/runc
  [ -d "$root" ] || continue
  for id in $("$K8S_BIN/runc" --root "$root" list -q 2>/dev/null || true); do
    "$K8S_BIN/runc" --root "$root" kill --all "$id" KILL >/dev/null 2>&1 || true
    "$K8S_BIN/runc" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
  done
done
shims=$(pgrep -f "containerd-shim-runc-v2 .*-address $MS2M_K8S_RUN/" || true)
[ -z "$shims" ] || { log "stopping the pods' shims, which outlive their tasks: $(echo "$shims" | tr '\n' ' ')"; echo "$shims" | xargs -r kill -KILL 2>/dev/null || true; }
cgroup_pids() { local n; for n in $NODES; do cat /sys/fs/cgroup/*/"$n"/cgroup.procs /sys/fs/cgroup/*/"$n"/**/cgroup.procs 2>/dev/null; done | sort -u; }
shopt -s globstar nullglob
for _ in $(seq 20); do
  stragglers=$(cgroup_pids)
  [ -z "$stragglers" ] && break
  echo "$stragglers" | xargs -r kill -KILL 2>/dev/null || true
  sleep 0.1
done
[ -z "$(cgroup_pids)" ] || log "warning: processes stay in our cgroups: $(cgroup_pids | tr '\n' ' ')"
shopt -u globstar nullglob

# 4. Our mounts (rootfs overlays, shm, netns, secret tmpfs), deepest first, lazily: a busy one goes
# when its last user does.
# Also mounts elsewhere of our files: containerd mounts a checkpoint image's snapshot at
# /tmp/checkpoint<n> to restore from it, and leaves it mounted.
awk -v r="$MS2M_K8S_RUN/" 'index($5, r) == 1 || index($4, r) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null || true
  # A mount point of ours outside the run directory was made for it (containerd's mkdtemp): it goes too.
  case $m in "$MS2M_K8S_RUN"/*) ;; *) rmdir "$m" 2>/dev/null || true ;; esac
done
step "mounts under $MS2M_K8S_RUN released"

# 5. Network: the veths on our bridges (normally gone with their netns), then the bridges.
for n in $NODES; do
  br=${BRIDGE[$n]}
  ip link show "$br" >/dev/null 2>&1 || continue
  for v in $(ip -o link show master "$br" 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}'); do
    ip link del "$v" 2>/dev/null || true
  done
  ip link del "$br" 2>/dev/null || true
done
# Every pod is gone, so is every address host-local handed out (the CNI DEL never ran).
for n in $NODES; do rm -rf "$MS2M_K8S_RUN/$n/cni/ipam"; done

# 6. Our cgroup roots in every hierarchy, children first.
for n in $NODES; do
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "$h$n" ] && { find "$h$n" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
  done
done
for n in $NODES; do
  for h in /sys/fs/cgroup/*/; do [ -d "$h$n" ] && log "warning: cgroup $h$n could not be removed"; done
done

# 7. The kernel settings the kubelet and the CNI bridge plugin changed.
if [ -f "$MS2M_K8S_RUN/sysctl.orig" ]; then
  while IFS= read -r kv; do [ -n "$kv" ] && sysctl -q -w "$kv" >/dev/null; done <"$MS2M_K8S_RUN/sysctl.orig"
  rm -f "$MS2M_K8S_RUN/sysctl.orig"
fi

# 8. Hard-coded host paths: only our entries, and a directory only if it was not there before.
#    libcni's result cache: files that name our state dir (netns path).
for f in /var/lib/cni/results/*; do
  [ -f "$f" ] && grep -qF "$MS2M_K8S_RUN/" "$f" && rm -f "$f"
done
#    The kubelet's legacy /var/log/containers symlinks into our pod log dirs.
for f in /var/log/containers/*; do
  [ -L "$f" ] && [[ $(readlink "$f") == "$MS2M_K8S_RUN/"* ]] && rm -f "$f"
done
#    Shim sockets: named by a hash, so remove those nobody listens on any more.
listening=$(ss -xlH 2>/dev/null | awk '{print $5}')
for s in /run/containerd/s/*; do
  [ -S "$s" ] && ! grep -qxF "$s" <<<"$listening" && rm -f "$s"
done
#    The device manager's dir is fixed and shared by both kubelets; its entries are ours only if
#    the dir did not exist before up.
d=/var/lib/kubelet/device-plugins
if [ -d "$d" ]; then
  if [ -S "$d/kubelet.sock" ] && ! grep -qxF "$d/kubelet.sock" <<<"$listening"; then rm -f "$d/kubelet.sock"; fi
  was_absent "$d" && rm -f "$d/kubelet_internal_checkpoint"
fi
for d in $SHARED_DIRS; do
  [ -d "$d" ] && was_absent "$d" && rmdir "$d" 2>/dev/null
done
step "host paths cleaned"

# 9. The cluster's RabbitMQ user (made by up.sh).
export PATH=$PATH:/usr/sbin:/sbin
if command -v rabbitmqctl >/dev/null && port_open 127.0.0.1 5672; then
  if rabbitmqctl -q list_users 2>/dev/null {MS2M_LOCK_FD}>&- | awk '{print $1}' | grep -qxF "$RABBIT_USER"; then
    rabbitmqctl -q delete_user "$RABBIT_USER" >/dev/null {MS2M_LOCK_FD}>&- && step "RabbitMQ user $RABBIT_USER deleted"
  fi
elif [ -f "$AMQP_URL_FILE" ]; then
  log "RabbitMQ is not running: user $RABBIT_USER not deleted"
fi
rm -f "$AMQP_URL_FILE" "$MS2M_K8S_RUN/cluster.sum"

# 10. Is the host as before?
clean=unknown
if [ -f "$HOST_BEFORE" ]; then
  if host_check; then
    clean=yes
    rm -f "$HOST_BEFORE"
  else
    clean=no
    # Kept: the next down compares against the host as it really was before.
    log "warning: the host is not as up.sh found it (above); the snapshot stays in $HOST_BEFORE"
  fi
fi
if [ "$PURGE" = 1 ]; then
  rm -rf "$MS2M_K8S_RUN"
  step "state $MS2M_K8S_RUN deleted"
fi
step "cluster down (host clean: $clean)"
echo "HOST_CLEAN=$clean"
