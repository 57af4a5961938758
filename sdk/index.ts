/**
 * The ms2m client SDK: start and follow migrations, rebalancing and drains on running ms2m workers, find
 * past migrations, and schedule periodic rebalancing.
 *
 * Inputs are checked here with the workflows' own schemas and messages, so a bad input fails before any
 * workflow starts (Ms2mInputError) instead of as a failed workflow.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Client,
  Connection,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowFailedError,
  type ScheduleHandle,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { z } from 'zod';
import { loadConfig } from '../lib/config';
import {
  DeployInputSchema,
  MigrateInputSchema,
  UndeployInputSchema,
  describeInputError,
  type DeployInput,
  type MigrateInput,
  type MigrationProgress,
  type MigrationReport,
} from '../lib/migration';
import type { Placement } from '../runtimes/types';
import {
  DrainInputSchema,
  NodeSchedulableInputSchema,
  RebalanceInputSchema,
  type DrainInput,
  type DrainReport,
  type RebalanceInput,
  type RebalanceResult,
} from '../lib/rebalance';

export type { Placement } from '../runtimes/types';
export type {
  DeployInput,
  DeployRequest,
  ServiceSpec,
  UndeployInput,
  MigrateInput,
  MigrateRequest,
  MigrationProgress,
  MigrationReport,
  Phase,
  PhaseTiming,
  ReplayStats,
  Stage,
  Strategy,
  Timeouts,
  Verification,
} from '../lib/migration';
export type {
  DrainInput,
  DrainReport,
  DrainRequest,
  MoveOutcome,
  NodeSchedulableInput,
  PlannedMove,
  RebalanceInput,
  RebalancePlan,
  RebalanceRequest,
  RebalanceResult,
} from '../lib/rebalance';
import { FAILURE, progressQuery, reportQuery, type Workflows } from '../lib/contracts';
import { Ms2mInputError } from './input-error';
import { migrationSummary, migrationsQuery, type MigrationFilter, type MigrationSummary } from './migration-list';
import { parseEvery, scheduleInfo, type RebalanceScheduleOptions, type ScheduleDetails, type ScheduleInfo } from './schedules';

export { Ms2mInputError } from './input-error';
export { migrationsQuery, quoteValue, type MigrationFilter, type MigrationSummary } from './migration-list';
export { parseEvery, type RebalanceScheduleOptions, type ScheduleDetails, type ScheduleInfo, type ScheduledAction } from './schedules';


function validated<S extends z.ZodTypeAny>(schema: S, workflow: string, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw new Ms2mInputError(describeInputError(workflow, r.error, input));
  return r.data;
}


export class MigrationHandle {
  constructor(readonly handle: WorkflowHandle<Workflows['migrateService']>) {}

  get workflowId(): string {
    return this.handle.workflowId;
  }

  progress(): Promise<MigrationProgress> {
    return this.handle.query(progressQuery);
  }

  /** The report so far; after the end, the final one. */
  report(): Promise<MigrationReport> {
    return this.handle.query(reportQuery);
  }

  async cancel(): Promise<void> {
    await this.handle.cancel();
  }

  /**
   * Waits for the end and returns the report, also of a migration that rolled back or was cancelled (see
   * `outcome`); throws only when there is no report (e.g. input refused during validation).
   * `onProgress` gets the `progress` query's answer every `pollMs` while waiting, and once at the end.
   */
  async result(opts: { onProgress?: (p: MigrationProgress) => void; pollMs?: number } = {}): Promise<MigrationReport> {
    const { onProgress, pollMs = 200 } = opts;
    const report = async (): Promise<MigrationReport> => {
      try {
        return await this.handle.result();
      } catch (err) {
        const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
        if (cause instanceof ApplicationFailure && cause.type === FAILURE.MigrationRolledBack && cause.details?.[0]) return cause.details[0] as MigrationReport;
        // A cancelled workflow's result carries nothing; its report stays queryable.
        if (cause instanceof CancelledFailure) return this.report();
        throw err;
      }
    };
    if (!onProgress) return report();
    let waiting = true;
    const show = () => this.progress().then(onProgress, () => undefined); // a query can race the first task or the end
    const poller = (async () => {
      while (waiting) {
        await show();
        await sleep(pollMs);
      }
    })();
    try {
      return await report();
    } finally {
      waiting = false;
      await poller;
      await show();
    }
  }
}

