/**
 * The exactly-once handoff: prepare (the source's apply log, or stop-and-copy's fence), replay until the
 * stop rule says fence, the fence and swap, and adoption of the stream when the source is lost.
 * Workflow code.
 */
import { ApplicationFailure, CancellationScope, log } from '@temporalio/workflow';
import { shadows, type LagSample } from '../lib/migration';
import { FAILURE } from '../lib/contracts';
import { observeReplay } from '../lib/replay-stop';
import { replayQueueName } from '../service/names';
import type { InstanceStatus } from '../service/protocol';
import { migrationMetrics } from './metrics-sinks';
import { SourceLost } from './migration-failures';
import { pagesArrived } from './migration-image';
import type { MigrationRun } from './migration-run';

/** The source is gone after its copy exists: the copy replays the sealed replay queue to its end and serves. */
export async function adoptSourceStream(run: MigrationRun, lost: SourceLost): Promise<void> {
  run.report.sourceLost = { detectedIn: lost.detectedIn, at: Date.now() };
  log.warn(`source ${run.sourceInstance} is gone (${lost.detectedIn}); ${run.copyId} adopts its stream`);
  await run.phase('fence', () =>
    CancellationScope.nonCancellable(async () => {
      await pagesArrived(run);
      await run.brokerLocal.sealReplay({ replayQueue: run.replayQueue, fencing: run.fencing });
      const st = await run.handoff.adopt({ copy: run.copyId, replayQueue: run.replayQueue, fencing: run.fencing, timeoutMs: run.t.controlReplyMs, catchUpMs: run.t.catchUpMs });
      run.swapped = true;
      run.copyAtSwap = st;
      run.report.accounting.handoff = 'adopted';
      run.report.targetDigest = st.activatedDigest ?? '';
      run.report.marks = st.marks;
      // Nobody to compare with; the downtime runs from the last time the source was seen serving.
      run.report.downtimeMs = Math.max(0, (st.activatedAt ?? 0) - run.lastSourceSeenAt);
    }),
  );
}

/** Shadow has the source write its apply log; stop-and-copy stops the source consuming. */
export async function prepare(run: MigrationRun): Promise<void> {
  if (shadows(run.input.strategy)) {
    run.replayQueue = replayQueueName(run.input.service, run.imageId);
    run.undo.add('delete the replay queue', () => run.brokerLocal.deleteQueue({ queue: run.replayQueue }));
  }
  // Unfencing also ends the shadowing; a source that died meanwhile has nobody to unfence.
  run.undo.add('unfence the source', async () => {
    if (run.sourceAliveAtRollback !== false && !run.unfencedFirst) run.sourceAtEnd = await run.brokerLocal.unfence({ source: run.sourceInstance, fencing: run.fencing });
  });
  if (shadows(run.input.strategy)) await run.brokerLocal.prepareReplay({ source: run.sourceInstance, replayQueue: run.replayQueue, fencing: run.fencing, timeoutMs: run.t.controlReplyMs });
  else run.fenced = await run.brokerLocal.fenceSource({ source: run.sourceInstance, fencing: run.fencing });
}

/** The copy replays the apply log beside its source until the stop rule says fence. */
export async function replay(run: MigrationRun): Promise<void> {
  const st = run.startedReplay ?? (await run.guarded(() => run.handoff.startReplay({ copy: run.copyId, replayQueue: run.replayQueue, fencing: run.fencing, timeoutMs: run.t.controlReplyMs })));
  run.copyAppliedAtStart = st.applied;
  const t0 = Date.now();
  let samples: LagSample[] = [];
  let ahead = run.firstProgress;
  // Used once: a second handoff (shadow-swap) starts its own replay.
  run.startedReplay = run.firstProgress = null;
  for (;;) {
    const remaining = run.input.replay.cutoffMs - (Date.now() - t0);
    const p =
      ahead ??
      (await run.guarded(() =>
        run.handoff.replayUntil({
          copy: run.copyId,
          source: run.sourceInstance,
          threshold: run.input.replay.threshold,
          windowMs: Math.max(0, Math.min(1000, remaining)),
          timeoutMs: run.t.controlReplyMs,
        }),
      ));
    if (ahead) run.lastSourceSeenAt = Date.now();
    ahead = null;
    run.view.lag = p.lag;
    migrationMetrics.replayLag(run.input.service, run.migrationId, p.lag);
    run.report.replay.finalLag = p.lag;
    run.report.replay.replayed = p.replayed - run.copyAppliedAtStart;
    const seen = observeReplay(samples, { at: p.at, lag: p.lag, applied: p.replayed }, Date.now() - t0, run.input.replay);
    samples = seen.samples;
    const { trend, endedBy } = seen;
    run.view.estimate = trend;
    run.report.replay.lagSlopePerSec = trend.slopePerSec;
    run.report.replay.applyRatePerSec = trend.applyRatePerSec;
    run.view.show();
    // A lazy restore that failed has killed the copy: nothing to wait for.
    if (run.pagesFailure) throw run.pagesFailure;
    if (endedBy === 'none') continue;
    run.report.replay.endedBy = endedBy;
    run.report.replay.thresholdReached = endedBy === 'threshold';
    run.report.replay.cutoffFired = endedBy === 'cutoff';
    run.report.replay.stalled = endedBy === 'not-converging';
    const rate = trend.applyRatePerSec;
    run.report.replay.estimatedCatchUpMs = rate && rate > 0 ? Math.round((p.lag / rate) * 1000) : null;
    break;
  }
  // Lazy: the copy went on replaying while its memory arrived; it is fenced only once all of it has.
  await pagesArrived(run);
}

