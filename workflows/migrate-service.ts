/**
 * migrateService: moves a running service instance from its node to another with CRIU, keeping every
 * message exactly once and the copy's apply sequence equal to the source's. Phases: validate → prepare →
 * checkpoint → transfer → restore → replay → fence → finalize. Anything that fails before the swap rolls
 * back (the source keeps or resumes serving; the copy, the replay queue and the images are removed); after
 * the swap the workflow only rolls forward. A source that dies once its copy exists is not rolled back to
 * (there is nothing to roll back to): the copy adopts its stream instead. Whatever the outcome, the
 * workflow ends by checking that exactly one instance serves the service's primary queue, and fails
 * loudly (ServiceNotServing) if none or more than one does.
 */
import { ApplicationFailure, CancellationScope, CancelledFailure, isCancellation } from '@temporalio/workflow';
import { shadows, type MigrateInput, type MigrationReport } from '../lib/migration';
import { FAILURE, progressQuery, reportQuery } from '../lib/contracts';
import { Compensations } from './compensations';
import { SourceLost, errorText } from './migration-failures';
import { migrationMetrics } from './metrics-sinks';
import { MigrationRun } from './migration-run';
import { validate } from './migration-validate';
import { checkpointTransferRestore } from './migration-image';
import { adoptSourceStream, copyTookOver, fence, prepare, replay } from './migration-handoff';
import { checkServing, finalize } from './migration-finalize';
import { rollback, unfenceFirstOrAdopt } from './migration-rollback';

export { progressQuery, reportQuery };

/** The migration, counted in the orchestrator's metrics as it starts and ends (./metrics-sinks). */
export async function migrateService(rawInput: MigrateInput): Promise<MigrationReport> {
  let strategy = 'invalid';
  try {
    const report = await migrate(rawInput, (s) => {
      strategy = s;
      migrationMetrics.started(s);
    });
    migrationMetrics.ended(strategy, report);
    return report;
  } catch (err) {
    const details = err instanceof ApplicationFailure ? err.details?.[0] : undefined;
    const report = details && typeof details === 'object' && 'migrationId' in details ? (details as MigrationReport) : null;
    migrationMetrics.ended(strategy, report, err instanceof ApplicationFailure ? (err.type ?? 'Error') : err instanceof CancelledFailure ? 'CancelledFailure' : 'Error');
    throw err;
  }
}

async function migrate(rawInput: MigrateInput, started: (strategy: string) => void): Promise<MigrationReport> {
  const run = new MigrationRun(rawInput, started);
  const { input, report, view } = run;
  try {
    await run.phase('validate', () => validate(run));
    await run.phase('prepare', () => prepare(run));
    await checkpointTransferRestore(run);
    try {
      if (shadows(input.strategy)) await view.continuePhase('replay', () => replay(run));
      await run.phase('fence', () => CancellationScope.nonCancellable(() => fence(run)));
    } catch (err) {
      if (!(err instanceof SourceLost)) throw err;
      await adoptSourceStream(run, err);
    }
    if (input.strategy === 'shadow-swap') await CancellationScope.nonCancellable(() => swapIdentity(run));

    await finalize(run);
    return report;
  } catch (caught) {
    const at = view.stage;
    // A fence that failed without an answer may still have swapped: the copy knows.
    if (!run.swapped && at === 'fence' && run.copyMayExist && !report.sourceLost && input.strategy !== 'sequential') run.swapped = await CancellationScope.nonCancellable(() => copyTookOver(run));
    if (run.swapped) {
      if (at === 'finalize' || at === 'done') throw caught; // finalize's activities retry; a failure here is for an operator
      await finalize(run);
      return report;
    }
    const rescue = await unfenceFirstOrAdopt(run, caught, at);
    if (rescue.adopted) return report;
    const err = rescue.err;
    const failedIn = view.stage;
    const why = err instanceof SourceLost ? { type: FAILURE.SourceLost, message: err.message } : errorText(err);
    report.outcome = 'rolled-back';
    report.failure = { phase: failedIn, ...why };
    view.enter('rollback');
    await CancellationScope.nonCancellable(() => rollback(run));
    report.endedAt = Date.now();
    report.totalMs = report.endedAt - run.startedAt;
    view.enter('rolled-back');
    // A refusal in validate changed nothing; unless the source answered, it may not speak the protocol at all.
    if (failedIn !== 'validate' || run.sourceAtStart) await CancellationScope.nonCancellable(() => checkServing(run, report.sourceLost ? run.copyId : run.sourceInstance));
    if (run.hop === 2) {
      throw ApplicationFailure.nonRetryable(
        `${input.service} is served by its shadow ${run.sourceInstance} on ${input.targetNode}: the second handoff, to ${run.copyId}, failed in ${failedIn} and was undone (${why.message}); ` +
          `its StatefulSet stays held (deleted, its manifest in ConfigMap ms2m-held-${input.service}) until a pod of that name serves`,
        FAILURE.IdentitySwapFailed,
        report,
      );
    }
    if (isCancellation(err)) throw err instanceof CancelledFailure ? err : new CancelledFailure(`migration cancelled in ${failedIn}; rolled back`);
    // A request refused during validation changed nothing: report the refusal itself.
    if (failedIn === 'validate') throw ApplicationFailure.nonRetryable(why.message, why.type, report);
    throw ApplicationFailure.nonRetryable(`migration of ${input.service} rolled back after ${failedIn} failed: ${why.message}`, FAILURE.MigrationRolledBack, report);
  }
}

/**
 * shadow-swap, once the shadow serves: the StatefulSet's pod is held and ended, which frees its name;
 * then a second handoff on the target, from the shadow to a pod of that name, which finalize gives to
 * the StatefulSet. It rolls forward like the first one's fence: a cancellation is ignored.
 */
async function swapIdentity(run: MigrationRun): Promise<void> {
  const shadow = run.copyId;
  const stable = run.sourceInstance;
  run.report.swap = { shadow, downtimeMs: run.report.downtimeMs, sourceDigest: run.report.sourceDigest, shadowDigest: run.report.targetDigest };
  await run.phase('finalize', async () => {
    await run.cluster.holdController({ service: run.input.service });
    await Promise.all([
      run.source.stopInstance({ instanceId: stable }),
      run.replayQueue ? run.brokerLocal.deleteQueue({ queue: run.replayQueue }) : undefined,
      run.source.removeImage({ imageId: run.imageId }),
      run.target.removeImage({ imageId: run.imageId }),
    ]);
  });
  // The first handoff is done for good: the second one has its own undo log, ids and fencing epoch.
  run.undo = new Compensations();
  run.swapped = false;
  run.copyMayExist = false;
  delete run.report.sourceLost;
  run.fencing.epoch = run.copyAtSwap!.epoch + 1;
  run.sourceAtStart = run.copyAtSwap;
  run.sourceAtEnd = run.copyAtRestore = run.copyAtSwap = null;
  run.sourceInstance = shadow;
  run.sourceAt = run.targetAt;
  run.source = run.target;
  run.report.targetInstance = run.copyId = stable;
  run.imageId = `${run.migrationId}-swap`;
  run.replayQueue = '';
  run.hop = 2;
  await run.phase('prepare', () => prepare(run));
  await checkpointTransferRestore(run);
  await run.view.continuePhase('replay', () => replay(run));
  await run.phase('fence', () => fence(run));
  run.report.downtimeMs += run.report.swap.downtimeMs;
}
