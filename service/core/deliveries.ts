/**
 * What an instance does with each delivery: from the primary queue it skips what its marks say it
 * applied; from the replay queue (the source's apply log) it applies each entry at exactly its position,
 * skipping what its checkpoint already holds and counting the positions missing.
 *
 * A delivery is handled in two steps around the application's own apply: `admit` decides and does the
 * bookkeeping that comes before it, `settle` advances the position and routes the outputs. The shell
 * re-reads its hostname between the two, because a checkpoint can be taken in the middle of the apply:
 * the restored copy finishes that apply and must route its outputs as a copy.
 */
import { HEADER_END, HEADER_LOG_INDEX, HEADER_LOG_ROUTING_KEY, HEADER_RESENT, judge, readStamp, type Stamp } from '../protocol';
import { logEntryOf, owedKey, type Outgoing, type RawMessage } from './outgoing';
import type { Context, CoreState, Effect } from './state';

/** A message as the application's apply sees it. */
export interface InputMessage {
  body: Buffer;
  routingKey: string;
  stamp: Stamp | undefined;
  headers: Record<string, unknown>;
}

export interface Incoming {
  from: 'primary' | 'replay';
  raw: RawMessage;
  /** What the application applies: a log entry's own headers removed and its original routing key restored. */
  message: InputMessage;
  /** A log entry's position in the source's apply sequence (null: none, or not a positive integer). */
  index: number | null;
  /** The apply log's end marker, naming the migration whose log it ends. */
  end: string | null;
}

export type Verdict =
  | { kind: 'apply' }
  /** Already applied: at or below the producer's mark, or at or below the copy's position in the log. */
  | { kind: 'skip'; by: 'marks' | 'position' }
  /** Not to be applied by anyone here: a log entry without a position, or past the fenced source's last. */
  | { kind: 'drop'; why: 'no-position' | 'past-fence' }
  /** The end marker of an apply log (this migration's, or a stale one). */
  | { kind: 'end'; ours: boolean };

const LOG_HEADERS = [HEADER_LOG_INDEX, HEADER_LOG_ROUTING_KEY];

export function readIncoming(from: Incoming['from'], raw: RawMessage): Incoming {
  if (from === 'primary') {
    const stamp = readStamp(raw.headers, raw.messageId);
    return { from, raw, message: { body: raw.content, routingKey: raw.routingKey, stamp, headers: raw.headers }, index: null, end: null };
  }
  const end = raw.headers[HEADER_END];
  const index = Number(raw.headers[HEADER_LOG_INDEX]);
  const headers = Object.fromEntries(Object.entries(raw.headers).filter(([k]) => !LOG_HEADERS.includes(k)));
  const stamp = readStamp(headers, raw.messageId);
  const routingKey = String(raw.headers[HEADER_LOG_ROUTING_KEY] ?? '');
  return {
    from,
    raw,
    message: { body: raw.content, routingKey, stamp, headers },
    index: Number.isSafeInteger(index) && index > 0 ? index : null,
    end: end ? String(end) : null,
  };
}

/** What the current state says to do with a delivery. Changes nothing. */
export function classify(s: CoreState, d: Incoming): Verdict {
  if (d.from === 'primary') {
    const stamp = d.message.stamp;
    return stamp && judge(s.marks, stamp) === 'duplicate' ? { kind: 'skip', by: 'marks' } : { kind: 'apply' };
  }
  if (d.end !== null) return { kind: 'end', ours: d.end === s.migrationId };
  if (d.index === null) return { kind: 'drop', why: 'no-position' };
  // Already in the checkpoint, or written twice after a lost confirm.
  if (d.index <= s.applied) return { kind: 'skip', by: 'position' };
  if (s.upTo !== null && d.index > s.upTo) return { kind: 'drop', why: 'past-fence' };
  return { kind: 'apply' };
}

/**
 * Decides what to do with a delivery and records what comes before the apply. For `apply`, `effects` are
 * only log lines; the shell then applies the message, re-reads its identity and calls `settle`. Otherwise
 * `effects` is all there is to do.
 */
