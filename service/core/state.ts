/**
 * The state a migratable instance decides on, and the effects its decisions ask the transport for.
 *
 * Nothing here touches a broker, a clock or the hostname: the shell (MigratableService) passes the time
 * and the identity in and carries the effects out, so the decisions can be driven through any
 * interleaving in a test. Functions update the state in place: the owed outputs grow with every replayed
 * message, and copying them per message would make a long replay quadratic.
 */
import type { InstanceStatus, Marks, Role } from '../protocol';
import { answers, type Outgoing } from './outgoing';

export interface CoreState {
  /** The UTS hostname the instance last saw: a different one means it is a restored copy. */
  identity: string;
  /** The queue the instance serves, for what it says it does. */
  inputQueue: string;
  role: Role;
  fenced: boolean;
  epoch: number;
  migrationId: string | null;
  marks: Marks;
  /** The instance's position in the apply sequence (a copy's includes its source's up to the checkpoint). */
  applied: number;
  /** While shadowed: the replay queue the source writes its apply log to. */
  applyLog: string | null;
  /** The apply log a copy follows, from the replay (or adopt) command until it has caught up. */
  replayQueue: string | null;
  /** At the fence: the copy applies the log exactly up to this position (the fenced source's count). */
  upTo: number | null;
  /** Taking over from a source that is gone: replay the whole apply log up to its end marker. */
  adopting: boolean;
  /** The end marker of the apply log arrived before the adopt command did: the log is fully applied. */
  sealed: boolean;
  /**
   * Outputs a copy computed but did not emit, by input message: if the source dies before the fence they
   * may still be owed (the source applied a message but never emitted for it). Activation after a normal
   * fence drops them; adoption emits those whose input the dead source had not acknowledged.
   */
  owed: Map<string, Outgoing[]>;
  counts: Counts;
  lastUnstampedAt: number | null;
  lastPrimaryApplyAt: number | null;
  fencedAt: number | null;
  activatedAt: number | null;
  activatedDigest: string | null;
}

export interface Counts {
  skippedDuplicates: number;
  gaps: number;
  unstamped: number;
  logged: number;
  replaySkipped: number;
  replayGaps: number;
  outputsEmitted: number;
  outputsSuppressed: number;
}

/** What a decision needs from outside: the time, and the digest of the application state it cannot see. */
export interface Context {
  now: number;
  digest(): string;
}

/** What the transport must do, in order, to carry out a decision. */
export type Effect =
  /** Append to the outbox and publish it with confirms (an empty `out` still retries what is unconfirmed). */
  | { kind: 'publish'; out: Outgoing[] }
  /** Acknowledge the delivery being handled. */
  | { kind: 'ack' }
  | { kind: 'consume-primary' }
  | { kind: 'consume-replay'; queue: string }
  | { kind: 'stop-replay' }
  /** Stop consuming the primary queue and apply everything it already delivered (nothing goes back to it). */
  | { kind: 'stop-primary' }
  /** Acknowledge buffered apply-log entries unapplied: they lie past the position the copy took over at. */
  | { kind: 'drop-buffered-replay' }
  /** Every apply-log entry and output confirmed, or the command is refused as `unflushed`. */
  | { kind: 'confirm-all' }
  /**
   * Record the activation time again, now that the primary consumer is attached, so the downtime counts
   * the attach (the decision already set it: a primary that took over never reports none).
   */
  | { kind: 'activated' }
  | { kind: 'log'; line: string };

export function createCore(identity: string, inputQueue: string): CoreState {
  return {
    identity,
    inputQueue,
    role: 'primary',
    fenced: false,
    epoch: 0,
    migrationId: null,
    marks: {},
    applied: 0,
    applyLog: null,
    replayQueue: null,
    upTo: null,
    adopting: false,
    sealed: false,
    owed: new Map(),
    counts: { skippedDuplicates: 0, gaps: 0, unstamped: 0, logged: 0, replaySkipped: 0, replayGaps: 0, outputsEmitted: 0, outputsSuppressed: 0 },
    lastUnstampedAt: null,
    lastPrimaryApplyAt: null,
    fencedAt: null,
    activatedAt: null,
    activatedDigest: null,
  };
}

/**
 * The hostname changed: this process is a restored copy. It keeps the state, marks, position and fencing
 * of its checkpoint and becomes a standby with outputs suppressed. `unconfirmed` is what the source still
 * had in its outbox: those outputs stay the source's unless the source dies and the copy adopts its
 * stream, and its log entries are the source's to write. Returns the line to log.
 */
export function becomeCopy(s: CoreState, identity: string, unconfirmed: Outgoing[]): string {
  const previous = s.identity;
  s.identity = identity;
  s.role = 'standby';
  s.fenced = false;
  s.fencedAt = null;
  s.activatedAt = null;
  s.activatedDigest = null;
  s.counts.outputsSuppressed = 0;
  s.counts.outputsEmitted = 0;
  s.counts.replaySkipped = 0;
  s.counts.replayGaps = 0;
  s.counts.logged = 0;
  s.replayQueue = null;
  s.upTo = null;
  s.applyLog = null;
  for (const o of unconfirmed) if (!o.log) owe(s, o);
  s.owed = new Map([...s.owed].filter(([, outs]) => outs.length > 0));
  s.adopting = false;
  s.sealed = false;
  return `restored copy of ${previous}: standby, outputs suppressed`;
}

function owe(s: CoreState, o: Outgoing): void {
  const key = answers(o);
  if (key) s.owed.set(key, [...(s.owed.get(key) ?? []), o]);
}

/** Which streams the instance should consume, e.g. after (re)connecting. */
export function streams(s: CoreState): { primary: boolean; replay: string | null } {
  return { primary: s.role === 'primary' && !s.fenced, replay: s.role === 'standby' ? s.replayQueue : null };
}

/** The broker confirmed these: count them as written. */
export function confirmed(s: CoreState, batch: Outgoing[]): void {
  for (const o of batch) {
    if (o.log) s.counts.logged++;
    else s.counts.outputsEmitted++;
  }
}

/** The broker could not route a message to `routingKey`: if that is the apply log, its queue is gone. */
export function logReturned(s: CoreState, routingKey: string): string | null {
  if (!s.applyLog || routingKey !== s.applyLog) return null;
  const line = `apply log ${s.applyLog} is gone; no longer writing it`;
  s.applyLog = null;
  return line;
}

export function markActivated(s: CoreState, now: number): void {
  s.activatedAt = now;
}

/** A refusal names the instance, since the orchestrator relays it. */
export function refusal(s: CoreState, code: string, error: string): { ok: false; code: string; error: string } {
  return { ok: false, code, error: `${s.identity}: ${error}` };
}

/** The part of a status reply the core knows (the shell adds what it consumes, its buffer and the digest). */
export function report(s: CoreState): Omit<InstanceStatus, 'service' | 'input' | 'consuming' | 'digest' | 'pending' | 'app'> {
  return {
    instanceId: s.identity,
    role: s.role,
    fenced: s.fenced,
    epoch: s.epoch,
    migrationId: s.migrationId,
    marks: { ...s.marks },
    applied: s.applied,
    ...s.counts,
    applyLog: s.applyLog,
    outputsOwed: s.owed.size,
    lastUnstampedAt: s.lastUnstampedAt,
    fencedAt: s.fencedAt,
    activatedAt: s.activatedAt,
    activatedDigest: s.activatedDigest,
    lastPrimaryApplyAt: s.lastPrimaryApplyAt,
  };
}
