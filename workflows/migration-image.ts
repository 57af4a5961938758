/**
 * The image's way from the source to a running copy: checkpoint, transfer and restore (as three
 * activities, or as two combined steps of the nodes' agents), a lazy restore's pages, and sequential's
 * restore under the source's own name. Workflow code.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/workflow';
import { shadows } from '../lib/migration';
import { FAILURE } from '../lib/contracts';
import { failedPart } from './migration-failures';
import type { MigrationRun } from './migration-run';

export async function checkpoint(run: MigrationRun): Promise<void> {
  run.imageTaken = true;
  run.undo.addCleanup('remove the image on the source', `image ${run.imageId} on ${run.sourceAt!.node}`, () => run.source.removeImage({ imageId: run.imageId }));
  if (run.transferMode === 'stream') {
    // The target receives the pages while the source dumps them: its part of the image exists from now on.
    run.undo.addCleanup('remove the image on the target', `image ${run.imageId} on ${run.input.targetNode}`, () => run.target.removeImage({ imageId: run.imageId }));
  }
  // The dump leaves the source running: a stop-and-copy source is fenced and idles until finalize ends it.
  const ck = await run.source.checkpoint({ instanceId: run.sourceInstance, imageId: run.imageId, ...(run.transferMode === 'stream' ? { streamTo: run.input.targetNode } : {}) });
  run.sourceImage = ck.image;
  run.report.checkpointBytes = ck.bytes;
  if (ck.streamedBytes !== undefined) run.report.streamedBytes = ck.streamedBytes;
  run.report.freezeMs = Math.round(ck.freezeMs);
  run.report.tools.dumpMs = Math.round(ck.dumpMs);
}

export async function transfer(run: MigrationRun): Promise<void> {
  if (run.transferMode !== 'stream') run.undo.addCleanup('remove the image on the target', `image ${run.imageId} on ${run.input.targetNode}`, () => run.target.removeImage({ imageId: run.imageId }));
  const sent = await run.source.transfer({ image: run.sourceImage!, targetNode: run.input.targetNode, ...(run.lazy ? { lazy: run.lazy } : {}) });
  run.targetImage = sent.image;
  run.report.tools.transferMs = Math.round(sent.ms);
  if (run.lazy) run.report.lazy = { bytesLeft: sent.lazyBytes ?? 0, ms: 0, pages: 0 };
}

/**
 * checkpoint and transfer as one activity of the source's agent. Its phases are split by the time the
 * transfer reports; a failure is reported in the phase of the part that failed.
 */
export async function checkpointAndTransfer(run: MigrationRun): Promise<void> {
  run.imageTaken = true;
  run.undo.addCleanup('remove the image on the source', `image ${run.imageId} on ${run.sourceAt!.node}`, () => run.source.removeImage({ imageId: run.imageId }));
  // The target holds part of the image once its page stream opened, or once the transfer began.
  const targetHolds = () => run.undo.addCleanup('remove the image on the target', `image ${run.imageId} on ${run.input.targetNode}`, () => run.target.removeImage({ imageId: run.imageId }));
  if (run.transferMode === 'stream') targetHolds();
  let r: Awaited<ReturnType<typeof run.source.checkpointAndSend>>;
  try {
    r = await run.source.checkpointAndSend({ instanceId: run.sourceInstance, imageId: run.imageId, targetNode: run.input.targetNode, ...(run.transferMode === 'stream' ? { stream: true } : {}), ...(run.lazy ? { lazy: run.lazy } : {}) });
  } catch (err) {
    const failed = failedPart(err);
    if (failed?.part === 'transfer' && !failed.started) throw new CancelledFailure('migration cancelled before transfer');
    if (failed?.part !== 'checkpoint' && run.transferMode !== 'stream') targetHolds();
    if (failed?.part === 'transfer') run.view.enter('transfer');
    throw err;
  }
  if (run.transferMode !== 'stream') targetHolds();
  const ck = r.checkpoint;
  run.sourceImage = ck.image;
  run.report.checkpointBytes = ck.bytes;
  if (ck.streamedBytes !== undefined) run.report.streamedBytes = ck.streamedBytes;
  run.report.freezeMs = Math.round(ck.freezeMs);
  run.report.tools.dumpMs = Math.round(ck.dumpMs);
  run.targetImage = r.transfer.image;
  run.report.tools.transferMs = Math.round(r.transfer.ms);
  if (run.lazy) run.report.lazy = { bytesLeft: r.transfer.lazyBytes ?? 0, ms: 0, pages: 0 };
}

/**
 * restore and the start of replay as one activity of the target's agent: the copy restored, answering as
 * a standby, told to replay (shadow), and a first look at its lag, which the replay loop starts from.
 */
