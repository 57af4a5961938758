/**
 * The end of every migration: finalize commits the placement and cleans up; checkServing, the
 * post-condition, requires exactly one instance serving the primary queue. Workflow code.
 */
import { ApplicationFailure, CancellationScope, log } from '@temporalio/workflow';
import { FAILURE } from '../lib/contracts';
import type { NodeInfo } from '../runtimes/types';
import { accountingOf } from './accounting';
import { servedByOnly } from './post-condition';
import type { MigrationRun } from './migration-run';

export async function finalize(run: MigrationRun): Promise<void> {
  await run.phase('finalize', () =>
    CancellationScope.nonCancellable(async () => {
      const commit = () => run.cluster.commitPlacement({ ...run.placement!, node: run.input.targetNode, instanceId: run.copyId, updatedAt: Date.now() });
      const cleanUp = () =>
        Promise.all([
          run.source.stopInstance({ instanceId: run.sourceInstance }),
          run.replayQueue ? run.brokerLocal.deleteQueue({ queue: run.replayQueue }) : undefined,
          run.source.removeImage({ imageId: run.imageId }),
          run.target.removeImage({ imageId: run.imageId }),
        ]);
      // The placement, the source's end and the clean-up are independent: one workflow task for all.
      if (run.combined) await Promise.all([commit(), cleanUp()]);
      else await commit().then(cleanUp);
      if (!run.combined) await run.lock.releaseLock({ service: run.input.service, workflowId: run.info.workflowId, runId: run.info.runId });
    }),
  );
  // From the fence on the migration rolls forward: a cancellation that came meanwhile was ignored.
  if (CancellationScope.current().consideredCancelled) run.report.cancelIgnored = true;
  if (run.combined) {
    // The lock is released beside the post-condition's looks, as before it: whatever they find.
    const [released, served] = await Promise.allSettled([
      CancellationScope.nonCancellable(() => run.lock.releaseLock({ service: run.input.service, workflowId: run.info.workflowId, runId: run.info.runId })),
      CancellationScope.nonCancellable(() => checkServing(run, run.copyId)),
    ]);
    for (const r of [served, released]) if (r.status === 'rejected') throw r.reason;
  } else {
    await CancellationScope.nonCancellable(() => checkServing(run, run.copyId));
  }
  run.report.endedAt = Date.now();
  run.report.totalMs = run.report.endedAt - run.startedAt;
  run.view.enter('done');
}

/**
 * The post-condition of every migration: `expected` answers as the serving primary, it is the only
 * consumer of the primary queue (the broker's own count), and no other instance of the service is
 * alive on the nodes involved. Settles for a few seconds (a killed process's connection takes a moment
 * to close), then fails loudly, naming where the service's state is.
 */
export async function checkServing(run: MigrationRun, expected: string): Promise<void> {
  const queue = run.placement!.spec.primaryQueue;
  const nodes = [run.originAt, run.sourceAt, run.targetAt].filter((n, i, all): n is NodeInfo => n !== null && all.findIndex((m) => m?.node === n.node) === i);
  const found = await servedByOnly(expected, { service: run.input.service, queue, nodes, controlReplyMs: run.t.controlReplyMs, inParallel: run.combined }, { probe: run.probe, onNode: run.onNode });
  if (found.ok) {
    run.report.accounting = accountingOf(run.report.accounting, run.counters(), expected, found.status, found.consumers);
    return;
  }
  const { problems } = found;
  run.report.accounting = accountingOf(run.report.accounting, run.counters(), expected, null, 0);
  const state = run.report.stateKeptIn?.length
    ? `its last checkpoint is kept (${run.report.stateKeptIn.join(', ')}); restore it with the node agent, or redeploy`
    : run.sourceInstance === expected && !run.imageTaken
      ? 'no checkpoint of its state was taken'
      : `its state is in ${expected} if that process lives`;
  const what = run.report.outcome === 'completed' ? 'after the migration' : `after rolling back (${run.report.failure?.type}: ${run.report.failure?.message})`;
  run.report.notServing = `${run.input.service} is not served by exactly one instance ${what}: ${problems.join('; ')}; ${state}`;
  log.error(run.report.notServing);
  throw ApplicationFailure.nonRetryable(run.report.notServing, FAILURE.ServiceNotServing, run.report);
}