/** Once the source is fenced the handoff completes or is refused as a whole; a cancellation waits for it. */
export async function fence(run: MigrationRun): Promise<void> {
  if (run.input.strategy === 'sequential') return resumeMoved(run);
  await pagesArrived(run);
  const swap = await run.guarded(() =>
    run.handoff.fenceAndSwap({ source: run.sourceInstance, copy: run.copyId, fencing: run.fencing, fenced: run.fenced, timeoutMs: run.t.controlReplyMs, catchUpMs: run.t.catchUpMs }),
  );
  run.report.sourceDigest = swap.source.digest;
  run.report.targetDigest = swap.copy.digest;
  run.report.marks = swap.source.marks;
  run.report.stateMatch = swap.source.digest === swap.copy.digest;
  run.sourceAtEnd = swap.source;
  run.copyAtSwap = swap.copy;
  if (shadows(run.input.strategy)) run.report.replay.replayed = swap.copy.applied - run.copyAppliedAtStart;
  if (!swap.swapped) {
    run.report.accounting.handoff = 'refused';
    throw ApplicationFailure.nonRetryable(`the copy may not take over: ${swap.refusal ?? 'its state differs from the source\'s'}`, FAILURE.StateMismatch);
  }
  run.swapped = true;
  run.report.accounting.handoff = 'exact';
  run.report.downtimeMs = Math.max(0, (swap.activatedAt ?? 0) - (swap.source.fencedAt ?? 0));
}

/** sequential: the moved instance holds exactly the fenced source's state, and resumes consuming. */
export async function resumeMoved(run: MigrationRun): Promise<void> {
  const was = run.fenced!;
  const now = run.copyAtRestore!;
  run.report.sourceDigest = was.digest;
  run.report.targetDigest = now.digest;
  run.report.marks = was.marks;
  run.report.stateMatch = was.digest === now.digest && was.applied === now.applied;
  if (!run.report.stateMatch) {
    run.report.accounting.handoff = 'refused';
    throw ApplicationFailure.nonRetryable(`the restored ${run.copyId} stands at position ${now.applied}, not at the fenced ${was.applied}, or its digest differs`, FAILURE.StateMismatch);
  }
  run.sourceAtEnd = was;
  run.copyAtSwap = await run.brokerLocal.unfence({ source: run.copyId, fencing: run.fencing });
  run.swapped = true;
  run.report.accounting.handoff = 'moved';
  run.report.downtimeMs = Math.max(0, Date.now() - (was.fencedAt ?? Date.now()));
}

/**
 * Whether the copy took over though the fence's reply never came: it serves as this migration's primary
 * only if the fence compared it and found it exact. The report then says so, from the copy's own
 * record of the takeover and the fenced source's status.
 */
export async function copyTookOver(run: MigrationRun): Promise<boolean> {
  let st: InstanceStatus;
  try {
    st = await run.brokerLocal.instanceStatus({ instanceId: run.copyId, timeoutMs: run.t.controlReplyMs });
  } catch {
    return false;
  }
  if (st.role !== 'primary' || st.migrationId !== run.migrationId) return false;
  run.copyAtSwap = st;
  run.report.accounting.handoff = 'exact';
  run.report.targetDigest = st.activatedDigest ?? '';
  run.report.marks = st.marks;
  const src = await run.brokerLocal.instanceStatus({ instanceId: run.sourceInstance, timeoutMs: run.t.controlReplyMs }).catch(() => null);
  if (src) {
    run.sourceAtEnd = src;
    run.report.sourceDigest = src.digest;
    run.report.stateMatch = src.digest === st.activatedDigest;
    run.report.downtimeMs = Math.max(0, (st.activatedAt ?? 0) - (src.fencedAt ?? 0));
  }
  return true;
}
