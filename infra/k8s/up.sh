#!/usr/bin/env bash
# Brings up the two-node test cluster on this host, idempotently:
#   etcd -> kube-apiserver -> kube-controller-manager + kube-scheduler,
#   per node (node-a, node-b): its own containerd (own root/state/socket, runc root, CNI bridge and
#   subnet; the images imported) -> its own kubelet (own cgroup root, ports, root dir);
#   then waits until both nodes are Ready, untainted, and the default ServiceAccount exists.
# Also writes the CRIU config for checkpointable pods and makes the cluster's RabbitMQ user.
#
# Needs the binaries (build.sh) and the images (images.sh, which records them in $IMAGES_ENV);
# `cluster.sh up` runs all three. On a healthy running cluster this only re-imports images that
# changed (~2 s); a half-up cluster, or one started with other settings, is torn down and restarted.
#
# stdout (only): KUBECONFIG= KUBECTL= APISERVER= ADMIN_TOKEN_FILE= CRIU_CONFIG= AMQP_URL_FILE=
# NODES= HOST_IP= RUN= CTR= CONTAINERD_SOCKET_<NODE>= IMAGE_PAUSE= IMAGE_MS2M=
# Pods that are to be checkpointed carry the annotation org.criu.config=$CRIU_CONFIG.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/env.sh
. "$HERE/env.sh"
report_failures

T0=${EPOCHREALTIME/./}
step() { local us=$(( ${EPOCHREALTIME/./} - T0 )); log "$(printf '%3d.%01ds' $((us / 1000000)) $((us / 100000 % 10))) $*"; }

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl containerd containerd-shim-runc-v2 ctr runc; do
  [ -x "$K8S_BIN/$b" ] || die "$K8S_BIN/$b is missing: the cluster is not built" "run: bash infra/k8s/cluster.sh build"
done
for b in bridge host-local loopback; do
  [ -x "$CNI_BIN/$b" ] || die "CNI plugin $CNI_BIN/$b is missing" "run: bash infra/k8s/cluster.sh build"
done
[ -f "$IMAGES_ENV" ] || die "no images built yet ($IMAGES_ENV)" "run: bash infra/k8s/images.sh (or cluster.sh up)"
IMAGE_PAUSE='' IMAGE_PAUSE_TAR='' IMAGE_MS2M='' IMAGE_MS2M_TAR=''
# shellcheck source=/dev/null
. "$IMAGES_ENV"
for t in "$IMAGE_PAUSE_TAR" "$IMAGE_MS2M_TAR"; do [ -f "$t" ] || die "image tar $t is missing" "run: bash infra/k8s/images.sh"; done
if [ ! -x "$CRIU_BIN_DIR/criu" ]; then
  log "no criu wrapper in $CRIU_BIN_DIR yet; running infra/ensure-criu.sh"
  bash "$HERE/../ensure-criu.sh" >/dev/null
fi
command -v openssl >/dev/null || die "openssl is needed for the cluster's CA and tokens" "apt-get install -y openssl"

with_lock k8s-cluster
HOST_IP=$(host_ip)
[ -n "$HOST_IP" ] || die "this host has no global IPv4 address; the kubelets need one as node IP"
DAEMON_PATH=$CRIU_BIN_DIR:$K8S_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p "$MS2M_K8S_RUN" "$LOGS" "$PIDS"

