/**
 * Every fake the workflow tests use, in one file: a small in-memory cluster (nodes, placements, the
 * migration lock, instances with their role, fence, position and digest, images, replay queues) behind
 * the runtime port (runtimes/types.ts) and the orchestrator's broker and lock activities, a way to make any activity fail or hang, and a
 * log of every call so a test can assert the exact steps a workflow took (its rollback, say).
 *
 * The workflows are the real ones (workflows/), run by a real Temporal server; only the activities are
 * fakes. When the activity interfaces change, this file is the one to adapt.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { BrokerActivities, LockActivities } from '../../../activities/types';
import type { ClusterActivities, InstanceRecord, NodeActivities, NodeInfo, Placement, ServiceSpec } from '../../../runtimes/types';
import { handoffRefusal, type InstanceStatus, type Marks } from '../../../service/protocol';
import { createCombinedNodeActivities, type CombinedNodeActivities } from '../../../activities/node-combined';

export type ActivityName = keyof NodeActivities | keyof ClusterActivities | keyof BrokerActivities | keyof LockActivities | keyof CombinedNodeActivities;

/** A node's task queue, as the fake cluster side reports it (and the test workers poll it). */
export const fakeNodeQueue = (orchestratorQueue: string, node: string): string => `${orchestratorQueue}-fake-node-${node}`;

/** The handoff's broker activities, which the workflow runs on the target node's queue. */
const HANDOFF = new Set<string>(['startReplay', 'replayUntil', 'fenceAndSwap', 'adopt']);

/** Calls that change something (as opposed to reads and probes): the steps a test asserts. */
const CHANGES = new Set<ActivityName>([
  'acquireLock',
  'releaseLock',
  'commitPlacement',
  'removePlacement',
  'holdController',
  'setNodeSchedulable',
  'startInstance',
  'checkpoint',
  'transfer',
  'restore',
  'stopInstance',
  'removeImage',
  'prepareReplay',
  'startReplay',
  'fenceSource',
  'fenceAndSwap',
  'sealReplay',
  'adopt',
  'activate',
  'unfence',
  'deleteQueue',
]);

export interface CallRecord {
  /** `node-a.checkpoint` for a node's activity, `unfence` for one on the orchestrator's queue. */
  label: string;
  name: ActivityName;
  /** The node whose queue the call came in on; null for the orchestrator's queue. */
  node: string | null;
  input: any;
  outcome: 'pending' | 'ok' | 'failed';
  error?: string;
  workflowId: string;
  runId: string;
  activityId: string;
  attempt: number;
  /**
   * The same call (run, activity id, attempt) ran before: a local activity whose workflow task was retried
   * (the server refused the task's completion because an activity result came in meanwhile, say) runs
   * again, at least once being Temporal's contract for local activities. Not a step of its own.
   */
  repeat: boolean;
  /** When it started and ended (ms, wall clock). */
  startedAt: number;
  endedAt?: number;
}

export interface FaultSpec {
  /** Only calls that arrive on this node's queue (node activities). */
  node?: string;
  /** Only calls for which this holds. */
  when?: (input: any, fake: FakeCluster) => boolean;
  /** How many matching calls it affects (default: every one). */
  times?: number;
  /** Runs first, on the model: kill an instance, change the traffic… */
  before?: (fake: FakeCluster, input: any) => void;
  /** Runs once the activity's own work is done (`fail-after`, `pass`…), before it returns or throws. */
  after?: (fake: FakeCluster, input: any) => void;
  /**
   * - `fail`: throws before doing anything.
   * - `fail-after`: does its work, then throws (the reply was lost).
   * - `hang`: waits until the activity is cancelled, then ends cancelled (heartbeating, so it hears of it).
   * - `finish-when-cancelled`: waits until the activity is cancelled, then does its work and returns
   *   normally: an activity that completes anyway after its workflow was cancelled.
   * - `gate`: waits for `release()` of the injection (or the end of the test), then does its work.
   * - `pass`: does its work (only `before` and the hit count matter).
   */
  action: 'fail' | 'fail-after' | 'hang' | 'finish-when-cancelled' | 'gate' | 'pass';
  /** The error `fail` throws: non-retryable `InjectedFault` unless told otherwise. */
  error?: { message?: string; type?: string; retryable?: boolean };
}

