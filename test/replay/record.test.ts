/**
 * Records the histories that test/unit/workflows/replay.test.ts replays: real runs of the workflows on a
 * local cluster (the dev stack, the orchestrator and three node agents as processes, the example game
 * service under load), each saved as JSON to test/replay/histories/<name>.json.
 *
 * Skipped unless MS2M_RECORD_HISTORIES=1. To record them again (after a deliberate change of a workflow's
 * commands, which a replay of the old histories would rightly flag):
 *
 *   bash infra/bootstrap.sh && MS2M_RECORD_HISTORIES=1 npx vitest run test/replay/record.test.ts
 *
 * (bootstrap compiles dist/, which the worker processes run; the recorder brings the stack up itself.)
 * Each run overwrites the histories it records; `-t <name>` records only some of them.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultNamed } from '../../chaos/faults';
import { runRound } from '../../chaos/round';
import { loadRuntime } from '../../runtimes';
import type { ClusterHandle } from '../../runtimes/types';
import { ServiceLoad, runScenario, undeploy } from '../../cli/scenario';
import { workload } from '../../cli/workloads';
import type { DrainReport, RebalanceResult } from '../../lib/rebalance';
import { ensureStack } from '../../lib/stack';
import { historyToJSON } from './history-json';

export const HISTORIES_DIR = path.join(__dirname, 'histories');
const RECORD = process.env.MS2M_RECORD_HISTORIES === '1';
const run = Date.now().toString(36);
let cluster: ClusterHandle;
let home: string;

async function save(name: string, workflowId: string): Promise<void> {
  const history = await cluster.client.workflow.getHandle(workflowId).fetchHistory();
  writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), `${historyToJSON(history)}\n`);
}

async function deploy(service: string, node: string, workMs = 0): Promise<string> {
  const w = workload('game');
  w.reset(service, home);
  const workflowId = `deploy-${service}`;
  await cluster.client.workflow.execute('deployService', {
    taskQueue: cluster.opts.taskQueue,
    workflowId,
    args: [{ service, node, spec: w.spec(service, { home, stateBytes: 0, workMs }) }],
  });
  return workflowId;
}

describe.runIf(RECORD)('record workflow histories from real runs', () => {
  beforeAll(async () => {
    await ensureStack();
    home = mkdtempSync(path.join(os.tmpdir(), 'ms2m-record-'));
    cluster = await (await loadRuntime()).startCluster({ nodes: ['node-a', 'node-b', 'node-c'], home, taskQueue: `ms2m-record-${run}` });
    mkdirSync(HISTORIES_DIR, { recursive: true });
  });

  afterAll(async () => {
    await cluster?.stop();
    if (home) (await loadRuntime()).reap(home);
  });

  it('deployService and undeployService', async () => {
    const service = `rec-deploy-${run}`;
    await save('deploy-service', await deploy(service, 'node-a'));
    const undeployId = `undeploy-${service}`;
    await cluster.client.workflow.execute('undeployService', { taskQueue: cluster.opts.taskQueue, workflowId: undeployId, args: [{ service }] });
    await save('undeploy-service', undeployId);
  }, 120_000);

  it.each(['shadow', 'stop-and-copy'] as const)('migrateService, %s, under load', async (strategy) => {
    const service = `rec-${strategy}-${run}`;
    const { report } = await runScenario(cluster, { service, from: 'node-a', to: 'node-b', strategy, rate: 40, warmupMs: 1500, settleMs: 500 });
    expect(report.outcome).toBe('completed');
    expect(report.verification).toMatchObject({ lost: 0, duplicated: 0 });
    await save(`migrate-${strategy}`, `migrate-${service}`);
  }, 180_000);

  it.each([
    ['stream', { transfer: 'stream', lazy: false }],
    ['lazy', { transfer: 'files', lazy: true }],
  ] as const)('migrateService, shadow with mechanisms %s, under load', async (name, mechanisms) => {
    const service = `rec-${name}-${run}`;
    const { report } = await runScenario(cluster, { service, from: 'node-a', to: 'node-b', strategy: 'shadow', rate: 40, warmupMs: 1500, settleMs: 500, stateBytes: 16 << 20, mechanisms });
    expect(report.outcome).toBe('completed');
    expect(report.verification).toMatchObject({ lost: 0, duplicated: 0 });
    await save(`migrate-${name}`, `migrate-${service}`);
  }, 180_000);

  it.each([
    // The target's disk fails on every write while it receives the image: rolled back after transfer.
    ['migrate-rolled-back', 'target-disk-failing@transfer', 'rolled-back'],
    // The source is killed during replay: the copy adopts its stream.
    ['migrate-adopted', 'source-crashed@replay', 'completed'],
    // Cancelled during replay: rolled back, the workflow ends cancelled.
    ['migrate-cancelled', 'cancelled@replay', 'rolled-back'],
  ] as const)('%s (fault %s)', async (name, faultName, outcome) => {
    const service = `rec-${name.replace('migrate-', '')}-${run}`;
    const r = await runRound(cluster, faultNamed(faultName), service);
    expect(r.result.report.outcome, r.log.join('\n')).toBe(outcome);
    expect(r.violations, r.log.join('\n')).toEqual([]);
    await save(name, `migrate-${service}`);
  }, 180_000);

  it('drainNode and its child migration', async () => {
    const service = `rec-drain-${run}`;
    await deploy(service, 'node-c');
    const workflowId = `drain-node-c-${run}`;
    const report = (await cluster.client.workflow.execute('drainNode', {
      taskQueue: cluster.opts.taskQueue,
      workflowId,
      args: [{ node: 'node-c', sampleMs: 300 }],
    })) as DrainReport;
    expect(report.services.map((s) => s.outcome)).toEqual(['completed']);
    await save('drain-node', workflowId);
    await save('drain-node-child', report.services[0].workflowId);
    await cluster.client.workflow.execute('setNodeSchedulable', {
      taskQueue: cluster.opts.taskQueue,
      workflowId: `uncordon-node-c-${run}`,
      args: [{ node: 'node-c', schedulable: true }],
    });
    await save('set-node-schedulable', `uncordon-node-c-${run}`);
    await undeploy(cluster, service);
  }, 180_000);

  it('rebalance of an overloaded node and its child migration', async () => {
    // Two services on node-a, each ~25 % of a core (4 ms per message at 60 msg/s): node-a is above the mean.
    const services = [`rec-rb1-${run}`, `rec-rb2-${run}`];
    const loads: ServiceLoad[] = [];
    try {
      for (const s of services) {
        const load = new ServiceLoad(cluster, s, 60);
        await load.prepare();
        await deploy(s, 'node-a', 4);
        await load.start();
        loads.push(load);
      }
      await sleep(1500);
      const workflowId = `rebalance-${run}`;
      const result = (await cluster.client.workflow.execute('rebalance', {
        taskQueue: cluster.opts.taskQueue,
        workflowId,
        args: [{ cooldownMs: 0, maxMigrations: 1, sampleMs: 1500 }],
      })) as RebalanceResult;
      expect(result.outcomes.map((o) => o.outcome)).toEqual(['completed']);
      await save('rebalance', workflowId);
      await save('rebalance-child', result.outcomes[0].workflowId);
    } finally {
      for (const l of loads) await l.close();
      for (const s of services) await undeploy(cluster, s).catch(() => undefined);
    }
  }, 240_000);
});
