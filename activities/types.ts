/**
 * The orchestrator's own activities, the same whatever the runtime: BrokerActivities speak to RabbitMQ and,
 * through it, to the instances' control queues; LockActivities keep two migrations of one service apart.
 */
import type { InstanceStatus, Marks } from '../service/protocol';

export interface LockActivities {
  /** Takes the service's migration lock for this workflow run; MigrationInProgress if another live run holds it. */
  acquireLock(input: { service: string; workflowId: string; runId: string }): Promise<void>;
  /** Frees the lock if this run holds it (a no-op otherwise, so it is safe to retry). */
  releaseLock(input: { service: string; workflowId: string; runId: string }): Promise<void>;
  /** Which of these services are locked by a live migration. */
  lockedServices(input: { services: string[] }): Promise<string[]>;
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
