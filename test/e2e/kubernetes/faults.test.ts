/**
 * The kubernetes runtime when things go wrong, on the real test cluster: a bare Pod migrated; a restore
 * that fails (the base image missing on the target node) rolled back with the Deployment untouched and
 * serving; the orchestrator's and the agents' pods deleted mid-migration (their controllers start new
 * ones); a corrupted and an unauthenticated image transfer refused by a real agent; bad input refused
 * with the field and the fix. Every migration is accounted from the producers' and the output logs and
 * the ledger's apply trace.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { V1Deployment, V1Lease } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { beforeAll, describe, expect, it } from 'vitest';
import { deployWorkload, undeploy, type ScenarioOptions } from '../../../cli/scenario';
import { workload } from '../../../cli/workloads';
import { progressQuery } from '../../../lib/contracts';
import { frameHeader, transferToken } from '../../../runtimes/shared/image-transfer';
import type { KubeTestCluster } from '../../../runtimes/kubernetes/test-cluster';
import { expectExact } from '../exact';
import { breakRestoresOnNodeB, deploymentShape, kubeE2e, migrateLedger, reloadImages } from './kube-e2e';

const k8s = kubeE2e('k8s-faults');
const run = k8s.run;
let cluster: KubeTestCluster;
beforeAll(() => {
  cluster = k8s.cluster();
});

const kubectl = (...args: string[]) => spawnSync(cluster.env.KUBECTL, ['--kubeconfig', cluster.env.KUBECONFIG, ...args], { encoding: 'utf8' });

async function untilStage(handle: WorkflowHandle, stage: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const p = await handle.query(progressQuery).catch(() => null);
    if (p?.stage === stage) return;
    await sleep(25);
  }
  throw new Error(`the migration never reached ${stage}`);
}

const migrate = (service: string, o: Partial<ScenarioOptions>) => migrateLedger(cluster, service, o);

describe('kubernetes: migrations under faults end migrated or rolled back, nothing lost', () => {
  it(
    'a bare Pod: the copy takes its place and the source pod is gone',
    async () => {
      const service = `k8s-pod-${run}`;
      try {
        const { report, placed, live, seen } = await migrate(service, { kind: 'Pod' });
        expect(report.failure ?? null).toBeNull();
        expect(report.outcome).toBe('completed');
        expectExact(report.verification!);
        expect(report.sourceInstance).toBe(`${service}-solo`);
        expect(placed).toBe(report.targetInstance);
        expect(live).toEqual([report.targetInstance]);
        expect(await cluster.api.find(`/api/v1/namespaces/default/pods/${service}-solo`)).toBeNull();
        expect([...seen.pods].sort()).toEqual([report.sourceInstance, report.targetInstance].sort());
        expect([...seen.consumers].every((c) => c === report.sourceInstance || c === report.targetInstance)).toBe(true);
      } finally {
        await undeploy(cluster, service).catch(() => undefined);
      }
    },
    300_000,
  );

  it(
    'a restore that fails (the base image is not on the target node): rolled back, the Deployment untouched and serving, the copy gone',
    async () => {
      const service = `k8s-rf-${run}`;
      let before: V1Deployment | undefined;
      try {
        const { report, placed, live, seen } = await migrate(service, {
          afterDeploy: async () => {
            before = await cluster.api.get<V1Deployment>(`/apis/apps/v1/namespaces/default/deployments/${service}`);
            breakRestoresOnNodeB(cluster);
          },
        });
        console.log(`restore failure: ${JSON.stringify(report.failure)}`);
        expect(report.outcome).toBe('rolled-back');
        expect(report.failure).toMatchObject({ phase: 'restore', type: 'RestoreFailed' });
        expectExact(report.verification!);
        expect(placed).toBe(report.sourceInstance);
        expect(live).toEqual([report.sourceInstance]);
        const after = await cluster.api.get<V1Deployment>(`/apis/apps/v1/namespaces/default/deployments/${service}`);
        expect(deploymentShape(after)).toEqual(deploymentShape(before!));
        expect(await cluster.api.find(`/api/v1/namespaces/default/pods/${report.targetInstance}`)).toBeNull();
        expect([...seen.consumers]).toEqual([report.sourceInstance]);
      } finally {
        await undeploy(cluster, service).catch(() => undefined);
        reloadImages();
      }
    },
    300_000,
  );

  // Each is killed inside a phase long enough to be caught in (the transfer between the agents of one
  // host takes a few hundred ms): the source's agent inside the kubelet's checkpoint call.
  for (const [worker, stage] of [
    ['orchestrator', 'checkpoint'],
    ['agent-node-a', 'checkpoint'],
    ['agent-node-b', 'restore'],
  ] as const) {
    it(
      `the ${worker} pod deleted during ${stage}: its controller starts another and the migration completes or rolls back`,
      async () => {
        const service = `k8s-${worker.replace('agent-node-', 'ag')}-${run}`.slice(0, 40);
        try {
          const { report, placed, live, seen } = await migrate(service, {
            duringMigration: async (handle) => {
              await untilStage(handle, stage);
              await cluster.crashAndRestart(worker);
            },
          });
          console.log(`${worker} killed during ${stage}: ${report.outcome}${report.failure ? ` (${report.failure.type}: ${report.failure.message})` : ''}, total ${report.totalMs} ms`);
          expect(['completed', 'rolled-back']).toContain(report.outcome);
          expectExact(report.verification!);
          const serving = report.outcome === 'completed' ? report.targetInstance : report.sourceInstance;
          expect(placed).toBe(serving);
          expect(live).toEqual([serving]);
          expect([...seen.consumers].every((c) => c === report.sourceInstance || c === report.targetInstance)).toBe(true);
        } finally {
          await undeploy(cluster, service).catch(() => undefined);
        }
      },
      300_000,
    );
  }
});

describe('kubernetes: an agent refuses images it should not take', () => {
  const target = async () => {
    const lease = await cluster.api.get<V1Lease>('/apis/coordination.k8s.io/v1/namespaces/ms2m-system/leases/ms2m-agent-node-b');
    return lease.metadata!.annotations!['ms2m.io/transfer-url'];
  };
  const secret = () => readFileSync(`${cluster.env.RUN}/pki/transfer-secret`, 'utf8').trim();

  /** One file's frames of the image stream, with its SHA-256 (or another one) after it, and the last frame. */
  const stream = (body: Buffer, sha = createHash('sha256').update(body).digest()) =>
    new Uint8Array(Buffer.concat([frameHeader({ name: 'checkpoint.tar', size: body.length }), body, sha, frameHeader({ end: true, files: 1 })]));

  it('an unauthenticated transfer (no token, or a token of another image) is refused with 401', async () => {
    const url = await target();
    const body = stream(Buffer.from('not a checkpoint'));
    const none = await fetch(`${url}/images/intruder-${run}/stream`, { method: 'PUT', body });
    expect(none.status).toBe(401);
    const other = await fetch(`${url}/images/intruder-${run}/stream`, { method: 'PUT', headers: { authorization: `Bearer ${transferToken(secret(), 'some-other-image')}` }, body });
    expect(other.status).toBe(401);
  });

  it('a corrupted transfer (the bytes do not match their SHA-256) is refused with 422 and never completes', async () => {
    const url = await target();
    const id = `corrupt-${run}`;
    const auth = { authorization: `Bearer ${transferToken(secret(), id)}` };
    const res = await fetch(`${url}/images/${id}/stream`, { method: 'PUT', headers: auth, body: stream(Buffer.from('tampered'), Buffer.alloc(32)) });
    expect(res.status).toBe(422);
    expect(await res.text()).toMatch(/checksum mismatch for checkpoint.tar/);
  });
});