export async function restoreAndStartReplay(run: MigrationRun): Promise<void> {
  run.copyMayExist = true;
  run.undo.add('stop the copy', () => run.target.stopInstance({ instanceId: run.copyId }));
  const replayAsked = shadows(run.input.strategy) ? { replayQueue: run.replayQueue, fencing: run.fencing, source: run.sourceInstance, threshold: run.input.replay.threshold, windowMs: 0, timeoutMs: run.t.controlReplyMs } : null;
  // A replay that could not start for want of an answer comes back as replaying: null; replay's own guard
  // then finds out why. A definite refusal fails the step, in the replay phase.
  let r: Awaited<ReturnType<typeof run.target.restoreAndReplay>>;
  try {
    r = await run.target.restoreAndReplay({ image: run.targetImage!, service: run.input.service, instanceId: run.copyId, copyReadyMs: run.t.copyReadyMs, replay: replayAsked, ...(run.lazy ? { lazy: run.lazy } : {}) });
  } catch (err) {
    const failed = failedPart(err);
    if (failed?.part === 'replay' && !failed.started) throw new CancelledFailure('migration cancelled before replay');
    if (failed?.part === 'replay') run.view.enter('replay');
    throw err;
  }
  run.report.tools.restoreMs = Math.round(r.restore.restoreMs);
  run.copyAtRestore = r.standby;
  if (run.lazy) followPages(run);
  if (run.lazy && !shadows(run.input.strategy)) await pagesArrived(run);
  run.startedReplay = r.replaying;
  run.firstProgress = r.progress;
  run.replayBeganMs = r.replayMs ?? 0;
}

/** The image's way from the source to a running copy: three phases, as two combined steps or three activities. */
export async function checkpointTransferRestore(run: MigrationRun): Promise<void> {
  if (run.combined && run.input.strategy !== 'sequential') {
    await run.phase('checkpoint', () => checkpointAndTransfer(run));
    run.view.splitLast('transfer', run.report.tools.transferMs);
    await run.phase('restore', () => restoreAndStartReplay(run));
    // The replay phase began inside the step: it goes on in the workflow's replay loop.
    if (run.startedReplay) run.view.splitLast('replay', run.replayBeganMs);
  } else {
    await run.phase('checkpoint', () => checkpoint(run));
    await run.phase('transfer', () => transfer(run));
    await run.phase('restore', () => restore(run));
  }
}

/** Follows a lazy restore's pages in the background; `pagesArrived` is where the migration waits for them. */
export function followPages(run: MigrationRun): void {
  run.pagesIn = run.target.awaitPages({ image: run.targetImage!, instanceId: run.copyId }).then(
    (r) => {
      run.report.lazy = { ...run.report.lazy!, ms: r.ms, pages: r.pages };
    },
    (err: unknown) => {
      run.pagesFailure = err;
    },
  );
}

/** The copy's memory is all its own: a lazy restore has every page in (the copy is never compared or activated before). */
export async function pagesArrived(run: MigrationRun): Promise<void> {
  if (run.pagesIn) await run.pagesIn;
  if (run.pagesFailure) throw run.pagesFailure;
}

export async function restore(run: MigrationRun): Promise<void> {
  run.copyMayExist = true;
  if (run.input.strategy === 'sequential') return restoreUnderOwnName(run);
  run.undo.add('stop the copy', () => run.target.stopInstance({ instanceId: run.copyId }));
  run.report.tools.restoreMs = Math.round((await run.target.restore({ image: run.targetImage!, service: run.input.service, instanceId: run.copyId, ...(run.lazy ? { lazy: run.lazy } : {}) })).restoreMs);
  if (run.lazy) followPages(run);
  // Without a replay there is nothing to overlap the pages with: the copy waits for them here.
  if (run.lazy && !shadows(run.input.strategy)) await pagesArrived(run);
  // The copy answers on its own control queue once it has reconnected under its new identity.
  const st = await run.brokerLocal.instanceStatus({ instanceId: run.copyId, timeoutMs: run.t.copyReadyMs });
  if (st.role !== 'standby') throw ApplicationFailure.nonRetryable(`restored ${run.copyId} did not come up as a standby copy`, FAILURE.CopyNotStandby);
  run.copyAtRestore = st;
}

/**
 * sequential: the name must be free on the target, so the controller is held and the fenced source
 * stops; its image then resumes there as the same instance, still fenced. Undone in reverse: the
 * instance is restored where it was from the same image, and the controller gets it back.
 */
export async function restoreUnderOwnName(run: MigrationRun): Promise<void> {
  run.undo.add('give the controller its instance back', () => run.cluster.commitPlacement(run.placement!));
  await run.cluster.holdController({ service: run.input.service });
  run.undo.add('restore the source where it was', async () => {
    if ((await run.alive(run.sourceAt!, run.sourceInstance)) === false) {
      await run.source.restore({ image: run.sourceImage!, service: run.input.service, instanceId: run.sourceInstance });
      await run.brokerLocal.instanceStatus({ instanceId: run.sourceInstance, timeoutMs: run.t.copyReadyMs });
    }
    run.sourceAliveAtRollback = true;
  });
  await run.source.stopInstance({ instanceId: run.sourceInstance });
  run.undo.add('stop the moved instance', () => run.target.stopInstance({ instanceId: run.copyId }));
  run.report.tools.restoreMs = Math.round((await run.target.restore({ image: run.targetImage!, service: run.input.service, instanceId: run.copyId })).restoreMs);
  const st = await run.brokerLocal.instanceStatus({ instanceId: run.copyId, timeoutMs: run.t.copyReadyMs });
  if (st.role !== 'primary' || !st.fenced) {
    throw ApplicationFailure.nonRetryable(`restored ${run.copyId} did not come back as the fenced primary it was checkpointed as (role ${st.role}, fenced ${st.fenced})`, FAILURE.CopyNotStandby);
  }
  run.copyAtRestore = st;
}
