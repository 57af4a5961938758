#!/usr/bin/env bash
# Installs ms2m into the test cluster from the very manifests a user applies (infra/kubernetes/base), with
# the overlay this cluster needs: images loaded on the nodes (never pulled), the workers on the host
# network (the cluster has no kube-proxy and no DNS, and Temporal listens on the host's loopback), the
# per-node paths of two kubelets on one host, and Secrets generated for this cluster. The eviction
# component (infra/kubernetes/eviction) is in: the API server calls the orchestrator's webhook on the
# host's loopback, with a certificate for 127.0.0.1 made by its make-cert.sh.
#
# Usage: deploy.sh [task-queue]   (default: ms2m). Idempotent; waits until every agent and the orchestrator run.
# stdout: OVERLAY=<dir>, TASK_QUEUE=<queue>.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"
report_failures
REPO=$(cd "$HERE_K8S/../.." && pwd)
QUEUE=${1:-ms2m}
[[ $QUEUE =~ ^[A-Za-z0-9._-]+$ ]] || die "task queue \"$QUEUE\" is not a plain name" "use letters, digits, '.', '_' and '-'"
# Up (incremental: seconds when it runs), with the current build of the project's image loaded on both nodes.
IMAGE=$(bash "$HERE_K8S/cluster.sh" up | sed -n 's/^IMAGE_MS2M=//p')
[ -n "$IMAGE" ] || die "cluster.sh up printed no IMAGE_MS2M line"

O=$MS2M_K8S_RUN/ms2m-overlay
mkdir -p "$O"
umask 077
[ -s "$PKI/transfer-secret" ] || openssl rand -hex 32 > "$PKI/transfer-secret"
cp "$PKI/transfer-secret" "$O/transfer-secret"
cp "$MS2M_K8S_RUN/amqp-url" "$O/broker-url"
CA_BUNDLE=$(bash "$REPO/infra/kubernetes/eviction/make-cert.sh" "$PKI/webhook" 127.0.0.1)
cp "$PKI/webhook/tls.crt" "$PKI/webhook/tls.key" "$O/"
umask 022
# Pods read their configuration at start: a changed one (queue, secrets) must roll them.
CONFIG_HASH=$(cat "$O/transfer-secret" "$O/broker-url" "$O/tls.crt" <(echo "$QUEUE") | sha256sum | cut -c1-16)
cat > "$O/kustomization.yaml" <<EOK
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$O" "$REPO/infra/kubernetes/base")
components:
  - $(realpath --relative-to="$O" "$REPO/infra/kubernetes/eviction")
images:
  - {name: ms2m, newName: ${IMAGE%:*}, newTag: "${IMAGE##*:}"}
generatorOptions:
  disableNameSuffixHash: true
secretGenerator:
  - {name: ms2m-transfer, namespace: ms2m-system, files: [secret=transfer-secret]}
  - {name: ms2m-broker, namespace: ms2m-system, files: [url=broker-url]}
  - {name: ms2m-webhook-tls, namespace: ms2m-system, type: kubernetes.io/tls, files: [tls.crt, tls.key]}
patches:
  - target: {kind: ConfigMap, name: ms2m-config}
    patch: |
      - {op: replace, path: /data/MS2M_TASK_QUEUE, value: "$QUEUE"}
      - {op: replace, path: /data/MS2M_TEMPORAL_ADDRESS, value: "127.0.0.1:7233"}
      - {op: replace, path: /data/MS2M_KUBELET_CHECKPOINTS, value: /host/checkpoints}
      - {op: replace, path: /data/MS2M_CONTAINERD_SOCKET, value: /host/containerd/containerd.sock}
      - {op: replace, path: /data/MS2M_TRANSFER_LISTEN, value: "0.0.0.0:0"}
      # The pods share the host's network here: each takes a free port for its metrics.
      - {op: replace, path: /data/MS2M_METRICS_LISTEN, value: "127.0.0.1:0"}
      - {op: add, path: /data/MS2M_KUBE_API, value: "https://127.0.0.1:$APISERVER_PORT"}
      - {op: add, path: /data/MS2M_CTR, value: /usr/local/bin/ctr}
  # The orchestrator is on the host network: the API server reaches its webhook on the loopback.
  - target: {kind: ValidatingWebhookConfiguration, name: ms2m-evictions}
    patch: |
      - {op: replace, path: /webhooks/0/clientConfig, value: {url: "https://127.0.0.1:8443/evict", caBundle: "$CA_BUNDLE"}}
  - target: {kind: Deployment, name: ms2m-orchestrator}
    patch: |
      - {op: add, path: /spec/template/spec/hostNetwork, value: true}
      - {op: add, path: /spec/template/spec/containers/0/imagePullPolicy, value: Never}
      - {op: add, path: /spec/template/metadata/annotations, value: {ms2m.io/config-hash: "$CONFIG_HASH"}}
      # One host: a new orchestrator could not bind the webhook's port while the old one runs.
      - {op: add, path: /spec/strategy, value: {type: Recreate}}
  # Two kubelets share this host: each node's directories are under \$MS2M_K8S_RUN/<node>.
  - target: {kind: DaemonSet, name: ms2m-agent}
    patch: |
      - {op: add, path: /spec/template/spec/hostNetwork, value: true}
      - {op: add, path: /spec/template/spec/containers/0/imagePullPolicy, value: Never}
      - {op: add, path: /spec/template/metadata/annotations, value: {ms2m.io/config-hash: "$CONFIG_HASH"}}
      - op: replace
        path: /spec/template/spec/volumes
        value:
          - {name: node-dirs, hostPath: {path: "$MS2M_K8S_RUN", type: Directory}}
      - op: replace
        path: /spec/template/spec/containers/0/volumeMounts
        value:
          - {name: node-dirs, mountPath: /host/checkpoints, subPathExpr: "\$(MS2M_NODE)/kubelet/checkpoints"}
          - {name: node-dirs, mountPath: /host/containerd, subPathExpr: "\$(MS2M_NODE)/sock"}
EOK
log "installing ms2m (image $IMAGE, task queue $QUEUE) from infra/kubernetes/base"
kube apply -k "$O" 2>&1 | log_block
kube -n ms2m-system rollout status deployment/ms2m-orchestrator --timeout=120s 2>&1 | log_block
kube -n ms2m-system rollout status daemonset/ms2m-agent --timeout=120s 2>&1 | log_block
echo "OVERLAY=$O"
echo "TASK_QUEUE=$QUEUE"
