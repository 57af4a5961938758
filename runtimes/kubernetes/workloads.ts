/**
 * Services as Kubernetes workloads. A service is a Deployment, a StatefulSet or a bare Pod that carries the label
 * `ms2m.io/service=<service>` and, as annotations, the queue it consumes and the container that runs it;
 * the cluster is the placement store: a service is placed where its serving pod runs, and that pod
 * carries the label too. A copy restored by a migration carries only `ms2m.io/copy-for` until the
 * migration commits it, so that no controller counts it before it serves.
 *
 * The ownership handoff at commit, for a Deployment: the source pod gets the lowest deletion cost, then the
 * copy gets the labels of the Deployment's pods; its ReplicaSet adopts the copy (one pod too many) and
 * removes the source (the cheapest), so it never sees one pod too few and never starts a fresh pod with an
 * empty state. The Deployment itself (replicas, template, affinity, labels) is never written.
 *
 * A StatefulSet's pod moves to a pod of its own name (./statefulsets): the commit gives that pod back
 * to the StatefulSet the migration held.
 */
import type { V1Deployment, V1Pod, V1ReplicaSet, V1StatefulSet } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import type { KubernetesSpec, Placement } from '../types';
import { seg, type KubeApi } from './kube-api';
import { log } from '../../lib/log';
import { heldStatefulSet, releaseStatefulSet, statefulSetPath } from './statefulsets';

export const LABEL_SERVICE = 'ms2m.io/service';
export const LABEL_COPY_FOR = 'ms2m.io/copy-for';
/** On a pod (its template's labels), value `migrate`: evicting it migrates its service instead (./eviction-webhook). */
export const LABEL_ON_EVICTION = 'ms2m.io/on-eviction';
export const ANNOTATION_QUEUE = 'ms2m.io/primary-queue';
export const ANNOTATION_CONTAINER = 'ms2m.io/container';
export const ANNOTATION_SOURCE = 'ms2m.io/copy-of';
const DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost';

export const podPath = (ns: string, name = ''): string => `/api/v1/namespaces/${seg(ns)}/pods${name ? `/${seg(name)}` : ''}`;
export const deploymentPath = (ns: string, name = ''): string => `/apis/apps/v1/namespaces/${seg(ns)}/deployments${name ? `/${seg(name)}` : ''}`;
const selector = (labels: Record<string, string>): string => encodeURIComponent(Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','));

interface List<T> {
  items: T[];
}

/** A pod that is not on its way out. */
const live = (p: V1Pod): boolean => !p.metadata?.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';

export async function podsWith(api: KubeApi, ns: string, labels: Record<string, string>): Promise<V1Pod[]> {
  return (await api.get<List<V1Pod>>(`${podPath(ns)}?labelSelector=${selector(labels)}`)).items;
}

function specOf(kind: KubernetesSpec['kind'], obj: { metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> } }): KubernetesSpec {
  const a = obj.metadata?.annotations ?? {};
  return { runtime: 'kubernetes', namespace: obj.metadata!.namespace!, kind, name: obj.metadata!.name!, container: a[ANNOTATION_CONTAINER] ?? '', primaryQueue: a[ANNOTATION_QUEUE] ?? '' };
}

