/**
 * The client SDK against the real stack: a migration started, followed and found again through
 * Ms2mClient, bad input refused before anything starts, a rebalance schedule's whole life, and the
 * example program run as its own process.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterHandle } from '../../runtimes/types';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';
import { deployWorkload, undeploy } from '../../cli/scenario';
import { loadConfig } from '../../lib/config';
import { Ms2mClient, Ms2mInputError, type MigrationSummary, type RebalanceResult, type Stage } from '../../sdk';

const run = Date.now().toString(36);
const taskQueue = `ms2m-sdk-${run}`;
let e2e: E2eCluster;
let cluster: ClusterHandle;
let home: string;
let ms2m: Ms2mClient;
const deployed: string[] = [];
const schedules: string[] = [];

beforeAll(async () => {
  e2e = await startE2eCluster('sdk', ['node-a', 'node-b'], { taskQueue });
  ({ cluster, home } = e2e);
  ms2m = new Ms2mClient(cluster.client, { taskQueue });
});

afterAll(async () => {
  for (const id of schedules) await ms2m?.deleteSchedule(id).catch(() => undefined);
  for (const s of deployed) await undeploy(cluster, s).catch(() => undefined);
  await stopE2eCluster(e2e);
});

async function deploy(service: string): Promise<void> {
  await deployWorkload(cluster, 'game', service, 'node-a');
  deployed.push(service);
}

/** Polls until `pick` returns something (visibility and schedule listings trail the server's state). */
async function eventually<T>(what: string, pick: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const found = await pick();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

describe('Ms2mClient', () => {
  it(
    'starts a migration, follows its progress, returns its report and finds it by service',
    async () => {
      const service = `sdk-${run}`;
      await deploy(service);
      const handle = await ms2m.startMigration({ service, targetNode: 'node-b' });
      expect(handle.workflowId).toBe(`migrate-${service}`);
      const stages: Stage[] = [];
      const report = await handle.result({ onProgress: (p) => stages.push(p.stage), pollMs: 100 });
      expect(report).toMatchObject({ outcome: 'completed', service, sourceNode: 'node-a', targetNode: 'node-b', strategy: 'shadow', stateMatch: true });
      // The instances' own accounting is in the report without any producers' log, and no test oracle is.
      expect(report.verification).toBeUndefined();
      expect(report.accounting).toMatchObject({ handoff: 'exact', serving: { instance: report.targetInstance, consumers: 1 } });
      expect(report.accounting.copy).toMatchObject({ instance: report.targetInstance, replayGaps: 0 });
      expect(report.accounting.serving!.position).toBeGreaterThanOrEqual(report.accounting.source.position);
      // A stage can be shorter than the poll interval, so which ones show varies; the end always does.
      expect(new Set(stages).size).toBeGreaterThan(1);
      expect(stages.at(-1)).toBe('done');
      expect((await handle.progress()).stage).toBe('done');
      expect((await ms2m.getMigration(handle.workflowId).report()).migrationId).toBe(report.migrationId);

      const found = await eventually<MigrationSummary>('the migration in visibility', async () =>
        (await ms2m.listMigrations({ service })).find((m) => m.phase === 'done'),
      );
      expect(found).toMatchObject({ workflowId: handle.workflowId, status: 'COMPLETED', service, sourceNode: 'node-a', targetNode: 'node-b', strategy: 'shadow' });
      expect(await ms2m.listMigrations({ service, node: 'node-b', phase: 'done', running: false })).toHaveLength(1);
      expect(await ms2m.listMigrations({ service, running: true })).toHaveLength(0);
      // A quote in a value stays inside its literal: no match, and no query syntax error either.
      expect(await ms2m.listMigrations({ service: `${service}' OR WorkflowType = 'migrateService` })).toHaveLength(0);
    },
    120_000,
  );

  it('refuses bad input before starting a workflow', async () => {
    const workflowId = `sdk-bad-${run}`;
    const err = await ms2m.startMigration({ service: 'Game!', targetNode: 'node-b' }, { workflowId }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Ms2mInputError);
    expect((err as Ms2mInputError).message).toMatch(/^invalid migrateService input: service: service must be 1-40 lowercase/);
    await expect(cluster.client.workflow.getHandle(workflowId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    await expect(ms2m.startRebalance({ band: -1 }, { workflowId })).rejects.toThrow('invalid rebalance input: band: band must be ≥ 0');
    await expect(cluster.client.workflow.getHandle(workflowId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it(
    'creates, describes, pauses, unpauses, triggers and deletes a rebalance schedule',
    async () => {
      const scheduleId = `sdk-rebalance-${run}`;
      schedules.push(scheduleId);
      const created = await ms2m.createRebalanceSchedule({ scheduleId, every: '1h', input: { dryRun: true } });
      expect(created).toMatchObject({ scheduleId, paused: false, everyMs: 3_600_000, taskQueue, recentActions: [] });
      expect(created.input).toMatchObject({ dryRun: true, band: 0.2, maxMigrations: 3 });
      expect(created.nextActionTimes.length).toBeGreaterThan(0);

      await ms2m.pauseSchedule(scheduleId, 'paused by the sdk test');
      expect(await ms2m.describeSchedule(scheduleId)).toMatchObject({ paused: true, note: 'paused by the sdk test' });
      await ms2m.unpauseSchedule(scheduleId);
      expect((await ms2m.describeSchedule(scheduleId)).paused).toBe(false);
      await eventually('the schedule in the list', async () => (await ms2m.listSchedules()).find((s) => s.scheduleId === scheduleId));

      await ms2m.triggerSchedule(scheduleId);
      const action = await eventually('the triggered run', async () => (await ms2m.describeSchedule(scheduleId)).recentActions[0]);
      const started = cluster.client.workflow.getHandle(action.workflowId, action.runId);
      expect((await started.describe()).type).toBe('rebalance');
      const result = (await started.result()) as RebalanceResult;
      expect(result.dryRun).toBe(true);
      expect(result.outcomes).toEqual([]);
      expect(result.plan.nodes.map((n) => n.node).sort()).toEqual(['node-a', 'node-b']);

      await ms2m.deleteSchedule(scheduleId);
      await expect(ms2m.describeSchedule(scheduleId)).rejects.toBeInstanceOf(ScheduleNotFoundError);
    },
    60_000,
  );

  it(
    'the example program migrates a service and prints the completed report',
    async () => {
      const service = `sdkex-${run}`;
      await deploy(service);
      const script = path.join(loadConfig().projectRoot, 'dist', 'examples', 'sdk-example.js');
      const { stdout } = await promisify(execFile)(process.execPath, [script, '--service', service, '--to', 'node-b'], {
        env: { ...process.env, MS2M_HOME: home, MS2M_TASK_QUEUE: taskQueue },
        timeout: 100_000,
      });
      expect(stdout).toContain(`started migrate-${service}`);
      const stageLines = stdout.split('\n').filter((l) => /^ +\d+\.\d s {2}\S/.test(l));
      expect(stageLines.length).toBeGreaterThan(1);
      expect(stageLines.at(-1)).toMatch(/ done$/);
      expect(stdout).toMatch(new RegExp(`${service} node-a → node-b: completed, total \\d+ ms, downtime \\d+ ms`));
      expect(stdout).toContain(`migrations of ${service}:`);
    },
    120_000,
  );
});
