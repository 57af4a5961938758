/**
 * Rolling back before the swap, and the one case that must not roll back: a source that died while its
 * copy replays its apply log (found by the model, model/README.md, F1 and F2). Workflow code.
 */
import { CancellationScope, isCancellation, log, patched, sleep } from '@temporalio/workflow';
import { shadows, type Stage } from '../lib/migration';
import { SourceLost, errorText } from './migration-failures';
import { adoptSourceStream } from './migration-handoff';
import { finalize } from './migration-finalize';
import type { MigrationRun } from './migration-run';

export async function rollback(run: MigrationRun): Promise<void> {
  // Each step runs even if an earlier one failed: a dead target node must not keep the source fenced.
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      log.warn(`rollback: ${what} failed`, { error: errorText(e).message });
    }
  };
  if (run.report.sourceLost) {
    // The copy is all that is left of the service: it keeps adopting, and an operator decides.
    log.error(`adoption by ${run.copyId} failed; it is left running with ${run.replayQueue} for an operator`);
    await attempt('release the lock', () => run.lock.releaseLock({ service: run.input.service, workflowId: run.info.workflowId, runId: run.info.runId }));
    return;
  }
  // The source was never ended by the migration; if it is gone all the same, its images are all that is left of its state.
  run.sourceAliveAtRollback = run.sourceAt ? await run.alive(run.sourceAt, run.sourceInstance) : null;
  await run.undo.run(attempt, { keepResources: () => run.sourceAliveAtRollback === false });
  if (run.sourceAliveAtRollback === false) run.report.stateKeptIn = run.undo.kept;
  if (run.locked) await attempt('release the lock', () => run.lock.releaseLock({ service: run.input.service, workflowId: run.info.workflowId, runId: run.info.runId }));
}

/**
 * A failure that said something definite (a catch-up timeout, a cancellation) can hide a source that died
 * meanwhile: once its copy replays its apply log, what the source acknowledged since the checkpoint is only
 * there, and rolling back would stop the copy and delete that log (F1). So the source is unfenced first,
 * while the copy and the log still exist: its own answer proves it lives and serves again (F2: a look at
 * it, then the copy stopped, left a window in which it could die). If it does not answer and is gone, the
 * copy adopts the stream and the migration is finalized; `err` is then what the rollback is for, if any.
 */
export async function unfenceFirstOrAdopt(run: MigrationRun, err: unknown, at: Stage): Promise<{ adopted: true } | { adopted: false; err: unknown }> {
  const copyHoldsTheLog = !run.report.sourceLost && run.copyMayExist && run.replayQueue !== '' && shadows(run.input.strategy) && run.hop === 1;
  if (!copyHoldsTheLog || !patched('adopt-if-source-dead-at-rollback')) return { adopted: false, err };
  // Asked again while the source lives and does not answer (its reply lost, the broker busy): the copy
  // and its log stay until it does, or until it is gone. An agent that cannot tell ends the wait.
  const since = Date.now();
  let src: boolean | null = true;
  let copy: boolean | null = null;
  for (;;) {
    const unfenced = await CancellationScope.nonCancellable(() => run.brokerLocal.unfence({ source: run.sourceInstance, fencing: run.fencing })).then(
      (st) => {
        run.sourceAtEnd = st;
        return (run.unfencedFirst = true);
      },
      () => false,
    );
    if (unfenced) break;
    [src, copy] = await CancellationScope.nonCancellable(() => Promise.all([run.alive(run.sourceAt!, run.sourceInstance), run.alive(run.targetAt!, run.copyId)]));
    if (src !== true || Date.now() - since > run.t.unreachableMs) break;
    await CancellationScope.nonCancellable(() => sleep(1000));
  }
  if (src !== false || copy !== true) return { adopted: false, err };
  log.warn(`${run.view.stage} failed (${errorText(err).message}) and the source ${run.sourceInstance} is gone: ${run.copyId} adopts its stream instead of a rollback`);
  let adopted = false;
  try {
    await CancellationScope.nonCancellable(async () => {
      await adoptSourceStream(run, new SourceLost(at));
      adopted = true;
      await finalize(run);
    });
  } catch (adoptErr) {
    if (adopted) throw adoptErr; // finalize's own failures are an operator's, as after any swap
    return { adopted: false, err: adoptErr }; // the copy could not adopt: left for an operator, as any failed adoption
  }
  if (isCancellation(err)) run.report.cancelIgnored = true;
  return { adopted: true };
}
