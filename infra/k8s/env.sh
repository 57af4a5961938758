# shellcheck shell=bash
# shellcheck disable=SC2034  # a sourced settings file: its variables are used by the scripts that source it
# The test cluster's versions, cache and state paths. Sourced by every infra/k8s script, never executed.
#
# Everything it builds lives in $MS2M_K8S (cached across checkouts like the Temporal CLI): the Go caches,
# the binaries and the images. Its running state (etcd data, containerd roots, kubelet root dirs, logs,
# pid files) lives in $MS2M_K8S_RUN, which `down --purge` removes.
HERE_K8S=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../lib.sh
. "$HERE_K8S/../lib.sh"

# Pinned: containerd 2.4 removed restore from a checkpoint image (restore-via-create); 2.1–2.3 have it.
K8S_VERSION=v1.34.4
CONTAINERD_VERSION=v2.2.9
RUNC_VERSION=v1.3.7
ETCD_VERSION=v3.6.8
REGISTRY_VERSION=v3.1.2

MS2M_K8S=${MS2M_K8S:-$MS2M_CACHE/k8s}
MS2M_K8S_RUN=${MS2M_K8S_RUN:-$MS2M_K8S/run}
K8S_BIN=$MS2M_K8S/bin
K8S_IMAGES=$MS2M_K8S/images
CNI_BIN=$MS2M_K8S/cni/bin
export GOPATH=$MS2M_K8S/go GOMODCACHE=$MS2M_K8S/go/pkg/mod GOCACHE=$MS2M_K8S/go/cache
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
export PATH=/usr/local/go/bin:$PATH
export MS2M_K8S MS2M_K8S_RUN

PKI=$MS2M_K8S_RUN/pki
LOGS=$MS2M_K8S_RUN/logs
PIDS=$MS2M_K8S_RUN/pids
KUBECONFIG_ADMIN=$MS2M_K8S_RUN/admin.kubeconfig
ADMIN_TOKEN_FILE=$PKI/admin.token
# images.sh records the current image refs and tars here; up.sh imports what it names.
IMAGES_ENV=$K8S_IMAGES/images.env
# The criu (>= 4.2) wrapper made by infra/ensure-criu.sh: containerd's CRI plugin and runc look `criu`
# up in PATH, so this directory goes first in the PATH of containerd (and so of the shims) and kubelet.
CRIU_BIN_DIR=$MS2M_CACHE/bin
# CRIU options per container (runc reads the file named by the pod annotation org.criu.config):
# nothing goes into /etc/criu.
CRIU_CONFIG=$MS2M_K8S_RUN/criu/runc.conf
# The cluster's own RabbitMQ user: guest only logs in over loopback, pods come from the bridges.
RABBIT_USER=ms2m-k8s
AMQP_URL_FILE=$MS2M_K8S_RUN/amqp-url
# up.sh saves the host's state here before it changes anything; down.sh compares against it.
HOST_BEFORE=$MS2M_K8S_RUN/host.before

# Ports away from the stack's own (RabbitMQ 5672/15672/25672/4369, Temporal 7233/8233).
REGISTRY_PORT=30500 ETCD_PORT=23790 ETCD_PEER_PORT=23800 APISERVER_PORT=26443 KCM_PORT=30257 SCHED_PORT=30259
# The apiserver listens on 127.0.0.1 only: the host and hostNetwork pods (which share its loopback) reach it.
APISERVER=https://127.0.0.1:$APISERVER_PORT
NODES="node-a node-b"
declare -A KUBELET_PORT=([node-a]=30250 [node-b]=31250)
declare -A HEALTHZ_PORT=([node-a]=30248 [node-b]=31248)
declare -A STREAM_PORT=([node-a]=30010 [node-b]=31010)
declare -A POD_SUBNET=([node-a]=10.244.1.0/24 [node-b]=10.244.2.0/24)
declare -A POD_GATEWAY=([node-a]=10.244.1.1 [node-b]=10.244.2.1)
declare -A BRIDGE=([node-a]=ms2m-cni-a [node-b]=ms2m-cni-b)

# The kubelet refuses a loopback node IP: both nodes use the host's first global address.
host_ip() { ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1; }

