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
/** Set on the cut marker that Prepare publishes through the service's input exchange. */
export const HEADER_CUT = 'x-ms2m-cut';
/** Put at the end of a sealed replay queue: everything published before the seal lies before it. */
export const HEADER_END = 'x-ms2m-end';

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

/** True when `marks` has reached `target` for every producer in `target`. */
export function reached(marks: Marks, target: Marks): boolean {
  return Object.entries(target).every(([p, seq]) => (marks[p] ?? 0) >= seq);
}

/** How many messages `behind` still has to apply to reach `ahead`. */
export function lagBetween(ahead: Marks, behind: Marks): number {
  let lag = 0;
  for (const [p, seq] of Object.entries(ahead)) lag += Math.max(0, seq - (behind[p] ?? 0));
  return lag;
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
  | ({ kind: 'replay'; queue: string; bound: Marks } & Fencing)
  | ({ kind: 'bound'; bound: Marks } & Fencing)
  | ({ kind: 'fence' } & Fencing)
  | ({ kind: 'catch-up'; target: Marks } & Fencing)
  | ({ kind: 'activate' } & Fencing)
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
  applied: number;
  skippedDuplicates: number;
  gaps: number;
  pending: number;
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

export interface CutReply {
  migrationId: string;
  instanceId: string;
  marks: Marks;
  appliedAt: number;
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
