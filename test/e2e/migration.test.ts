/**
 * End to end, for real: the Temporal dev server, RabbitMQ and CRIU brought up by infra/stack.sh, the
 * orchestrator and three node agents as separate processes, the example game service under load.
 * node-c's agent runs a CRIU whose restore always fails, to exercise the rollback.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import * as amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterHandle } from '../../runtimes/types';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';
import { runScenario, undeploy } from '../../cli/scenario';
import { loadConfig } from '../../lib/config';
import type { MigrationProgress, MigrationReport, Strategy } from '../../lib/migration';
import { ControlClient } from '../../service/control-client';
import { replayQueueName } from '../../service/names';

const MIGRATION_TIMEOUT = 120_000;
let e2e: E2eCluster;
let cluster: ClusterHandle;
const run = Date.now().toString(36);

beforeAll(async () => {
  e2e = await startE2eCluster('e2e', ['node-a', 'node-b', 'node-c'], {
    taskQueue: `ms2m-e2e-${run}`,
    // node-c's CRIU refuses every restore (a local-runtime fault: the agent runs the CRIU it is given).
    nodeEnv: (dir) => {
      const failingCriu = path.join(dir, 'criu-restore-fails');
      writeFileSync(failingCriu, `#!/bin/sh\nif [ "$1" = restore ]; then echo "injected fault: restore refused" >&2; exit 1; fi\nexec "${loadConfig().criu}" "$@"\n`);
      chmodSync(failingCriu, 0o755);
      return { 'node-c': { MS2M_CRIU: failingCriu } };
    },
  });
  ({ cluster } = e2e);
});

afterAll(async () => {
  await stopE2eCluster(e2e);
});

/** The instance answers as the serving primary: not fenced, consuming the primary queue. */
async function expectServing(instanceId: string): Promise<void> {
  const control = await ControlClient.connect(loadConfig().amqpUrl);
  try {
    expect(await control.command(instanceId, { kind: 'status', digest: false })).toMatchObject({ role: 'primary', consuming: 'primary', fenced: false });
  } finally {
    await control.close();
  }
}

function expectNothingLost(r: MigrationReport, minPublished = 100): void {
  const v = r.verification!;
  expect(v.published).toBeGreaterThan(minPublished);
  expect(v.lost).toBe(0);
  expect(v.duplicated).toBe(0);
  expect(v.duplicateOutputs).toBe(0);
  expect(v.processed).toBe(v.published);
  expect(v.finalStateMatchesProducers).toBe(true);
}

/** Migrates to node-c, whose CRIU restore always fails, and checks what every rollback must hold. */
async function migrateIntoFailingRestore(service: string, strategy: Strategy): Promise<MigrationReport> {
  const { report } = await runScenario(cluster, { service, from: 'node-a', to: 'node-c', strategy, rate: 50, warmupMs: 1500, settleMs: 1500, keep: true });
  expect(report.outcome).toBe('rolled-back');
  expect(report.failure?.phase).toBe('restore');
  expect(report.failure?.message).toMatch(/injected fault/);
  expectNothingLost(report);
  return report;
}