kube() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
# In a directory of its own: the agents mount it (a socket file mounted alone would go stale when containerd restarts).
containerd_socket() { echo "$MS2M_K8S_RUN/$1/sock/containerd.sock"; }
ctr_on() { local n=$1; shift; "$K8S_BIN/ctr" -a "$(containerd_socket "$n")" -n k8s.io "$@"; }

# --- processes ------------------------------------------------------------------------------------
# Every daemon up.sh starts, in start order; down.sh stops them in reverse.
COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler registry"
for _n in $NODES; do COMPONENTS="$COMPONENTS containerd-$_n"; done
for _n in $NODES; do COMPONENTS="$COMPONENTS kubelet-$_n"; done
unset _n

# Kernel settings the kubelet rewrites (protectKernelDefaults: false lets it) plus ip_forward, which the
# CNI bridge plugin turns on for its gateway. up.sh saves them, down.sh puts them back.
SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward"

# Paths outside $MS2M_K8S_RUN that containerd, libcni or the kubelet hard-code (none can be moved;
# /run/mount is libmount's, made when the kubelet mounts a volume):
# down.sh removes our entries there, and the directories themselves when up.sh found them absent.
SHARED_DIRS="/var/lib/cni/results /var/lib/cni /var/log/containers /var/lib/kubelet/device-plugins /var/lib/kubelet /run/containerd/s /run/containerd /run/mount"

# pid_running PID: the process exists and is not a zombie. Our daemons are reparented to this
# host's PID 1, which reaps them only now and then: until it does, an exited daemon is a zombie
# that `kill -0` still finds, though it holds no port and no memory any more.
pid_running() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }    # after "(comm)", which may hold spaces
  st=${st%% *}
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# daemon_pid NAME: the pid of our running NAME, or nothing. The process must still run one of our
# binaries: a pid file that outlived its process must not make us signal a stranger who got the pid.
daemon_pid() {
  local f=$PIDS/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && pid_running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$K8S_BIN/" || return 1
  echo "$pid"
}

# die_see LOG MESSAGE: die, showing the last lines of the daemon log that says why (a CI run keeps
# only the output, not the cluster's logs).
die_see() {
  local file=$1
  shift
  [ -f "$file" ] && { log "last lines of $file:"; tail -n 25 "$file" | log_block; }
  die "$* (full log: $file)"
}

# start_daemon NAME CMD...: run CMD detached (own session, so a Ctrl-C of the caller does not reach
# it), log to $LOGS/NAME.log, pid to $PIDS/NAME.pid. The pid is written by the process itself before
# exec, so it is right whether or not setsid had to fork. The lock fd is closed for the daemon, or it
# would hold the caller's lock for as long as it runs.
start_daemon() {
  local name=$1
  shift
  mkdir -p "$LOGS" "$PIDS"
  rm -f "$PIDS/$name.pid"
  # shellcheck disable=SC2016  # $0/$$ belong to the inner shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDS/$name.pid" "$@" \
    >>"$LOGS/$name.log" 2>&1 </dev/null {MS2M_LOCK_FD}>&- &
  local i
  for i in $(seq 50); do [ -s "$PIDS/$name.pid" ] && return 0; sleep 0.02; done
  die_see "$LOGS/$name.log" "$name did not start"
}

# stop_daemons [-t SECONDS] NAME...: TERM them all at once, KILL what is left after SECONDS (default
# 3; a test cluster needs no graceful drain), then wait until they are gone, so that their ports are
# free for a restart right after.
stop_daemons() {
  local limit=3 name pid pids=() i left=()
  if [ "${1:-}" = -t ]; then limit=$2; shift 2; fi
  for name in "$@"; do
    if pid=$(daemon_pid "$name"); then kill -TERM "$pid" 2>/dev/null && pids+=("$pid"); fi
    rm -f "$PIDS/$name.pid"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for i in $(seq $((limit * 10))) kill $(seq 30); do
    left=()
    for pid in "${pids[@]}"; do pid_running "$pid" && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && return 0
    if [ "$i" = kill ]; then kill -KILL "${left[@]}" 2>/dev/null || true; fi
    sleep 0.1
  done
  log "warning: pids ${left[*]} survive SIGKILL"
}

admin_token() { cat "$ADMIN_TOKEN_FILE" 2>/dev/null; }

