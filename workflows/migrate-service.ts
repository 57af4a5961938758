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
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  log,
  patched,
  sleep,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import {
  MigrateInputSchema,
  NAME_KEEPING,
  initialReport,
  shadows,
  type LagSample,
  type MigrateInput,
  type MigrationReport,
  type Phase,
} from '../lib/migration';
import { parseInput } from './input';
import { observeReplay } from '../lib/replay-stop';
import type { ImageRef, Mechanism, NodeDescription, NodeInfo, Placement } from '../runtimes/types';
import { replayQueueName } from '../service/names';
import type { InstanceStatus } from '../service/protocol';
import type { ReplayProgress } from '../activities/types';
import { activitiesFor } from './activity-proxies';
import { Compensations } from './compensations';
import { MigrationView } from './migration-view';
import { accountingOf, type Counters } from './accounting';
import { servedByOnly } from './post-condition';
import { SourceLost, errorText, failedPart, isDefinite, isScheduleToStartTimeout, migrationIdOf } from './migration-failures';
import { FAILURE, progressQuery, reportQuery } from '../lib/contracts';
import { migrationMetrics } from './metrics-sinks';
import { setLogContext } from './log-context';
import * as otel from '@opentelemetry/api';

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
  const input = parseInput('migrateService', MigrateInputSchema, rawInput);
  started(input.strategy);
  const t = input.timeouts;
  const { cluster, lock, brokerLocal, probe, handoffOn, onNode } = activitiesFor(t);
  const info = workflowInfo();
  const migrationId = migrationIdOf(info.workflowId, info.runId);
  const startedAt = Date.now();
  setLogContext({ migrationId, service: input.service });
  // On the workflow run's span (when traced): the migration it is.
  otel.trace.getActiveSpan()?.setAttributes({ 'ms2m.migration_id': migrationId, 'ms2m.service': input.service, 'ms2m.strategy': input.strategy, 'ms2m.target_node': input.targetNode });
  const report = initialReport(input, info.workflowId, migrationId, startedAt);
  const view = new MigrationView(input, report);
  const phase = <T>(name: Phase, fn: () => Promise<T>): Promise<T> => view.phase(name, fn);

  // What must be undone if the migration fails before the swap; the lock is released after all of it.
  let undo = new Compensations();
  let locked = false;
  let replayQueue = '';
  let copyMayExist = false;
  let imageTaken = false;
  /** Whether the source lives, as the rollback found it: a dead one is not unfenced, and its images are kept. */
  let sourceAliveAtRollback: boolean | null = null;
  /** The source was unfenced before the rollback (it answered, so it lives and serves again). */
  let unfencedFirst = false;
  let swapped = false;
  const fencing = { migrationId, epoch: 0 };
  let copyId = `${input.service}-${uuid4().slice(0, 8)}`;
  let imageId = migrationId;
  /** shadow-swap: 2 once the shadow serves and hands over to the pod of the StatefulSet's name. */
  let hop = 1;
  report.targetInstance = copyId;

  let sourceInstance = '';
  let placement: Placement | null = null;
  // The nodes as the runtime describes them (their task queues), and the image as each holds it.
  let sourceAt: NodeInfo | null = null;
  /** Where the service ran when the migration started (a second handoff starts on the target). */
  let originAt: NodeInfo | null = null;
  let targetAt: NodeInfo | null = null;
  let sourceImage: ImageRef | null = null;
  let targetImage: ImageRef | null = null;
  // The nodes' workers, once validate knows the nodes: replay and the fence run beside the copy.
  let source!: ReturnType<typeof onNode>;
  let target!: ReturnType<typeof onNode>;
  let handoff!: ReturnType<typeof handoffOn>;
  /** A stop-and-copy source's status when prepare fenced it. */
  let fenced: InstanceStatus | undefined;
  let copyAppliedAtStart = 0;
  let lastSourceSeenAt = startedAt;
  /** With the combined steps: the copy's status when told to replay, and the first look at its lag. */
  let startedReplay: InstanceStatus | null = null;
  let firstProgress: ReplayProgress | null = null;
  /** How long of the restore step was already replay. */
  let replayBeganMs = 0;
  const { transfer: transferMode, lazy } = input.mechanisms;
  /**
   * Steps that follow one another on one node run as one activity there (validate's probe, checkpoint and
   * transfer, restore and the start of replay): each saved Temporal round trip is 20-30 ms of a migration.
   * Migrations started before keep their separate activities.
   */
  const combined = patched('one-activity-per-node-step');
  /** A lazy restore's pages: settles when all are in (or never arrive); the fence waits for it. */
  let pagesIn: Promise<void> | null = null;
  let pagesFailure: unknown = null;
  // The instances' own counters at the start and the end of their parts, for the report's accounting.
  let sourceAtStart: InstanceStatus | null = null;
  let sourceAtEnd: InstanceStatus | null = null;
  let copyAtRestore: InstanceStatus | null = null;
  let copyAtSwap: InstanceStatus | null = null;
  const counters = (): Counters => ({ sourceInstance, copyId, sourceAtStart, sourceAtEnd, copyAtRestore, copyAtSwap });

  /** Whether an instance's process is alive, per its node's agent; null when the agent does not answer. */
  async function alive(node: NodeInfo, instanceId: string): Promise<boolean | null> {
    try {
      return (await onNode(node).listInstances()).some((i) => i.instanceId === instanceId && i.alive);
    } catch (err) {
      if (isCancellation(err)) throw err;
      return null;
    }
  }

  /**
   * Runs a step that talks to the source and the copy. When it fails without a definite answer, the node
   * agents say whether an instance died: a dead source (once the copy exists) means adoption, a dead copy
   * means rollback; if both live (the broker restarting, say) the step is tried again, for a bounded time.
   */
  async function guarded<T>(fn: () => Promise<T>): Promise<T> {
    const since = Date.now();
    for (;;) {
      try {
        const r = await fn();
        lastSourceSeenAt = Date.now();
        return r;
      } catch (err) {
        if (isCancellation(err) || isDefinite(err)) throw err;
        const [src, copy] = await Promise.all([
          shadows(input.strategy) ? alive(sourceAt!, sourceInstance) : Promise.resolve(true),
          alive(targetAt!, copyId),
        ]);
        if (src === false) throw new SourceLost(view.stage);
        if (copy === false) throw ApplicationFailure.nonRetryable(`the copy ${copyId} died during ${view.stage}`, FAILURE.CopyLost);
        if (Date.now() - since > t.unreachableMs) throw err;
        log.warn(`${view.stage}: ${errorText(err).message}; both instances alive, trying again`);
        await sleep(1000);
      }
    }
  }

  async function describe<T = NodeDescription>(node: NodeInfo, role: 'targetNode' | 'source node', ask: () => Promise<T> = () => onNode(node).describeNode() as Promise<T>): Promise<T> {
    try {
      return await ask();
    } catch (err) {
      if (!isScheduleToStartTimeout(err)) throw err;
      const what = role === 'targetNode' ? `targetNode: node "${node.node}"` : `the node of ${input.service} ("${node.node}")`;
      throw ApplicationFailure.nonRetryable(
        `${what} does not answer: no agent took work from its task queue ${node.taskQueue} within ${t.nodeScheduleToStartMs} ms; ` +
          `start its agent (ms2m agent --node ${node.node})${role === 'targetNode' ? ' or choose another node' : ''}`,
        FAILURE.NodeUnreachable,
      );
    }
  }

  async function finalize(): Promise<void> {
    await phase('finalize', () =>
      CancellationScope.nonCancellable(async () => {
        const commit = () => cluster.commitPlacement({ ...placement!, node: input.targetNode, instanceId: copyId, updatedAt: Date.now() });
        const cleanUp = () =>
          Promise.all([
            source.stopInstance({ instanceId: sourceInstance }),
            replayQueue ? brokerLocal.deleteQueue({ queue: replayQueue }) : undefined,
            source.removeImage({ imageId }),
            target.removeImage({ imageId }),
          ]);
        // The placement, the source's end and the clean-up are independent: one workflow task for all.
        if (combined) await Promise.all([commit(), cleanUp()]);
        else await commit().then(cleanUp);
        if (!combined) await lock.releaseLock({ service: input.service, workflowId: info.workflowId, runId: info.runId });
      }),
    );
    // From the fence on the migration rolls forward: a cancellation that came meanwhile was ignored.
    if (CancellationScope.current().consideredCancelled) report.cancelIgnored = true;
    if (combined) {
      // The lock is released beside the post-condition's looks, as before it: whatever they find.
      const [released, served] = await Promise.allSettled([
        CancellationScope.nonCancellable(() => lock.releaseLock({ service: input.service, workflowId: info.workflowId, runId: info.runId })),
        CancellationScope.nonCancellable(() => checkServing(copyId)),
      ]);
      for (const r of [served, released]) if (r.status === 'rejected') throw r.reason;
    } else {
      await CancellationScope.nonCancellable(() => checkServing(copyId));
    }
    report.endedAt = Date.now();
    report.totalMs = report.endedAt - startedAt;
    view.enter('done');
  }

  /** The source is gone after its copy exists: the copy replays the sealed replay queue to its end and serves. */
  async function adoptSourceStream(lost: SourceLost): Promise<void> {
    report.sourceLost = { detectedIn: lost.detectedIn, at: Date.now() };
    log.warn(`source ${sourceInstance} is gone (${lost.detectedIn}); ${copyId} adopts its stream`);
    await phase('fence', () =>
      CancellationScope.nonCancellable(async () => {
        await pagesArrived();
        await brokerLocal.sealReplay({ replayQueue, fencing });
        const st = await handoff.adopt({ copy: copyId, replayQueue, fencing, timeoutMs: t.controlReplyMs, catchUpMs: t.catchUpMs });
        swapped = true;
        copyAtSwap = st;
        report.accounting.handoff = 'adopted';
        report.targetDigest = st.activatedDigest ?? '';
        report.marks = st.marks;
        // Nobody to compare with; the downtime runs from the last time the source was seen serving.
        report.downtimeMs = Math.max(0, (st.activatedAt ?? 0) - lastSourceSeenAt);
      }),
    );
  }

  // ---- the phases, in the order the protocol runs them.

  /** The placement and both nodes as the runtime's cluster side describes them. */
  async function whereFromAndTo(): Promise<{ p: Placement; targetNode: NodeInfo | null; sourceNodeInfo: NodeInfo | null }> {
    // One round of local activities instead of two; migrations started before keep their two rounds.
    if (patched('validate-one-node-lookup')) {
      const [p, nodes] = await Promise.all([cluster.locateService({ service: input.service }), cluster.listNodes()]);
      const find = (name: string) => nodes.find((n) => n.node === name) ?? null;
      return { p, targetNode: find(input.targetNode), sourceNodeInfo: find(p.node) };
    }
    const [p, targetNode] = await Promise.all([cluster.locateService({ service: input.service }), cluster.node({ node: input.targetNode })]);
    return { p, targetNode, sourceNodeInfo: await cluster.node({ node: p.node }) };
  }

  /** Changes nothing until the request is known to make sense; takes the lock. */
  async function validate(): Promise<void> {
    const { p, targetNode, sourceNodeInfo } = await whereFromAndTo();
    if (p.node === input.targetNode) {
      throw ApplicationFailure.nonRetryable(`targetNode: ${input.service} already runs on ${p.node}; choose another node`, FAILURE.InvalidInput);
    }
    const keepingName = NAME_KEEPING.includes(input.strategy);
    if (p.keepsName && !keepingName) {
      throw ApplicationFailure.nonRetryable(
        `strategy: ${input.service} runs as ${p.instanceId}, a pod its StatefulSet knows by name; migrate it with strategy ${NAME_KEEPING.join(' or ')}`,
        FAILURE.InvalidInput,
      );
    }
    if (!p.keepsName && keepingName) {
      throw ApplicationFailure.nonRetryable(`strategy: ${input.strategy} moves a StatefulSet's pod, and ${input.service} is not one; use shadow or stop-and-copy`, FAILURE.InvalidInput);
    }
    if (!targetNode) {
      throw ApplicationFailure.nonRetryable(`targetNode: there is no node "${input.targetNode}"; start its agent (ms2m agent --node ${input.targetNode})`, FAILURE.InvalidInput);
    }
    if (!sourceNodeInfo) {
      throw ApplicationFailure.nonRetryable(`${input.service} is placed on "${p.node}", which is not a node any more; start its agent (ms2m agent --node ${p.node})`, FAILURE.NodeUnreachable);
    }
    sourceAt = sourceNodeInfo;
    originAt = sourceNodeInfo;
    targetAt = targetNode;
    view.sourceIs(p.node);
    report.sourceNode = p.node;
    report.sourceInstance = p.instanceId;
    sourceInstance = p.instanceId;
    // sequential moves the instance itself: it resumes on the target under its own name.
    if (input.strategy === 'sequential') report.targetInstance = copyId = p.instanceId;
    await lock.acquireLock({ service: input.service, workflowId: info.workflowId, runId: info.runId });
    locked = true;
    // Both agents must answer on their queues (a dead node times out on schedule-to-start), and the
    // service must speak the protocol with ids on its messages.
    const [fromNode, toNode, status] = combined
      ? await Promise.all([
          // The source's agent describes its node and probes the instance beside it, in parallel with the target.
          describe(sourceAt, 'source node', () => onNode(sourceAt!).describeAndProbe({ service: input.service, instanceId: p.instanceId, timeoutMs: t.controlReplyMs })),
          describe(targetAt, 'targetNode'),
        ]).then(([s, d]) => [s.node, d, s.status] as const)
      : await Promise.all([
          describe(sourceAt, 'source node'),
          describe(targetAt, 'targetNode'),
          brokerLocal.probeService({ service: input.service, instanceId: p.instanceId, timeoutMs: t.controlReplyMs }),
        ]);
    refuseUnsupported([fromNode, toNode]);
    if (status.role !== 'primary' || status.fenced) {
      throw ApplicationFailure.nonRetryable(`instance ${p.instanceId} is not serving (role ${status.role}, fenced ${status.fenced})`, FAILURE.SourceNotServing);
    }
    if (status.input.queue !== p.spec.primaryQueue) {
      throw ApplicationFailure.nonRetryable(
        `spec.primaryQueue: ${input.service} was deployed with "${p.spec.primaryQueue}" but its instance consumes "${status.input.queue}"; redeploy it with spec.primaryQueue "${status.input.queue}"`,
        FAILURE.InvalidSpec,
      );
    }
    sourceAtStart = status;
    fencing.epoch = status.epoch + 1;
    placement = p;
    source = onNode(sourceAt);
    target = onNode(targetAt);
    handoff = handoffOn(targetAt);
  }

  /** Both nodes must be able to do the mechanisms the input asks for; refused before anything changes. */
  function refuseUnsupported(nodes: NodeDescription[]): void {
    const asked: Array<[Mechanism, string]> = [];
    if (transferMode === 'stream') asked.push(['stream', 'mechanisms.transfer: "stream"']);
    if (lazy) asked.push(['lazy', 'mechanisms.lazy: true']);
    for (const [m, field] of asked) {
      const no = nodes.find((n) => n.unsupported?.[m]);
      if (no) throw ApplicationFailure.nonRetryable(`${field} is not possible on node "${no.node}": ${no.unsupported![m]}`, FAILURE.InvalidInput);
    }
  }

  /** Shadow has the source write its apply log; stop-and-copy stops the source consuming. */
  async function prepare(): Promise<void> {
    if (shadows(input.strategy)) {
      replayQueue = replayQueueName(input.service, imageId);
      undo.add('delete the replay queue', () => brokerLocal.deleteQueue({ queue: replayQueue }));
    }
    // Unfencing also ends the shadowing; a source that died meanwhile has nobody to unfence.
    undo.add('unfence the source', async () => {
      if (sourceAliveAtRollback !== false && !unfencedFirst) sourceAtEnd = await brokerLocal.unfence({ source: sourceInstance, fencing });
    });
    if (shadows(input.strategy)) await brokerLocal.prepareReplay({ source: sourceInstance, replayQueue, fencing, timeoutMs: t.controlReplyMs });
    else fenced = await brokerLocal.fenceSource({ source: sourceInstance, fencing });
  }

  async function checkpoint(): Promise<void> {
    imageTaken = true;
    undo.addCleanup('remove the image on the source', `image ${imageId} on ${sourceAt!.node}`, () => source.removeImage({ imageId }));
    if (transferMode === 'stream') {
      // The target receives the pages while the source dumps them: its part of the image exists from now on.
      undo.addCleanup('remove the image on the target', `image ${imageId} on ${input.targetNode}`, () => target.removeImage({ imageId }));
    }
    // The dump leaves the source running: a stop-and-copy source is fenced and idles until finalize ends it.
    const ck = await source.checkpoint({ instanceId: sourceInstance, imageId, ...(transferMode === 'stream' ? { streamTo: input.targetNode } : {}) });
    sourceImage = ck.image;
    report.checkpointBytes = ck.bytes;
    if (ck.streamedBytes !== undefined) report.streamedBytes = ck.streamedBytes;
    report.freezeMs = Math.round(ck.freezeMs);
    report.tools.dumpMs = Math.round(ck.dumpMs);
  }

  async function transfer(): Promise<void> {
    if (transferMode !== 'stream') undo.addCleanup('remove the image on the target', `image ${imageId} on ${input.targetNode}`, () => target.removeImage({ imageId }));
    const sent = await source.transfer({ image: sourceImage!, targetNode: input.targetNode, ...(lazy ? { lazy } : {}) });
    targetImage = sent.image;
    report.tools.transferMs = Math.round(sent.ms);
    if (lazy) report.lazy = { bytesLeft: sent.lazyBytes ?? 0, ms: 0, pages: 0 };
  }

  /**
   * checkpoint and transfer as one activity of the source's agent. Its phases are split by the time the
   * transfer reports; a failure is reported in the phase of the part that failed.
   */
  async function checkpointAndTransfer(): Promise<void> {
    imageTaken = true;
    undo.addCleanup('remove the image on the source', `image ${imageId} on ${sourceAt!.node}`, () => source.removeImage({ imageId }));
    // The target holds part of the image once its page stream opened, or once the transfer began.
    const targetHolds = () => undo.addCleanup('remove the image on the target', `image ${imageId} on ${input.targetNode}`, () => target.removeImage({ imageId }));
    if (transferMode === 'stream') targetHolds();
    let r: Awaited<ReturnType<typeof source.checkpointAndSend>>;
    try {
      r = await source.checkpointAndSend({ instanceId: sourceInstance, imageId, targetNode: input.targetNode, ...(transferMode === 'stream' ? { stream: true } : {}), ...(lazy ? { lazy } : {}) });
    } catch (err) {
      const failed = failedPart(err);
      if (failed?.part === 'transfer' && !failed.started) throw new CancelledFailure('migration cancelled before transfer');
      if (failed?.part !== 'checkpoint' && transferMode !== 'stream') targetHolds();
      if (failed?.part === 'transfer') view.enter('transfer');
      throw err;
    }
    if (transferMode !== 'stream') targetHolds();
    const ck = r.checkpoint;
    sourceImage = ck.image;
    report.checkpointBytes = ck.bytes;
    if (ck.streamedBytes !== undefined) report.streamedBytes = ck.streamedBytes;
    report.freezeMs = Math.round(ck.freezeMs);
    report.tools.dumpMs = Math.round(ck.dumpMs);
    targetImage = r.transfer.image;
    report.tools.transferMs = Math.round(r.transfer.ms);
    if (lazy) report.lazy = { bytesLeft: r.transfer.lazyBytes ?? 0, ms: 0, pages: 0 };
  }

  /**
   * restore and the start of replay as one activity of the target's agent: the copy restored, answering as
   * a standby, told to replay (shadow), and a first look at its lag, which the replay loop starts from.
   */
  async function restoreAndStartReplay(): Promise<void> {
    copyMayExist = true;
    undo.add('stop the copy', () => target.stopInstance({ instanceId: copyId }));
    const replayAsked = shadows(input.strategy) ? { replayQueue, fencing, source: sourceInstance, threshold: input.replay.threshold, windowMs: 0, timeoutMs: t.controlReplyMs } : null;
    // A replay that could not start for want of an answer comes back as replaying: null; replay's own guard
    // then finds out why. A definite refusal fails the step, in the replay phase.
    let r: Awaited<ReturnType<typeof target.restoreAndReplay>>;
    try {
      r = await target.restoreAndReplay({ image: targetImage!, service: input.service, instanceId: copyId, copyReadyMs: t.copyReadyMs, replay: replayAsked, ...(lazy ? { lazy } : {}) });
    } catch (err) {
      const failed = failedPart(err);
      if (failed?.part === 'replay' && !failed.started) throw new CancelledFailure('migration cancelled before replay');
      if (failed?.part === 'replay') view.enter('replay');
      throw err;
    }
    report.tools.restoreMs = Math.round(r.restore.restoreMs);
    copyAtRestore = r.standby;
    if (lazy) followPages();
    if (lazy && !shadows(input.strategy)) await pagesArrived();
    startedReplay = r.replaying;
    firstProgress = r.progress;
    replayBeganMs = r.replayMs ?? 0;
  }

  /** The image's way from the source to a running copy: three phases, as two combined steps or three activities. */
  async function checkpointTransferRestore(): Promise<void> {
    if (combined && input.strategy !== 'sequential') {
      await phase('checkpoint', checkpointAndTransfer);
      view.splitLast('transfer', report.tools.transferMs);
      await phase('restore', restoreAndStartReplay);
      // The replay phase began inside the step: it goes on in the workflow's replay loop.
      if (startedReplay) view.splitLast('replay', replayBeganMs);
    } else {
      await phase('checkpoint', checkpoint);
      await phase('transfer', transfer);
      await phase('restore', restore);
    }
  }

  /** Follows a lazy restore's pages in the background; `pagesArrived` is where the migration waits for them. */
  function followPages(): void {
    pagesIn = target.awaitPages({ image: targetImage!, instanceId: copyId }).then(
      (r) => {
        report.lazy = { ...report.lazy!, ms: r.ms, pages: r.pages };
      },
      (err: unknown) => {
        pagesFailure = err;
      },
    );
  }

  /** The copy's memory is all its own: a lazy restore has every page in (the copy is never compared or activated before). */
  async function pagesArrived(): Promise<void> {
    if (pagesIn) await pagesIn;
    if (pagesFailure) throw pagesFailure;
  }

  async function restore(): Promise<void> {
    copyMayExist = true;
    if (input.strategy === 'sequential') return restoreUnderOwnName();
    undo.add('stop the copy', () => target.stopInstance({ instanceId: copyId }));
    report.tools.restoreMs = Math.round((await target.restore({ image: targetImage!, service: input.service, instanceId: copyId, ...(lazy ? { lazy } : {}) })).restoreMs);
    if (lazy) followPages();
    // Without a replay there is nothing to overlap the pages with: the copy waits for them here.
    if (lazy && !shadows(input.strategy)) await pagesArrived();
    // The copy answers on its own control queue once it has reconnected under its new identity.
    const st = await brokerLocal.instanceStatus({ instanceId: copyId, timeoutMs: t.copyReadyMs });
    if (st.role !== 'standby') throw ApplicationFailure.nonRetryable(`restored ${copyId} did not come up as a standby copy`, FAILURE.CopyNotStandby);
    copyAtRestore = st;
  }

  /**
   * sequential: the name must be free on the target, so the controller is held and the fenced source
   * stops; its image then resumes there as the same instance, still fenced. Undone in reverse: the
   * instance is restored where it was from the same image, and the controller gets it back.
   */
  async function restoreUnderOwnName(): Promise<void> {
    undo.add('give the controller its instance back', () => cluster.commitPlacement(placement!));
    await cluster.holdController({ service: input.service });
    undo.add('restore the source where it was', async () => {
      if ((await alive(sourceAt!, sourceInstance)) === false) {
        await source.restore({ image: sourceImage!, service: input.service, instanceId: sourceInstance });
        await brokerLocal.instanceStatus({ instanceId: sourceInstance, timeoutMs: t.copyReadyMs });
      }
      sourceAliveAtRollback = true;
    });
    await source.stopInstance({ instanceId: sourceInstance });
    undo.add('stop the moved instance', () => target.stopInstance({ instanceId: copyId }));
    report.tools.restoreMs = Math.round((await target.restore({ image: targetImage!, service: input.service, instanceId: copyId })).restoreMs);
    const st = await brokerLocal.instanceStatus({ instanceId: copyId, timeoutMs: t.copyReadyMs });
    if (st.role !== 'primary' || !st.fenced) {
      throw ApplicationFailure.nonRetryable(`restored ${copyId} did not come back as the fenced primary it was checkpointed as (role ${st.role}, fenced ${st.fenced})`, FAILURE.CopyNotStandby);
    }
    copyAtRestore = st;
  }

  /** The copy replays the apply log beside its source until the stop rule says fence. */
  async function replay(): Promise<void> {
    const st = startedReplay ?? (await guarded(() => handoff.startReplay({ copy: copyId, replayQueue, fencing, timeoutMs: t.controlReplyMs })));
    copyAppliedAtStart = st.applied;
    const t0 = Date.now();
    let samples: LagSample[] = [];
    let ahead = firstProgress;
    // Used once: a second handoff (shadow-swap) starts its own replay.
    startedReplay = firstProgress = null;
    for (;;) {
      const remaining = input.replay.cutoffMs - (Date.now() - t0);
      const p =
        ahead ??
        (await guarded(() =>
          handoff.replayUntil({
            copy: copyId,
            source: sourceInstance,
            threshold: input.replay.threshold,
            windowMs: Math.max(0, Math.min(1000, remaining)),
            timeoutMs: t.controlReplyMs,
          }),
        ));
      if (ahead) lastSourceSeenAt = Date.now();
      ahead = null;
      view.lag = p.lag;
      migrationMetrics.replayLag(input.service, migrationId, p.lag);
      report.replay.finalLag = p.lag;
      report.replay.replayed = p.replayed - copyAppliedAtStart;
      const seen = observeReplay(samples, { at: p.at, lag: p.lag, applied: p.replayed }, Date.now() - t0, input.replay);
      samples = seen.samples;
      const { trend, endedBy } = seen;
      view.estimate = trend;
      report.replay.lagSlopePerSec = trend.slopePerSec;
      report.replay.applyRatePerSec = trend.applyRatePerSec;
      view.show();
      // A lazy restore that failed has killed the copy: nothing to wait for.
      if (pagesFailure) throw pagesFailure;
      if (endedBy === 'none') continue;
      report.replay.endedBy = endedBy;
      report.replay.thresholdReached = endedBy === 'threshold';
      report.replay.cutoffFired = endedBy === 'cutoff';
      report.replay.stalled = endedBy === 'not-converging';
      const rate = trend.applyRatePerSec;
      report.replay.estimatedCatchUpMs = rate && rate > 0 ? Math.round((p.lag / rate) * 1000) : null;
      break;
    }
    // Lazy: the copy went on replaying while its memory arrived; it is fenced only once all of it has.
    await pagesArrived();
  }

  /** Once the source is fenced the handoff completes or is refused as a whole; a cancellation waits for it. */
  async function fence(): Promise<void> {
    if (input.strategy === 'sequential') return resumeMoved();
    await pagesArrived();
    const swap = await guarded(() =>
      handoff.fenceAndSwap({ source: sourceInstance, copy: copyId, fencing, fenced, timeoutMs: t.controlReplyMs, catchUpMs: t.catchUpMs }),
    );
    report.sourceDigest = swap.source.digest;
    report.targetDigest = swap.copy.digest;
    report.marks = swap.source.marks;
    report.stateMatch = swap.source.digest === swap.copy.digest;
    sourceAtEnd = swap.source;
    copyAtSwap = swap.copy;
    if (shadows(input.strategy)) report.replay.replayed = swap.copy.applied - copyAppliedAtStart;
    if (!swap.swapped) {
      report.accounting.handoff = 'refused';
      throw ApplicationFailure.nonRetryable(`the copy may not take over: ${swap.refusal ?? 'its state differs from the source\'s'}`, FAILURE.StateMismatch);
    }
    swapped = true;
    report.accounting.handoff = 'exact';
    report.downtimeMs = Math.max(0, (swap.activatedAt ?? 0) - (swap.source.fencedAt ?? 0));
  }

  /** sequential: the moved instance holds exactly the fenced source's state, and resumes consuming. */
  async function resumeMoved(): Promise<void> {
    const was = fenced!;
    const now = copyAtRestore!;
    report.sourceDigest = was.digest;
    report.targetDigest = now.digest;
    report.marks = was.marks;
    report.stateMatch = was.digest === now.digest && was.applied === now.applied;
    if (!report.stateMatch) {
      report.accounting.handoff = 'refused';
      throw ApplicationFailure.nonRetryable(`the restored ${copyId} stands at position ${now.applied}, not at the fenced ${was.applied}, or its digest differs`, FAILURE.StateMismatch);
    }
    sourceAtEnd = was;
    copyAtSwap = await brokerLocal.unfence({ source: copyId, fencing });
    swapped = true;
    report.accounting.handoff = 'moved';
    report.downtimeMs = Math.max(0, Date.now() - (was.fencedAt ?? Date.now()));
  }

  /**
   * shadow-swap, once the shadow serves: the StatefulSet's pod is held and ended, which frees its name;
   * then a second handoff on the target, from the shadow to a pod of that name, which finalize gives to
   * the StatefulSet. It rolls forward like the first one's fence: a cancellation is ignored.
   */
  async function swapIdentity(): Promise<void> {
    const shadow = copyId;
    const stable = sourceInstance;
    report.swap = { shadow, downtimeMs: report.downtimeMs, sourceDigest: report.sourceDigest, shadowDigest: report.targetDigest };
    await phase('finalize', async () => {
      await cluster.holdController({ service: input.service });
      await Promise.all([
        source.stopInstance({ instanceId: stable }),
        replayQueue ? brokerLocal.deleteQueue({ queue: replayQueue }) : undefined,
        source.removeImage({ imageId }),
        target.removeImage({ imageId }),
      ]);
    });
    // The first handoff is done for good: the second one has its own undo log, ids and fencing epoch.
    undo = new Compensations();
    swapped = false;
    copyMayExist = false;
    delete report.sourceLost;
    fencing.epoch = copyAtSwap!.epoch + 1;
    sourceAtStart = copyAtSwap;
    sourceAtEnd = copyAtRestore = copyAtSwap = null;
    sourceInstance = shadow;
    sourceAt = targetAt;
    source = target;
    report.targetInstance = copyId = stable;
    imageId = `${migrationId}-swap`;
    replayQueue = '';
    hop = 2;
    await phase('prepare', prepare);
    await checkpointTransferRestore();
    await view.continuePhase('replay', replay);
    await phase('fence', fence);
    report.downtimeMs += report.swap.downtimeMs;
  }

  try {
    await phase('validate', validate);
    await phase('prepare', prepare);
    await checkpointTransferRestore();
    try {
      if (shadows(input.strategy)) await view.continuePhase('replay', replay);
      await phase('fence', () => CancellationScope.nonCancellable(fence));
    } catch (err) {
      if (!(err instanceof SourceLost)) throw err;
      await adoptSourceStream(err);
    }
    if (input.strategy === 'shadow-swap') await CancellationScope.nonCancellable(swapIdentity);

    await finalize();
    return report;
  } catch (err) {
    const at = view.stage;
    // A fence that failed without an answer may still have swapped: the copy knows.
    if (!swapped && at === 'fence' && copyMayExist && !report.sourceLost && input.strategy !== 'sequential') swapped = await CancellationScope.nonCancellable(copyTookOver);
    if (swapped) {
      if (at === 'finalize' || at === 'done') throw err; // finalize's activities retry; a failure here is for an operator
      await finalize();
      return report;
    }
    // A failure that said something definite (a catch-up timeout, a cancellation) can hide a source that
    // died meanwhile: once its copy replays its apply log, what the source acknowledged since the
    // checkpoint is only there. Rolling back would stop the copy and delete that log (found by the model,
    // model/README.md, F1). So the source is unfenced first, while the copy and the log still exist: its
    // own answer proves it lives and serves again (F2: a look at it, then the copy stopped, left a window
    // in which it could die). If it does not answer and is gone, the copy adopts the stream instead.
    if (!report.sourceLost && copyMayExist && replayQueue && shadows(input.strategy) && hop === 1 && patched('adopt-if-source-dead-at-rollback')) {
      // Asked again while the source lives and does not answer (its reply lost, the broker busy): the copy
      // and its log stay until it does, or until it is gone. An agent that cannot tell ends the wait.
      const since = Date.now();
      let src: boolean | null = true;
      let copy: boolean | null = null;
      for (;;) {
        const unfenced = await CancellationScope.nonCancellable(() => brokerLocal.unfence({ source: sourceInstance, fencing })).then(
          (st) => {
            sourceAtEnd = st;
            return (unfencedFirst = true);
          },
          () => false,
        );
        if (unfenced) break;
        [src, copy] = await CancellationScope.nonCancellable(() => Promise.all([alive(sourceAt!, sourceInstance), alive(targetAt!, copyId)]));
        if (src !== true || Date.now() - since > t.unreachableMs) break;
        await CancellationScope.nonCancellable(() => sleep(1000));
      }
      if (src === false && copy === true) {
        log.warn(`${view.stage} failed (${errorText(err).message}) and the source ${sourceInstance} is gone: ${copyId} adopts its stream instead of a rollback`);
        let adopted = false;
        try {
          await CancellationScope.nonCancellable(async () => {
            await adoptSourceStream(new SourceLost(at));
            adopted = true;
            await finalize();
          });
        } catch (adoptErr) {
          if (adopted) throw adoptErr; // finalize's own failures are an operator's, as above
          err = adoptErr; // the copy could not adopt: left for an operator, as any failed adoption
        }
        if (adopted) {
          if (isCancellation(err)) report.cancelIgnored = true;
          return report;
        }
      }
    }
    const failedIn = view.stage;
    const why = err instanceof SourceLost ? { type: FAILURE.SourceLost, message: err.message } : errorText(err);
    report.outcome = 'rolled-back';
    report.failure = { phase: failedIn, ...why };
    view.enter('rollback');
    await CancellationScope.nonCancellable(() => rollback());
    report.endedAt = Date.now();
    report.totalMs = report.endedAt - startedAt;
    view.enter('rolled-back');
    // A refusal in validate changed nothing; unless the source answered, it may not speak the protocol at all.
    if (failedIn !== 'validate' || sourceAtStart) await CancellationScope.nonCancellable(() => checkServing(report.sourceLost ? copyId : sourceInstance));
    if (hop === 2) {
      throw ApplicationFailure.nonRetryable(
        `${input.service} is served by its shadow ${sourceInstance} on ${input.targetNode}: the second handoff, to ${copyId}, failed in ${failedIn} and was undone (${why.message}); ` +
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

  /**
   * Whether the copy took over though the fence's reply never came: it serves as this migration's primary
   * only if the fence compared it and found it exact. The report then says so, from the copy's own
   * record of the takeover and the fenced source's status.
   */
  async function copyTookOver(): Promise<boolean> {
    let st: InstanceStatus;
    try {
      st = await brokerLocal.instanceStatus({ instanceId: copyId, timeoutMs: t.controlReplyMs });
    } catch {
      return false;
    }
    if (st.role !== 'primary' || st.migrationId !== migrationId) return false;
    copyAtSwap = st;
    report.accounting.handoff = 'exact';
    report.targetDigest = st.activatedDigest ?? '';
    report.marks = st.marks;
    const src = await brokerLocal.instanceStatus({ instanceId: sourceInstance, timeoutMs: t.controlReplyMs }).catch(() => null);
    if (src) {
      sourceAtEnd = src;
      report.sourceDigest = src.digest;
      report.stateMatch = src.digest === st.activatedDigest;
      report.downtimeMs = Math.max(0, (st.activatedAt ?? 0) - (src.fencedAt ?? 0));
    }
    return true;
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
    if (report.sourceLost) {
      // The copy is all that is left of the service: it keeps adopting, and an operator decides.
      log.error(`adoption by ${copyId} failed; it is left running with ${replayQueue} for an operator`);
      await attempt('release the lock', () => lock.releaseLock({ service: input.service, workflowId: info.workflowId, runId: info.runId }));
      return;
    }
    // The source was never ended by the migration; if it is gone all the same, its images are all that is left of its state.
    sourceAliveAtRollback = sourceAt ? await alive(sourceAt, sourceInstance) : null;
    await undo.run(attempt, { keepResources: () => sourceAliveAtRollback === false });
    if (sourceAliveAtRollback === false) report.stateKeptIn = undo.kept;
    if (locked) await attempt('release the lock', () => lock.releaseLock({ service: input.service, workflowId: info.workflowId, runId: info.runId }));
  }

  /**
   * The post-condition of every migration: `expected` answers as the serving primary, it is the only
   * consumer of the primary queue (the broker's own count), and no other instance of the service is
   * alive on the nodes involved. Settles for a few seconds (a killed process's connection takes a moment
   * to close), then fails loudly, naming where the service's state is.
   */
  async function checkServing(expected: string): Promise<void> {
    const queue = placement!.spec.primaryQueue;
    const nodes = [originAt, sourceAt, targetAt].filter((n, i, all): n is NodeInfo => n !== null && all.findIndex((m) => m?.node === n.node) === i);
    const found = await servedByOnly(expected, { service: input.service, queue, nodes, controlReplyMs: t.controlReplyMs, inParallel: combined }, { probe, onNode });
    if (found.ok) {
      report.accounting = accountingOf(report.accounting, counters(), expected, found.status, found.consumers);
      return;
    }
    const { problems } = found;
    report.accounting = accountingOf(report.accounting, counters(), expected, null, 0);
    const state = report.stateKeptIn?.length
      ? `its last checkpoint is kept (${report.stateKeptIn.join(', ')}); restore it with the node agent, or redeploy`
      : sourceInstance === expected && !imageTaken
        ? 'no checkpoint of its state was taken'
        : `its state is in ${expected} if that process lives`;
    const what = report.outcome === 'completed' ? 'after the migration' : `after rolling back (${report.failure?.type}: ${report.failure?.message})`;
    report.notServing = `${input.service} is not served by exactly one instance ${what}: ${problems.join('; ')}; ${state}`;
    log.error(report.notServing);
    throw ApplicationFailure.nonRetryable(report.notServing, FAILURE.ServiceNotServing, report);
  }
}