describe('live migration on the local runtime', () => {
  it(
    'shadow: the copy takes over with nothing lost or applied twice, and the states match',
    async () => {
      const stages = new Set<string>();
      const { report } = await runScenario(cluster, {
        service: `shadow-${run}`,
        from: 'node-a',
        to: 'node-b',
        strategy: 'shadow',
        rate: 50,
        warmupMs: 2000,
        settleMs: 1500,
        onProgress: (p) => stages.add(p.stage),
      });
      expect(report.outcome).toBe('completed');
      expect(report.stateMatch).toBe(true);
      expect(report.sourceDigest).toBe(report.targetDigest);
      expect(report.checkpointBytes).toBeGreaterThan(1_000_000);
      expect(report.phases.map((p) => p.phase)).toEqual(['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'replay', 'fence', 'finalize']);
      // The source served through checkpoint, transfer, restore and replay: only the fence stops it.
      expect(report.downtimeMs).toBeLessThan(report.totalMs / 2);
      // Progress was visible while it ran, and the query still answers after the end.
      expect(stages.size).toBeGreaterThan(0);
      const final = await cluster.client.workflow.getHandle(report.workflowId).query<MigrationProgress>('progress');
      expect(final.stage).toBe('done');
      expect(final.phases.map((p) => p.phase)).toContain('replay');
      expectNothingLost(report);
    },
    MIGRATION_TIMEOUT,
  );

  it(
    'stop-and-copy: the baseline moves the service with nothing lost, its downtime spanning the pipeline',
    async () => {
      const { report } = await runScenario(cluster, {
        service: `cold-${run}`,
        from: 'node-a',
        to: 'node-b',
        strategy: 'stop-and-copy',
        rate: 50,
        warmupMs: 2000,
        settleMs: 1500,
      });
      expect(report.outcome).toBe('completed');
      expect(report.stateMatch).toBe(true);
      expect(report.phases.map((p) => p.phase)).not.toContain('replay');
      const pipeline = report.phases.filter((p) => ['checkpoint', 'transfer', 'restore'].includes(p.phase)).reduce((a, p) => a + p.ms, 0);
      expect(report.downtimeMs).toBeGreaterThanOrEqual(pipeline * 0.5);
      expectNothingLost(report);
    },
    MIGRATION_TIMEOUT,
  );

  it(
    'a failed restore rolls back: the source keeps serving, the copy and the replay queue are gone, nothing is lost',
    async () => {
      const service = `rollback-${run}`;
      const report = await migrateIntoFailingRestore(service, 'shadow');

      await expectServing(report.sourceInstance);
      const cfg = loadConfig();
      const conn = await amqp.connect(cfg.amqpUrl);
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await expect(ch.checkQueue(replayQueueName(service, report.migrationId))).rejects.toThrow(/NOT_FOUND/);
      await conn.close().catch(() => undefined);
      await undeploy(cluster, service);
    },
    MIGRATION_TIMEOUT,
  );

  it(
    'a failed restore after a cold checkpoint resumes the fenced source (the dump never ended it), and nothing is lost',
    async () => {
      const service = `cold-rollback-${run}`;
      const report = await migrateIntoFailingRestore(service, 'stop-and-copy');
      expect(report.accounting).toMatchObject({ handoff: 'none', serving: { instance: report.sourceInstance, consumers: 1 } });
      await expectServing(report.sourceInstance);
      await undeploy(cluster, service);
    },
    MIGRATION_TIMEOUT,
  );

  it('refuses bad input with the field and the fix, changing nothing', async () => {
    const err = await cluster.client.workflow
      .execute('migrateService', {
        taskQueue: cluster.opts.taskQueue,
        workflowId: `bad-input-${run}`,
        args: [{ service: 'game', targetNode: 'node-b', strategy: 'warp', replay: { threshold: 'ten' } }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe('InvalidInput');
    expect(cause.message).toMatch(/strategy: strategy must be one of stop-and-copy, shadow/);
    expect(cause.message).toMatch(/replay.threshold/);
  });

  it(
    'lets only one migration of a service run at a time, and an agent restart loses track of nothing',
    async () => {
      const service = `lock-${run}`;
      const taskQueue = cluster.opts.taskQueue;
      // The node agent restarts: it must find the instance it started before, which keeps running meanwhile.
      let first: Promise<unknown> | undefined;
      let second: unknown;
      const { report } = await runScenario(cluster, {
        service,
        from: 'node-a',
        to: 'node-b',
        strategy: 'shadow',
        rate: 20,
        warmupMs: 1000,
        settleMs: 500,
        afterDeploy: async () => {
          await cluster.stopProcess('agent-node-a');
          await cluster.launch('agent-node-a');
        },
        onProgress: (p: MigrationProgress) => {
          if (!first && p.stage !== 'validate') {
            first = cluster.client.workflow
              .execute('migrateService', { taskQueue, workflowId: `second-${service}`, args: [{ service, targetNode: 'node-c' }] })
              .catch((e: unknown) => (second = e));
          }
        },
      });
      await first;
      expect(report.outcome).toBe('completed');
      expect(second).toBeInstanceOf(WorkflowFailedError);
      expect(((second as WorkflowFailedError).cause as ApplicationFailure).type).toBe('MigrationInProgress');
      expectNothingLost(report, 30);
    },
    MIGRATION_TIMEOUT,
  );
});
