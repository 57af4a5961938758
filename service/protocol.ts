/**
 * The cooperation protocol between a migratable service, its producers and the ms2m orchestrator.
 *
 * Kept free of I/O so that the workflow sandbox, the activities, the service library and the tests
 * all share one definition of the wire format.
 */
import { createHash } from 'node:crypto';

export const HEADER_PRODUCER = 'x-ms2m-producer';
export const HEADER_SEQ = 'x-ms2m-seq';
export const HEADER_PUBLISHED_AT = 'x-ms2m-published-at';
/**
 * The apply log. While a migration shadows it, the source writes every message it applies to the replay
 * queue, in apply order, on one channel, confirmed before the message is acknowledged: the copy replays
 * exactly the source's sequence, whatever order the broker gives other queues. An entry is the message
 * itself (body, headers, message id) plus these headers.
 */
/** The entry's position in the source's apply sequence: the source's applied count after applying it. */
export const HEADER_LOG_INDEX = 'x-ms2m-log-index';
/** The routing key the message arrived with (the entry itself is sent to the replay queue directly). */
export const HEADER_LOG_ROUTING_KEY = 'x-ms2m-log-routing-key';
/** Put at the end of the apply log when its writer is gone: the copy adopting the stream stops there. */
export const HEADER_END = 'x-ms2m-end';
/**
 * Set on an output published again because the first attempt's confirm never came (the broker connection
 * dropped), or emitted for a lost source that may already have emitted it. The broker may hold both
 * copies; a consumer drops the second by message id. Every other output is published once.
 */
export const HEADER_RESENT = 'x-ms2m-resent';

/** Per-producer high-water marks: the highest sequence number applied from each producer. */
export type Marks = Record<string, number>;

export interface Stamp {
  producer: string;
  seq: number;
  publishedAt?: number;
}

/**
 * Reads the producer stamp of a message. The headers set by the ms2m producer helper win; an AMQP
 * messageId of the form "<producer>:<seq>" is the fallback for producers that cannot set headers.
 */
export function readStamp(headers: Record<string, unknown> | undefined, messageId?: string): Stamp | undefined {
  const producer = headers?.[HEADER_PRODUCER];
  const seq = headers?.[HEADER_SEQ];
  if (typeof producer === 'string' && producer.length > 0 && isSeq(Number(seq))) {
    const at = Number(headers?.[HEADER_PUBLISHED_AT]);
    return { producer, seq: Number(seq), publishedAt: Number.isFinite(at) ? at : undefined };
  }
  if (messageId) {
    const i = messageId.lastIndexOf(':');
    if (i > 0 && isSeq(Number(messageId.slice(i + 1)))) {
      return { producer: messageId.slice(0, i), seq: Number(messageId.slice(i + 1)) };
    }
  }
  return undefined;
}

function isSeq(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0;
}

export type MarkVerdict = 'apply' | 'duplicate' | 'gap';

/** Decides what to do with a stamped message given the marks: skip what was applied, flag a jump. */
export function judge(marks: Marks, stamp: Stamp): MarkVerdict {
  const mark = marks[stamp.producer] ?? 0;
  if (stamp.seq <= mark) return 'duplicate';
  return stamp.seq === mark + 1 ? 'apply' : 'gap';
}

/** JSON with sorted keys, so that equal states have equal digests whatever their insertion order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v instanceof Map) return Object.fromEntries([...v.entries()].sort(([a], [b]) => (String(a) < String(b) ? -1 : 1)));
    if (v && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
}

/** The digest compared at the fence: application state and marks, never identity or role. */
export function stateDigest(appState: unknown, marks: Marks): string {
  return createHash('sha256').update(canonicalJson({ app: appState, marks })).digest('hex');
}

export { CONTROL_QUEUE_ARGS, controlQueueName, replayQueueName } from './names';

// ---- control messages ----------------------------------------------------------------------------

/** Every command that changes an instance carries the migration it belongs to and its epoch. */
export interface Fencing {
  migrationId: string;
  epoch: number;
}

