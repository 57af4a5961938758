/**
 * Steps of a migration that run one after the other on the same node, done in one activity so that no
 * Temporal round trip (a workflow task and a dispatch, ~20-30 ms each on one host) falls between them:
 * - on the source, the checkpoint and the transfer of its image (the node that holds the image sends it);
 * - on the target, the restore, the wait until the copy answers as a standby, the start of its replay and
 *   a first look at its lag (which often already ends replay).
 * Each part is the node's own activity, unchanged, so retries stay idempotent part by part; a cancellation
 * that arrives while one part runs lets that part finish and starts no other, as separate activities
 * would. A failure says which part failed (the phase the workflow reports).
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { CheckpointResult, ImageRef, NodeActivities, NodeDescription, RestoreResult, TransferResult } from '../runtimes/types';
import type { BrokerActivities, Fenced, ReplayProgress } from './types';
import type { InstanceStatus } from '../service/protocol';
import { FAILURE } from '../lib/contracts';

export interface CheckpointAndSendResult {
  checkpoint: CheckpointResult;
  transfer: TransferResult;
}

export interface RestoreAndReplayResult {
  restore: RestoreResult;
  /** The copy's status once it answered as a standby. */
  standby: InstanceStatus;
  /** shadow: its status once told to replay; null if that failed (`replayError`), which the workflow's replay then retries under its guard. */
  replaying: InstanceStatus | null;
  replayError?: string;
  /** shadow: its lag right after, or null if that look failed (the workflow's replay loop looks again). */
  progress: ReplayProgress | null;
  /** shadow: how long the replay part took (its start is where the replay phase begins). */
  replayMs?: number;
}

export interface CombinedNodeActivities {
  /** The source node describes itself and probes its instance (validate), in one activity. */
  describeAndProbe(input: { service: string; instanceId: string; timeoutMs: number }): Promise<{ node: NodeDescription; status: InstanceStatus }>;
  checkpointAndSend(input: { instanceId: string; imageId: string; stream?: boolean; targetNode: string; lazy?: boolean }): Promise<CheckpointAndSendResult>;
  restoreAndReplay(input: {
    image: ImageRef;
    service: string;
    instanceId: string;
    lazy?: boolean;
    copyReadyMs: number;
    replay: { replayQueue: string; fencing: Fenced; source: string; threshold: number; windowMs: number; timeoutMs: number } | null;
  }): Promise<RestoreAndReplayResult>;
}

async function part<T>(name: string, fn: () => Promise<T>): Promise<T> {
  if (Context.current().cancellationSignal.aborted) throw new CancelledFailure(`cancelled before ${name}`, [{ part: name, started: false }]);
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CancelledFailure) throw new CancelledFailure(err.message, [{ part: name, started: true }]);
    const e = err as Error & { type?: string; nonRetryable?: boolean; details?: unknown[] };
    throw ApplicationFailure.create({
      message: e.message,
      type: err instanceof ApplicationFailure ? e.type : e.name,
      nonRetryable: err instanceof ApplicationFailure ? e.nonRetryable : false,
      details: [...(e.details ?? []), { part: name }],
    });
  }
}

/**
 * The copy's first answer, on its own control queue once it has reconnected under its new identity. A
 * copy that died meanwhile is known at once from its node rather than after the whole wait; if it was
 * restored lazily, what killed it is the lazy restore's failure.
 */
async function standbyOf(
  node: NodeActivities,
  broker: BrokerActivities,
  o: { image: ImageRef; instanceId: string; lazy?: boolean; copyReadyMs: number },
): Promise<InstanceStatus> {
  const until = Date.now() + o.copyReadyMs;
  for (;;) {
    try {
      return await broker.instanceStatus({ instanceId: o.instanceId, timeoutMs: Math.max(200, Math.min(STANDBY_LOOK_MS, until - Date.now())) });
    } catch (err) {
      const alive = (await node.listInstances()).some((i) => i.instanceId === o.instanceId && i.alive);
      if (!alive) {
        if (o.lazy) await node.awaitPages({ image: o.image, instanceId: o.instanceId });
        throw ApplicationFailure.nonRetryable(`the restored copy ${o.instanceId} died before it answered`, FAILURE.CopyLost);
      }
      if (Date.now() >= until) throw err;
    }
  }
}

/** How long one look for the copy's first answer waits before its node is asked whether it lives. */
const STANDBY_LOOK_MS = 2000;

export function createCombinedNodeActivities(node: NodeActivities, broker: BrokerActivities): CombinedNodeActivities {
  return {
    async describeAndProbe({ service, instanceId, timeoutMs }) {
      const [description, status] = await Promise.all([node.describeNode(), broker.probeService({ service, instanceId, timeoutMs })]);
      return { node: description, status };
    },

    async checkpointAndSend({ instanceId, imageId, stream, targetNode, lazy }) {
      const checkpoint = await part('checkpoint', () => node.checkpoint({ instanceId, imageId, ...(stream ? { streamTo: targetNode } : {}) }));
      const transfer = await part('transfer', () => node.transfer({ image: checkpoint.image, targetNode, ...(lazy ? { lazy } : {}) }));
      return { checkpoint, transfer };
    },

    async restoreAndReplay({ image, service, instanceId, lazy, copyReadyMs, replay }) {
      const restore = await part('restore', () => node.restore({ image, service, instanceId, ...(lazy ? { lazy } : {}) }));
      const standby = await part('restore', async () => {
        const st = await standbyOf(node, broker, { image, instanceId, lazy, copyReadyMs });
        if (st.role !== 'standby') throw ApplicationFailure.nonRetryable(`restored ${instanceId} did not come up as a standby copy`, FAILURE.CopyNotStandby);
        return st;
      });
      if (!replay) return { restore, standby, replaying: null, progress: null };
      let replaying: InstanceStatus;
      const replayFrom = performance.now();
      try {
        replaying = await part('replay', () => broker.startReplay({ copy: instanceId, replayQueue: replay.replayQueue, fencing: replay.fencing, timeoutMs: replay.timeoutMs }));
      } catch (err) {
        // A definite refusal fails the step; without an answer, whether the source or the copy died or the
        // broker is away is the workflow's to find out, and it tells the copy to replay again.
        if (err instanceof CancelledFailure || (err instanceof ApplicationFailure && err.nonRetryable)) throw err;
        Context.current().log.warn(`telling ${instanceId} to replay failed; the workflow tries again`, { error: (err as Error).message });
        return { restore, standby, replaying: null, replayError: (err as Error).message, progress: null };
      }
      const progress = await part('replay', () =>
        broker.replayUntil({ copy: instanceId, source: replay.source, threshold: replay.threshold, windowMs: replay.windowMs, timeoutMs: replay.timeoutMs }),
      ).catch((err: Error) => {
        if (err instanceof CancelledFailure) throw err;
        Context.current().log.warn(`first look at the replay lag of ${instanceId} failed; the workflow looks again`, { error: err.message });
        return null;
      });
      return { restore, standby, replaying, progress, replayMs: performance.now() - replayFrom };
    },
  };
}
