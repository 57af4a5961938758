/**
 * StatefulSets. A StatefulSet knows its pod by name (`<sts>-N`) and replaces a missing one at once, with
 * an empty state, so a migration ends with a pod of that same name on the target, and while that name is
 * free the StatefulSet is *held*:
 * - hold: its manifest and the pod's (the pod's labels, and its spec for a restore once it is gone) go
 *   into a ConfigMap `ms2m-held-<service>`, then the StatefulSet is deleted with orphan propagation, so
 *   its pod (and its ControllerRevisions) outlive it, owned by nobody;
 * - release, at commit, once the pod of that name is the migrated one: the pod gets the labels the held
 *   pod had (the template's, the revision hash, the pod name and index) and the StatefulSet is created
 *   again from its manifest. Its controller adopts the pod as it stands: same revision, no restart, no
 *   fresh pod. Replicas, template, update strategy and revision are as before; the object is a new one
 *   (its uid and generation).
 * A hold is kept in the cluster, not in the migration, so that a StatefulSet is never lost: each step
 * finds what an earlier attempt did and goes on from there.
 */
import type { V1ConfigMap, V1Pod, V1StatefulSet } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { setTimeout as sleep } from 'node:timers/promises';
import { seg, type KubeApi } from './kube-api';

export const LABEL_HELD_FOR = 'ms2m.io/held-for';
const WAIT_MS = 60_000;

export const statefulSetPath = (ns: string, name = ''): string => `/apis/apps/v1/namespaces/${seg(ns)}/statefulsets${name ? `/${seg(name)}` : ''}`;
const configMapPath = (ns: string, name = ''): string => `/api/v1/namespaces/${seg(ns)}/configmaps${name ? `/${seg(name)}` : ''}`;
const pod = (ns: string, name: string): string => `/api/v1/namespaces/${seg(ns)}/pods/${seg(name)}`;
export const heldName = (service: string): string => `ms2m-held-${service}`;

export interface Held {
  statefulSet: V1StatefulSet;
  /** The StatefulSet's pod as it was when held. */
  pod: V1Pod;
}

/** What a manifest must not carry to be created again: what the API server gave the old object. */
function manifestOf<T extends V1Pod | V1StatefulSet>(o: T): T {
  const c = structuredClone(o);
  delete c.status;
  const m = (c.metadata ?? {}) as Record<string, unknown>;
  for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds']) delete m[k];
  return c;
}

const controlledBy = (p: V1Pod | null, kind: string): boolean => Boolean(p?.metadata?.ownerReferences?.some((o) => o.controller && o.kind === kind));

async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + WAIT_MS;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`${what} within ${WAIT_MS / 1000} s`);
    await sleep(200);
  }
}

export async function heldStatefulSet(api: KubeApi, ns: string, service: string): Promise<Held | null> {
  const cm = await api.find<V1ConfigMap>(configMapPath(ns, heldName(service)));
  if (!cm?.data?.statefulset || !cm.data.pod) return null;
  return { statefulSet: JSON.parse(cm.data.statefulset) as V1StatefulSet, pod: JSON.parse(cm.data.pod) as V1Pod };
}

/** Holds StatefulSet `name` and its pod `podName` (see the module comment); returns once the pod is owned by nobody. */
export async function holdStatefulSet(api: KubeApi, ns: string, name: string, service: string, podName: string): Promise<void> {
  if (!(await heldStatefulSet(api, ns, service))) {
    const sts = await api.find<V1StatefulSet>(statefulSetPath(ns, name));
    const p = await api.find<V1Pod>(pod(ns, podName));
    if (!sts || !p) throw new Error(`cannot hold StatefulSet ${ns}/${name}: ${sts ? `its pod ${podName}` : 'it'} does not exist`);
    const cm: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: heldName(service), namespace: ns, labels: { [LABEL_HELD_FOR]: service } },
      data: { statefulset: JSON.stringify(manifestOf(sts)), pod: JSON.stringify(manifestOf(p)) },
    };
    await api.post(configMapPath(ns), cm);
  }
  await api.remove(statefulSetPath(ns, name), { propagationPolicy: 'Orphan' });
  await until(`StatefulSet ${ns}/${name} was not gone and its pod ${podName} orphaned`, async () => {
    if (await api.find(statefulSetPath(ns, name))) return false;
    return !controlledBy(await api.find<V1Pod>(pod(ns, podName)), 'StatefulSet');
  });
}

/**
 * Gives pod `podName` (the migrated one, of the held pod's name) back to the StatefulSet; returns once
 * the StatefulSet owns it. Nothing if the StatefulSet is not held.
 */
export async function releaseStatefulSet(api: KubeApi, ns: string, service: string, podName: string, extraLabels: Record<string, string | null>): Promise<void> {
  const held = await heldStatefulSet(api, ns, service);
  if (!held) return;
  const name = held.statefulSet.metadata!.name!;
  if (held.pod.metadata?.name !== podName) throw new Error(`StatefulSet ${ns}/${name} is held for its pod ${held.pod.metadata?.name}, not ${podName}`);
  if (!(await api.find<V1Pod>(pod(ns, podName)))) throw new Error(`StatefulSet ${ns}/${name} cannot be given back: its pod ${podName} does not exist`);
  await api.patch(pod(ns, podName), { metadata: { labels: { ...(held.pod.metadata?.labels ?? {}), ...extraLabels } } });
  if (!(await api.find(statefulSetPath(ns, name)))) await api.post(statefulSetPath(ns), held.statefulSet);
  await until(`StatefulSet ${ns}/${name} did not adopt ${podName}`, async () => controlledBy(await api.find<V1Pod>(pod(ns, podName)), 'StatefulSet'));
  await api.remove(configMapPath(ns, heldName(service)));
}
