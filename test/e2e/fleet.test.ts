/**
 * Rebalancing and draining against the real stack: a Temporal Schedule triggers `rebalance`, which moves a
 * service off an overloaded node; `drainNode` empties a node. Every move is a real migration under load,
 * accounted message by message.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Placement } from '../../runtimes/types';
import type { ClusterHandle } from '../../runtimes/types';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';
import { ServiceLoad, deployWorkload, undeploy } from '../../cli/scenario';
import type { Verification } from '../../lib/migration';
import type { DrainReport, RebalanceResult } from '../../lib/rebalance';

const run = Date.now().toString(36);
let e2e: E2eCluster;
let cluster: ClusterHandle;

beforeAll(async () => {
  e2e = await startE2eCluster('fleet', ['node-a', 'node-b', 'node-c'], { taskQueue: `ms2m-fleet-${run}` });
  ({ cluster } = e2e);
});

afterAll(async () => {
  await stopE2eCluster(e2e);
});

/** Deploys services on a node, each under load with 4 ms of CPU per message (about 25 % of a core at 60 msg/s). */
async function loaded(services: string[], node: string, rate = 60): Promise<ServiceLoad[]> {
  const loads: ServiceLoad[] = [];
  for (const s of services) {
    const load = new ServiceLoad(cluster, s, rate);
    await load.prepare();
    await deployWorkload(cluster, 'game', s, node, { workMs: 4 });
    await load.start();
    loads.push(load);
  }
  return loads;
}

async function accounted(loads: ServiceLoad[], from: number): Promise<Verification[]> {
  await sleep(1000);
  const out: Verification[] = [];
  for (const l of loads) {
    out.push((await l.finish({ from, to: Date.now() })).verification);
    await l.close();
  }
  return out;
}

function expectNothingLost(v: Verification): void {
  expect(v.published).toBeGreaterThan(100);
  expect(v.lost).toBe(0);
  expect(v.duplicated).toBe(0);
  expect(v.duplicateOutputs).toBe(0);
  expect(v.finalStateMatchesProducers).toBe(true);
}

const placementOf = async (service: string): Promise<Placement> => (await cluster.placement(service))!;

describe('fleet operations', () => {
  it(
    'a scheduled rebalance moves a service off an overloaded node, losing nothing',
    async () => {
      const services = [`rb1-${run}`, `rb2-${run}`];
      const loads = await loaded(services, 'node-a');
      await sleep(1500);
      const from = Date.now();
      const scheduleId = `rebalance-${run}`;
      const schedule = await cluster.client.schedule.create({
        scheduleId,
        spec: { intervals: [{ every: '1h' }] },
        action: {
          type: 'startWorkflow',
          workflowType: 'rebalance',
          taskQueue: cluster.opts.taskQueue,
          args: [{ cooldownMs: 0, maxMigrations: 1, sampleMs: 1500 }],
        },
        policies: { overlap: ScheduleOverlapPolicy.SKIP },
      });
      try {
        await schedule.trigger();
        let workflowId: string | undefined;
        for (let i = 0; i < 100 && !workflowId; i++) {
          const d = await schedule.describe();
          workflowId = d.info.recentActions[0]?.action.workflow.workflowId;
          if (!workflowId) await sleep(200);
        }
        expect(workflowId).toBeTruthy();
        const result = (await cluster.client.workflow.getHandle(workflowId!).result()) as RebalanceResult;
        console.log(`rebalance plan: ${JSON.stringify(result.plan)}\noutcomes: ${JSON.stringify(result.outcomes)}`);
        expect(result.plan.nodes.find((n) => n.node === 'node-a')!.load).toBeGreaterThan(result.plan.upperLoad);
        expect(result.plan.moves).toHaveLength(1);
        expect(result.plan.moves[0]).toMatchObject({ from: 'node-a' });
        expect(result.outcomes[0]).toMatchObject({ outcome: 'completed', from: 'node-a', to: result.plan.moves[0].to });
        expect((await placementOf(result.plan.moves[0].service)).node).toBe(result.plan.moves[0].to);
      } finally {
        await schedule.delete();
      }
      for (const v of await accounted(loads, from)) expectNothingLost(v);
      for (const s of services) await undeploy(cluster, s);
    },
    240_000,
  );

  it(
    'a drain empties a node, every migration losing nothing, and the node stays unschedulable',
    async () => {
      const services = [`dr1-${run}`, `dr2-${run}`];
      const loads = await loaded(services, 'node-b', 40);
      await sleep(1500);
      const from = Date.now();
      const report = (await cluster.client.workflow.execute('drainNode', {
        taskQueue: cluster.opts.taskQueue,
        workflowId: `drain-node-b-${run}`,
        args: [{ node: 'node-b', concurrency: 2, sampleMs: 500 }],
      })) as DrainReport;
      console.log(`drain report: ${JSON.stringify(report)}`);
      expect(report.stranded).toEqual([]);
      expect(report.services.map((s) => s.outcome)).toEqual(['completed', 'completed']);
      for (const s of services) expect((await placementOf(s)).node).not.toBe('node-b');
      expect((await cluster.liveInstances(services[0])).concat(await cluster.liveInstances(services[1])).every((i) => i.node !== 'node-b')).toBe(true);
      for (const v of await accounted(loads, from)) expectNothingLost(v);

      // Unschedulable until told otherwise: a rebalance does not place anything there.
      expect((await cluster.node('node-b'))!.schedulable).toBe(false);
      const plan = (await cluster.client.workflow.execute('rebalance', {
        taskQueue: cluster.opts.taskQueue,
        workflowId: `dry-${run}`,
        args: [{ dryRun: true, cooldownMs: 0, sampleMs: 200 }],
      })) as RebalanceResult;
      expect(plan.plan.nodes.find((n) => n.node === 'node-b')!.schedulable).toBe(false);
      expect(plan.plan.moves.every((m) => m.to !== 'node-b')).toBe(true);
      await cluster.client.workflow.execute('setNodeSchedulable', {
        taskQueue: cluster.opts.taskQueue,
        workflowId: `uncordon-${run}`,
        args: [{ node: 'node-b', schedulable: true }],
      });
      expect((await cluster.node('node-b'))!.schedulable).toBe(true);
      for (const s of services) await undeploy(cluster, s);
    },
    240_000,
  );
});
