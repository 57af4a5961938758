/**
 * `kubectl drain` on the real test cluster with ms2m's eviction webhook installed (infra/kubernetes/eviction):
 * the ledger as an opted-in Deployment and as an opted-in StatefulSet, both under load on node-a. The
 * drain's evictions become migrations (the Deployment's pod by shadow, the StatefulSet's by
 * shadow-swap) and the drain completes once both have moved; every message is accounted by the ledger's
 * oracle, and no pod that ms2m did not restore ever existed or consumed a queue (by uid, from the API
 * server and the broker's firehose). Then the documented failure mode: with the orchestrator stopped, an
 * opted-in pod's eviction is held (the webhook's failurePolicy is Fail), so the drain fails and the pod
 * keeps serving with its state.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { beforeAll, describe, expect, it } from 'vitest';
import { ServiceLoad, deployWorkload, undeploy } from '../../../cli/scenario';
import { ledgerTopology } from '../../../examples/ledger/ledger';
import type { KubeTestCluster } from '../../../runtimes/kubernetes/test-cluster';
import type { WorkloadKind } from '../../../runtimes/types';
import type { Workflows } from '../../../lib/contracts';
import { expectExact } from '../exact';
import { kubeE2e } from './kube-e2e';
import { witness } from './witness';

const k8s = kubeE2e('k8s-drain');
const run = k8s.run;
let cluster: KubeTestCluster;
beforeAll(() => {
  cluster = k8s.cluster();
});

/** kubectl, without blocking this process: the load and the witness run in it meanwhile. */
const kubectl = (...args: string[]) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(cluster.env.KUBECTL, ['--kubeconfig', cluster.env.KUBECONFIG, ...args], { timeout: 400_000 }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
const podsOf = async (service: string) =>
  (await cluster.api.get<{ items: V1Pod[] }>(`/api/v1/namespaces/default/pods?labelSelector=${encodeURIComponent(`app=${service}`)}`)).items.filter((p) => !p.metadata?.deletionTimestamp);

interface Loaded {
  service: string;
  load: ServiceLoad;
  watch: ReturnType<typeof witness>;
  original: string;
}

/** Deploys the ledger as an opted-in workload of `kind` on node-a, under load, with the witness watching. */
async function loaded(service: string, kind: WorkloadKind): Promise<Loaded> {
  const load = new ServiceLoad(cluster, service, 30, undefined, 'ledger');
  await load.prepare();
  await deployWorkload(cluster, 'ledger', service, 'node-a', { kind, migrateOnEviction: true });
  const watch = witness(cluster.api, service, ledgerTopology(service).queue);
  const original = (await podsOf(service))[0].metadata!.uid!;
  await load.start();
  return { service, load, watch, original };
}

/**
 * Waits for the move the webhook started (a drain may complete before it does: a StatefulSet's old pod
 * goes before its second handoff), stops the load and accounts for every message; checks that only the
 * original and ms2m's restores ever existed or consumed.
 */
async function accounted(l: Loaded, from: number, o: { moved: boolean }) {
  if (o.moved) {
    const moved = await cluster.client.workflow.getHandle<Workflows['evacuate']>(`ms2m-evict-${l.service}-${l.original.slice(0, 8)}`).result();
    console.log(`${l.service} moved: ${JSON.stringify(moved)}`);
    expect(moved.outcome).toBe('completed');
  }
  const { verification, placed } = await l.load.finish({ from, to: Date.now() });
  await l.load.close();
  const seen = await l.watch.stop();
  const strangers = [...seen.podsByUid].filter(([uid, p]) => uid !== l.original && p.copyOf === null).map(([uid, p]) => `${p.name} (${uid}) on ${p.node}`);
  expect(strangers).toEqual([]);
  expect([...seen.consumerUids].filter((uid) => !seen.podsByUid.has(uid))).toEqual([]);
  // A move compares the positions the copy replayed with the source's: there must be some.
  expectExact(verification, o.moved ? 1 : 0);
  return { verification, placed };
}

describe('kubernetes: kubectl drain migrates the opted-in pods instead of evicting them', () => {
  it(
    'a Deployment and a StatefulSet on node-a: both move to node-b with nothing lost, and the drain completes',
    async () => {
      const services = [`k8s-drd-${run}`, `k8s-drs-${run}`];
      const loads: Loaded[] = [];
      try {
        loads.push(await loaded(services[0], 'Deployment'), await loaded(services[1], 'StatefulSet'));
        await sleep(2000);
        const from = Date.now();
        const drain = await kubectl('drain', 'node-a', '--ignore-daemonsets', `--pod-selector=app in (${services.join(',')})`, '--timeout=300s');
        console.log(`kubectl drain: exit ${drain.status} in ${Date.now() - from} ms\n${drain.stdout}${drain.stderr}`);
        expect(drain.status, drain.stderr).toBe(0);
        for (const l of loads) {
          const { placed } = await accounted(l, from, { moved: true });
          const pods = await podsOf(l.service);
          expect(pods.map((p) => [p.metadata!.name, p.spec!.nodeName])).toEqual([[placed, 'node-b']]);
          expect(pods[0].metadata!.ownerReferences?.find((r) => r.controller)?.kind).toBe(l === loads[0] ? 'ReplicaSet' : 'StatefulSet');
        }
        expect((await podsOf(services[1]))[0].metadata!.name).toBe(`${services[1]}-0`);
      } finally {
        await kubectl('uncordon', 'node-a');
        for (const l of loads) await l.load.close().catch(() => undefined);
        for (const s of services) await undeploy(cluster, s).catch(() => undefined);
      }
    },
    600_000,
  );

  it(
    'with the orchestrator stopped, the eviction of an opted-in pod is held: the drain fails and the pod keeps serving with its state',
    async () => {
      const service = `k8s-drx-${run}`;
      let l: Loaded | undefined;
      try {
        l = await loaded(service, 'Deployment');
        const from = Date.now();
        await cluster.stopProcess('orchestrator');
        const drain = await kubectl('drain', 'node-a', '--ignore-daemonsets', `--pod-selector=app=${service}`, '--timeout=20s');
        console.log(`kubectl drain with ms2m down: exit ${drain.status}\n${drain.stderr}`);
        expect(drain.status).not.toBe(0);
        expect(drain.stderr).toMatch(/evictions\.ms2m\.io/);
        const pods = await podsOf(service);
        expect(pods.map((p) => [p.metadata!.uid, p.spec!.nodeName])).toEqual([[l.original, 'node-a']]);
        await cluster.launch('orchestrator');
        await kubectl('uncordon', 'node-a');
        const { placed } = await accounted(l, from, { moved: false });
        expect(placed).toBe(pods[0].metadata!.name);
      } finally {
        await kubectl('uncordon', 'node-a');
        await cluster.launch('orchestrator').catch(() => undefined);
        await l?.load.close().catch(() => undefined);
        await undeploy(cluster, service).catch(() => undefined);
      }
    },
    300_000,
  );
});
