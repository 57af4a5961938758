/**
 * The project's example services as Kubernetes workloads, for the harness (demo, tests, benchmark): the
 * local spec of an example (node + a script of the project, its environment) becomes a one-replica
 * Deployment (or StatefulSet, or bare Pod) of the ms2m image, in the shape a user's migratable consumer has:
 * - the identity file: a downward-API volume with the pod's name, named by MS2M_IDENTITY_FILE;
 * - the CRIU options file of the cluster's runtime (`org.criu.config`), UV_USE_IO_URING=0 (CRIU cannot dump
 *   io_uring), and a short grace period (the example handles SIGTERM);
 * - the broker's URL from a Secret; host paths the example writes (the ledger's apply trace) mounted from
 *   the host at the same path, so the harness reads what every pod wrote;
 * - a preferred (soft) affinity for the node it is deployed on: the scheduler places it there, and a
 *   copy on another node breaks no rule of the template.
 */
import * as path from 'node:path';
import type { V1Deployment, V1Pod, V1StatefulSet } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { loadConfig } from '../../lib/config';
import type { KubernetesSpec, LocalSpec, WorkloadShape } from '../types';
import { seg, type KubeApi } from './kube-api';
import { heldName, statefulSetPath } from './statefulsets';
import { LABEL_ON_EVICTION, deploymentPath, podPath } from './workloads';


export const EXAMPLE_NAMESPACE = 'default';
export const EXAMPLE_CONTAINER = 'app';
const IDENTITY_DIR = '/etc/ms2m/pod';
const APP = '/app';

export interface ExampleCluster {
  api: KubeApi;
  image: string;
  criuConfig: string;
  amqpUrl: string;
}

export function exampleDeployment(service: string, spec: LocalSpec, node: string, c: ExampleCluster, migrateOnEviction = false): V1Deployment {
  const root = loadConfig().projectRoot;
  const command = spec.command.map((a, i) => (i === 0 && a === process.execPath ? 'node' : a.startsWith(`${root}/`) ? path.join(APP, path.relative(root, a)) : a));
  const hostDirs = [...new Set(Object.values(spec.env).filter((v) => path.isAbsolute(v) && !v.startsWith(`${root}/`)).map((v) => path.dirname(v)))];
  const env = Object.entries({ ...spec.env, MS2M_IDENTITY_FILE: `${IDENTITY_DIR}/name`, UV_USE_IO_URING: '0' })
    .filter(([k]) => k !== 'MS2M_AMQP_URL')
    .map(([name, value]) => ({ name, value }));
  const labels = { app: service };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: service, namespace: EXAMPLE_NAMESPACE, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels: { ...labels, ...(migrateOnEviction ? { [LABEL_ON_EVICTION]: 'migrate' } : {}) }, annotations: { 'org.criu.config': c.criuConfig } },
        spec: {
          terminationGracePeriodSeconds: 2,
          affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, preference: { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] } }] } },
          containers: [
            {
              name: EXAMPLE_CONTAINER,
              image: c.image,
              imagePullPolicy: 'Never',
              command,
              workingDir: APP,
              env: [...env, { name: 'MS2M_AMQP_URL', valueFrom: { secretKeyRef: { name: `${service}-broker`, key: 'url' } } }],
              volumeMounts: [{ name: 'identity', mountPath: IDENTITY_DIR }, ...hostDirs.map((d, i) => ({ name: `host-${i}`, mountPath: d }))],
            },
          ],
          volumes: [
            { name: 'identity', downwardAPI: { items: [{ path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } },
            ...hostDirs.map((d, i) => ({ name: `host-${i}`, hostPath: { path: d, type: 'DirectoryOrCreate' } })),
          ],
        },
      },
    },
  };
}

/** The same pod template as a one-replica StatefulSet (its pod is `<service>-0`). */
function exampleStatefulSet(d: V1Deployment): V1StatefulSet {
  return { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: d.metadata, spec: { replicas: 1, serviceName: d.metadata!.name!, selector: d.spec!.selector, template: d.spec!.template } };
}

/**
 * Creates (or replaces) the example as a Deployment, a StatefulSet, or a bare Pod (`<service>-solo`)
 * bound to `node`, and waits until its pod runs on `node`.
 */
export async function deployExample(service: string, spec: LocalSpec, node: string, c: ExampleCluster, { kind = 'Deployment', migrateOnEviction = false }: WorkloadShape = {}): Promise<KubernetesSpec> {
  const ns = EXAMPLE_NAMESPACE;
  await discardExample(c.api, service);
  await c.api.post(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${service}-broker`, namespace: ns }, stringData: { url: c.amqpUrl } });
  const d = exampleDeployment(service, spec, node, c, migrateOnEviction);
  const name = kind === 'Pod' ? `${service}-solo` : service;
  if (kind === 'Pod') {
    const t = d.spec!.template;
    await c.api.post(podPath(ns), { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: t.metadata!.labels, annotations: t.metadata!.annotations }, spec: { ...t.spec!, nodeName: node } });
  } else if (kind === 'StatefulSet') {
    await c.api.post(statefulSetPath(ns), exampleStatefulSet(d));
  } else {
    await c.api.post(deploymentPath(ns), d);
  }
  const until = Date.now() + 120_000;
  for (;;) {
    const pods = (await c.api.get<{ items: V1Pod[] }>(`${podPath(ns)}?labelSelector=${encodeURIComponent(`app=${service}`)}`)).items;
    const pod = pods.find((p) => !p.metadata?.deletionTimestamp);
    if (pod?.spec?.nodeName && pod.spec.nodeName !== node) throw new Error(`the scheduler placed ${service} on ${pod.spec.nodeName}, not ${node} (is ${node} cordoned or full?)`);
    if (pod?.status?.containerStatuses?.[0]?.state?.running) break;
    if (Date.now() > until) throw new Error(`${service}'s pod did not run within 120 s: ${JSON.stringify(pod?.status?.containerStatuses?.[0]?.state ?? pod?.status?.phase)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { runtime: 'kubernetes', namespace: ns, kind, name, container: EXAMPLE_CONTAINER, primaryQueue: spec.primaryQueue };
}

/** Deletes the example's workload (and a hold of it), its pods (copies included) and its Secret, and waits for the pods to go. */
export async function discardExample(api: KubeApi, service: string): Promise<void> {
  const ns = EXAMPLE_NAMESPACE;
  await api.remove(deploymentPath(ns, service), { propagationPolicy: 'Foreground', gracePeriodSeconds: 0 });
  await api.remove(statefulSetPath(ns, service), { propagationPolicy: 'Foreground', gracePeriodSeconds: 0 });
  await api.remove(`/api/v1/namespaces/${ns}/configmaps/${seg(heldName(service))}`);
  await api.remove(`/api/v1/namespaces/${ns}/secrets/${seg(`${service}-broker`)}`);
  const mine = (p: V1Pod) => p.metadata?.labels?.app === service || p.metadata?.labels?.['ms2m.io/copy-for'] === service || p.metadata?.name?.startsWith(`${service}-`);
  for (let i = 0; i < 600; i++) {
    const pods = (await api.get<{ items: V1Pod[] }>(podPath(ns))).items.filter(mine);
    if (pods.length === 0) return;
    for (const p of pods) if (!p.metadata?.deletionTimestamp) await api.remove(podPath(ns, p.metadata!.name!), { gracePeriodSeconds: 0 });
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the pods of ${service} did not go within 60 s`);
}