export interface Injection {
  readonly spec: FaultSpec;
  hits: number;
  /** Resolves when the first affected call arrives. */
  readonly reached: Promise<void>;
  /** Lets a gated call go on. */
  release(): void;
}

export interface FakeInstance {
  instanceId: string;
  service: string;
  node: string;
  primaryQueue: string;
  alive: boolean;
  origin: 'started' | 'restored';
  role: 'primary' | 'standby';
  consuming: 'primary' | 'replay' | 'none';
  fenced: boolean;
  epoch: number;
  migrationId: string | null;
  /** Its position in the service's apply sequence. */
  applied: number;
  /** A copy whose state went another way than its source's (its digest differs at every position). */
  diverged: boolean;
  marks: Marks;
  skippedDuplicates: number;
  gaps: number;
  applyLog: string | null;
  logged: number;
  replaySkipped: number;
  replayGaps: number;
  outputsEmitted: number;
  outputsSuppressed: number;
  fencedAt: number | null;
  activatedAt: number | null;
  activatedDigest: string | null;
  cpuPercent: number;
  rssBytes: number;
  startedAt: number;
  pid: number;
}

export interface FakeImage {
  imageId: string;
  service: string;
  instanceId: string;
  applied: number;
  marks: Marks;
  primaryQueue: string;
  /** What the instance was when dumped: an instance restored under its own name resumes as that. */
  was: Pick<FakeInstance, 'role' | 'fenced' | 'epoch' | 'migrationId' | 'fencedAt' | 'diverged'>;
}

export interface FakeNode {
  node: string;
  capacity: number;
  schedulable: boolean;
  /** Whether an agent polls the node's task queue. */
  served: boolean;
  images: Map<string, FakeImage>;
  /** Images whose page stream this node opened. */
  streams: Set<string>;
}

export interface ClusterSpec {
  /** Nodes by name; `served: false` means no agent polls its queue. Default: node-a and node-b. */
  nodes?: Record<string, { capacity?: number; schedulable?: boolean; served?: boolean }>;
  /** Services already deployed: where, and their load. Default: `game` on node-a. */
  services?: Record<string, { node: string; cpuPercent?: number; applied?: number; placedAt?: number; keepsName?: boolean }>;
}

/** How replay goes: the lag each replayUntil of a migration reports, in turn (the last one repeats). */
export interface ReplayScript {
  lags: number[];
  /** Messages the source applies between two polls, on top of the lag. */
  trafficPerPoll: number;
  /** Copies restored from now on diverge from their source (the fence then refuses the swap). */
  divergeCopies: boolean;
}

const DOWNTIME_MS = 30;

const digestOf = (i: { service: string; applied: number; diverged: boolean }) => `${i.service}@${i.applied}${i.diverged ? '~diverged' : ''}`;

/** The cluster the fakes act on, one per test. */
export class FakeCluster {
  readonly nodes = new Map<string, FakeNode>();
  readonly placements = new Map<string, Placement>();
  readonly locks = new Map<string, { workflowId: string; runId: string }>();
  /**
   * Services whose controller is held (holdController). A placement that `keepsName` is otherwise a
   * StatefulSet's pod: its controller at once starts an empty instance of that name where the stopped
   * one was, and the name is taken (a restore under it is refused).
   */
  readonly held = new Set<string>();
  readonly instances = new Map<string, FakeInstance>();
  /** Replay queues that exist, and whether their end marker was put behind them. */
  readonly queues = new Map<string, { sealed: boolean }>();
  readonly calls: CallRecord[] = [];
  readonly replay: ReplayScript = { lags: [40, 15, 4], trafficPerPoll: 20, divergeCopies: false };
  /** How long a lazy restore's pages take to arrive (awaitPages). */
  lazyPagesMs = 50;
  /** The activities' clock for replay progress: advances by each poll's window, so convergence is judged without waiting. */
  clock = 1_000_000;
  private readonly injections: Array<{ name: ActivityName } & Injection> = [];
  /** replayUntil calls so far, per copy (each migration follows the script from its start). */
  private readonly polls = new Map<string, number>();
  private pids = 1000;

