/**
 * migrateService: moves a running service instance from its node to another with CRIU, keeping every
 * message exactly once. Phases: validate → prepare → checkpoint → transfer → restore → replay → fence →
 * finalize. Anything that fails before the swap rolls back (the source keeps or resumes serving; the copy,
 * the replay queue and the images are removed); after the swap the workflow only rolls forward.
 */
import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import {
  MigrateInputSchema,
  describeInputError,
  type MigrateInput,
  type MigrationProgress,
  type MigrationReport,
  type Phase,
  type PhaseTiming,
  type Stage,
} from '../lib/migration';
import { SA_PHASE, SA_SERVICE, SA_SOURCE_NODE, SA_STRATEGY, SA_TARGET_NODE } from '../lib/search-attributes';
import type { Placement } from '../activities/types';
import { replayQueueName } from '../service/names';
import type { InstanceStatus } from '../service/protocol';
import { broker, brokerLocal, cluster, onNode } from './activity-proxies';

export const progressQuery = defineQuery<MigrationProgress>('progress');

/** Names derived from the workflow id (and run), so every retried activity addresses the same things. */
function migrationIdOf(workflowId: string, runId: string): string {
  const slug = workflowId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'migration';
  return `${slug}-${runId.slice(0, 8)}`;
}

function errorText(err: unknown): { type: string; message: string } {
  let e = err as { cause?: unknown; type?: string; message?: string; name?: string };
  // Activity failures wrap the real cause; its type and message are what an operator needs.
  while (e?.cause && (e as { name?: string }).name === 'ActivityFailure') e = e.cause as typeof e;
  return { type: e?.type ?? e?.name ?? 'Error', message: e?.message ?? String(err) };
}

