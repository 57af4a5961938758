/**
 * Running one migration against a fake cluster and collecting what came of it: the workflow's result or
 * failure, its final report (from the report query, which also answers for a cancelled migration), and
 * the fake's call log.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { MigrateInput, MigrationReport, Strategy, Timeouts } from '../../../lib/migration';
import { FakeCluster, type ClusterSpec } from './fake-runtime';
import type { WorkflowTestbed } from './temporal-env';

/** Every bound at (or near) its minimum, so that a test waits at most a second or two for any of them. */
export const FAST_TIMEOUTS: Timeouts = {
  nodeScheduleToStartMs: 1000,
  heartbeatMs: 1000,
  nodeActivityMs: 10_000,
  controlReplyMs: 500,
  copyReadyMs: 2000,
  catchUpMs: 2000,
  unreachableMs: 1000,
};

export function migrateInput(strategy: Strategy, extra: Partial<MigrateInput> = {}): MigrateInput {
  return {
    service: 'game',
    targetNode: 'node-b',
    strategy,
    replay: { threshold: 10, cutoffMs: 30_000, stallMs: 3000 },
    timeouts: FAST_TIMEOUTS,
    ...extra,
  };
}

export interface Outcome {
  /** The workflow's result, when it completed. */
  result?: MigrationReport;
  /** The failure's cause (ApplicationFailure, CancelledFailure…), when it failed. */
  error?: Error;
  /** The ApplicationFailure's type, or 'CancelledFailure'. */
  errorType?: string;
  /** The final report: the result's, the failure's, or the report query's (undefined when the workflow refused its input before registering the query). */
  report: MigrationReport;
  handle: WorkflowHandle;
}

export async function outcomeOf(handle: WorkflowHandle): Promise<Outcome> {
  let result: MigrationReport | undefined;
  let error: Error | undefined;
  try {
    result = (await handle.result()) as MigrationReport;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    error = err.cause;
  }
  // The report as a client gets it: the result, or the failure's details (a rolled-back or not-serving
  // migration carries it there). A cancelled workflow returns nothing: then the report query, which
  // answers after the end too (it replays the whole history, so only when needed).
  const carried = result ?? (error instanceof ApplicationFailure ? (error.details?.[0] as MigrationReport | undefined) : undefined);
  const report = (carried ?? (await handle.query('report').catch(() => undefined))) as MigrationReport;
  const errorType = error instanceof ApplicationFailure ? (error.type ?? undefined) : error instanceof CancelledFailure ? 'CancelledFailure' : error?.name;
  return { result, error, errorType, report, handle };
}

export interface Run {
  fake: FakeCluster;
  handle: WorkflowHandle;
  workflowId: string;
}

/**
 * A migration on a fake cluster of its own; `prepare` injects faults, `drive` acts while the migration
 * runs (cancels it, say). Resolves with the migration's outcome once it has ended.
 */
export async function runMigration(
  bed: WorkflowTestbed,
  name: string,
  input: MigrateInput,
  o: {
    cluster?: ClusterSpec;
    prepare?: (fake: FakeCluster) => void;
    drive?: (run: Run) => Promise<void>;
    /** Runs after the start and before any worker polls (the migration then gets workers of its own). */
    beforeWorkers?: (run: Run) => Promise<void>;
    /**
     * A worker running a local activity hears of a cancellation only when it heartbeats its workflow
     * task, at 80 % of this (default 10 s): shorter for tests that cancel during a local activity.
     */
    workflowTaskTimeout?: string;
  } = {},
): Promise<Outcome & { fake: FakeCluster }> {
  const fake = new FakeCluster(o.cluster);
  o.prepare?.(fake);
  const workflowId = bed.workflowId(name);
  bed.attach(workflowId, fake);
  const taskQueue = o.beforeWorkers ? bed.ownTaskQueue() : bed.taskQueue;
  const handle = await bed.client.workflow.start('migrateService', {
    taskQueue,
    workflowId,
    args: [input],
    ...(o.workflowTaskTimeout ? { workflowTaskTimeout: o.workflowTaskTimeout } : {}),
  });
  const run = { fake, handle, workflowId };
  const finish = async () => {
    try {
      const [, out] = await Promise.all([o.drive?.(run), outcomeOf(handle)]);
      return { ...out, fake };
    } finally {
      fake.releaseAll();
    }
  };
  if (!o.beforeWorkers) return finish();
  await o.beforeWorkers(run);
  return bed.withOwnWorkers(taskQueue, finish);
}

/** A fleet workflow (rebalance, drainNode, setNodeSchedulable) on a fake cluster, with its child migrations. */
export async function runFleet<R>(
  bed: WorkflowTestbed,
  name: string,
  workflowType: 'rebalance' | 'drainNode' | 'setNodeSchedulable',
  input: unknown,
  o: { cluster?: ClusterSpec; prepare?: (fake: FakeCluster) => void } = {},
): Promise<{ result?: R; error?: Error; errorType?: string; fake: FakeCluster; handle: WorkflowHandle; workflowId: string }> {
  const fake = new FakeCluster(o.cluster);
  o.prepare?.(fake);
  const workflowId = bed.workflowId(name);
  bed.attach(workflowId, fake);
  const handle = await bed.client.workflow.start(workflowType, { taskQueue: bed.taskQueue, workflowId, args: [input] });
  try {
    return { result: (await handle.result()) as R, fake, handle, workflowId };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const error = err.cause;
    const errorType = error instanceof ApplicationFailure ? (error.type ?? undefined) : error?.name;
    return { error, errorType, fake, handle, workflowId };
  } finally {
    fake.releaseAll();
  }
}

/** What every rolled-back migration must leave: the source serving alone, nothing of the migration left. */
export function leftAsBefore(fake: FakeCluster, service = 'game'): Record<string, unknown> {
  const src = fake.instance(`${service}-0`);
  return {
    source: { alive: src.alive, role: src.role, consuming: src.consuming, fenced: src.fenced, applyLog: src.applyLog },
    otherInstancesAlive: fake.instancesOf(service).filter((i) => i !== src && i.alive).map((i) => i.instanceId),
    images: [...fake.nodes.values()].flatMap((n) => [...n.images.keys()].map((k) => `${n.node}:${k}`)),
    replayQueues: [...fake.queues.keys()],
    lockHeld: fake.locks.has(service),
    placedOn: fake.placements.get(service)?.node,
    consumers: fake.consumersOf(`${service}.primary`).map((i) => i.instanceId),
  };
}

export const AS_BEFORE = {
  source: { alive: true, role: 'primary', consuming: 'primary', fenced: false, applyLog: null },
  otherInstancesAlive: [],
  images: [],
  replayQueues: [],
  lockHeld: false,
  placedOn: 'node-a',
  consumers: ['game-0'],
};

/** Calls that run at once (in Promise.all) are compared as a set: sorted between `from` and `to`. */
export const sortedMiddle = (steps: string[], from: number, to: number): string[] => [...steps.slice(0, from), ...steps.slice(from, to).sort(), ...steps.slice(to)];
