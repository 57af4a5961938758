/**
 * One migration's run: its input, the activities it calls, its report and view, and the state its steps
 * share (where the source, the copy and the image are, what is to undo). The steps are functions of it,
 * one module per part of the protocol: migration-validate, migration-image, migration-handoff,
 * migration-finalize and migration-rollback. Workflow code.
 */
import { ApplicationFailure, isCancellation, log, patched, sleep, uuid4, workflowInfo } from '@temporalio/workflow';
import * as otel from '@opentelemetry/api';
import { MigrateInputSchema, initialReport, shadows, type MigrateInput, type MigrateRequest, type MigrationReport, type Phase, type Timeouts } from '../lib/migration';
import { FAILURE } from '../lib/contracts';
import type { ImageRef, NodeInfo, Placement } from '../runtimes/types';
import type { InstanceStatus } from '../service/protocol';
import type { ReplayProgress } from '../activities/types';
import { parseInput } from './input';
import { activitiesFor } from './activity-proxies';
import { Compensations } from './compensations';
import { MigrationView } from './migration-view';
import type { Counters } from './accounting';
import { SourceLost, errorText, isDefinite, migrationIdOf } from './migration-failures';
import { setLogContext } from './log-context';

type Activities = ReturnType<typeof activitiesFor>;

export class MigrationRun {
  readonly input: MigrateRequest;
  readonly t: Timeouts;
  readonly cluster: Activities['cluster'];
  readonly lock: Activities['lock'];
  readonly brokerLocal: Activities['brokerLocal'];
  readonly probe: Activities['probe'];
  readonly handoffOn: Activities['handoffOn'];
  readonly onNode: Activities['onNode'];
  readonly info = workflowInfo();
  readonly migrationId: string;
  readonly startedAt: number;
  readonly report: MigrationReport;
  readonly view: MigrationView;
  readonly fencing: { migrationId: string; epoch: number };
  readonly transferMode: MigrateRequest['mechanisms']['transfer'];
  readonly lazy: MigrateRequest['mechanisms']['lazy'];
  /**
   * Steps that follow one another on one node run as one activity there (validate's probe, checkpoint and
   * transfer, restore and the start of replay): each saved Temporal round trip is 20-30 ms of a migration.
   * Migrations started before keep their separate activities.
   */
  readonly combined: boolean;

  // What must be undone if the migration fails before the swap; the lock is released after all of it.
  undo = new Compensations();
  locked = false;
  replayQueue = '';
  copyMayExist = false;
  imageTaken = false;
  /** Whether the source lives, as the rollback found it: a dead one is not unfenced, and its images are kept. */
  sourceAliveAtRollback: boolean | null = null;
  /** The source was unfenced before the rollback (it answered, so it lives and serves again). */
  unfencedFirst = false;
  swapped = false;
  copyId: string;
  imageId: string;
  /** shadow-swap: 2 once the shadow serves and hands over to the pod of the StatefulSet's name. */
  hop = 1;
  sourceInstance = '';
  placement: Placement | null = null;
  // The nodes as the runtime describes them (their task queues), and the image as each holds it.
  sourceAt: NodeInfo | null = null;
  /** Where the service ran when the migration started (a second handoff starts on the target). */
  originAt: NodeInfo | null = null;
  targetAt: NodeInfo | null = null;
  sourceImage: ImageRef | null = null;
  targetImage: ImageRef | null = null;
  // The nodes' workers, once validate knows the nodes: replay and the fence run beside the copy.
  source!: ReturnType<Activities['onNode']>;
  target!: ReturnType<Activities['onNode']>;
  handoff!: ReturnType<Activities['handoffOn']>;
  /** A stop-and-copy source's status when prepare fenced it. */
  fenced: InstanceStatus | undefined;
  copyAppliedAtStart = 0;
  lastSourceSeenAt: number;
  /** With the combined steps: the copy's status when told to replay, and the first look at its lag. */
  startedReplay: InstanceStatus | null = null;
  firstProgress: ReplayProgress | null = null;
  /** How long of the restore step was already replay. */
  replayBeganMs = 0;
  /** A lazy restore's pages: settles when all are in (or never arrive); the fence waits for it. */
  pagesIn: Promise<void> | null = null;
  pagesFailure: unknown = null;
  // The instances' own counters at the start and the end of their parts, for the report's accounting.
  sourceAtStart: InstanceStatus | null = null;
  sourceAtEnd: InstanceStatus | null = null;
  copyAtRestore: InstanceStatus | null = null;
  copyAtSwap: InstanceStatus | null = null;