export async function migrateService(rawInput: MigrateInput): Promise<MigrationReport> {
  const parsed = MigrateInputSchema.safeParse(rawInput);
  if (!parsed.success) throw ApplicationFailure.nonRetryable(describeInputError('migrateService', parsed.error), 'InvalidInput');
  const input = parsed.data;
  const info = workflowInfo();
  const migrationId = migrationIdOf(info.workflowId, info.runId);
  const startedAt = Date.now();
  const phases: PhaseTiming[] = [];
  let stage: Stage = 'validate';
  let lag: number | null = null;
  let sourceNode: string | null = null;

  const report: MigrationReport = {
    migrationId,
    workflowId: info.workflowId,
    service: input.service,
    strategy: input.strategy,
    sourceNode: '',
    targetNode: input.targetNode,
    sourceInstance: '',
    targetInstance: '',
    outcome: 'completed',
    startedAt,
    endedAt: startedAt,
    totalMs: 0,
    phases,
    downtimeMs: 0,
    freezeMs: 0,
    checkpointBytes: 0,
    tools: { dumpMs: 0, transferMs: 0, restoreMs: 0 },
    replay: { replayed: 0, finalLag: 0, thresholdReached: false, cutoffFired: false, stalled: false },
    stateMatch: false,
    sourceDigest: '',
    targetDigest: '',
    marks: {},
  };

  setHandler(progressQuery, () => ({
    stage,
    service: input.service,
    strategy: input.strategy,
    sourceNode,
    targetNode: input.targetNode,
    lag,
    phases,
    startedAt,
    elapsedMs: Date.now() - startedAt,
  }));

  const show = (): void => {
    upsertSearchAttributes([{ key: SA_PHASE, value: stage }]);
    const done = phases.map((p) => `${p.phase} ${p.ms} ms`).join(', ');
    setCurrentDetails(
      `**${input.service}** ${sourceNode ?? '?'} → ${input.targetNode} (${input.strategy})\n\n` +
        `phase: **${stage}**${lag !== null ? ` · replay lag ${lag}` : ''}\n\n${done ? `done: ${done}` : ''}`,
    );
  };

  async function phase<T>(name: Phase, fn: () => Promise<T>): Promise<T> {
    stage = name;
    show();
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      phases.push({ phase: name, startedAt: t0, ms: Date.now() - t0 });
    }
  }

  upsertSearchAttributes([
    { key: SA_SERVICE, value: input.service },
    { key: SA_TARGET_NODE, value: input.targetNode },
    { key: SA_STRATEGY, value: input.strategy },
  ]);

  // What exists and must be undone if the migration fails before the swap.
  const undo = { lock: false, replayQueue: '', sourceFenced: false, copy: false, sourceImage: false, targetImage: false };
  let swapped = false;
  const fencing = { migrationId, epoch: 0 };
  const copyId = `${input.service}-${uuid4().slice(0, 8)}`;
  const imageId = migrationId;
  report.targetInstance = copyId;

  let sourceInstance = '';
  let targetUrl = '';
  let placement: Placement | null = null;
  try {
    // ---- validate: change nothing until the request is known to make sense.
    placement = await phase('validate', async () => {
      const [p, targetExists] = await Promise.all([cluster.locateService({ service: input.service }), cluster.nodeExists({ node: input.targetNode })]);
      if (p.node === input.targetNode) {
        throw ApplicationFailure.nonRetryable(`targetNode: ${input.service} already runs on ${p.node}; choose another node`, 'InvalidInput');
      }
      if (!targetExists) {
        throw ApplicationFailure.nonRetryable(`targetNode: there is no node "${input.targetNode}"; start its agent (ms2m agent --node ${input.targetNode})`, 'InvalidInput');
      }
      sourceNode = p.node;
      report.sourceNode = p.node;
      report.sourceInstance = p.instanceId;
      sourceInstance = p.instanceId;
      upsertSearchAttributes([{ key: SA_SOURCE_NODE, value: p.node }]);
      await cluster.acquireLock({ service: input.service, workflowId: info.workflowId, runId: info.runId });
      undo.lock = true;
      // Both agents must answer on their queues (a dead node times out on schedule-to-start).
      const [, targetNode, status] = await Promise.all([
        onNode(p.node).describeNode(),
        onNode(input.targetNode).describeNode(),
        brokerLocal.instanceStatus({ instanceId: p.instanceId }),
      ]);
      targetUrl = targetNode.imageUrl;
      if (status.role !== 'primary' || status.fenced) {
        throw ApplicationFailure.nonRetryable(`instance ${p.instanceId} is not serving (role ${status.role}, fenced ${status.fenced})`, 'SourceNotServing');
      }
      fencing.epoch = status.epoch + 1;
      return p;
    });
    const source = onNode(placement.node);
    const { spec } = placement;
    const target = onNode(input.targetNode);

    // ---- prepare: shadow binds the replay queue and cuts; stop-and-copy stops the source consuming.
    let fenced: InstanceStatus | undefined;
    await phase('prepare', async () => {
      if (input.strategy === 'shadow') {
        undo.replayQueue = replayQueueName(input.service, migrationId);
        await brokerLocal.prepareReplay({ primaryQueue: spec.primaryQueue, replayQueue: undo.replayQueue, fencing });
      } else {
        undo.sourceFenced = true;
        fenced = await brokerLocal.fenceSource({ source: sourceInstance, fencing });
      }
    });

    await phase('checkpoint', async () => {
      undo.sourceImage = true;
      // stop-and-copy is the cold baseline: the dump ends the (already fenced) source process.
      const ck = await source.checkpoint({ instanceId: sourceInstance, imageId, leaveRunning: input.strategy === 'shadow' });
      report.checkpointBytes = ck.bytes;
      report.freezeMs = Math.round(ck.freezeMs);
      report.tools.dumpMs = Math.round(ck.dumpMs);
    });

    await phase('transfer', async () => {
      undo.targetImage = true;
      report.tools.transferMs = Math.round((await source.sendImage({ imageId, targetNode: input.targetNode, targetUrl })).ms);
    });

    await phase('restore', async () => {
      undo.copy = true;
      report.tools.restoreMs = Math.round((await target.restore({ imageId, service: input.service, instanceId: copyId })).restoreMs);
      // The copy answers on its own control queue once it has reconnected under its new identity.
      const st = await brokerLocal.instanceStatus({ instanceId: copyId, timeoutMs: 30_000 });
      if (st.role !== 'standby') throw ApplicationFailure.nonRetryable(`restored ${copyId} did not come up as a standby copy`, 'CopyNotStandby');
    });

    let copyAppliedAtStart = 0;
    if (input.strategy === 'shadow') {
      await phase('replay', async () => {
        const st = await brokerLocal.startReplay({ copy: copyId, source: sourceInstance, replayQueue: undo.replayQueue, fencing });
        copyAppliedAtStart = st.applied;
        const t0 = Date.now();
        let bestLag = Infinity;
        let improvedAt = t0;
        for (;;) {
          const remaining = input.replay.cutoffMs - (Date.now() - t0);
          const p = await broker.replayUntil({
            copy: copyId,
            source: sourceInstance,
            fencing,
            threshold: input.replay.threshold,
            windowMs: Math.max(0, Math.min(1000, remaining)),
          });
          lag = p.lag;
          report.replay.finalLag = p.lag;
          report.replay.replayed = p.replayed - copyAppliedAtStart;
          show();
          if (p.lag <= input.replay.threshold) {
            report.replay.thresholdReached = true;
            break;
          }
          if (p.lag < bestLag) {
            bestLag = p.lag;
            improvedAt = Date.now();
          }
          if (Date.now() - t0 >= input.replay.cutoffMs) {
            // Fencing now is safe: the copy then catches up on a finite backlog; it costs downtime, never messages.
            report.replay.cutoffFired = true;
            break;
          }
          if (input.replay.stallMs > 0 && Date.now() - improvedAt >= input.replay.stallMs) {
            report.replay.stalled = true;
            break;
          }
        }
      });
    }

    await phase('fence', async () => {
      undo.sourceFenced = true;
      const swap = await broker.fenceAndSwap({ source: sourceInstance, copy: copyId, fencing, fenced });
      report.sourceDigest = swap.source.digest;
      report.targetDigest = swap.copy.digest;
      report.marks = swap.source.marks;
      report.stateMatch = swap.source.digest === swap.copy.digest;
      if (input.strategy === 'shadow') report.replay.replayed = swap.copy.applied - copyAppliedAtStart;
      if (!swap.swapped) {
        throw ApplicationFailure.nonRetryable(`state digest of ${copyId} differs from ${sourceInstance} at the fence`, 'StateMismatch');
      }
      swapped = true;
      report.downtimeMs = Math.max(0, (swap.activatedAt ?? 0) - (swap.source.fencedAt ?? 0));
    });

    await phase('finalize', () =>
      CancellationScope.nonCancellable(async () => {
        await cluster.commitPlacement({ ...placement!, node: input.targetNode, instanceId: copyId, updatedAt: Date.now() });
        await Promise.all([
          source.stopInstance({ instanceId: sourceInstance }),
          undo.replayQueue ? brokerLocal.deleteQueue({ queue: undo.replayQueue }) : undefined,
          source.removeImage({ imageId }),
          target.removeImage({ imageId }),
        ]);
        await cluster.releaseLock({ service: input.service, workflowId: info.workflowId, runId: info.runId });
      }),
    );
    stage = 'done';
    report.endedAt = Date.now();
    report.totalMs = report.endedAt - startedAt;
    show();
    return report;
  } catch (err) {
    if (swapped) throw err; // past the swap only rolling forward makes sense; finalize's activities retry
    const failedIn = stage;
    const why = errorText(err);
    report.outcome = 'rolled-back';
    report.failure = { phase: failedIn, ...why };
    stage = 'rollback';
    show();
    await CancellationScope.nonCancellable(() => rollback());
    stage = 'rolled-back';
    report.endedAt = Date.now();
    report.totalMs = report.endedAt - startedAt;
    show();
    if (isCancellation(err)) throw err;
    // A request refused during validation changed nothing: report the refusal itself.
    if (failedIn === 'validate') throw ApplicationFailure.nonRetryable(why.message, why.type, report);
    throw ApplicationFailure.nonRetryable(`migration of ${input.service} rolled back after ${failedIn} failed: ${why.message}`, 'MigrationRolledBack', report);
  }

  async function rollback(): Promise<void> {
    // Each step runs even if an earlier one failed: a dead target node must not keep the source fenced.
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (e) {
        log.warn(`rollback: ${what} failed`, { error: errorText(e).message });
      }
    };
    if (undo.copy) await attempt('stop the copy', () => onNode(input.targetNode).stopInstance({ instanceId: copyId }));
    let sourceGone = false;
    if (undo.sourceImage && sourceNode && placement && input.strategy === 'stop-and-copy') {
      // A cold checkpoint ended the source: bring it back on its node from its own image. It gets a new
      // identity (the broker may still hold the dead process's connection on the old control queue) and
      // takes over like a migrated copy does; its state is exactly the fenced source's.
      const home = onNode(sourceNode);
      await attempt('revive the source', async () => {
        const alive = (await home.listInstances()).some((i) => i.instanceId === sourceInstance && i.alive);
        if (alive) return; // the dump never ended it; unfencing is enough
        sourceGone = true;
        const revived = `${input.service}-${uuid4().slice(0, 8)}`;
        await home.restore({ imageId, service: input.service, instanceId: revived });
        await brokerLocal.activate({ copy: revived, fencing });
        await cluster.commitPlacement({ ...placement!, instanceId: revived, updatedAt: Date.now() });
        report.revivedInstance = revived;
      });
    }
    if (undo.sourceFenced && !sourceGone) await attempt('unfence the source', () => brokerLocal.unfence({ source: sourceInstance, fencing }));
    if (undo.replayQueue) await attempt('delete the replay queue', () => brokerLocal.deleteQueue({ queue: undo.replayQueue }));
    if (undo.targetImage) await attempt('remove the image on the target', () => onNode(input.targetNode).removeImage({ imageId }));
    if (undo.sourceImage && sourceNode) await attempt('remove the image on the source', () => onNode(sourceNode!).removeImage({ imageId }));
    if (undo.lock) await attempt('release the lock', () => cluster.releaseLock({ service: input.service, workflowId: info.workflowId, runId: info.runId }));
  }
}
