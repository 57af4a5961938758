/**
 * StatefulSets on the real test cluster: the ledger as a one-replica StatefulSet under load, moved by
 * `sequential` (its pod stops and is restored under its own name on node-b) and by `shadow-swap` (a
 * shadow takes the stream, then hands it to a pod of the StatefulSet's name on node-b), and a rollback
 * of each. Beside the ledger's oracle (producers' and output logs, every pod's apply trace), the
 * invariant that matters here is checked from the API server and the broker: no pod that ms2m did not
 * restore ever existed besides the original, nor consumed the queue, so the StatefulSet never started a
 * fresh pod with an empty state; and the StatefulSet is as it was (replicas, template, update strategy,
 * revision), owning `<sts>-0` where the migration ended.
 */
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { beforeAll, describe, expect, it } from 'vitest';
import { undeploy, type ScenarioOptions } from '../../../cli/scenario';
import type { KubeTestCluster } from '../../../runtimes/kubernetes/test-cluster';
import { expectExact } from '../exact';
import { breakRestoresOnNodeB, kubeE2e, migrateLedger, reloadImages } from './kube-e2e';

const k8s = kubeE2e('k8s-sts');
const run = k8s.run;
let cluster: KubeTestCluster;
beforeAll(() => {
  cluster = k8s.cluster();
});

const statefulSet = (name: string) => cluster.api.find<V1StatefulSet>(`/apis/apps/v1/namespaces/default/statefulsets/${name}`);
const pod = (name: string) => cluster.api.find<V1Pod>(`/api/v1/namespaces/default/pods/${name}`);
const shape = (s: V1StatefulSet | null) => ({
  replicas: s?.spec?.replicas,
  template: s?.spec?.template,
  updateStrategy: s?.spec?.updateStrategy,
  selector: s?.spec?.selector,
  serviceName: s?.spec?.serviceName,
  labels: s?.metadata?.labels,
  revision: s?.status?.currentRevision,
});

async function migrateStatefulSet(service: string, o: Partial<ScenarioOptions>) {
  let before: V1StatefulSet | null = null;
  let original = '';
  const result = await migrateLedger(cluster, service, {
    ...o,
    afterDeploy: async (p) => {
      before = await statefulSet(service);
      original = (await pod(`${service}-0`))!.metadata!.uid!;
      await o.afterDeploy?.(p);
    },
  });
  const { seen } = result;
  console.log(
    `${o.strategy}: ${result.report.outcome}, total ${result.report.totalMs} ms, downtime ${result.report.downtimeMs} ms, phases ${JSON.stringify(result.report.phases.map((p) => [p.phase, p.ms]))}; ` +
      `pods ${JSON.stringify([...seen.podsByUid.values()])}`,
  );
  // Every pod of the service that ever existed is the original or one ms2m restored; only those consumed.
  const strangers = [...seen.podsByUid].filter(([uid, p]) => uid !== original && p.copyOf === null).map(([uid, p]) => `${p.name} (${uid}) on ${p.node}`);
  expect(strangers).toEqual([]);
  expect([...seen.consumerUids].filter((uid) => !seen.podsByUid.has(uid))).toEqual([]);
  // The StatefulSet is as it was, and owns its pod.
  const after = await statefulSet(service);
  expect(shape(after)).toEqual(shape(before));
  const now = await pod(`${service}-0`);
  expect(now?.metadata?.ownerReferences?.find((r) => r.controller)).toMatchObject({ kind: 'StatefulSet', name: service, uid: after!.metadata!.uid });
  expect(await cluster.api.find(`/api/v1/namespaces/default/configmaps/ms2m-held-${service}`)).toBeNull();
  return { ...result, now: now!, original };
}

describe('kubernetes: a StatefulSet pod moves under its own name, nothing lost, no fresh pod ever', () => {
  it(
    'sequential: <sts>-0 stops on node-a and resumes on node-b from its checkpoint; the StatefulSet adopts it',
    async () => {
      const service = `k8s-seq-${run}`;
      try {
        const { report, placed, live, now } = await migrateStatefulSet(service, { strategy: 'sequential' });
        expect(report.failure ?? null).toBeNull();
        expect(report.outcome).toBe('completed');
        expect(report.accounting.handoff).toBe('moved');
        expect(report.stateMatch).toBe(true);
        expectExact(report.verification!);
        expect(report.targetInstance).toBe(`${service}-0`);
        expect(placed).toBe(`${service}-0`);
        expect(live).toEqual([`${service}-0`]);
        expect(now.spec!.nodeName).toBe('node-b');
      } finally {
        await undeploy(cluster, service).catch(() => undefined);
      }
    },
    300_000,
  );

  it(
    'shadow-swap: a shadow on node-b takes the stream, then hands it to <sts>-0 there; two exact handoffs, the shadow gone',
    async () => {
      const service = `k8s-swap-${run}`;
      try {
        const { report, placed, live, now, seen } = await migrateStatefulSet(service, { strategy: 'shadow-swap' });
        expect(report.failure ?? null).toBeNull();
        expect(report.outcome).toBe('completed');
        expect(report.accounting.handoff).toBe('exact');
        expect(report.stateMatch).toBe(true);
        expect(report.swap?.sourceDigest).toBe(report.swap?.shadowDigest);
        expectExact(report.verification!);
        expect(placed).toBe(`${service}-0`);
        expect(live).toEqual([`${service}-0`]);
        expect(now.spec!.nodeName).toBe('node-b');
        expect(await pod(report.swap!.shadow)).toBeNull();
        expect([...seen.pods].sort()).toEqual([`${service}-0`, report.swap!.shadow].sort());
      } finally {
        await undeploy(cluster, service).catch(() => undefined);
      }
    },
    300_000,
  );

  for (const strategy of ['sequential', 'shadow-swap'] as const) {
    it(
      `${strategy} rolled back (the restore on node-b fails): <sts>-0 serves on node-a, the StatefulSet as it was`,
      async () => {
        const service = `k8s-${strategy === 'sequential' ? 'seq' : 'swap'}-rb-${run}`;
        try {
          const { report, placed, live, now } = await migrateStatefulSet(service, { strategy, afterDeploy: async () => breakRestoresOnNodeB(cluster) });
          console.log(`${strategy} restore failure: ${JSON.stringify(report.failure)}`);
          expect(report.outcome).toBe('rolled-back');
          expect(report.failure).toMatchObject({ phase: 'restore', type: 'RestoreFailed' });
          expectExact(report.verification!);
          expect(placed).toBe(`${service}-0`);
          expect(live).toEqual([`${service}-0`]);
          expect(now.spec!.nodeName).toBe('node-a');
        } finally {
          await undeploy(cluster, service).catch(() => undefined);
          reloadImages();
        }
      },
      300_000,
    );
  }
});
