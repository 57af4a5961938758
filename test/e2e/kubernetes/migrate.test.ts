/**
 * Migrations on the project's real two-node Kubernetes cluster (infra/k8s): ms2m installed from its
 * manifests (the orchestrator and the agents are pods), the order-sensitive ledger as a Deployment or a
 * bare Pod under load, checkpointed through the kubelet, restored from a checkpoint image on the other
 * node. Each test checks the handoff from the producers' and the output logs and the ledger's apply
 * trace (written by every pod into one host file), and the ownership invariant from evidence ms2m does
 * not produce: every pod of the service that ever existed (the API server) and every connection that
 * ever consumed its primary queue (RabbitMQ).
 */
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { undeploy, type ScenarioOptions } from '../../../cli/scenario';
import type { KubeTestCluster } from '../../../runtimes/kubernetes/test-cluster';
import { expectExact } from '../exact';
import { sample } from '../exposition';
import { deploymentShape, kubeE2e, migrateLedger } from './kube-e2e';

const k8s = kubeE2e('k8s');
const run = k8s.run;
let cluster: KubeTestCluster;
beforeAll(() => {
  cluster = k8s.cluster();
});

const deployment = (name: string) => cluster.api.get<V1Deployment>(`/apis/apps/v1/namespaces/default/deployments/${name}`);
const podsOf = async (service: string) =>
  (await cluster.api.get<{ items: V1Pod[] }>(`/api/v1/namespaces/default/pods?labelSelector=${encodeURIComponent(`app=${service}`)}`)).items.filter((p) => !p.metadata?.deletionTimestamp);

async function migrateDeployment(service: string, o: Partial<ScenarioOptions>) {
  let before: V1Deployment | undefined;
  const result = await migrateLedger(cluster, service, {
    ...o,
    afterDeploy: async () => {
      before = await deployment(service);
    },
  });
  return { ...result, before: before! };
}

/**
 * What the orchestrator's and both agents' pods serve on /metrics, as a scraper reads it: the figures a
 * migration from node-a to node-b adds to, and whether the Temporal SDK's own metrics are appended.
 */
async function podFigures(strategy: string) {
  const [orchestrator, a, b] = await Promise.all(['orchestrator', 'agent-node-a', 'agent-node-b'].map((w) => cluster.metricsOf(w)));
  return {
    completed: sample(orchestrator, 'ms2m_migrations_finished_total', { strategy, outcome: 'completed' }),
    downtimes: sample(orchestrator, 'ms2m_migration_downtime_seconds_count', { strategy }),
    downtimeSeconds: sample(orchestrator, 'ms2m_migration_downtime_seconds_sum', { strategy }),
    checkpoints: sample(a, 'ms2m_node_activity_duration_seconds_count', { node: 'node-a', activity: 'checkpoint', outcome: 'ok' }),
    dumps: sample(a, 'ms2m_criu_dump_seconds_count', { node: 'node-a' }),
    transfers: sample(a, 'ms2m_image_transfer_seconds_count', { node: 'node-a' }),
    restores: sample(b, 'ms2m_criu_restore_seconds_count', { node: 'node-b' }),
    sdk: [orchestrator, a, b].map((t) => /^temporal_\w+/m.test(t)),
  };
}

describe('kubernetes: a Deployment migrates with nothing lost and its ownership handed over', () => {
  for (const strategy of ['shadow', 'stop-and-copy'] as const) {
    it(
      `${strategy}: the Deployment owns the migrated pod on node-b, unchanged otherwise; no other pod ever consumed the queue`,
      async () => {
        const service = `k8s-${strategy === 'shadow' ? 'sh' : 'sc'}-${run}`;
        try {
          const counted = await podFigures(strategy);
          const { report, placed, live, before, seen } = await migrateDeployment(service, { strategy });
          console.log(
            `${strategy} on kubernetes: total ${report.totalMs} ms, downtime ${report.downtimeMs} ms, phases ${JSON.stringify(report.phases)}; ` +
              `pods seen ${[...seen.pods].join(', ')}; consumers seen ${[...seen.consumers].join(', ')}`,
          );
          expect(report.failure ?? null).toBeNull();
          expect(report.outcome).toBe('completed');
          expect(report.stateMatch).toBe(true);
          expectExact(report.verification!);
          // The copy serves, on node-b, and it is the Deployment's only pod, owned through its ReplicaSet.
          expect(placed).toBe(report.targetInstance);
          expect(live).toEqual([report.targetInstance]);
          const pods = await podsOf(service);
          expect(pods.map((p) => [p.metadata!.name, p.spec!.nodeName])).toEqual([[report.targetInstance, 'node-b']]);
          expect(pods[0].metadata!.ownerReferences?.find((r) => r.controller)?.kind).toBe('ReplicaSet');
          expect(deploymentShape(await deployment(service))).toEqual(deploymentShape(before));
          // Nobody but the source and its copy ever existed or consumed: no fresh pod with an empty state.
          expect([...seen.pods].sort()).toEqual([report.sourceInstance, report.targetInstance].sort());
          expect([...seen.consumers].every((c) => c === report.sourceInstance || c === report.targetInstance)).toBe(true);
          expect(seen.consumers.has(report.targetInstance)).toBe(true);
          // The pods' /metrics count it: the orchestrator's figures agree with the report, each agent its tools.
          const now = await podFigures(strategy);
          expect(now.completed - counted.completed).toBe(1);
          expect(now.downtimes - counted.downtimes).toBe(1);
          expect(now.downtimeSeconds - counted.downtimeSeconds).toBeCloseTo(report.downtimeMs / 1000, 3);
          expect({ checkpoints: now.checkpoints - counted.checkpoints, dumps: now.dumps - counted.dumps, transfers: now.transfers - counted.transfers, restores: now.restores - counted.restores }).toEqual({ checkpoints: 1, dumps: 1, transfers: 1, restores: 1 });
          expect(now.sdk).toEqual([true, true, true]);
        } finally {
          await undeploy(cluster, service).catch(() => undefined);
        }
      },
      300_000,
    );
  }
});