  constructor(spec: ClusterSpec = {}) {
    for (const [node, n] of Object.entries(spec.nodes ?? { 'node-a': {}, 'node-b': {} })) {
      this.nodes.set(node, { node, capacity: n.capacity ?? 10, schedulable: n.schedulable ?? true, served: n.served ?? true, images: new Map(), streams: new Set() });
    }
    for (const [service, s] of Object.entries(spec.services ?? { game: { node: 'node-a' } })) {
      this.deploy(service, s.node, { cpuPercent: s.cpuPercent, applied: s.applied, placedAt: s.placedAt, keepsName: s.keepsName });
    }
  }

  // ---- the model --------------------------------------------------------------------------------

  static specOf(service: string): ServiceSpec {
    return { runtime: 'local', command: ['node', `dist/examples/${service}/service.js`], env: {}, primaryQueue: `${service}.primary` };
  }

  /** A service deployed and serving on `node` (as deployService leaves it). */
  deploy(service: string, node: string, o: { cpuPercent?: number; applied?: number; placedAt?: number; keepsName?: boolean } = {}): FakeInstance {
    const spec = FakeCluster.specOf(service);
    const inst = this.newInstance(service, `${service}-0`, node, spec.primaryQueue, 'started', o.applied ?? 1000);
    inst.role = 'primary';
    inst.consuming = 'primary';
    inst.cpuPercent = o.cpuPercent ?? 10;
    this.placements.set(service, { service, node, instanceId: inst.instanceId, spec, updatedAt: o.placedAt ?? 0, ...(o.keepsName ? { keepsName: true } : {}) });
    return inst;
  }

  private newInstance(service: string, instanceId: string, node: string, primaryQueue: string, origin: 'started' | 'restored', applied: number): FakeInstance {
    const inst: FakeInstance = {
      instanceId,
      service,
      node,
      primaryQueue,
      alive: true,
      origin,
      role: 'standby',
      consuming: 'none',
      fenced: false,
      epoch: 0,
      migrationId: null,
      applied,
      diverged: false,
      marks: { p1: applied },
      skippedDuplicates: 0,
      gaps: 0,
      applyLog: null,
      logged: 0,
      replaySkipped: 0,
      replayGaps: 0,
      outputsEmitted: applied,
      outputsSuppressed: 0,
      fencedAt: null,
      activatedAt: null,
      activatedDigest: null,
      cpuPercent: 0,
      rssBytes: 50 << 20,
      startedAt: Date.now(),
      pid: ++this.pids,
    };
    this.instances.set(instanceId, inst);
    return inst;
  }

  instance(id: string): FakeInstance {
    const i = this.instances.get(id);
    if (!i) throw new Error(`fake: no instance ${id}`);
    return i;
  }

  /** The instances of a service (in creation order). */
  instancesOf(service: string): FakeInstance[] {
    return [...this.instances.values()].filter((i) => i.service === service);
  }

  /** The copy a migration of `service` restored (the last restored instance). */
  copyOf(service: string): FakeInstance | undefined {
    return this.instancesOf(service).filter((i) => i.origin === 'restored').pop();
  }

  /** The process dies (kill -9): it answers nothing and consumes nothing. */
  kill(instanceId: string): void {
    const i = this.instance(instanceId);
    i.alive = false;
    i.consuming = 'none';
  }

  /** Instances serving the service's primary queue, as the broker counts its consumers. */
  consumersOf(queue: string): FakeInstance[] {
    return [...this.instances.values()].filter((i) => i.alive && i.primaryQueue === queue && i.consuming === 'primary');
  }

  statusOf(i: FakeInstance): InstanceStatus {
    return {
      instanceId: i.instanceId,
      service: i.service,
      input: { exchange: `${i.service}.events`, queue: i.primaryQueue },
      role: i.role,
      consuming: i.consuming,
      fenced: i.fenced,
      epoch: i.epoch,
      migrationId: i.migrationId,
      marks: { ...i.marks },
      digest: digestOf(i),
      applied: i.applied,
      skippedDuplicates: i.skippedDuplicates,
      gaps: i.gaps,
      pending: 0,
      applyLog: i.applyLog,
      logged: i.logged,
      replaySkipped: i.replaySkipped,
      replayGaps: i.replayGaps,
      outputsEmitted: i.outputsEmitted,
      outputsSuppressed: i.outputsSuppressed,
      outputsOwed: 0,
      unstamped: 0,
      lastUnstampedAt: null,
      fencedAt: i.fencedAt,
      activatedAt: i.activatedAt,
      activatedDigest: i.activatedDigest,
      lastPrimaryApplyAt: null,
      app: {},
    };
  }

