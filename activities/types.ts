/**
 * The activity interfaces the workflows are written against. A runtime (local processes + CRIU, or
 * Kubernetes) implements NodeActivities on each node's task queue and ClusterActivities on the
 * orchestrator's; BrokerActivities speak to RabbitMQ and to the instances and are the same for both.
 */
import type { InstanceStatus, Marks } from '../service/protocol';
import type { ServiceSpec } from '../lib/migration';

export interface NodeDescription {
  node: string;
  runtime: 'local' | 'kubernetes';
  /** Where other nodes send checkpoint images. */
  imageUrl: string;
  criuVersion: string;
}

export interface InstanceRecord {
  instanceId: string;
  service: string;
  node: string;
  pid: number;
  startedAt: number;
  origin: 'started' | 'restored';
  logPath: string;
}

/** How an instance's process ended: an exit code, or the signal that killed it. */
export interface InstanceExit {
  code: number | null;
  signal: string | null;
  at: number;
}

export interface InstanceHealth {
  instanceId: string;
  node: string;
  /** When the node agent started it (the agent's clock, as `exit.at`). */
  startedAt: number;
  alive: boolean;
  /** Set once the process has exited, if its node agent saw it end. */
  exit: InstanceExit | null;
  /** Why a dead instance has no `exit`: only the agent that started it sees it end (restored copies have no such parent). */
  exitUnknown?: string;
  logPath: string;
  /** The last lines of its log (stdout and stderr), oldest first. */
  logTail: string[];
}

export interface CheckpointResult {
  imageId: string;
  bytes: number;
  files: number;
  dumpMs: number;
  /** How long CRIU kept the source frozen. */
  freezeMs: number;
}

export interface TransferResult {
  bytes: number;
  files: number;
  ms: number;
}

export interface RestoreResult {
  instance: InstanceRecord;
  restoreMs: number;
}

export interface NodeActivities {
  describeNode(): Promise<NodeDescription>;
  startInstance(input: { service: string; instanceId: string; spec: ServiceSpec }): Promise<InstanceRecord>;
  /**
   * Dumps the instance into image `imageId`, leaving it running (a stop-and-copy source is fenced, so it
   * stays idle until the migration ends it or resumes it): the only live copy of a state is never ended
   * before its image is complete. Safe to retry after the agent died at any moment of it.
   */
  checkpoint(input: { instanceId: string; imageId: string }): Promise<CheckpointResult>;
  sendImage(input: { imageId: string; targetNode: string; targetUrl: string }): Promise<TransferResult>;
  restore(input: { imageId: string; service: string; instanceId: string }): Promise<RestoreResult>;
  stopInstance(input: { instanceId: string }): Promise<{ stopped: boolean }>;
  removeImage(input: { imageId: string }): Promise<void>;
  listInstances(): Promise<Array<InstanceRecord & { alive: boolean }>>;
  /** Whether the instance's process lives, how it ended if it did, and the end of its log. */
  instanceHealth(input: { instanceId: string; logLines?: number }): Promise<InstanceHealth>;
  /** CPU (percent of one core) and memory of the live instances, sampled over `sampleMs`. */
  instanceLoads(input: { sampleMs: number }): Promise<Array<{ instanceId: string; service: string; cpuPercent: number; rssBytes: number }>>;
}

export interface NodeInfo {
  node: string;
  capacity: number;
  schedulable: boolean;
}

export interface Placement {
  service: string;
  node: string;
  instanceId: string;
  spec: ServiceSpec;
  updatedAt: number;
}

export interface ClusterActivities {
  acquireLock(input: { service: string; workflowId: string; runId: string }): Promise<void>;
  releaseLock(input: { service: string; workflowId: string; runId: string }): Promise<void>;
  locateService(input: { service: string }): Promise<Placement>;
  findPlacement(input: { service: string }): Promise<Placement | null>;
  commitPlacement(input: Placement): Promise<void>;
  removePlacement(input: { service: string }): Promise<void>;
  nodeExists(input: { node: string }): Promise<boolean>;
  listNodes(): Promise<NodeInfo[]>;
  listPlacements(): Promise<Placement[]>;
  /** Services whose migration lock is held. */
  migratingServices(): Promise<string[]>;
  setNodeSchedulable(input: { node: string; schedulable: boolean }): Promise<void>;
}

export interface Fenced {
  migrationId: string;
  epoch: number;
}

export interface ReplayProgress {
  lag: number;
  replayed: number;
  sourceMarks: Marks;
  copyMarks: Marks;
  /** When it was measured (the activity's clock), for the lag trend. */
  at: number;
}

export interface SwapResult {
  swapped: boolean;
  /** The source's status at the fence (its final marks and digest). */
  source: InstanceStatus;
  /** The copy's status when it was compared (after catching up to the source's position). */
  copy: InstanceStatus;
  activatedAt: number | null;
  /** Why the copy did not take over (another position, digest, or positions missing from the log). */
  refusal: string | null;
}

export interface BrokerActivities {
  instanceStatus(input: { instanceId: string; timeoutMs?: number }): Promise<InstanceStatus>;
  /** The instance speaks the protocol and its messages carry ids; refuses with NotMigratable otherwise. */
  probeService(input: { service: string; instanceId: string; timeoutMs: number }): Promise<InstanceStatus>;
  /** Declares the replay queue and has the source write its apply log to it; returns the source's status then. */
  prepareReplay(input: { source: string; replayQueue: string; fencing: Fenced; timeoutMs: number }): Promise<InstanceStatus>;
  startReplay(input: { copy: string; replayQueue: string; fencing: Fenced; timeoutMs: number }): Promise<InstanceStatus>;
  replayUntil(input: { copy: string; source: string; threshold: number; windowMs: number; timeoutMs: number }): Promise<ReplayProgress>;
  fenceSource(input: { source: string; fencing: Fenced }): Promise<InstanceStatus>;
  /** `fenced` is the source's fence result when it was fenced earlier (stop-and-copy: it no longer runs). */
  fenceAndSwap(input: { source: string; copy: string; fencing: Fenced; fenced?: InstanceStatus; timeoutMs: number; catchUpMs: number }): Promise<SwapResult>;
  /** Puts the end marker behind the apply log (its writer, the source, is gone). */
  sealReplay(input: { replayQueue: string; fencing: Fenced }): Promise<void>;
  /** The copy replays the sealed replay queue to its end and takes over the primary queue. */
  adopt(input: { copy: string; replayQueue: string; fencing: Fenced; timeoutMs: number; catchUpMs: number }): Promise<InstanceStatus>;
  activate(input: { copy: string; fencing: Fenced }): Promise<InstanceStatus>;
  unfence(input: { source: string; fencing: Fenced }): Promise<InstanceStatus>;
  deleteQueue(input: { queue: string }): Promise<void>;
  /** How many consumers a queue has now, from the broker itself (not the sampled management statistics). */
  queueConsumers(input: { queue: string }): Promise<number>;
  /** Messages waiting (ready + unacknowledged) in each queue; a missing queue counts 0. */
  queueDepths(input: { queues: string[] }): Promise<Record<string, number>>;
}