describe('kubernetes: bad input is refused with the field and the fix, changing nothing', () => {
  const deploy = async (service: string, spec: Record<string, unknown>, node = 'node-a') => {
    try {
      await cluster.client.workflow.execute('deployService', {
        taskQueue: cluster.opts.taskQueue,
        workflowId: `deploy-${service}-${Date.now()}`,
        args: [{ service, node, spec: { runtime: 'kubernetes', namespace: 'default', kind: 'Deployment', container: 'app', primaryQueue: `${service}.primary`, ...spec }, readyMs: 8000 }],
      });
    } catch (err) {
      const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
      return cause instanceof ApplicationFailure ? { type: cause.type, message: cause.message } : { type: 'other', message: String(err) };
    }
    return null;
  };

  it('an unknown workload, and a container it does not have', async () => {
    expect(await deploy(`nope-${run}`, { name: `nope-${run}` })).toMatchObject({ type: 'InvalidSpec', message: expect.stringMatching(/spec\.name: there is no Deployment "nope-.*" in namespace "default"/) });
    const service = `k8s-bad-${run}`;
    try {
      // The Deployment runs, not yet under ms2m; its container is "app".
      await cluster.workloadSpec(service, workload('ledger').spec(service, { home: k8s.home(), stateBytes: 0, workMs: 0 }), 'node-a');
      expect(await deploy(service, { name: service, container: 'worker' })).toMatchObject({ type: 'InvalidSpec', message: expect.stringMatching(/spec\.container: Deployment .* has no container "worker"; its containers are app/) });
      expect(await deploy(service, { name: service, namespace: 'kube-system' })).toMatchObject({ type: 'InvalidSpec', message: expect.stringMatching(/spec\.namespace: ms2m does not manage namespace "kube-system"/) });
    } finally {
      await cluster.discardWorkload(service);
    }
  }, 120_000);

  it('a workload whose pod does not speak the protocol', async () => {
    const service = `k8s-mute-${run}`;
    try {
      // Runs, and consumes nothing: no ms2m control queue ever answers for it.
      await cluster.workloadSpec(service, { runtime: 'local', command: ['node', '-e', 'setInterval(() => {}, 1000)'], env: {}, primaryQueue: `${service}.primary` }, 'node-a');
      const refused = await deploy(service, { name: service });
      expect(refused).toMatchObject({ type: 'NotReady' });
      expect(refused!.message).toMatch(/did not answer/);
      expect(await cluster.placement(service)).toBeNull();
    } finally {
      await cluster.discardWorkload(service);
    }
  }, 120_000);

  const kubeletB = () => Number(readFileSync(path.join(cluster.env.RUN, 'pids', 'kubelet-node-b.pid'), 'utf8'));

  it('a target node that is not Ready', async () => {
    const service = `k8s-nr-${run}`;
    try {
      await deployWorkload(cluster, 'ledger', service, 'node-a');
      // The kubelet posts its own Ready condition back within its 10 s status interval, which raced the
      // migration's validation (a CI run saw node-b Ready again): it is paused while the test runs.
      process.kill(kubeletB(), 'SIGSTOP');
      const down = kubectl('patch', 'node', 'node-b', '--subresource=status', '--type=strategic', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'False', reason: 'TestNotReady', message: 'made not Ready by the test' }] } }));
      expect(down.status, down.stderr).toBe(0);
      let failure: { type?: string; message: string } | null = null;
      try {
        await cluster.client.workflow.execute('migrateService', { taskQueue: cluster.opts.taskQueue, workflowId: `nr-${service}`, args: [{ service, targetNode: 'node-b', strategy: 'shadow' }] });
      } catch (err) {
        const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
        failure = cause instanceof ApplicationFailure ? { type: cause.type ?? undefined, message: cause.message } : { message: String(err) };
      }
      expect(failure).toMatchObject({ type: 'NodeUnreachable', message: expect.stringMatching(/node "node-b" is not Ready \(TestNotReady: made not Ready by the test\); choose a Ready node/) });
      expect((await cluster.placement(service))?.node).toBe('node-a');
    } finally {
      // The kubelet reports its node Ready again within its status interval; the patch only speeds that up.
      process.kill(kubeletB(), 'SIGCONT');
      kubectl('patch', 'node', 'node-b', '--subresource=status', '--type=strategic', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }] } }));
      await undeploy(cluster, service).catch(() => undefined);
    }
  }, 120_000);
});