  /** The source applies `n` messages (logging each while it shadows). */
  private traffic(src: FakeInstance, n: number): void {
    if (!src.alive || src.consuming !== 'primary') return;
    src.applied += n;
    src.marks = { p1: src.applied };
    src.outputsEmitted += n;
    if (src.applyLog) src.logged += n;
  }

  private setPosition(i: FakeInstance, applied: number): void {
    i.applied = applied;
    i.marks = { p1: applied };
  }

  /** Answers a control command: a dead or missing instance does not (a retryable timeout, as the real control client). */
  private reachable(instanceId: string): FakeInstance {
    const i = this.instances.get(instanceId);
    if (!i || !i.alive) throw ApplicationFailure.retryable(`no reply from ${instanceId} (timeout)`, 'Error');
    return i;
  }

  private fence(i: FakeInstance, fencing: { migrationId: string; epoch: number }): void {
    i.fenced = true;
    i.consuming = 'none';
    i.epoch = fencing.epoch;
    i.migrationId = fencing.migrationId;
    i.fencedAt ??= this.clock;
  }

  private activate(copy: FakeInstance, at: number): void {
    copy.role = 'primary';
    copy.consuming = 'primary';
    copy.activatedAt = at;
    copy.activatedDigest = digestOf(copy);
  }

  // ---- faults -----------------------------------------------------------------------------------

  /** Makes calls of `name` fail or hang (see FaultSpec). Later injections are consulted first. */
  inject(name: ActivityName, spec: FaultSpec): Injection {
    let reached!: () => void;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inj = {
      name,
      spec,
      hits: 0,
      reached: new Promise<void>((r) => (reached = r)),
      release: () => release(),
      gate,
      onReach: () => reached(),
    };
    this.injections.unshift(inj);
    return inj;
  }

  /** Shorthand: the next matching call of `name` fails with a non-retryable error of `type`. */
  failOnce(name: ActivityName, type = 'InjectedFault', o: Omit<FaultSpec, 'action' | 'error' | 'times'> & { message?: string } = {}): Injection {
    return this.inject(name, { ...o, action: 'fail', times: 1, error: { type, message: o.message ?? `injected fault: ${name} failed` } });
  }

  /** Lets every gated call go on (at the end of a test). */
  releaseAll(): void {
    for (const i of this.injections) i.release();
  }

  // ---- the call log -----------------------------------------------------------------------------

  /**
   * The calls that changed something, in the order they started, as labels: `acquireLock`,
   * `node-a.checkpoint`, … A call that failed ends in `!`. Retried calls appear once per attempt; a local
   * activity run again for a retried workflow task (`repeat`) does not.
   */
  steps(workflowId?: string): string[] {
    return this.calls.filter((c) => CHANGES.has(c.name) && !c.repeat && (!workflowId || c.workflowId === workflowId)).map((c) => c.label + (c.outcome === 'failed' ? '!' : ''));
  }

  /** Every call of `name` (all attempts), optionally on one node. */
  callsOf(name: ActivityName, node?: string): CallRecord[] {
    return this.calls.filter((c) => c.name === name && (node === undefined || c.node === node));
  }

  // ---- the activities ---------------------------------------------------------------------------

  private wrap<F extends (input: any) => Promise<any>>(name: ActivityName, node: string | null, impl: F): F {
    const run = async (input: any) => {
      const ctx = Context.current();
      const { activityId, attempt } = ctx.info;
      // Always set for an activity a workflow scheduled (these fakes serve no standalone activities).
      const { workflowId, runId } = ctx.info.workflowExecution ?? { workflowId: '', runId: '' };
      const repeat = this.calls.some((c) => c.runId === runId && c.activityId === activityId && c.attempt === attempt && c.name === name);
      const rec: CallRecord = {
        label: node ? `${node}.${name}` : name,
        name,
        node,
        input,
        outcome: 'pending',
        workflowId,
        runId,
        activityId,
        attempt,
        repeat,
        startedAt: Date.now(),
      };
      this.calls.push(rec);
      try {
        const r = await this.intercept(name, node, input, () => impl(input));
        rec.outcome = 'ok';
        rec.endedAt = Date.now();
        return r;
      } catch (err) {
        rec.outcome = 'failed';
        rec.endedAt = Date.now();
        rec.error = (err as Error).message;
        throw err;
      }
    };
    return run as F;
  }