/** A rebalance or drain run. */
export class Ms2mRun<T> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any input: the run is known by its result
  constructor(readonly handle: WorkflowHandle<(...args: any[]) => Promise<T>>) {}
  get workflowId(): string {
    return this.handle.workflowId;
  }
  result(): Promise<T> {
    return this.handle.result();
  }
  async cancel(): Promise<void> {
    await this.handle.cancel();
  }
}

export interface ConnectOptions {
  address?: string;
  namespace?: string;
  taskQueue?: string;
}

export class Ms2mClient {
  /** The orchestrator's task queue, where the workflows run. */
  readonly taskQueue: string;
  private ownConnection?: Connection;

  /** On an existing Temporal client; `close()` leaves its connection open. */
  constructor(
    readonly client: Client,
    opts: { taskQueue?: string } = {},
  ) {
    this.taskQueue = opts.taskQueue ?? loadConfig().taskQueue;
  }

  /** Connects to Temporal; unset options come from the environment and the dev stack's stack.env (see lib/config.ts). */
  static async connect(opts: ConnectOptions = {}): Promise<Ms2mClient> {
    const cfg = loadConfig();
    const address = opts.address ?? cfg.temporalAddress;
    let connection: Connection;
    try {
      connection = await Connection.connect({ address });
    } catch (err) {
      throw new Error(`cannot reach Temporal at ${address} (${(err as Error).message}); start the dev stack (ms2m stack) or set MS2M_TEMPORAL_ADDRESS`);
    }
    const ms2m = new Ms2mClient(new Client({ connection, namespace: opts.namespace ?? cfg.temporalNamespace }), { taskQueue: opts.taskQueue ?? cfg.taskQueue });
    ms2m.ownConnection = connection;
    return ms2m;
  }

  async close(): Promise<void> {
    await this.ownConnection?.close();
  }

  /** The default workflow id, `migrate-<service>`, also keeps a second migration of the service from starting while one runs. */
  async startMigration(input: MigrateInput, opts: { workflowId?: string } = {}): Promise<MigrationHandle> {
    const request = validated(MigrateInputSchema, 'migrateService', input);
    const handle = await this.client.workflow.start<Workflows['migrateService']>('migrateService', {
      taskQueue: this.taskQueue,
      workflowId: opts.workflowId ?? `migrate-${request.service}`,
      args: [request],
    });
    return new MigrationHandle(handle);
  }

  /**
   * Starts a service instance on a node and records its placement (the run's result). A deploy that cannot
   * serve is refused as soon as that is known, and leaves nothing behind; the run then fails with the
   * refusal: InvalidSpec (the program, spec.cwd or spec.primaryQueue), InstanceExited, NotReady (no answer
   * to control commands within readyMs) or InvalidInput. The default workflow id, `deploy-<service>`, keeps
   * two deploys of one service from running at once.
   */
  async startDeploy(input: DeployInput, opts: { workflowId?: string } = {}): Promise<Ms2mRun<Placement>> {
    const request = validated(DeployInputSchema, 'deployService', input);
    const handle = await this.client.workflow.start<Workflows['deployService']>('deployService', {
      taskQueue: this.taskQueue,
      workflowId: opts.workflowId ?? `deploy-${request.service}`,
      args: [request],
    });
    return new Ms2mRun<Placement>(handle);
  }

  /** Stops the service's instance and removes its placement; `placement` is what was removed, null if the service was not deployed. */
  async undeploy(service: string): Promise<{ stopped: boolean; placement: Placement | null }> {
    const request = validated(UndeployInputSchema, 'undeployService', { service });
    return this.client.workflow.execute<Workflows['undeployService']>('undeployService', {
      taskQueue: this.taskQueue,
      workflowId: `undeploy-${request.service}-${Date.now().toString(36)}`,
      args: [request],
    });
  }

  /** The latest run of the workflow id unless `runId` is given. */
  getMigration(workflowId: string, runId?: string): MigrationHandle {
    return new MigrationHandle(this.client.workflow.getHandle(workflowId, runId));
  }

  async startRebalance(input: RebalanceInput = {}, opts: { workflowId?: string } = {}): Promise<Ms2mRun<RebalanceResult>> {
    const request = validated(RebalanceInputSchema, 'rebalance', input);
    const handle = await this.client.workflow.start<Workflows['rebalance']>('rebalance', {
      taskQueue: this.taskQueue,
      workflowId: opts.workflowId ?? `rebalance-${Date.now().toString(36)}`,
      args: [request],
    });
    return new Ms2mRun<RebalanceResult>(handle);
  }

