/** Periodic rebalancing with Temporal Schedules: the interval, the options and what a schedule reports. */
import type { ScheduleDescription, ScheduleExecutionResult, ScheduleSummary } from '@temporalio/client';
import type { RebalanceInput } from '../lib/rebalance';
import { Ms2mInputError } from './input-error';
import { durationOrMs } from '../lib/duration';

const EVERY = durationOrMs({ min: 1000, rule: 'every must be a duration of at least 1 s, e.g. "10m", "90s", "1h" or 600000 (ms)' });

/** A schedule interval, '90s', '10m', '2h', '1d' or milliseconds; Temporal counts whole seconds, so at least 1 s. */
export function parseEvery(every: string | number): number {
  const r = EVERY.safeParse(every);
  if (!r.success) throw new Ms2mInputError(`invalid schedule input: every: ${r.error.issues[0].message}; got ${JSON.stringify(every)}`);
  return r.data;
}

export interface RebalanceScheduleOptions {
  scheduleId: string;
  every: string | number;
  input?: RebalanceInput;
  paused?: boolean;
  note?: string;
}

export interface ScheduledAction {
  scheduledAt: Date;
  takenAt: Date;
  workflowId: string;
  runId: string;
}

export interface ScheduleInfo {
  scheduleId: string;
  paused: boolean;
  note?: string;
  everyMs?: number;
  /** Oldest first. */
  recentActions: ScheduledAction[];
  nextActionTimes: Date[];
}

export interface ScheduleDetails extends ScheduleInfo {
  input: RebalanceInput;
  taskQueue: string;
  runningWorkflowIds: string[];
  numActionsTaken: number;
  numActionsSkippedOverlap: number;
  createdAt: Date;
}

export function scheduleInfo(s: ScheduleSummary | ScheduleDescription): ScheduleInfo {
  return {
    scheduleId: s.scheduleId,
    paused: s.state.paused,
    note: s.state.note || undefined,
    everyMs: s.spec?.intervals?.[0]?.every,
    recentActions: s.info.recentActions.map((a: ScheduleExecutionResult) => ({
      scheduledAt: a.scheduledAt,
      takenAt: a.takenAt,
      workflowId: a.action.workflow.workflowId,
      runId: a.action.workflow.firstExecutionRunId,
    })),
    nextActionTimes: s.info.nextActionTimes,
  };
}