  private async intercept(name: ActivityName, node: string | null, input: any, work: () => Promise<unknown>): Promise<unknown> {
    const inj = this.injections.find(
      (i) =>
        i.name === name &&
        (i.spec.node === undefined || i.spec.node === node) &&
        (i.spec.times === undefined || i.hits < i.spec.times) &&
        (!i.spec.when || i.spec.when(input, this)),
    ) as (Injection & { gate: Promise<void>; onReach: () => void }) | undefined;
    if (!inj) return work();
    inj.hits++;
    inj.onReach();
    inj.spec.before?.(this, input);
    const fault = () => {
      const e = inj.spec.error ?? {};
      const message = e.message ?? `injected fault: ${name} failed`;
      return e.retryable ? ApplicationFailure.retryable(message, e.type ?? 'InjectedFault') : ApplicationFailure.nonRetryable(message, e.type ?? 'InjectedFault');
    };
    const workThenAfter = async () => {
      const r = await work();
      inj.spec.after?.(this, input);
      return r;
    };
    switch (inj.spec.action) {
      case 'pass':
        return workThenAfter();
      case 'fail':
        throw fault();
      case 'fail-after':
        await workThenAfter();
        throw fault();
      case 'hang':
        await untilCancelled();
        throw new CancelledFailure(`${name} cancelled`);
      case 'finish-when-cancelled':
        await untilCancelled().catch(() => undefined);
        return workThenAfter();
      case 'gate':
        await whileHeartbeating(inj.gate);
        return workThenAfter();
    }
  }

  orchestratorActivities(): ClusterActivities & BrokerActivities & LockActivities {
    return { ...this.clusterActivities(), ...this.lockActivities(), ...this.brokerActivities(null) };
  }

  private nodeInfo(n: FakeNode): NodeInfo {
    // Cluster activities run on the orchestrator's queue (local activities of its workflows).
    return { node: n.node, taskQueue: fakeNodeQueue(Context.current().info.taskQueue, n.node), capacity: n.capacity, schedulable: n.schedulable };
  }

  private lockActivities(): LockActivities {
    const w = <K extends keyof LockActivities>(name: K, f: LockActivities[K]) => this.wrap(name, null, f);
    return {
      acquireLock: w('acquireLock', async ({ service, workflowId, runId }) => {
        const holder = this.locks.get(service);
        if (holder && (holder.workflowId !== workflowId || holder.runId !== runId)) {
          throw ApplicationFailure.nonRetryable(`service ${service} is already being migrated by workflow ${holder.workflowId}; wait for it to finish or cancel it`, 'MigrationInProgress');
        }
        this.locks.set(service, { workflowId, runId });
      }),
      releaseLock: w('releaseLock', async ({ service, workflowId, runId }) => {
        const holder = this.locks.get(service);
        if (holder && holder.workflowId === workflowId && holder.runId === runId) this.locks.delete(service);
      }),
      lockedServices: w('lockedServices', async ({ services }) => services.filter((s) => this.locks.has(s))),
    };
  }

  private clusterActivities(): ClusterActivities {
    const w = <K extends keyof ClusterActivities>(name: K, f: ClusterActivities[K]) => this.wrap(name, null, f);
    return {
      locateService: w('locateService', async ({ service }) => {
        const p = this.placements.get(service);
        if (!p) throw ApplicationFailure.nonRetryable(`service: no service named "${service}" is deployed`, 'ServiceNotFound');
        return structuredClone(p);
      }),
      findPlacement: w('findPlacement', async ({ service }) => structuredClone(this.placements.get(service) ?? null)),
      commitPlacement: w('commitPlacement', async (p) => {
        this.placements.set(p.service, structuredClone(p));
        this.held.delete(p.service);
      }),
      removePlacement: w('removePlacement', async ({ service }) => void this.placements.delete(service)),
      node: w('node', async ({ node }) => {
        const n = this.nodes.get(node);
        return n ? this.nodeInfo(n) : null;
      }),
      listNodes: w('listNodes', async () => [...this.nodes.values()].map((n) => this.nodeInfo(n))),
      listPlacements: w('listPlacements', async () => structuredClone([...this.placements.values()])),
      setNodeSchedulable: w('setNodeSchedulable', async ({ node, schedulable }) => {
        const n = this.nodes.get(node);
        if (!n) throw ApplicationFailure.nonRetryable(`node: there is no node "${node}"`, 'InvalidInput');
        n.schedulable = schedulable;
      }),
      holdController: w('holdController', async ({ service }) => {
        if (this.placements.get(service)?.keepsName) this.held.add(service);
      }),
    };
  }