# healthy NAME: the component's own health endpoint answers (a live pid alone can be a hung process).
healthy() {
  case $1 in
    etcd) curl -sf -m 2 -o /dev/null "http://127.0.0.1:$ETCD_PORT/health" ;;
    kube-apiserver) curl -sfk -m 2 -o /dev/null -H "Authorization: Bearer $(admin_token)" "$APISERVER/readyz" ;;
    kube-controller-manager) curl -sfk -m 2 -o /dev/null "https://127.0.0.1:$KCM_PORT/healthz" ;;
    kube-scheduler) curl -sfk -m 2 -o /dev/null "https://127.0.0.1:$SCHED_PORT/healthz" ;;
    containerd-*) timeout 3 "$K8S_BIN/ctr" -a "$(containerd_socket "${1#containerd-}")" version >/dev/null 2>&1 ;;
    kubelet-*) curl -sf -m 2 -o /dev/null "http://127.0.0.1:${HEALTHZ_PORT[${1#kubelet-}]}/healthz" ;;
    registry) curl -sf -m 2 -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" ;;
    *) return 1 ;;
  esac
}

# cluster_state: "down" (none of our daemons runs), "up" (all run and answer their health check) or
# "broken" (anything in between: a half-up cluster).
cluster_state() {
  local c alive=0 ok=0 total=0
  for c in $COMPONENTS; do
    total=$((total + 1))
    if daemon_pid "$c" >/dev/null; then
      alive=$((alive + 1))
      healthy "$c" && ok=$((ok + 1))
    fi
  done
  if [ "$alive" -eq 0 ]; then echo down
  elif [ "$ok" -eq "$total" ]; then echo up
  else echo broken
  fi
}

# node_ready NODE [SINCE]: the node's Ready condition is True, and (with SINCE, epoch seconds) its
# kubelet reported it at or after SINCE: a node object that outlived a restart still says Ready
# until the controller notices, ~40 s later.
node_ready() {
  local out
  out=$(kube get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2>/dev/null) || return 1
  [ "${out%% *}" = True ] || return 1
  [ -z "${2:-}" ] || [ "$(date -d "${out#* }" +%s 2>/dev/null || echo 0)" -ge "$2" ]
}

# --- host footprint ---------------------------------------------------------------------------------
# host_snapshot: one sorted line per piece of host state the cluster touches (or could leave behind):
# network links, top-level cgroup dirs of every hierarchy, the sysctls, mount points, the shared
# directories and their entries, top-level names in /run /var/lib /var/log /etc /opt, and how many
# processes run our binaries. up.sh saves it before the first start; down.sh compares.
host_snapshot() {
  {
    ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print "link " $2}'
    local h d s
    for h in /sys/fs/cgroup/*/; do
      for d in "$h"*/; do [ -d "$d" ] && echo "cgroup ${d%/}"; done
    done
    for s in $SYSCTLS; do echo "sysctl $s=$(sysctl -n "$s" 2>/dev/null)"; done
    awk '{print "mount " $5}' /proc/self/mountinfo
    for d in $SHARED_DIRS; do
      [ -e "$d" ] || continue
      echo "path $d"
      for s in "$d"/*; do [ -e "$s" ] || [ -L "$s" ] && echo "path $s"; done
    done
    for d in /run /var/run /var/lib /var/log /etc /opt; do
      for s in "$d"/*; do [ -e "$s" ] && echo "top $s"; done
    done
    echo "processes-running-our-binaries $(pgrep -fc "^$K8S_BIN/" 2>/dev/null || true)"
  } | sort -u
}

# host_check: compare the host with the snapshot up.sh took; prints differences on stderr
# ("-" = was there before and is gone, "+" = new). True when identical.
host_check() {
  [ -f "$HOST_BEFORE" ] || { log "no host snapshot from before up ($HOST_BEFORE); cannot compare"; return 2; }
  local d
  d=$(diff "$HOST_BEFORE" <(host_snapshot) | sed -n 's/^</-/p; s/^>/+/p') || true
  [ -z "$d" ] && return 0
  log "the host differs from before up:"
  printf '%s\n' "$d" | log_block
  return 1
}

# wait_fast SECONDS DESCRIPTION CMD...: like wait_until, polling every 0.1 s (start-up is a chain of
# such waits, and 0.5 s polls would add seconds to it).
wait_fast() {
  local limit=$1 what=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start >= limit )); then
      log "gave up waiting ${limit}s for $what"
      return 1
    fi
    sleep 0.1
  done
}