/** The service's placement: its workload, and the pod that serves it (null while it has none). */
export async function findService(api: KubeApi, namespaces: string[], service: string): Promise<Placement | null> {
  for (const ns of namespaces) {
    const deployments = (await api.get<List<V1Deployment>>(`${deploymentPath(ns)}?labelSelector=${selector({ [LABEL_SERVICE]: service })}`)).items;
    const pods = (await podsWith(api, ns, { [LABEL_SERVICE]: service })).filter(live);
    if (deployments[0]) {
      const d = deployments[0];
      const pod = pods.find((p) => p.metadata?.ownerReferences?.some((o) => o.kind === 'ReplicaSet')) ?? pods[0];
      if (!pod) return null;
      return placementOf(service, specOf('Deployment', d), pod);
    }
    // A StatefulSet, or one a migration holds (deleted, its manifest kept): the labelled pod serves it.
    const sts = (await api.get<List<V1StatefulSet>>(`${statefulSetPath(ns)}?labelSelector=${selector({ [LABEL_SERVICE]: service })}`)).items[0] ?? (await heldStatefulSet(api, ns, service))?.statefulSet;
    if (sts) {
      const pod = pods.find((p) => p.metadata?.ownerReferences?.some((o) => o.kind === 'StatefulSet')) ?? pods[0];
      return pod ? placementOf(service, specOf('StatefulSet', sts), pod) : null;
    }
    // A bare Pod: no controller owns it (a Deployment's pod is found through its Deployment above).
    const bare = pods.find((p) => p.metadata?.annotations?.[ANNOTATION_QUEUE] !== undefined && !p.metadata?.ownerReferences?.some((o) => o.controller));
    if (bare) return placementOf(service, specOf('Pod', bare), bare);
  }
  return null;
}

function placementOf(service: string, spec: KubernetesSpec, pod: V1Pod): Placement {
  return {
    service,
    node: pod.spec?.nodeName ?? '',
    instanceId: pod.metadata!.name!,
    spec,
    updatedAt: Date.parse(String(pod.metadata?.creationTimestamp ?? '')) || 0,
    ...(spec.kind === 'StatefulSet' ? { keepsName: true } : {}),
  };
}

export async function listServices(api: KubeApi, namespaces: string[]): Promise<Placement[]> {
  const names = new Set<string>();
  for (const ns of namespaces) {
    const exists = encodeURIComponent(LABEL_SERVICE);
    for (const d of (await api.get<List<V1Deployment>>(`${deploymentPath(ns)}?labelSelector=${exists}`)).items) names.add(d.metadata!.labels![LABEL_SERVICE]);
    for (const d of (await api.get<List<V1StatefulSet>>(`${statefulSetPath(ns)}?labelSelector=${exists}`)).items) names.add(d.metadata!.labels![LABEL_SERVICE]);
    for (const p of (await api.get<List<V1Pod>>(`${podPath(ns)}?labelSelector=${exists}`)).items) names.add(p.metadata!.labels![LABEL_SERVICE]);
  }
  const out: Placement[] = [];
  for (const s of names) {
    const p = await findService(api, namespaces, s);
    if (p) out.push(p);
  }
  return out;
}

/** The ReplicaSet that controls a pod, if a ReplicaSet does. */
async function replicaSetOf(api: KubeApi, pod: V1Pod): Promise<V1ReplicaSet | null> {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'ReplicaSet');
  if (!owner) return null;
  return api.find<V1ReplicaSet>(`/apis/apps/v1/namespaces/${seg(pod.metadata!.namespace!)}/replicasets/${seg(owner.name)}`);
}

/**
 * Makes `p.instanceId` the service's pod. At deploy it is the workload's own pod (labelled, the workload
 * annotated); after a migration it is the copy, which takes the source's place as the module comment says.
 * Safe to repeat.
 */
