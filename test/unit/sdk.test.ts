import type { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { describeInputError, MigrateInputSchema } from '../../lib/migration';
import { DrainInputSchema, NodeSchedulableInputSchema, RebalanceInputSchema } from '../../lib/rebalance';
import { Ms2mClient, Ms2mInputError, migrationsQuery, parseEvery } from '../../sdk';

/** A client on which starting anything fails the test: bad input must be refused before. */
function refusingClient(): Ms2mClient {
  const fail = () => {
    throw new Error('a workflow or schedule was started');
  };
  const fake = { workflow: { start: fail, execute: fail, signalWithStart: fail }, schedule: { create: fail } } as unknown as Client;
  return new Ms2mClient(fake, { taskQueue: 'unit' });
}

/** The message the workflow's own validation gives. */
function workflowMessage(schema: z.ZodTypeAny, what: string, input: unknown): string {
  const r = schema.safeParse(input);
  if (r.success) throw new Error('expected the input to be rejected');
  return describeInputError(what, r.error, input);
}

async function refusal(p: Promise<unknown>): Promise<Ms2mInputError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Ms2mInputError);
  expect((err as Ms2mInputError).type).toBe('InvalidInput');
  return err as Ms2mInputError;
}

describe('Ms2mClient refuses bad input before starting anything', () => {
  const ms2m = refusingClient();

  it('migrateService', async () => {
    for (const input of [{ targetNode: 'node-b' }, { service: 'Game!', targetNode: 'node-b' }, { service: 'game', targetNode: 'node-b', strategy: 'warp' }, { service: 'game', targetNode: 'node-b', target: 'x' }]) {
      const err = await refusal(ms2m.startMigration(input as never));
      expect(err.message).toBe(workflowMessage(MigrateInputSchema, 'migrateService', input));
    }
    expect((await refusal(ms2m.startMigration({ service: 'game', targetNode: 'node-b', replay: { threshold: -1 } }))).message).toBe(
      'invalid migrateService input: replay.threshold: replay.threshold must be a whole number ≥ 0, got -1',
    );
  });

  it('rebalance', async () => {
    for (const input of [{ band: -1 }, { maxMigrations: 1.5 }, { concurrency: 0 }, { strategy: 'warp' }, { bandwidth: 1 }]) {
      const err = await refusal(ms2m.startRebalance(input as never));
      expect(err.message).toBe(workflowMessage(RebalanceInputSchema, 'rebalance', input));
    }
    expect((await refusal(ms2m.startRebalance({ band: -1 }))).message).toBe('invalid rebalance input: band: band must be ≥ 0, got -1');
    expect((await refusal(ms2m.startRebalance({ maxMigrations: 1.5 }))).message).toBe('invalid rebalance input: maxMigrations: maxMigrations must be a whole number ≥ 0, got 1.5');
    expect((await refusal(ms2m.startRebalance({ sampleMs: 10 }))).message).toBe('invalid rebalance input: sampleMs: sampleMs must be at least 100 ms, got 10');
  });

  it('drainNode and setNodeSchedulable', async () => {
    for (const input of [{}, { node: 'Node A' }, { node: 'node-a', concurrency: 11 }]) {
      const err = await refusal(ms2m.startDrain(input as never));
      expect(err.message).toBe(workflowMessage(DrainInputSchema, 'drainNode', input));
    }
    expect((await refusal(ms2m.startDrain({} as never))).message).toBe('invalid drainNode input: node: node is required, e.g. "node-a"');
    expect((await refusal(ms2m.startDrain({ node: 'node-a', concurrency: 11 }))).message).toBe('invalid drainNode input: concurrency: concurrency must be at most 10, got 11');
    const err = await refusal(ms2m.setNodeSchedulable('Node A', true));
    expect(err.message).toBe(workflowMessage(NodeSchedulableInputSchema, 'setNodeSchedulable', { node: 'Node A', schedulable: true }));
  });

  it('rebalance schedules: bad input or interval', async () => {
    const err = await refusal(ms2m.createRebalanceSchedule({ scheduleId: 's', every: '10m', input: { band: -1 } }));
    expect(err.message).toBe('invalid rebalance input: band: band must be ≥ 0, got -1');
    expect((await refusal(ms2m.createRebalanceSchedule({ scheduleId: 's', every: 'often' }))).message).toMatch(/every must be a duration of at least 1 s/);
    expect((await refusal(ms2m.createRebalanceSchedule({ scheduleId: 's', every: 500 }))).message).toMatch(/every must be a duration/);
  });
});

describe('parseEvery', () => {
  it('reads durations and milliseconds', () => {
    expect(parseEvery('10m')).toBe(600_000);
    expect(parseEvery('90s')).toBe(90_000);
    expect(parseEvery('1.5h')).toBe(5_400_000);
    expect(parseEvery('1d')).toBe(86_400_000);
    expect(parseEvery(60_000)).toBe(60_000);
    expect(() => parseEvery('10 minutes')).toThrow(Ms2mInputError);
  });
});

describe('migrationsQuery', () => {
  it('is every migration without a filter', () => {
    expect(migrationsQuery({})).toBe("WorkflowType = 'migrateService'");
  });
  it('combines the filters with AND', () => {
    expect(migrationsQuery({ service: 'game', sourceNode: 'node-a', targetNode: 'node-b', phase: 'done', running: false })).toBe(
      "WorkflowType = 'migrateService' AND Ms2mService = 'game' AND Ms2mSourceNode = 'node-a' AND Ms2mTargetNode = 'node-b' AND Ms2mPhase = 'done' AND ExecutionStatus != 'Running'",
    );
    expect(migrationsQuery({ node: 'node-a', running: true })).toBe(
      "WorkflowType = 'migrateService' AND (Ms2mSourceNode = 'node-a' OR Ms2mTargetNode = 'node-a') AND ExecutionStatus = 'Running'",
    );
    expect(migrationsQuery({ parentWorkflowId: 'rebalance-1' }, 'ms2m')).toBe("WorkflowType = 'migrateService' AND TaskQueue = 'ms2m' AND ParentWorkflowId = 'rebalance-1'");
  });
  it('escapes quotes and backslashes, so a value cannot end its literal', () => {
    expect(migrationsQuery({ service: "x' OR WorkflowType != 'y" })).toBe("WorkflowType = 'migrateService' AND Ms2mService = 'x\\' OR WorkflowType != \\'y'");
    expect(migrationsQuery({ service: 'a\\' })).toBe("WorkflowType = 'migrateService' AND Ms2mService = 'a\\\\'");
  });
});