  /** In the order the workflow always did it: the patch marker and the copy's random id are part of its history. */
  constructor(rawInput: MigrateInput, started: (strategy: string) => void) {
    this.input = parseInput('migrateService', MigrateInputSchema, rawInput);
    started(this.input.strategy);
    this.t = this.input.timeouts;
    ({ cluster: this.cluster, lock: this.lock, brokerLocal: this.brokerLocal, probe: this.probe, handoffOn: this.handoffOn, onNode: this.onNode } = activitiesFor(this.t));
    this.migrationId = migrationIdOf(this.info.workflowId, this.info.runId);
    this.startedAt = Date.now();
    setLogContext({ migrationId: this.migrationId, service: this.input.service });
    // On the workflow run's span (when traced): the migration it is.
    otel.trace.getActiveSpan()?.setAttributes({ 'ms2m.migration_id': this.migrationId, 'ms2m.service': this.input.service, 'ms2m.strategy': this.input.strategy, 'ms2m.target_node': this.input.targetNode });
    this.report = initialReport(this.input, this.info.workflowId, this.migrationId, this.startedAt);
    this.view = new MigrationView(this.input, this.report);
    this.fencing = { migrationId: this.migrationId, epoch: 0 };
    this.copyId = `${this.input.service}-${uuid4().slice(0, 8)}`;
    this.imageId = this.migrationId;
    this.report.targetInstance = this.copyId;
    this.lastSourceSeenAt = this.startedAt;
    ({ transfer: this.transferMode, lazy: this.lazy } = this.input.mechanisms);
    this.combined = patched('one-activity-per-node-step');
  }

  phase<T>(name: Phase, fn: () => Promise<T>): Promise<T> {
    return this.view.phase(name, fn);
  }

  counters(): Counters {
    return { sourceInstance: this.sourceInstance, copyId: this.copyId, sourceAtStart: this.sourceAtStart, sourceAtEnd: this.sourceAtEnd, copyAtRestore: this.copyAtRestore, copyAtSwap: this.copyAtSwap };
  }

  /** Whether an instance's process is alive, per its node's agent; null when the agent does not answer. */
  async alive(node: NodeInfo, instanceId: string): Promise<boolean | null> {
    try {
      return (await this.onNode(node).listInstances()).some((i) => i.instanceId === instanceId && i.alive);
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
  async guarded<T>(fn: () => Promise<T>): Promise<T> {
    const since = Date.now();
    for (;;) {
      try {
        const r = await fn();
        this.lastSourceSeenAt = Date.now();
        return r;
      } catch (err) {
        if (isCancellation(err) || isDefinite(err)) throw err;
        const [src, copy] = await Promise.all([
          shadows(this.input.strategy) ? this.alive(this.sourceAt!, this.sourceInstance) : Promise.resolve(true),
          this.alive(this.targetAt!, this.copyId),
        ]);
        if (src === false) throw new SourceLost(this.view.stage);
        if (copy === false) throw ApplicationFailure.nonRetryable(`the copy ${this.copyId} died during ${this.view.stage}`, FAILURE.CopyLost);
        if (Date.now() - since > this.t.unreachableMs) throw err;
        log.warn(`${this.view.stage}: ${errorText(err).message}; both instances alive, trying again`);
        await sleep(1000);
      }
    }
  }
}