export async function commitService(api: KubeApi, p: Placement, spec: KubernetesSpec, timeoutMs = 60_000): Promise<void> {
  const ns = spec.namespace;
  const pod = await api.find<V1Pod>(podPath(ns, p.instanceId));
  if (!pod) throw new Error(`pod ${ns}/${p.instanceId} does not exist`);
  const annotations = { [ANNOTATION_QUEUE]: spec.primaryQueue, [ANNOTATION_CONTAINER]: spec.container };
  const sourceName = pod.metadata?.labels?.[LABEL_COPY_FOR] !== undefined ? pod.metadata?.annotations?.[ANNOTATION_SOURCE] : undefined;
  if (spec.kind === 'StatefulSet') {
    if (await heldStatefulSet(api, ns, p.service)) {
      // The pod of the StatefulSet's name, migrated (or restored where it was): the StatefulSet takes it back.
      await releaseStatefulSet(api, ns, p.service, p.instanceId, { [LABEL_SERVICE]: p.service, [LABEL_COPY_FOR]: null });
    } else {
      await api.patch(podPath(ns, p.instanceId), { metadata: { labels: { [LABEL_SERVICE]: p.service } } });
    }
    await api.patch(statefulSetPath(ns, spec.name), { metadata: { labels: { [LABEL_SERVICE]: p.service }, annotations } });
    return;
  }
  if (spec.kind === 'Deployment') {
    await api.patch(deploymentPath(ns, spec.name), { metadata: { labels: { [LABEL_SERVICE]: p.service }, annotations } });
  }
  if (!sourceName) {
    await api.patch(podPath(ns, p.instanceId), { metadata: { labels: { [LABEL_SERVICE]: p.service }, ...(spec.kind === 'Pod' ? { annotations } : {}) } });
  } else if (spec.kind === 'Pod') {
    // Two labelled pods would make the service ambiguous: the source lets go first.
    if (await api.find<V1Pod>(podPath(ns, sourceName))) await api.patch(podPath(ns, sourceName), { metadata: { labels: { [LABEL_SERVICE]: null } } });
    await api.patch(podPath(ns, p.instanceId), { metadata: { labels: { [LABEL_SERVICE]: p.service, [LABEL_COPY_FOR]: null }, annotations } });
  } else {
    const source = await api.find<V1Pod>(podPath(ns, sourceName));
    const rs = source ? await replicaSetOf(api, source) : null;
    const templateLabels = rs?.spec?.template?.metadata?.labels;
    if (!source || !templateLabels) throw new Error(`the source pod ${ns}/${sourceName} has no ReplicaSet to hand ${p.instanceId} to`);
    await api.patch(podPath(ns, sourceName), { metadata: { annotations: { [DELETION_COST]: String(-(2 ** 31)) } } });
    await api.patch(podPath(ns, p.instanceId), {
      metadata: { labels: { ...templateLabels, [LABEL_SERVICE]: p.service, [LABEL_COPY_FOR]: null }, annotations: { [DELETION_COST]: String(2 ** 31 - 1) } },
    });
  }
  if (spec.kind !== 'Deployment') return;
  // Returns once a ReplicaSet owns the pod: only then may the source go without the set falling short.
  const until = Date.now() + timeoutMs;
  for (;;) {
    const now = await api.find<V1Pod>(podPath(ns, p.instanceId));
    if (now?.metadata?.ownerReferences?.some((o) => o.controller && o.kind === 'ReplicaSet')) return;
    if (Date.now() > until) throw new Error(`the ReplicaSet of ${spec.name} did not adopt ${p.instanceId} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function uncommitService(api: KubeApi, p: Placement, spec: KubernetesSpec): Promise<void> {
  const strip = { metadata: { labels: { [LABEL_SERVICE]: null }, annotations: { [ANNOTATION_QUEUE]: null, [ANNOTATION_CONTAINER]: null } } };
  // Each goes on if one is gone already (the workload deleted by its owner): an undeploy ends anyway.
  const unlabel = (what: string, at: string) => api.patch(at, strip).catch((err: Error) => log('warn', `removing ms2m's labels from ${what} failed: ${err.message}`));
  if (spec.kind === 'Deployment') await unlabel(`Deployment ${spec.namespace}/${spec.name}`, deploymentPath(spec.namespace, spec.name));
  if (spec.kind === 'StatefulSet') await unlabel(`StatefulSet ${spec.namespace}/${spec.name}`, statefulSetPath(spec.namespace, spec.name));
  await unlabel(`pod ${spec.namespace}/${p.instanceId}`, podPath(spec.namespace, p.instanceId));
}