  /** The default workflow id, `drain-<node>`, keeps a node from being drained twice at once. */
  async startDrain(input: DrainInput, opts: { workflowId?: string } = {}): Promise<Ms2mRun<DrainReport>> {
    const request = validated(DrainInputSchema, 'drainNode', input);
    const handle = await this.client.workflow.start<Workflows['drainNode']>('drainNode', {
      taskQueue: this.taskQueue,
      workflowId: opts.workflowId ?? `drain-${request.node}`,
      args: [request],
    });
    return new Ms2mRun<DrainReport>(handle);
  }

  /** Cordons (false) or uncordons (true) a node: whether rebalancing and draining may place services on it. */
  async setNodeSchedulable(node: string, schedulable: boolean): Promise<void> {
    const request = validated(NodeSchedulableInputSchema, 'setNodeSchedulable', { node, schedulable });
    await this.client.workflow.execute<Workflows['setNodeSchedulable']>('setNodeSchedulable', {
      taskQueue: this.taskQueue,
      workflowId: `schedulable-${request.node}-${Date.now().toString(36)}`,
      args: [request],
    });
  }

  /** Migrations on this client's task queue, newest first, from Temporal's visibility store (which trails the workflows by a second or so). */
  async listMigrations(filter: MigrationFilter = {}): Promise<MigrationSummary[]> {
    const limit = filter.limit ?? 100;
    const out: MigrationSummary[] = [];
    if (limit <= 0) return out;
    for await (const w of this.client.workflow.list({ query: migrationsQuery(filter, this.taskQueue), pageSize: Math.min(limit, 1000) })) {
      out.push(migrationSummary(w));
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * A schedule that starts the `rebalance` workflow every interval. A run due while the previous one still
   * runs is skipped: two rebalances at once would plan against the same loads.
   */
  async createRebalanceSchedule(o: RebalanceScheduleOptions): Promise<ScheduleDetails> {
    const request = validated(RebalanceInputSchema, 'rebalance', o.input ?? {});
    const every = parseEvery(o.every);
    await this.client.schedule.create({
      scheduleId: o.scheduleId,
      spec: { intervals: [{ every }] },
      action: { type: 'startWorkflow', workflowType: 'rebalance', taskQueue: this.taskQueue, workflowId: o.scheduleId, args: [request] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      state: { paused: o.paused ?? false, note: o.note },
    });
    return this.describeSchedule(o.scheduleId);
  }

  /** The schedules whose action starts the `rebalance` workflow (whoever created them); others are left out. */
  async listSchedules(): Promise<ScheduleInfo[]> {
    const out: ScheduleInfo[] = [];
    for await (const s of this.client.schedule.list()) {
      if (s.action?.workflowType === 'rebalance') out.push(scheduleInfo(s));
    }
    return out;
  }

  async describeSchedule(scheduleId: string): Promise<ScheduleDetails> {
    const d = await this.onSchedule(scheduleId, (h) => h.describe());
    return {
      ...scheduleInfo(d),
      input: d.action.args?.[0] as RebalanceInput,
      taskQueue: d.action.taskQueue,
      runningWorkflowIds: d.info.runningActions.map((a) => a.workflow.workflowId),
      numActionsTaken: d.info.numActionsTaken,
      numActionsSkippedOverlap: d.info.numActionsSkippedOverlap,
      createdAt: d.info.createdAt,
    };
  }

  pauseSchedule(scheduleId: string, note?: string): Promise<void> {
    return this.onSchedule(scheduleId, (h) => h.pause(note));
  }

  unpauseSchedule(scheduleId: string, note?: string): Promise<void> {
    return this.onSchedule(scheduleId, (h) => h.unpause(note));
  }

  /** Starts a run now, even if paused; skipped (as scheduled runs are) while a previous run still runs. */
  triggerSchedule(scheduleId: string): Promise<void> {
    return this.onSchedule(scheduleId, (h) => h.trigger());
  }

  deleteSchedule(scheduleId: string): Promise<void> {
    return this.onSchedule(scheduleId, (h) => h.delete());
  }

  /** The server reports a missing schedule as its internal workflow not being found: say what is missing. */
  private async onSchedule<T>(scheduleId: string, fn: (h: ScheduleHandle) => Promise<T>): Promise<T> {
    try {
      return await fn(this.client.schedule.getHandle(scheduleId));
    } catch (err) {
      if (err instanceof ScheduleNotFoundError || /not found/i.test((err as Error).message)) {
        throw new ScheduleNotFoundError(`no schedule "${scheduleId}" (ms2m schedule list shows the rebalance schedules)`, scheduleId);
      }
      throw err;
    }
  }
}