describe('kubernetes: the workers hold least privilege', () => {
  const can = (who: 'agent' | 'orchestrator', verb: string, resource: string, ns?: string): boolean => {
    // `can-i verb a/b` would ask about the object named b; a subresource is its own flag.
    const [kind, sub] = resource.split('/');
    const args = ['--kubeconfig', cluster.env.KUBECONFIG, 'auth', 'can-i', verb, kind, ...(sub ? [`--subresource=${sub}`] : []), `--as=system:serviceaccount:ms2m-system:ms2m-${who}`, ...(ns ? ['-n', ns] : [])];
    return spawnSync(cluster.env.KUBECTL, args, { encoding: 'utf8' }).stdout.trim() === 'yes';
  };
  const MUST: Array<[who: 'agent' | 'orchestrator', verb: string, resource: string, ns?: string]> = [
    ['agent', 'create', 'nodes/proxy'],
    ['agent', 'get', 'nodes/proxy'],
    ['agent', 'create', 'pods', 'default'],
    ['agent', 'delete', 'pods', 'default'],
    ['agent', 'get', 'pods/log', 'default'],
    ['agent', 'get', 'replicasets', 'default'],
    ['agent', 'create', 'leases', 'ms2m-system'],
    ['agent', 'patch', 'leases', 'ms2m-system'],
    ['orchestrator', 'list', 'nodes'],
    ['orchestrator', 'patch', 'nodes'],
    ['orchestrator', 'patch', 'deployments', 'default'],
    ['orchestrator', 'get', 'replicasets', 'default'],
    ['orchestrator', 'patch', 'pods', 'default'],
    ['orchestrator', 'delete', 'statefulsets', 'default'],
    ['orchestrator', 'create', 'statefulsets', 'default'],
    ['orchestrator', 'create', 'configmaps', 'default'],
    ['agent', 'get', 'configmaps', 'default'],
  ];
  const MUST_NOT: typeof MUST = [
    ['agent', 'get', 'secrets', 'default'],
    ['agent', 'get', 'secrets', 'ms2m-system'],
    ['agent', 'patch', 'deployments', 'default'],
    ['agent', 'delete', 'statefulsets', 'default'],
    ['agent', 'create', 'configmaps', 'default'],
    ['agent', 'create', 'pods', 'kube-system'],
    ['agent', 'create', 'pods/exec', 'default'],
    ['agent', 'patch', 'nodes'],
    ['agent', 'delete', 'leases', 'ms2m-system'],
    ['orchestrator', 'create', 'pods', 'default'],
    ['orchestrator', 'delete', 'pods', 'default'],
    ['orchestrator', 'get', 'secrets', 'default'],
    ['orchestrator', 'create', 'nodes/proxy'],
    ['orchestrator', 'delete', 'deployments', 'default'],
    ['orchestrator', 'delete', 'nodes'],
    ['orchestrator', 'patch', 'pods', 'kube-system'],
  ];
  it('can do what a migration needs', () => {
    expect(MUST.filter(([who, verb, res, ns]) => !can(who, verb, res, ns)).map((m) => m.join(' '))).toEqual([]);
  });
  it('cannot do anything else that matters: Secrets, other namespaces, Deployments\' specs, exec', () => {
    expect(MUST_NOT.filter(([who, verb, res, ns]) => can(who, verb, res, ns)).map((m) => m.join(' '))).toEqual([]);
  });
});
