/**
 * Node activities of the kubernetes runtime, run by the node's agent (a DaemonSet pod) on its node's task
 * queue. An instance is a pod; its id is the pod's name.
 *
 * - checkpoint: the kubelet's checkpoint API through the API server; the agent moves the archive the kubelet
 *   wrote (into its checkpoint directory, which the agent mounts) under its own name, so a retry finds it
 *   and the kubelet, which never removes checkpoints, leaves nothing behind once the image is removed.
 * - transfer: agent to agent over HTTP, every file hashed, every request carrying a token derived from the
 *   agents' shared secret (../shared/image-transfer); the target's address is in its agent's Lease.
 * - restore: the target agent turns the archive into a checkpoint image in its node's containerd
 *   (./checkpoint-image) and creates the copy's pod on its node: the source pod's spec with that image,
 *   exactly the source's volumes (a restored container needs every mount it had; an extra one would be
 *   silently absent) and none of the labels a controller selects on, until the migration commits it.
 *
 * Identity (the port's contract): a restored container keeps the old pod's hostname and environment; a
 * downward-API volume shows the new pod's name. The service library reads its identity from that file
 * (MS2M_IDENTITY_FILE), so the copy knows it is one before it consumes anything.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import type { V1Deployment, V1Lease, V1Node, V1Pod, V1StatefulSet } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { FAILURE } from '../../lib/contracts';
import { log } from '../../lib/log';
import type { CheckpointResult, ImageRef, InstanceHealth, InstanceRecord, KubernetesSpec, Mechanism, NodeActivities } from '../types';
import { COMPLETE_MARK, sendImage } from '../shared/image-transfer';
import { checkpointImageName, importCheckpointImage, removeCheckpointImage, type Ctr } from './checkpoint-image';
import { KubeError, seg, type KubeApi } from './kube-api';
import { deleteCheckpointImage, pushCheckpointImage, registryRef, type Registry } from './registry';
import { heldStatefulSet, statefulSetPath } from './statefulsets';
import { ANNOTATION_CONTAINER, ANNOTATION_QUEUE, ANNOTATION_SOURCE, LABEL_COPY_FOR, LABEL_SERVICE, deploymentPath, podPath, podsWith } from './workloads';
import { copyPodOf } from './copy-pod';

export interface KubeNodeConfig {
  api: KubeApi;
  node: string;
  namespaces: string[];
  /** The kubelet's checkpoint directory as the agent sees it; images live in its `ms2m/` subdirectory. */
  checkpointDir: string;
  ctr: Ctr;
  /** The agents' shared transfer secret. */
  secret: string;
  /** Where agents register (their Leases). */
  agentNamespace: string;
  /** This agent's image endpoint. */
  transferUrl: string;
  /** The registry transfer mode (./registry): push on the source, the kubelet pulls on the target. */
  registry?: Registry;
  restoreTimeoutMs?: number;
}

/**
 * Where an image came from, so that the target can build the copy's pod: its ref's locator,
 * `<ns>/<pod>/<container>`, and `@<image ref>` once it was pushed to a registry.
 */
interface ImageMeta {
  namespace: string;
  pod: string;
  container: string;
  pushed?: string;
}

function metaOf(image: ImageRef): ImageMeta {
  const [where, pushed] = image.locator.split('@');
  const [namespace, pod, container] = where.split('/');
  if (!namespace || !pod || !container) throw ApplicationFailure.nonRetryable(`image ${image.id}: "${image.locator}" is not a kubernetes image locator (<namespace>/<pod>/<container>)`, FAILURE.ImageMissing);
  return { namespace, pod, container, ...(pushed ? { pushed } : {}) };
}

const imageTag = (imageId: string): string => checkpointImageName(imageId).split(':').pop()!;

const ARCHIVE = 'checkpoint.tar';