  /** On the orchestrator's queue (`node` null), or on a node's: the handoff's activities run where the copy lives. */
  brokerActivities(node: string | null): BrokerActivities {
    const w = <K extends keyof BrokerActivities>(name: K, f: BrokerActivities[K]) => this.wrap(name, node, f);
    return {
      instanceStatus: w('instanceStatus', async ({ instanceId }) => this.statusOf(this.reachable(instanceId))),
      probeService: w('probeService', async ({ service, instanceId }) => {
        const i = this.instances.get(instanceId);
        if (!i || !i.alive) throw ApplicationFailure.nonRetryable(`service: ${service} (instance ${instanceId}) does not answer ms2m control commands`, 'NotMigratable');
        return this.statusOf(i);
      }),
      prepareReplay: w('prepareReplay', async ({ source, replayQueue, fencing }) => {
        this.queues.set(replayQueue, { sealed: false });
        const src = this.reachable(source);
        src.applyLog = replayQueue;
        src.epoch = fencing.epoch;
        src.migrationId = fencing.migrationId;
        return this.statusOf(src);
      }),
      startReplay: w('startReplay', async ({ copy, fencing }) => {
        const cp = this.reachable(copy);
        cp.consuming = 'replay';
        cp.epoch = fencing.epoch;
        cp.migrationId = fencing.migrationId;
        return this.statusOf(cp);
      }),
      replayUntil: w('replayUntil', async ({ copy, source, threshold, windowMs }) => {
        const src = this.reachable(source);
        const cp = this.reachable(copy);
        const { lags, trafficPerPoll } = this.replay;
        const n = this.polls.get(copy) ?? 0;
        this.polls.set(copy, n + 1);
        const lag = lags[Math.min(n, lags.length - 1)];
        this.traffic(src, trafficPerPoll + lag);
        this.setPosition(cp, Math.max(cp.applied, src.applied - lag));
        // The real activity polls for up to windowMs unless the copy is within the threshold.
        this.clock += lag <= threshold ? 100 : Math.max(1, windowMs);
        await new Promise((r) => setTimeout(r, 5));
        return { lag, replayed: cp.applied, sourceMarks: { ...src.marks }, copyMarks: { ...cp.marks }, at: this.clock };
      }),
      fenceSource: w('fenceSource', async ({ source, fencing }) => {
        const src = this.reachable(source);
        this.fence(src, fencing);
        return this.statusOf(src);
      }),
      fenceAndSwap: w('fenceAndSwap', async ({ source, copy, fencing, fenced }) => {
        const cpNow = this.reachable(copy);
        let src: InstanceStatus;
        if (fenced) src = fenced;
        else {
          const s = this.reachable(source);
          this.fence(s, fencing);
          src = this.statusOf(s);
        }
        if (cpNow.role === 'primary' && cpNow.migrationId === fencing.migrationId) {
          // A retry after the swap happened: report the swap.
          return { swapped: true, source: src, copy: { ...this.statusOf(cpNow), digest: cpNow.activatedDigest ?? '' }, activatedAt: cpNow.activatedAt, refusal: null };
        }
        this.setPosition(cpNow, src.applied);
        cpNow.epoch = fencing.epoch;
        cpNow.migrationId = fencing.migrationId;
        const cp = this.statusOf(cpNow);
        const refusal = handoffRefusal(src, cp);
        if (refusal) return { swapped: false, source: src, copy: cp, activatedAt: null, refusal };
        this.activate(cpNow, (src.fencedAt ?? this.clock) + DOWNTIME_MS);
        return { swapped: true, source: src, copy: cp, activatedAt: cpNow.activatedAt, refusal: null };
      }),
      sealReplay: w('sealReplay', async ({ replayQueue }) => {
        const q = this.queues.get(replayQueue);
        if (!q) throw ApplicationFailure.nonRetryable(`no queue ${replayQueue}`, 'Error');
        q.sealed = true;
      }),
      adopt: w('adopt', async ({ copy, replayQueue, fencing }) => {
        const cp = this.reachable(copy);
        if (!this.queues.get(replayQueue)?.sealed) throw ApplicationFailure.nonRetryable(`${replayQueue} has no end marker`, 'Error');
        // The copy replays the whole apply log: everything its dead source applied.
        const src = [...this.instances.values()].find((i) => i.applyLog === replayQueue);
        if (src) this.setPosition(cp, Math.max(cp.applied, src.applied));
        cp.epoch = fencing.epoch;
        cp.migrationId = fencing.migrationId;
        this.activate(cp, this.clock + DOWNTIME_MS);
        return this.statusOf(cp);
      }),
      activate: w('activate', async ({ copy }) => {
        const cp = this.reachable(copy);
        this.activate(cp, this.clock);
        return this.statusOf(cp);
      }),
      unfence: w('unfence', async ({ source, fencing }) => {
        const src = this.reachable(source);
        if (fencing.epoch < src.epoch) throw ApplicationFailure.nonRetryable(`stale epoch ${fencing.epoch}`, 'ControlRefused');
        src.fenced = false;
        src.applyLog = null;
        src.consuming = 'primary';
        return this.statusOf(src);
      }),
      deleteQueue: w('deleteQueue', async ({ queue }) => void this.queues.delete(queue)),
      queueConsumers: w('queueConsumers', async ({ queue }) => this.consumersOf(queue).length),
      queueDepths: w('queueDepths', async ({ queues }) => Object.fromEntries(queues.map((q) => [q, 0]))),
    };
  }