export type ControlCommand =
  | { kind: 'status'; digest?: boolean }
  /** The source: write the apply log to `queue` from the next message it applies on. */
  | ({ kind: 'shadow'; queue: string } & Fencing)
  /** The copy: replay the apply log in `queue`. */
  | ({ kind: 'replay'; queue: string } & Fencing)
  | ({ kind: 'fence' } & Fencing)
  /**
   * The copy: apply the log up to position `upTo` (the fenced source's applied count), nothing beyond.
   * With `waitMs` it answers once it stands there (or when that time is up) rather than at once; with
   * `activateIf` (the fenced source's status) it also takes over in the same command if the handoff is
   * exact by `handoffRefusal`, which saves the downtime window a round trip. An instance that does not
   * know these fields answers at once and stays standby, as before them.
   */
  | ({ kind: 'catch-up'; upTo: number; waitMs?: number; activateIf?: Pick<InstanceStatus, 'instanceId' | 'applied' | 'digest'> } & Fencing)
  | ({ kind: 'activate' } & Fencing)
  /** The source serves alone again: it stops writing the apply log and, if fenced, consumes again. */
  | ({ kind: 'unfence' } & Fencing)
  /** The source is gone: replay all of `queue` up to its end marker, then take over the primary queue. */
  | ({ kind: 'adopt'; queue: string } & Fencing);

export type Role = 'primary' | 'standby';

export interface InstanceStatus {
  instanceId: string;
  service: string;
  /** The topology the instance consumes, so a deploy or a migration can check the spec against it. */
  input: { exchange: string; queue: string };
  role: Role;
  /** Which stream the instance consumes now. */
  consuming: 'primary' | 'replay' | 'none';
  fenced: boolean;
  epoch: number;
  migrationId: string | null;
  marks: Marks;
  digest: string;
  /** Messages applied in the instance's history (a copy's count includes its source's up to the checkpoint): its position in the apply sequence. */
  applied: number;
  /** Messages at or below a producer's mark that were skipped (a redelivery or a producer's resend). */
  skippedDuplicates: number;
  /** Jumps in a producer's sequence: a message that never arrived. */
  gaps: number;
  pending: number;
  /** The replay queue the instance writes its apply log to, while a migration shadows it. */
  applyLog: string | null;
  /** Apply-log entries written (confirmed by the broker). */
  logged: number;
  /** A copy's replay: entries it skipped because its checkpoint already held them. */
  replaySkipped: number;
  /** A copy's replay: positions missing from the apply log. Any makes the handoff inexact (refused). */
  replayGaps: number;
  /** Outputs published and confirmed by the broker. */
  outputsEmitted: number;
  outputsSuppressed: number;
  /** Suppressed outputs a copy keeps until it knows whether the source emitted them (see `adopt`). */
  outputsOwed: number;
  /** Messages applied without a producer id and sequence number, and when the last one came. */
  unstamped: number;
  lastUnstampedAt: number | null;
  /** Wall-clock times of the instance's own transitions, for downtime accounting. */
  fencedAt: number | null;
  activatedAt: number | null;
  /** The state digest the copy had when it took over, for a fence-and-swap that is retried after the swap. */
  activatedDigest: string | null;
  lastPrimaryApplyAt: number | null;
  app: Record<string, unknown>;
}

export interface ControlReply<T = InstanceStatus> {
  ok: boolean;
  error?: string;
  /** Machine-readable reason when ok is false, e.g. 'stale-epoch'. */
  code?: string;
  result?: T;
}

/**
 * Whether an instance at (epoch, migrationId) accepts a command fenced with `cmd`: a newer epoch starts a
 * migration, the same epoch must name the same migration, an older one is stale.
 */
export function acceptFencing(current: { epoch: number; migrationId: string | null }, cmd: Fencing): 'adopt' | 'same' | 'stale' {
  if (cmd.epoch > current.epoch) return 'adopt';
  if (cmd.epoch === current.epoch && cmd.migrationId === current.migrationId) return 'same';
  return 'stale';
}

/** Why a caught-up copy must not take over, or null: it must stand exactly where the fenced source stands. */
export function handoffRefusal(src: Pick<InstanceStatus, 'instanceId' | 'applied' | 'digest'>, cp: Pick<InstanceStatus, 'instanceId' | 'applied' | 'digest' | 'replayGaps'>): string | null {
  if (cp.replayGaps > 0) return `${cp.instanceId} found ${cp.replayGaps} position(s) missing from the apply log`;
  if (cp.applied !== src.applied) return `${cp.instanceId} stands at position ${cp.applied}, the source at ${src.applied}`;
  if (cp.digest !== src.digest) return `the state digest of ${cp.instanceId} differs from ${src.instanceId}'s at position ${src.applied}`;
  return null;
}