export function admit(s: CoreState, d: Incoming, ctx: Context): { verdict: Verdict; effects: Effect[] } {
  const verdict = classify(s, d);
  const effects: Effect[] = [];
  const stamp = d.message.stamp;
  switch (verdict.kind) {
    case 'skip':
      if (verdict.by === 'marks') {
        s.counts.skippedDuplicates++;
        const owed = s.role === 'primary' && stamp ? s.owed.get(owedKey(stamp.producer, stamp.seq)) : undefined;
        if (owed) {
          // Adopted from a dead source that never acknowledged this message: its output was never emitted.
          s.owed.delete(owedKey(stamp!.producer, stamp!.seq));
          // The source may have emitted them and died before acknowledging the input.
          for (const o of owed) o.headers[HEADER_RESENT] = true;
          effects.push({ kind: 'publish', out: owed });
        }
        effects.push({ kind: 'ack' });
      } else {
        s.counts.replaySkipped++;
        effects.push({ kind: 'ack' }, ...caughtUp(s));
      }
      break;
    case 'drop':
      if (verdict.why === 'no-position') effects.push({ kind: 'log', line: 'a message without a log position in the replay queue was skipped' }, { kind: 'ack' });
      else effects.push({ kind: 'ack' }, ...caughtUp(s));
      break;
    case 'end':
      if (verdict.ours) {
        // Sealed before or after the adopt command arrived: whichever comes second takes over.
        if (s.adopting) effects.push(...takeOver(s, ctx));
        else s.sealed = true;
      }
      effects.push({ kind: 'ack' });
      break;
    case 'apply':
      if (d.from === 'primary') {
        if (!stamp) {
          s.counts.unstamped++;
          s.lastUnstampedAt = ctx.now;
        } else if (judge(s.marks, stamp) === 'gap') {
          s.counts.gaps++;
          effects.push({ kind: 'log', line: `gap from ${stamp.producer}: expected ${(s.marks[stamp.producer] ?? 0) + 1}, got ${stamp.seq}` });
        }
      } else if (d.index! > s.applied + 1) {
        // Something the source applied is not in its log: the copy cannot follow exactly, and the fence will say so.
        s.counts.replayGaps++;
        effects.push({ kind: 'log', line: `apply log ${s.replayQueue}: positions ${s.applied + 1}..${d.index! - 1} are missing` });
      }
      break;
  }
  return { verdict, effects };
}

/**
 * The application applied an admitted message and produced `outputs`: advance the marks and the position,
 * then publish (a serving primary: its log entry first, so an output the broker routed implies its entry
 * is in the log) or suppress (a copy).
 */
export function settle(s: CoreState, d: Incoming, outputs: Outgoing[], now: number): Effect[] {
  const stamp = d.message.stamp;
  if (stamp) s.marks[stamp.producer] = stamp.seq;
  if (d.from === 'replay') {
    s.applied = d.index!;
    suppress(s, stamp, outputs);
    return [{ kind: 'ack' }, ...caughtUp(s)];
  }
  s.applied++;
  s.lastPrimaryApplyAt = now;
  if (s.role !== 'primary') {
    suppress(s, stamp, outputs);
    return [{ kind: 'ack' }];
  }
  const out = s.applyLog ? [logEntryOf(s.applyLog, d.raw, s.applied), ...outputs] : outputs;
  return [{ kind: 'publish', out }, { kind: 'ack' }];
}

/** A copy's outputs: counted, and kept in case the source dies without having emitted them. */
function suppress(s: CoreState, stamp: Stamp | undefined, outputs: Outgoing[]): void {
  s.counts.outputsSuppressed += outputs.length;
  if (stamp) s.owed.set(owedKey(stamp.producer, stamp.seq), outputs);
}

/** A copy at the fenced source's position stops reading the log. */
export function caughtUp(s: CoreState): Effect[] {
  if (s.upTo === null || s.replayQueue === null || s.applied < s.upTo) return [];
  s.replayQueue = null;
  return [{ kind: 'stop-replay' }];
}

/** The end of a sealed apply log reached while adopting: everything the source logged is applied. */
export function takeOver(s: CoreState, ctx: Context): Effect[] {
  s.replayQueue = null;
  s.adopting = false;
  s.sealed = false;
  s.activatedDigest = ctx.digest();
  s.role = 'primary';
  s.upTo = null;
  s.activatedAt = ctx.now;
  return [
    { kind: 'stop-replay' },
    { kind: 'consume-primary' },
    { kind: 'activated' },
    { kind: 'log', line: `adopted the stream of a lost source: consuming ${s.inputQueue}, ${s.owed.size} outputs still owed` },
  ];
}