  /** A node agent's activities: its runtime's, and the handoff's broker activities. */
  nodeAgentActivities(node: string): NodeActivities & BrokerActivities & CombinedNodeActivities {
    const broker = this.brokerActivities(node);
    const handoff = Object.fromEntries(Object.entries(broker).filter(([k]) => HANDOFF.has(k))) as unknown as BrokerActivities;
    const own = this.nodeActivities(node);
    // As a real agent builds them: from its own activities and the broker's, each call recorded as itself.
    return { ...handoff, ...own, ...createCombinedNodeActivities(own, broker) };
  }

  nodeActivities(node: string): NodeActivities {
    const w = <K extends keyof NodeActivities>(name: K, f: NodeActivities[K]) => this.wrap(name, node, f);
    const here = () => this.nodes.get(node)!;
    const onThisNode = (instanceId: string) => {
      const i = this.instances.get(instanceId);
      if (!i || i.node !== node) throw ApplicationFailure.nonRetryable(`there is no instance ${instanceId} on ${node}`, 'InstanceNotFound');
      return i;
    };
    const record = (i: FakeInstance): InstanceRecord => ({
      instanceId: i.instanceId,
      service: i.service,
      node: i.node,
      startedAt: i.startedAt,
      origin: i.origin,
      details: { pid: i.pid, log: `/fake/${node}/${i.instanceId}.log` },
    });
    return {
      describeNode: w('describeNode', async () => ({ node, runtime: 'local', details: { images: `http://${node}.fake/images` } })),
      startInstance: w('startInstance', async ({ service, instanceId, spec }) => {
        const i = this.newInstance(service, instanceId, node, spec.primaryQueue, 'started', 0);
        i.role = 'primary';
        i.consuming = 'primary';
        return record(i);
      }),
      checkpoint: w('checkpoint', async ({ instanceId, imageId, streamTo }) => {
        const i = onThisNode(instanceId);
        if (!i.alive) throw ApplicationFailure.nonRetryable(`instance ${instanceId} exited`, 'InstanceExited');
        if (streamTo && !this.nodes.has(streamTo)) throw ApplicationFailure.nonRetryable(`no node ${streamTo}`, 'Error');
        if (streamTo) this.nodes.get(streamTo)!.streams.add(imageId);
        const was = { role: i.role, fenced: i.fenced, epoch: i.epoch, migrationId: i.migrationId, fencedAt: i.fencedAt, diverged: i.diverged };
        here().images.set(imageId, { imageId, service: i.service, instanceId, applied: i.applied, marks: { ...i.marks }, primaryQueue: i.primaryQueue, was });
        return {
          image: { node, id: imageId, locator: `fake:${node}/${imageId}`, ...(streamTo ? { streamedTo: streamTo } : {}) },
          bytes: 13 << 20,
          files: 12,
          dumpMs: 150,
          freezeMs: 120,
          ...(streamTo ? { streamedBytes: 12 << 20 } : {}),
        };
      }),
      transfer: w('transfer', async ({ image, targetNode }) => {
        const imageId = image.id;
        const img = image.node === node ? here().images.get(imageId) : undefined;
        if (!img) throw ApplicationFailure.nonRetryable(`no image ${imageId} on ${node}`, 'ImageMissing');
        const to = this.nodes.get(targetNode);
        if (!to) throw ApplicationFailure.nonRetryable(`no node ${targetNode}`, 'Error');
        to.images.set(imageId, { ...img });
        return { image: { node: targetNode, id: imageId, locator: `fake:${targetNode}/${imageId}` }, bytes: 13 << 20, files: 12, ms: 80 };
      }),
      restore: w('restore', async ({ image, service, instanceId }) => {
        const imageId = image.id;
        const img = image.node === node ? here().images.get(imageId) : undefined;
        if (!img) throw ApplicationFailure.nonRetryable(`no image ${imageId} on ${node}`, 'ImageMissing');
        const taken = this.instances.get(instanceId);
        if (taken?.alive) throw ApplicationFailure.nonRetryable(`${instanceId} already runs on ${taken.node}`, 'AlreadyExists');
        const i = this.newInstance(service, instanceId, node, img.primaryQueue, 'restored', img.applied);
        // Under its own name it is the instance it was (a fenced source stays fenced); under a new one, a standby copy.
        if (instanceId === img.instanceId) Object.assign(i, img.was, { consuming: img.was.role === 'primary' && !img.was.fenced ? 'primary' : 'none' });
        i.diverged ||= this.replay.divergeCopies;
        i.outputsEmitted = 0;
        return { instance: record(i), restoreMs: 200 };
      }),
      awaitPages: w('awaitPages', async ({ instanceId }) => {
        onThisNode(instanceId);
        await new Promise((r) => setTimeout(r, this.lazyPagesMs));
        return { ms: this.lazyPagesMs, pages: 3000 };
      }),
      stopInstance: w('stopInstance', async ({ instanceId }) => {
        const i = this.instances.get(instanceId);
        if (!i || i.node !== node) return { stopped: false };
        const was = i.alive;
        i.alive = false;
        i.consuming = 'none';
        const p = this.placements.get(i.service);
        if (p?.keepsName && p.instanceId === instanceId && !this.held.has(i.service)) {
          const fresh = this.newInstance(i.service, instanceId, p.node, i.primaryQueue, 'started', 0);
          fresh.role = 'primary';
          fresh.consuming = 'primary';
        }
        return { stopped: was };
      }),
      removeImage: w('removeImage', async ({ imageId }) => void here().images.delete(imageId)),
      listInstances: w('listInstances', async () => [...this.instances.values()].filter((i) => i.node === node).map((i) => ({ ...record(i), alive: i.alive }))),
      instanceHealth: w('instanceHealth', async ({ instanceId }) => {
        const i = onThisNode(instanceId);
        return { instanceId, node, startedAt: i.startedAt, alive: i.alive, exit: i.alive ? null : { code: null, signal: 'SIGKILL', at: Date.now() }, logs: `/fake/${node}/${i.instanceId}.log`, logTail: [] };
      }),
      instanceLoads: w('instanceLoads', async () =>
        [...this.instances.values()]
          .filter((i) => i.node === node && i.alive)
          .map((i) => ({ instanceId: i.instanceId, service: i.service, cpuPercent: i.cpuPercent, rssBytes: i.rssBytes })),
      ),
    };
  }
}

/** Resolves when the current activity is cancelled; a non-local activity heartbeats meanwhile, or it would never hear of it. */
async function untilCancelled(): Promise<void> {
  await whileHeartbeating(Context.current().cancelled);
}

async function whileHeartbeating<T>(p: Promise<T>): Promise<T> {
  const ctx = Context.current();
  const beat = ctx.info.isLocal ? undefined : setInterval(() => ctx.heartbeat(), 200);
  try {
    return await p;
  } finally {
    if (beat) clearInterval(beat);
  }
}