/** What this runtime cannot do of the mechanisms, and why (docs/design/kubernetes-mechanisms.md). */
const UNSUPPORTED: Record<Mechanism, string> = {
  stream:
    'the kubernetes runtime does not stream pages yet: it checkpoints through the kubelet API, which takes no CRIU options (the pod\'s CRIU config file could carry them: docs/design/kubernetes-mechanisms.md, 2a, not built); use transfer "files"',
  lazy: 'the kubernetes runtime does not restore lazily yet: containerd restores the pod without --lazy-pages (a per-pod CRIU config file and a lazy-pages daemon could do it: docs/design/kubernetes-mechanisms.md, 3, not built); use lazy false',
};
const RESULT = 'result.json';
export const agentLeaseName = (node: string): string => `ms2m-agent-${node}`;
export const TRANSFER_URL_ANNOTATION = 'ms2m.io/transfer-url';
/** States of a container that a restore never leaves on its own. */
const STUCK = /^(RunContainerError|CreateContainerError|CreateContainerConfigError|ErrImageNeverPull|ImagePullBackOff|ErrImagePull|CrashLoopBackOff|InvalidImageName)$/;

const invalid = (msg: string) => ApplicationFailure.nonRetryable(msg, FAILURE.InvalidSpec);

export function createKubeNodeActivities(cfg: KubeNodeConfig): NodeActivities {
  const { api, node, namespaces } = cfg;
  const images = path.join(cfg.checkpointDir, 'ms2m');
  mkdirSync(images, { recursive: true });
  const imageDir = (id: string) => path.join(images, id);
  const ref = (id: string, meta: ImageMeta): ImageRef => ({ node, id, locator: `${meta.namespace}/${meta.pod}/${meta.container}` });

  /** The pod of that name on this node, in the namespaces ms2m manages. */
  async function podOnNode(name: string): Promise<V1Pod | null> {
    for (const ns of namespaces) {
      const p = await api.find<V1Pod>(podPath(ns, name));
      if (p && p.spec?.nodeName === node) return p;
    }
    return null;
  }

  async function instancePods(): Promise<V1Pod[]> {
    const out: V1Pod[] = [];
    for (const ns of namespaces) {
      for (const label of [LABEL_SERVICE, LABEL_COPY_FOR]) {
        const list = await api.get<{ items: V1Pod[] }>(`${podPath(ns)}?labelSelector=${encodeURIComponent(label)}&fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`);
        out.push(...list.items.filter((p) => !out.some((o) => o.metadata?.uid === p.metadata?.uid)));
      }
    }
    return out;
  }

  const containerOf = (p: V1Pod): string => p.metadata?.annotations?.[ANNOTATION_CONTAINER] ?? p.spec?.containers[0]?.name ?? '';
  const statusOf = (p: V1Pod) => p.status?.containerStatuses?.find((c) => c.name === containerOf(p));
  const running = (p: V1Pod): boolean => Boolean(statusOf(p)?.state?.running);

  function record(p: V1Pod): InstanceRecord {
    const service = p.metadata?.labels?.[LABEL_SERVICE] ?? p.metadata?.labels?.[LABEL_COPY_FOR] ?? '';
    return {
      instanceId: p.metadata!.name!,
      service,
      node,
      startedAt: Date.parse(String(statusOf(p)?.state?.running?.startedAt ?? p.metadata?.creationTimestamp ?? '')) || 0,
      origin: p.metadata?.annotations?.[ANNOTATION_SOURCE] ? 'restored' : 'started',
      details: { pod: `${p.metadata!.namespace}/${p.metadata!.name}`, container: containerOf(p) },
    };
  }

  async function transferUrlOf(target: string): Promise<string> {
    const lease = await api.find<V1Lease>(`/apis/coordination.k8s.io/v1/namespaces/${seg(cfg.agentNamespace)}/leases/${seg(agentLeaseName(target))}`);
    const url = lease?.metadata?.annotations?.[TRANSFER_URL_ANNOTATION];
    if (!url) throw new Error(`node ${target} has no registered agent (Lease ${cfg.agentNamespace}/${agentLeaseName(target)}); is the ms2m agent DaemonSet running there?`);
    return url;
  }

  /** Waits for the copy's container to run; a state it never leaves by itself fails the restore. */
  async function awaitRunning(ns: string, name: string, container: string): Promise<V1Pod> {
    const until = Date.now() + (cfg.restoreTimeoutMs ?? 120_000);
    for (;;) {
      heartbeat();
      const p = await api.find<V1Pod>(podPath(ns, name));
      if (!p) throw ApplicationFailure.nonRetryable(`the copy's pod ${ns}/${name} disappeared while it was restored`, FAILURE.RestoreFailed);
      const st = p.status?.containerStatuses?.find((c) => c.name === container);
      if (st?.state?.running) return p;
      const waiting = st?.state?.waiting;
      const ended = st?.state?.terminated ?? st?.lastState?.terminated;
      if ((waiting?.reason && STUCK.test(waiting.reason)) || ended || p.status?.phase === 'Failed') {
        const why = waiting ? `${waiting.reason}: ${waiting.message ?? ''}` : ended ? `exited ${ended.exitCode} (${ended.reason ?? ''}) ${ended.message ?? ''}` : `pod ${p.status?.phase}`;
        throw ApplicationFailure.nonRetryable(`restoring ${ns}/${name} on ${node} failed: ${why.trim()}`, FAILURE.RestoreFailed);
      }
      if (Date.now() > until) throw ApplicationFailure.nonRetryable(`the copy's pod ${ns}/${name} did not run within ${cfg.restoreTimeoutMs ?? 120_000} ms (${waiting?.reason ?? p.status?.phase})`, FAILURE.RestoreFailed);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    async describeNode() {
      // A node that is not Ready cannot take a copy (nor checkpoint one): refused here, where the node is known.
      const self = await api.get<V1Node>(`/api/v1/nodes/${seg(node)}`);
      const ready = self.status?.conditions?.find((c) => c.type === 'Ready');
      if (ready?.status !== 'True') {
        throw ApplicationFailure.nonRetryable(
          `node "${node}" is not Ready (${ready?.reason ?? 'no Ready condition'}${ready?.message ? `: ${ready.message}` : ''}); choose a Ready node (kubectl get nodes) or wait for it`,
          FAILURE.NodeUnreachable,
        );
      }
      return {
        node,
        runtime: 'kubernetes',
        details: { checkpoints: cfg.checkpointDir, containerd: cfg.ctr.socket, transferUrl: cfg.transferUrl, apiServer: api.server },
        unsupported: UNSUPPORTED,
      };
    },

    async awaitPages() {
      throw ApplicationFailure.nonRetryable(`mechanisms.lazy: ${UNSUPPORTED.lazy}`, FAILURE.Unsupported);
    },

    async startInstance({ service, spec }) {
      // A Kubernetes service is the user's workload: ms2m takes it under management where it runs.
      if (spec.runtime !== 'kubernetes') throw invalid(`spec.runtime: this node runs kubernetes workloads, not ${spec.runtime} ones; give a kubernetes spec (namespace, kind, name, container)`);
      const k: KubernetesSpec = spec;
      if (!namespaces.includes(k.namespace)) throw invalid(`spec.namespace: ms2m does not manage namespace "${k.namespace}" (it manages ${namespaces.join(', ')}); add it to the ms2m configuration and bind the ms2m roles there`);
      let pod: V1Pod | undefined;
      if (k.kind === 'Pod') {
        pod = (await api.find<V1Pod>(podPath(k.namespace, k.name))) ?? undefined;
        if (!pod) throw invalid(`spec.name: there is no Pod "${k.name}" in namespace "${k.namespace}"`);
        const names = (pod.spec?.containers ?? []).map((c) => c.name);
        if (!names.includes(k.container)) throw invalid(`spec.container: Pod ${k.name} has no container "${k.container}"; its containers are ${names.join(', ')}`);
      } else {
        const path = k.kind === 'Deployment' ? deploymentPath(k.namespace, k.name) : statefulSetPath(k.namespace, k.name);
        const list = k.kind === 'Deployment' ? 'deployments' : 'statefulsets';
        const w = await api.find<V1Deployment | V1StatefulSet>(path);
        if (!w) throw invalid(`spec.name: there is no ${k.kind} "${k.name}" in namespace "${k.namespace}" (kubectl -n ${k.namespace} get ${list} lists them)`);
        const names = (w.spec?.template?.spec?.containers ?? []).map((c) => c.name);
        if (!names.includes(k.container)) throw invalid(`spec.container: ${k.kind} ${k.name} has no container "${k.container}"; its containers are ${names.join(', ')}`);
        if (k.kind === 'StatefulSet' && (w as V1StatefulSet).spec?.volumeClaimTemplates?.length) {
          throw invalid(`spec.name: StatefulSet ${k.name} has volumeClaimTemplates; ms2m moves a consumer's state in memory, and a claim's volume stays bound where it is. Remove them, or keep that StatefulSet where it runs`);
        }
        const pods = (await podsWith(api, k.namespace, w.spec?.selector?.matchLabels ?? {})).filter((p) => !p.metadata?.deletionTimestamp);
        if (pods.length !== 1) throw invalid(`spec.name: ${k.kind} ${k.name} has ${pods.length} pods; ms2m migrates a ${k.kind} of one replica`);
        pod = pods[0];
      }
      if (pod.spec?.nodeName !== node) {
        throw invalid(`node: the pod ${pod.metadata!.name} of ${k.kind} ${k.name} runs on ${pod.spec?.nodeName ?? 'no node yet'}, not ${node}; deploy with node "${pod.spec?.nodeName}"`);
      }
      // Labelled now so that this agent lists it; the placement itself is committed by the deploy workflow.
      const patched = await api.patch<V1Pod>(podPath(k.namespace, pod.metadata!.name!), {
        metadata: { labels: { [LABEL_SERVICE]: service }, annotations: { [ANNOTATION_CONTAINER]: k.container, ...(k.kind === 'Pod' ? { [ANNOTATION_QUEUE]: k.primaryQueue } : {}) } },
      });
      return record(patched);
    },

    async checkpoint({ instanceId, imageId, streamTo }): Promise<CheckpointResult> {
      if (streamTo) throw ApplicationFailure.nonRetryable(`mechanisms.transfer: ${UNSUPPORTED.stream}`, FAILURE.Unsupported);
      const dir = imageDir(imageId);
      if (existsSync(path.join(dir, RESULT))) return JSON.parse(readFileSync(path.join(dir, RESULT), 'utf8')) as CheckpointResult;
      const pod = await podOnNode(instanceId);
      if (!pod) throw ApplicationFailure.nonRetryable(`instance ${instanceId}: no such pod on ${node}`, FAILURE.InstanceNotFound);
      const meta: ImageMeta = { namespace: pod.metadata!.namespace!, pod: instanceId, container: containerOf(pod) };
      const started = Date.now();
      // The kubelet's call can outlast the heartbeat timeout (15 s seen in CI): a retry meanwhile would find
      // containerd's checkpoint of this container still running ("ref … locked") and fail.
      const beat = setInterval(() => heartbeat(), 2000);
      const answer = await api
        .post<{ items?: string[] }>(`/api/v1/nodes/${seg(node)}/proxy/checkpoint/${seg(meta.namespace)}/${seg(meta.pod)}/${seg(meta.container)}?timeout=120`, undefined)
        .finally(() => clearInterval(beat));
      const dumpMs = Date.now() - started;
      const written = answer.items?.[0];
      if (!written) throw new Error(`the kubelet of ${node} answered the checkpoint of ${meta.pod} without an archive`);
      // The kubelet names the file in its own filesystem; the agent mounts that directory elsewhere.
      const archive = path.join(cfg.checkpointDir, path.basename(written));
      mkdirSync(dir, { recursive: true });
      renameSync(archive, path.join(dir, ARCHIVE));
      const bytes = statSync(path.join(dir, ARCHIVE)).size;
      // The kubelet reports no freeze time: the container is paused for the whole call at most.
      const result: CheckpointResult = { image: ref(imageId, meta), bytes, files: 1, dumpMs, freezeMs: dumpMs };
      writeFileSync(path.join(dir, RESULT), JSON.stringify(result));
      return result;
    },

    async transfer({ image, targetNode }) {
      const dir = imageDir(image.id);
      if (!existsSync(path.join(dir, ARCHIVE))) throw ApplicationFailure.nonRetryable(`image ${image.id} is not on ${node}`, FAILURE.ImageMissing);
      // The copy of a StatefulSet's pod is restored beside its shadow: the image is where it must be.
      if (targetNode === node) return { image, bytes: 0, files: 0, ms: 0 };
      const started = Date.now();
      if (cfg.registry) {
        const beat = setInterval(() => heartbeat(), 2000);
        try {
          const pushed = await pushCheckpointImage(cfg.registry, path.join(dir, ARCHIVE), metaOf(image).container, imageTag(image.id));
          return { image: { node: targetNode, id: image.id, locator: `${image.locator.split('@')[0]}@${pushed.ref}` }, bytes: pushed.bytes, files: 1, ms: Date.now() - started };
        } finally {
          clearInterval(beat);
        }
      }
      const url = await transferUrlOf(targetNode);
      let sent = 0;
      const r = await sendImage(dir, url, image.id, (_n, b) => heartbeat({ sent: (sent += b) }), { secret: cfg.secret });
      return { image: { node: targetNode, id: image.id, locator: image.locator }, bytes: r.bytes, files: r.files, ms: Date.now() - started };
    },

    async restore({ image, service, instanceId }) {
      const meta = metaOf(image);
      const dir = imageDir(image.id);
      // Received here completely, or checkpointed here (its result is written last).
      const here = existsSync(path.join(dir, COMPLETE_MARK)) || existsSync(path.join(dir, RESULT));
      if (!meta.pushed && !here) throw ApplicationFailure.nonRetryable(`image ${image.id} was not received completely on ${node}`, FAILURE.ImageMissing);
      const started = Date.now();
      const pod = await api.find<V1Pod>(podPath(meta.namespace, instanceId));
      if (pod && pod.spec?.nodeName !== node) {
        // The instance's own name, restored before its old pod is gone (a retry after a stop that did not finish).
        throw new Error(`pod ${meta.namespace}/${instanceId} still exists on ${pod.spec?.nodeName}; it must be gone before it is restored on ${node}`);
      }
      const create = async () => {
        // The source's spec: from its pod, or, once a StatefulSet's pod is gone to free its name, from the hold.
        const source = (await api.find<V1Pod>(podPath(meta.namespace, meta.pod))) ?? (await heldStatefulSet(api, meta.namespace, service))?.pod;
        if (!source || source.metadata?.name !== meta.pod) throw ApplicationFailure.nonRetryable(`the source pod ${meta.namespace}/${meta.pod} is gone: there is no spec to restore its copy with`, FAILURE.RestoreFailed);
        // Pushed to a registry: the kubelet pulls it. Otherwise it is here and goes into containerd now.
        const name = meta.pushed ?? checkpointImageName(image.id);
        if (!meta.pushed) await importCheckpointImage(cfg.ctr, path.join(dir, ARCHIVE), meta.container, name);
        heartbeat();
        await api.post<V1Pod>(podPath(meta.namespace), copyPodOf(source, { name: instanceId, node, service, image: name, container: meta.container, pull: Boolean(meta.pushed) }));
      };
      if (!pod) await create();
      // CRIU's restore under runc now and then fails with no more said than "criu failed: type RESTORE
      // errno 0" (twice in CI, never reproduced by hand, its log gone with the container). The copy's
      // pod is nobody's yet, so it is made again, once, before the restore counts as failed.
      for (let attempt = 1; ; attempt++) {
        try {
          const ran = await awaitRunning(meta.namespace, instanceId, meta.container);
          return { instance: record(ran), restoreMs: Date.now() - started };
        } catch (err) {
          if (attempt > 1 || !/criu failed: type RESTORE/.test((err as Error).message)) throw err;
          log('warn', `${(err as Error).message}; making the copy's pod again`, { pod: `${meta.namespace}/${instanceId}` });
          await api.remove(podPath(meta.namespace, instanceId), { gracePeriodSeconds: 0 });
          for (let i = 0; i < 300 && (await api.find(podPath(meta.namespace, instanceId))); i++) await new Promise((r) => setTimeout(r, 100));
          await create();
        }
      }
    },

    async stopInstance({ instanceId }) {
      /** A pod ms2m may not delete is let go: it keeps running, no longer labelled as ms2m's. */
      const release = async (ns: string) => {
        await api.patch(podPath(ns, instanceId), { metadata: { labels: { [LABEL_SERVICE]: null, [LABEL_COPY_FOR]: null } } });
        return { stopped: false };
      };
      const pod = await podOnNode(instanceId);
      if (!pod) return { stopped: false };
      const ns = pod.metadata!.namespace!;
      // Never a pod that its controller would replace with a fresh one, empty of state: a ReplicaSet's pod
      // goes only while the set has one more than it wants (after a migration, the adopted copy).
      const gone = async () => {
        // Stopped means gone: a terminating pod's process may still hold its connections.
        for (let i = 0; i < 300 && (await api.find(podPath(ns, instanceId))); i++) await new Promise((r) => setTimeout(r, 100));
      };
      if (pod.metadata?.deletionTimestamp) {
        await gone();
        return { stopped: true };
      }
      const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
      if (owner?.kind === 'ReplicaSet') {
        const rs = await api.find<{ spec?: { replicas?: number; selector?: { matchLabels?: Record<string, string> } } }>(`/apis/apps/v1/namespaces/${seg(ns)}/replicasets/${seg(owner.name)}`);
        const pods = rs ? (await podsWith(api, ns, rs.spec?.selector?.matchLabels ?? {})).filter((p) => !p.metadata?.deletionTimestamp && p.metadata?.ownerReferences?.some((o) => o.uid === owner.uid)) : [];
        if (rs && pods.length <= (rs.spec?.replicas ?? 1)) return release(ns);
      } else if (owner) {
        return release(ns);
      }
      await api.remove(podPath(ns, instanceId), { gracePeriodSeconds: 2 });
      await gone();
      return { stopped: true };
    },

    async removeImage({ imageId }) {
      rmSync(imageDir(imageId), { recursive: true, force: true });
      rmSync(path.join(images, '.incoming', imageId), { recursive: true, force: true });
      await removeCheckpointImage(cfg.ctr, checkpointImageName(imageId));
      if (cfg.registry) {
        await removeCheckpointImage(cfg.ctr, registryRef(cfg.registry, imageTag(imageId)));
        await deleteCheckpointImage(cfg.registry, imageTag(imageId));
      }
    },

    async listInstances() {
      return (await instancePods()).map((p) => ({ ...record(p), alive: running(p) }));
    },

    async instanceHealth({ instanceId, logLines = 20 }): Promise<InstanceHealth> {
      const p = await podOnNode(instanceId);
      const logs = p ? `kubectl -n ${p.metadata!.namespace} logs ${instanceId} -c ${containerOf(p)}` : `(pod ${instanceId} is gone)`;
      if (!p) return { instanceId, node, startedAt: 0, alive: false, exit: null, exitUnknown: `pod ${instanceId} no longer exists on ${node}`, logs, logTail: [] };
      const st = statusOf(p);
      const t = st?.state?.terminated ?? st?.lastState?.terminated;
      const tail = await api
        .text(`${podPath(p.metadata!.namespace!, instanceId)}/log?container=${seg(containerOf(p))}&tailLines=${logLines}`)
        .then((s) => s.split('\n').filter(Boolean))
        .catch((err: Error) => [`(no log: ${err.message})`]);
      return {
        instanceId,
        node,
        startedAt: record(p).startedAt,
        alive: running(p),
        exit: t ? { code: t.exitCode ?? null, signal: t.signal ? String(t.signal) : null, at: Date.parse(String(t.finishedAt ?? '')) || 0 } : null,
        logs,
        logTail: tail,
      };
    },

    async instanceLoads() {
      // The kubelet's own rates: cpu is an average over its sampling window, so no sample is taken here.
      const summary = await api.get<{ pods?: Array<{ podRef: { name: string; namespace: string }; cpu?: { usageNanoCores?: number }; memory?: { rssBytes?: number } }> }>(
        `/api/v1/nodes/${seg(node)}/proxy/stats/summary`,
      );
      const ours = new Map((await instancePods()).map((p) => [`${p.metadata!.namespace}/${p.metadata!.name}`, p]));
      return (summary.pods ?? [])
        .filter((s) => ours.has(`${s.podRef.namespace}/${s.podRef.name}`))
        .map((s) => ({
          instanceId: s.podRef.name,
          service: record(ours.get(`${s.podRef.namespace}/${s.podRef.name}`)!).service,
          cpuPercent: (s.cpu?.usageNanoCores ?? 0) / 1e7,
          rssBytes: s.memory?.rssBytes ?? 0,
        }));
    },
  };
}

export { KubeError };
