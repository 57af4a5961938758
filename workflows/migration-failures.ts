/**
 * How migrateService tells its failures apart and names what it creates. Workflow code: no I/O.
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import type { Stage } from '../lib/migration';

/** Names derived from the workflow id (and run), so every retried activity addresses the same things. */
export function migrationIdOf(workflowId: string, runId: string): string {
  const slug = workflowId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'migration';
  return `${slug}-${runId.slice(0, 8)}`;
}

export function errorText(err: unknown): { type: string; message: string } {
  let e = err as { cause?: unknown; type?: string; message?: string; name?: string };
  // Activity failures wrap the real cause; its type and message are what an operator needs.
  while (e?.cause && (e as { name?: string }).name === 'ActivityFailure') e = e.cause as typeof e;
  return { type: e?.type ?? e?.name ?? 'Error', message: e?.message ?? String(err) };
}

export function isScheduleToStartTimeout(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === 'SCHEDULE_TO_START';
}

/** A failure that says something definite (a refusal, a bound exceeded), as opposed to something being unreachable. */
export function isDefinite(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure && cause.nonRetryable === true;
}

/** Raised inside the workflow when the source process is gone after its copy exists. */
export class SourceLost extends Error {
  constructor(readonly detectedIn: Stage) {
    super(`the source instance died during ${detectedIn}`);
  }
}

/**
 * The part of a combined node step (activities/node-combined) that a failure came from, from the details
 * the activity attached; the workflow reports it as the phase that failed.
 */
export function failedPart(err: unknown): { part: string; started: boolean } | null {
  const details = (err as { cause?: { details?: unknown[] } })?.cause?.details;
  const d = details?.find((x): x is { part: string; started?: boolean } => typeof x === 'object' && x !== null && 'part' in x);
  return d ? { part: d.part, started: d.started !== false } : null;
}