# write_if_changed FILE [MODE]: stdin to FILE, unless FILE already holds exactly that (so an unchanged
# config keeps its mtime and nothing that reads it sees a rewrite).
write_if_changed() {
  local f=$1 mode=${2:-644} tmp
  tmp=$(mktemp "$f.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if cmp -s "$tmp" "$f"; then rm -f "$tmp"; else mv "$tmp" "$f"; fi
}

# --- PKI: CA, apiserver serving cert, service-account keys; random tokens, one identity per component
write_pki() {
  mkdir -p "$PKI" && chmod 700 "$PKI"
  if [ ! -f "$PKI/ca.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 -subj "/CN=ms2m-k8s-ca" 2>/dev/null
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  # The serving cert is remade when its SANs change (the host IP is one of them).
  printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' "$HOST_IP" |
    write_if_changed "$PKI/apiserver.ext"
  if [ ! -f "$PKI/apiserver.crt" ] || [ "$PKI/apiserver.ext" -nt "$PKI/apiserver.crt" ]; then
    openssl req -newkey rsa:2048 -nodes -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
      -out "$PKI/apiserver.crt" -days 3650 -extfile "$PKI/apiserver.ext" 2>/dev/null
  fi
  chmod 600 "$PKI"/*.key
  # Static token authentication with a real identity each: admin (system:masters), the controller
  # manager, the scheduler and system:node:<node> in system:nodes, so Node authorization and
  # NodeRestriction apply to the kubelets as in a real cluster. Tokens are random per cluster and
  # stay until `down --purge`.
  if [ ! -f "$PKI/tokens.csv" ]; then
    local id tok lines=()
    for id in admin kcm sched $NODES; do
      tok=$(openssl rand -hex 24)
      (umask 077 && echo "$tok" >"$PKI/$id.token")
      case $id in
        admin) lines+=("$tok,admin,uid-admin,\"system:masters\"") ;;
        kcm) lines+=("$tok,system:kube-controller-manager,uid-kcm") ;;
        sched) lines+=("$tok,system:kube-scheduler,uid-sched") ;;
        *) lines+=("$tok,system:node:$id,uid-$id,\"system:nodes\"") ;;
      esac
    done
    printf '%s\n' "${lines[@]}" | write_if_changed "$PKI/tokens.csv" 600
  fi
  local id
  for id in admin kcm sched $NODES; do
    write_if_changed "$MS2M_K8S_RUN/$id.kubeconfig" 600 <<EOF
apiVersion: v1
kind: Config
clusters: [{name: ms2m, cluster: {server: "$APISERVER", certificate-authority: "$PKI/ca.crt"}}]
users: [{name: $id, user: {token: "$(cat "$PKI/$id.token")"}}]
contexts: [{name: ms2m, context: {cluster: ms2m, user: $id}}]
current-context: ms2m
EOF
  done
}

# --- per node: containerd, CNI and kubelet configuration -----------------------------------------------
write_node_configs() {
  local n=$1 d=$MS2M_K8S_RUN/$1
  mkdir -p "$d/containerd/root" "$d/containerd/state" "$d/runc" "$d/cni/net.d" "$d/cni/ipam" "$d/kubelet/checkpoints" "$d/pod-logs" "$d/sock"
  write_if_changed "$d/containerd.toml" <<EOF
# Generated by infra/k8s/up.sh for $n. Everything containerd owns lives under $d.
version = 3
root = "$d/containerd/root"
state = "$d/containerd/state"
[grpc]
  address = "$d/sock/containerd.sock"
[ttrpc]
  address = "$d/sock/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/containerd/opt"
# NRI off: two containerds would both claim /var/run/nri/nri.sock.
[plugins."io.containerd.nri.v1.nri"]
  disable = true
# Our own streaming port per node (exec/attach/port-forward); the default 10010 would clash.
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "${STREAM_PORT[$n]}"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$IMAGE_PAUSE"
  # The test cluster's registry (the registry transfer mode) speaks plain HTTP: hosts.toml says so.
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "$d/certs.d"
[plugins."io.containerd.cri.v1.runtime"]
  enable_criu = true
  # Restore from a checkpoint image when a container is created from one (containerd 2.1–2.3 only).
  enable_experimental_restore_via_create = true
  # Pod network namespaces under our state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  # This host lacks CAP_SYS_RESOURCE in its bounding set, so not even root can lower oom_score_adj;
  # without this runc fails every sandbox ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$CNI_BIN"]
    conf_dir = "$d/cni/net.d"
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      # Passed from the pod to the OCI spec: runc reads CRIU options from the file it names
      # (tcp-close, network-lock skip: this host has no iptables for CRIU's network lock).
      pod_annotations = ["org.criu.config"]
      container_annotations = ["org.criu.config"]
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$K8S_BIN/runc"
        Root = "$d/runc"
        SystemdCgroup = false
EOF
  mkdir -p "$d/certs.d/localhost:$REGISTRY_PORT"
  write_if_changed "$d/certs.d/localhost:$REGISTRY_PORT/hosts.toml" <<EOF
server = "http://localhost:$REGISTRY_PORT"
[host."http://localhost:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
EOF
  # A bridge per node with its own subnet. No ipMasq (no iptables here): pods reach the host's own
  # addresses (RabbitMQ on $HOST_IP:5672) through the bridge gateway without NAT.
  write_if_changed "$d/cni/net.d/10-ms2m.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "ms2m-$n", "plugins": [
  {"type": "bridge", "bridge": "${BRIDGE[$n]}", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$d/cni/ipam", "ranges": [[{"subnet": "${POD_SUBNET[$n]}", "gateway": "${POD_GATEWAY[$n]}"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "loopback"}]}
EOF
  write_if_changed "$d/kubelet.yaml" <<EOF
# Generated by infra/k8s/up.sh for $n.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
port: ${KUBELET_PORT[$n]}
readOnlyPort: 0
healthzPort: ${HEALTHZ_PORT[$n]}
healthzBindAddress: 127.0.0.1
# The apiserver's node proxy (logs, exec, /checkpoint) reaches the kubelet without client certs.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}, x509: {}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$d/sock/containerd.sock
imageServiceEndpoint: unix://$d/sock/containerd.sock
cgroupDriver: cgroupfs
# One cgroup root per kubelet, or each one's orphaned-pod cleanup kills the other's pods.
cgroupRoot: /$n
failCgroupV1: false
failSwapOn: false
podLogsDir: $d/pod-logs
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
# No image GC: checkpoint images need their base image on the target node.
imageGCHighThresholdPercent: 100
maxPods: 50
rotateCertificates: false
serializeImagePulls: false
featureGates: {ContainerCheckpoint: true}
EOF
}

# cmd_for NAME: the daemon's command line, in the array CMD.
# shellcheck disable=SC2054  # the commas are inside flag values
cmd_for() {
  local n
  case $1 in
    etcd) CMD=("$K8S_BIN/etcd" --name ms2m --data-dir "$MS2M_K8S_RUN/etcd"
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT"
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT"
        --initial-cluster "ms2m=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn) ;;
    # 127.0.0.1 only, so the kubernetes Service gets no endpoints (--endpoint-reconciler-type=none);
    # hostNetwork pods reach the apiserver at $APISERVER, whose cert also names 10.96.0.1 and
    # kubernetes.default.
    kube-apiserver) CMD=("$K8S_BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT"
        --bind-address=127.0.0.1 --advertise-address="$HOST_IP" --secure-port="$APISERVER_PORT"
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt"
        --token-auth-file="$PKI/tokens.csv" --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction
        --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$PKI/sa.pub"
        --service-account-signing-key-file="$PKI/sa.key" --service-cluster-ip-range=10.96.0.0/16
        --allow-privileged=true --kubelet-preferred-address-types=InternalIP,Hostname
        --endpoint-reconciler-type=none --profiling=false --v=1) ;;
    # Per-controller service-account credentials: with one shared identity the node-lifecycle
    # controller lacks permissions and the not-ready taints never go.
    kube-controller-manager) CMD=("$K8S_BIN/kube-controller-manager" --kubeconfig="$MS2M_K8S_RUN/kcm.kubeconfig"
        --authentication-kubeconfig="$MS2M_K8S_RUN/kcm.kubeconfig" --authorization-kubeconfig="$MS2M_K8S_RUN/kcm.kubeconfig"
        --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt"
        --use-service-account-credentials=true --controllers='*,-nodeipam' --profiling=false --v=1) ;;
    kube-scheduler) CMD=("$K8S_BIN/kube-scheduler" --kubeconfig="$MS2M_K8S_RUN/sched.kubeconfig"
        --authentication-kubeconfig="$MS2M_K8S_RUN/sched.kubeconfig" --authorization-kubeconfig="$MS2M_K8S_RUN/sched.kubeconfig"
        --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false --profiling=false --v=1) ;;
    # criu and our runc/shim must be in containerd's PATH: the CRI plugin looks criu up there, the
    # shim inherits it and runc runs `criu swrk` from it.
    containerd-*) n=${1#containerd-}
      CMD=(env "PATH=$DAEMON_PATH" "$K8S_BIN/containerd" --config "$MS2M_K8S_RUN/$n/containerd.toml") ;;
    # --cert-dir: the default /var/lib/kubelet/pki is not under --root-dir. The node IP is the host's:
    # the kubelet refuses loopback; the apiserver still finds each kubelet by its own port.
    kubelet-*) n=${1#kubelet-}
      CMD=(env "PATH=$DAEMON_PATH" "$K8S_BIN/kubelet" --config="$MS2M_K8S_RUN/$n/kubelet.yaml"
        --kubeconfig="$MS2M_K8S_RUN/$n.kubeconfig" --root-dir="$MS2M_K8S_RUN/$n/kubelet"
        --cert-dir="$MS2M_K8S_RUN/$n/kubelet/pki" --hostname-override="$n" --node-ip="$HOST_IP" --v=1) ;;
    # The registry of the registry transfer mode, plain HTTP on loopback (the containerds' hosts.toml
    # says so); deleting manifests is on, so that removing an image removes it there too.
    registry) CMD=(env "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=$MS2M_K8S_RUN/registry" REGISTRY_STORAGE_DELETE_ENABLED=true
        "REGISTRY_HTTP_ADDR=127.0.0.1:$REGISTRY_PORT" REGISTRY_LOG_LEVEL=warn OTEL_TRACES_EXPORTER=none
        "$K8S_BIN/registry" serve "$MS2M_K8S_RUN/registry.yml") ;;
    *) die "unknown component $1" ;;
  esac
}

# The settings a running cluster was started with: if they change, it is restarted.
fingerprint() {
  local c n
  {
    cat "$MS2M_K8S/build/k8s.done" "$MS2M_K8S/build/runtime.done" 2>/dev/null || true
    for c in $COMPONENTS; do cmd_for "$c"; printf '%s\n' "${CMD[@]}"; done
    for n in $NODES; do cat "$MS2M_K8S_RUN/$n/containerd.toml" "$MS2M_K8S_RUN/$n/cni/net.d/10-ms2m.conflist" "$MS2M_K8S_RUN/$n/kubelet.yaml"; done
    cat "$PKI/tokens.csv" "$PKI/apiserver.crt"
  } | sha256sum | cut -d' ' -f1
}

# import_images NODE: import each current image the node does not have yet. Tags are content
# hashes, so a ref the node has is the same image.
import_images() {
  local n=$1 have ref tar
  have=$(ctr_on "$n" images ls -q 2>/dev/null || true)
  for ref in "$IMAGE_PAUSE" "$IMAGE_MS2M"; do
    grep -qxF "$ref" <<<"$have" && continue
    if [ "$ref" = "$IMAGE_PAUSE" ]; then tar=$IMAGE_PAUSE_TAR; else tar=$IMAGE_MS2M_TAR; fi
    ctr_on "$n" images import "$tar" >/dev/null 2>"$LOGS/import-$n.err" ||
      { log_block <"$LOGS/import-$n.err"; die "importing $ref into $n failed (above)"; }
    step "$n: imported $ref"
  done
  # Earlier builds' images (each a few hundred MB) go: pods started from them keep running, and deploy.sh
  # moves ms2m's own pods to the current one.
  local old
  old=$(grep -E '^localhost/ms2m(-pause)?:' <<<"$have" | grep -vxF -e "$IMAGE_PAUSE" -e "$IMAGE_MS2M" || true)
  # shellcheck disable=SC2086  # one argument per ref
  [ -z "$old" ] || ctr_on "$n" images rm $old >/dev/null 2>&1 || true
}

# The cluster's pods reach RabbitMQ over the bridge at $HOST_IP:5672, where guest may not log in: a
# user of their own, random password, all permissions on vhost /. rabbitmqctl may start epmd, which
# outlives us: hence the closed lock fd.
ensure_rabbit_user() {
  export PATH=$PATH:/usr/sbin:/sbin
  command -v rabbitmqctl >/dev/null || die "rabbitmqctl not found: the cluster's RabbitMQ user cannot be made" \
    "start the project's stack first: bash infra/bootstrap.sh && bash infra/stack.sh"
  port_open "$HOST_IP" 5672 || die "RabbitMQ does not accept connections on $HOST_IP:5672, where the pods reach it" \
    "start the project's stack first: bash infra/bootstrap.sh && bash infra/stack.sh"
  local url pass='' want
  if [ -s "$AMQP_URL_FILE" ]; then
    url=$(<"$AMQP_URL_FILE")
    pass=${url#amqp://"$RABBIT_USER":}
    pass=${pass%%@*}
    if [ "$url" = "amqp://$RABBIT_USER:$pass@$HOST_IP:5672" ] &&
      rabbitmqctl -q authenticate_user "$RABBIT_USER" "$pass" >/dev/null 2>&1 {MS2M_LOCK_FD}>&-; then
      return 0
    fi
  fi
  [ -n "$pass" ] || pass=$(openssl rand -hex 16)
  if rabbitmqctl -q list_users 2>/dev/null {MS2M_LOCK_FD}>&- | awk '{print $1}' | grep -qxF "$RABBIT_USER"; then
    rabbitmqctl -q change_password "$RABBIT_USER" "$pass" >/dev/null {MS2M_LOCK_FD}>&-
  else
    rabbitmqctl -q add_user "$RABBIT_USER" "$pass" >/dev/null {MS2M_LOCK_FD}>&-
  fi
  rabbitmqctl -q set_permissions -p / "$RABBIT_USER" '.*' '.*' '.*' >/dev/null {MS2M_LOCK_FD}>&-
  want="amqp://$RABBIT_USER:$pass@$HOST_IP:5672"
  (umask 077 && echo "$want" >"$AMQP_URL_FILE.tmp" && mv "$AMQP_URL_FILE.tmp" "$AMQP_URL_FILE")
  step "RabbitMQ user $RABBIT_USER ready (URL in $AMQP_URL_FILE)"
}

# The node-lifecycle controller removes these once it has seen the nodes Ready; until then the
# scheduler places nothing.
taints_gone() {
  local keys
  keys=$(kube get nodes -o jsonpath='{range .items[*]}{.spec.taints[*].key}{"\n"}{end}') || return 1
  ! grep -qE 'node.kubernetes.io/(not-ready|unreachable)|node.cloudprovider.kubernetes.io/uninitialized' <<<"$keys"
}

# wait_schedulable [SINCE]: see node_ready.
wait_schedulable() {
  local n
  for n in $NODES; do wait_fast 120 "node $n Ready" node_ready "$n" "${1:-}" || die_see "$LOGS/kubelet-$n.log" "node $n did not become Ready"; done
  step "nodes Ready"
  wait_fast 60 "the not-ready taints to go" taints_gone ||
    die_see "$LOGS/kube-controller-manager.log" "the nodes stay tainted not-ready"
  wait_fast 60 "the default ServiceAccount" kube -n default get serviceaccount default ||
    die_see "$LOGS/kube-controller-manager.log" "no default ServiceAccount"
  step "nodes schedulable, default ServiceAccount present"
}

emit() {
  local n
  echo "KUBECONFIG=$KUBECONFIG_ADMIN"
  echo "KUBECTL=$K8S_BIN/kubectl"
  echo "APISERVER=$APISERVER"
  echo "ADMIN_TOKEN_FILE=$ADMIN_TOKEN_FILE"
  echo "CRIU_CONFIG=$CRIU_CONFIG"
  echo "AMQP_URL_FILE=$AMQP_URL_FILE"
  echo "NODES=\"$NODES\""
  echo "HOST_IP=$HOST_IP"
  echo "RUN=$MS2M_K8S_RUN"
  echo "CTR=$K8S_BIN/ctr"
  for n in $NODES; do
    local key=${n^^}
    echo "CONTAINERD_SOCKET_${key//-/_}=$(containerd_socket "$n")"
  done
  echo "IMAGE_PAUSE=$IMAGE_PAUSE"
  echo "IMAGE_MS2M=$IMAGE_MS2M"
}

# --- go ------------------------------------------------------------------------------------------------
write_pki
for n in $NODES; do write_node_configs "$n"; done
mkdir -p "$(dirname "$CRIU_CONFIG")"
printf 'tcp-close\nnetwork-lock skip\n' | write_if_changed "$CRIU_CONFIG"
WANT=$(fingerprint)

state=$(cluster_state)
if [ "$state" = up ] && [ "$(cat "$MS2M_K8S_RUN/cluster.sum" 2>/dev/null)" = "$WANT" ]; then
  step "cluster already up"
  pids=()
  for n in $NODES; do import_images "$n" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || die "an image import failed (above)"; done
  ensure_rabbit_user
  wait_schedulable
  emit
  exit 0
fi
if [ "$state" = up ]; then
  log "the running cluster was started with other settings (binaries, images or configs changed): restarting it"
  MS2M_K8S_LOCK_HELD=1 bash "$HERE/down.sh" >/dev/null
elif [ "$state" = broken ]; then
  log "the cluster is half up (some daemons dead or not answering): tearing it down first"
  for c in $COMPONENTS; do daemon_pid "$c" >/dev/null || log "  $c: not running"; done
  MS2M_K8S_LOCK_HELD=1 bash "$HERE/down.sh" >/dev/null
fi

# From here on the host changes: remember how it was, for down.sh.
[ -f "$HOST_BEFORE" ] || host_snapshot >"$HOST_BEFORE"
if [ ! -f "$MS2M_K8S_RUN/sysctl.orig" ]; then
  for s in $SYSCTLS; do echo "$s=$(sysctl -n "$s")"; done >"$MS2M_K8S_RUN/sysctl.orig"
fi
rm -f "$MS2M_K8S_RUN/cluster.sum"

# The containerds need nothing from the control plane: start them first, and import the images in
# the background while the control plane comes up (the import is the slow part of a cold start).
for n in $NODES; do cmd_for "containerd-$n"; start_daemon "containerd-$n" "${CMD[@]}"; done
cmd_for etcd; start_daemon etcd "${CMD[@]}"
printf 'version: 0.1\nstorage: {filesystem: {}}\nhttp: {}\n' >"$MS2M_K8S_RUN/registry.yml"
cmd_for registry; start_daemon registry "${CMD[@]}"
import_pids=()
for n in $NODES; do
  (wait_fast 30 "containerd on $n" healthy "containerd-$n" || die_see "$LOGS/containerd-$n.log" "containerd on $n did not start"
   import_images "$n") &
  import_pids+=($!)
done
wait_fast 30 etcd healthy etcd || die_see "$LOGS/etcd.log" "etcd did not start"
step "etcd healthy"
cmd_for kube-apiserver; start_daemon kube-apiserver "${CMD[@]}"
wait_fast 90 kube-apiserver healthy kube-apiserver || die_see "$LOGS/kube-apiserver.log" "kube-apiserver is not ready"
step "kube-apiserver ready"
wait_fast 30 registry healthy registry || die_see "$LOGS/registry.log" "the registry did not start"
for c in kube-controller-manager kube-scheduler; do cmd_for "$c"; start_daemon "$c" "${CMD[@]}"; done

# The kubelets want their cgroup root to exist in every hierarchy (cgroup v1); cpuset's must have
# cpus/mems copied from the parent before anything can join it.
for n in $NODES; do
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mkdir -p "/sys/fs/cgroup/$n"
  else
    for h in /sys/fs/cgroup/*/; do [ "$h" = /sys/fs/cgroup/unified/ ] || mkdir -p "$h$n"; done
    if [ -d "/sys/fs/cgroup/cpuset/$n" ]; then
      cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$n/cpuset.cpus"
      cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$n/cpuset.mems"
    fi
  fi
done
for c in kube-controller-manager kube-scheduler; do
  wait_fast 60 "$c" healthy "$c" || die_see "$LOGS/$c.log" "$c is not healthy"
done
step "kube-controller-manager, kube-scheduler healthy"
for p in "${import_pids[@]}"; do wait "$p" || die "a node's containerd or image import failed (above)"; done
step "containerds up, images imported"
KUBELETS_STARTED=$(date +%s)
for n in $NODES; do cmd_for "kubelet-$n"; start_daemon "kubelet-$n" "${CMD[@]}"; done
for n in $NODES; do wait_fast 60 "kubelet on $n" healthy "kubelet-$n" || die_see "$LOGS/kubelet-$n.log" "the kubelet of $n is not healthy"; done
step "kubelets healthy"
wait_schedulable "$KUBELETS_STARTED"
ensure_rabbit_user
echo "$WANT" >"$MS2M_K8S_RUN/cluster.sum"
step "cluster up: $NODES"
emit
