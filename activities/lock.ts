/**
 * The per-service migration lock, kept by Temporal itself so that it outlives any worker and needs no
 * runtime store: holding the lock is having a running `migrationLock` workflow whose id names the service
 * (Temporal allows one running execution per workflow id) and whose memo names the holder. Releasing it
 * ends that execution. A lock whose holder ended without releasing it (crashed, terminated) is stale, and
 * the next acquirer ends it.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { LockActivities } from './types';
import { FAILURE } from '../lib/contracts';

export const lockWorkflowId = (service: string): string => `ms2m-lock-${service}`;

export interface LockHolder {
  workflowId: string;
  runId: string;
}

/** The run holding the service's lock, with the lock's own run id; null when free. */
export async function lockHolder(client: Client, service: string): Promise<(LockHolder & { lockRunId: string }) | null> {
  try {
    const d = await client.workflow.getHandle(lockWorkflowId(service)).describe();
    if (d.status.name !== 'RUNNING') return null;
    const m = (d.memo ?? {}) as Partial<LockHolder>;
    return { workflowId: m.workflowId ?? '', runId: m.runId ?? '', lockRunId: d.runId };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

export function createLockActivities(client: Client, taskQueue: string): LockActivities {
  async function isRunning(h: LockHolder): Promise<boolean> {
    try {
      return (await client.workflow.getHandle(h.workflowId, h.runId).describe()).status.name === 'RUNNING';
    } catch (err) {
      // Only a holder Temporal does not know is gone; any other failure is retried, never taken as "not running".
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  /** Ends one lock execution (by its run id, so a lock taken again meanwhile is left alone). */
  async function end(service: string, lockRunId: string, reason: string): Promise<void> {
    await client.workflow
      .getHandle(lockWorkflowId(service), lockRunId)
      .terminate(reason)
      .catch((err: unknown) => {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      });
  }

  return {
    async acquireLock({ service, workflowId, runId }) {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await client.workflow.start('migrationLock', {
            workflowId: lockWorkflowId(service),
            taskQueue,
            args: [{ service }],
            memo: { workflowId, runId },
            workflowIdConflictPolicy: 'FAIL',
          });
          return;
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        }
        const holder = await lockHolder(client, service);
        if (!holder) continue;
        if (holder.workflowId === workflowId && holder.runId === runId) return;
        if (holder.workflowId && (await isRunning(holder))) {
          throw ApplicationFailure.nonRetryable(
            `service ${service} is already being migrated by workflow ${holder.workflowId}; wait for it to finish or cancel it`,
            FAILURE.MigrationInProgress,
          );
        }
        await end(service, holder.lockRunId, `stale: its holder ${holder.workflowId} ended without releasing it`);
      }
      throw ApplicationFailure.retryable(`could not take the migration lock of ${service}`, FAILURE.LockContention);
    },

    async releaseLock({ service, workflowId, runId }) {
      const holder = await lockHolder(client, service);
      if (holder && holder.workflowId === workflowId && holder.runId === runId) await end(service, holder.lockRunId, `released by ${workflowId}`);
    },

    async lockedServices({ services }) {
      const held = await Promise.all(services.map(async (s) => ((await lockHolder(client, s)) ? s : null)));
      return held.filter((s): s is string => s !== null);
    },
  };
}
