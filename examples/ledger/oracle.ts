/**
 * The ledger's test oracle. It judges a run from evidence ms2m did not produce: the apply trace every
 * instance wrote (position, message, resulting chain head), the producers' confirmed log, the output log
 * and the serving instance's final state. It holds when
 * - every instance that applied position n applied the same message there with the same resulting state
 *   (a copy that replays in another order than its source shows here, message by message, whether or not
 *   the migration completed); the one exception is the tail of an instance killed outright, which may
 *   have applied a message its successor never saw (`killed`), and which is then left out from there on;
 * - the positions 1..count of the serving instance form one sequence in which each producer's messages
 *   appear once each, in the order they were published, and every published message appears;
 * - recomputing the ledger along that sequence gives every traced chain head, the final state and every
 *   output the service published.
 */
import type { OrderVerification } from '../../lib/migration';
import type { OutputRecord } from '../../lib/output-log';
import type { Published } from '../../service/producer';
import { canonicalJson } from '../../service/protocol';
import { applyTransfer, initialLedger, ledgerView, transferFor, type LedgerOutput, type LedgerState } from './ledger';

export interface TraceEntry {
  n: number;
  producer: string;
  seq: number;
  head: string;
  instance: string;
}

export function parseTrace(text: string): TraceEntry[] {
  const out: TraceEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [n, producer, seq, head, instance] = JSON.parse(line) as [number, string, number, string, string];
    out.push({ n, producer, seq, head, instance });
  }
  return out;
}

export interface LedgerCheckInput {
  trace: TraceEntry[];
  published: Published[];
  /** Producer ids are `<prefix>-p<i>` with i from 1: the oracle regenerates each message from its stamp. */
  producerPrefix: string;
  outputs: OutputRecord[];
  /** The serving instance's state at the end (its `ledgerView`). */
  final: Omit<LedgerState, 'ballast'>;
  /** Instances killed outright: their last applications may differ from what their successor applied. */
  killed?: string[];
}

/** What the oracle found; the type is the report's (`verification.order`). */
export type LedgerCheck = OrderVerification;

const keyOf = (producer: string, seq: number) => `${producer}#${seq}`;
const same = (a: TraceEntry, b: TraceEntry) => a.producer === b.producer && a.seq === b.seq && a.head === b.head;
const show = (e: TraceEntry) => `${e.producer}#${e.seq} (head ${e.head.slice(0, 12)}) by ${e.instance}`;

export function checkLedger(input: LedgerCheckInput): LedgerCheck {
  const problems: string[] = [];
  const note = (p: string) => {
    if (problems.length < 20) problems.push(p);
  };
  const killed = new Set(input.killed ?? []);
  const byPosition = new Map<number, TraceEntry[]>();
  for (const e of input.trace) byPosition.set(e.n, [...(byPosition.get(e.n) ?? []), e]);

  // Walk the positions in order, comparing every instance that applied each one. Where two disagree, the
  // one that went on the longest (the line that kept serving) is taken as the sequence; the other is
  // reported once and compared no further (after one difference, its chain differs everywhere).
  const reach = new Map<string, number>();
  for (const e of input.trace) reach.set(e.instance, Math.max(e.n, reach.get(e.instance) ?? 0));
  const diverged = new Set<string>();
  const lineage: TraceEntry[] = [];
  let compared = 0;
  let divergences = 0;
  const N = input.final.count;
  const last = Math.max(N, ...byPosition.keys());
  for (let n = 1; n <= last; n++) {
    const entries = (byPosition.get(n) ?? []).filter((e) => !diverged.has(e.instance));
    const candidates = entries.filter((e) => !killed.has(e.instance));
    const truth = [...(candidates.length > 0 ? candidates : entries)].sort((a, b) => (reach.get(b.instance) ?? 0) - (reach.get(a.instance) ?? 0))[0];
    if (!truth) {
      if (n <= N) note(`position ${n}: no instance traced it`);
      continue;
    }
    const agreeing = new Set<string>([truth.instance]);
    for (const e of entries) {
      if (agreeing.has(e.instance) || diverged.has(e.instance)) continue;
      if (same(e, truth)) {
        agreeing.add(e.instance);
        continue;
      }
      diverged.add(e.instance);
      // The killed instance's tail: it applied something its successor did not.
      if (killed.has(e.instance) && !killed.has(truth.instance)) continue;
      divergences++;
      note(`position ${n}: ${show(truth)}, but ${show(e)}`);
    }
    compared += agreeing.size - 1;
    if (n <= N) lineage.push(truth);
  }

  // The sequence against the producers' log: each message once, per producer in publish order.
  const published = new Set(input.published.map((p) => keyOf(p.producer, p.seq)));
  const seen = new Set<string>();
  const lastSeq = new Map<string, number>();
  let duplicated = 0;
  let outOfOrder = 0;
  let unlogged = 0;
  for (const e of lineage) {
    const k = keyOf(e.producer, e.seq);
    if (seen.has(k)) {
      duplicated++;
      note(`position ${e.n}: ${k} applied a second time`);
      continue;
    }
    seen.add(k);
    if (e.seq <= (lastSeq.get(e.producer) ?? 0)) {
      outOfOrder++;
      note(`position ${e.n}: ${k} applied after ${e.producer}#${lastSeq.get(e.producer)}`);
    }
    lastSeq.set(e.producer, Math.max(e.seq, lastSeq.get(e.producer) ?? 0));
    if (!published.has(k)) unlogged++;
  }
  const missing = [...published].filter((k) => !seen.has(k));
  const lost = missing.length;
  if (lost > 0) {
    // Which ones, and who (if anyone) applied them: a tail nobody traced and a hole one instance filled are different bugs.
    const tracedBy = new Map<string, Set<string>>();
    for (const e of input.trace) tracedBy.set(keyOf(e.producer, e.seq), (tracedBy.get(keyOf(e.producer, e.seq)) ?? new Set()).add(e.instance));
    const shown = missing.slice(0, 12).map((k) => `${k.slice(input.producerPrefix.length + 1)}${tracedBy.has(k) ? ` (by ${[...tracedBy.get(k)!].join(', ')})` : ''}`);
    note(`${lost} published messages are not in the serving instance's sequence: ${shown.join(', ')}${lost > shown.length ? ', …' : ''}`);
  }

  // Recompute the ledger along the sequence: every traced head, every output, the final state.
  const state = initialLedger(0);
  const expected = new Map<string, LedgerOutput>();
  let firstHeadMismatch = true;
  for (const e of lineage) {
    if (!e.producer.startsWith(`${input.producerPrefix}-p`)) {
      note(`position ${e.n}: ${e.producer} is not a producer of this run`);
      continue;
    }
    const index = Number(e.producer.slice(input.producerPrefix.length + 2)) - 1;
    const out = applyTransfer(state, transferFor(index, e.seq), e.producer, e.seq);
    if (out.head !== e.head && firstHeadMismatch) {
      firstHeadMismatch = false;
      note(`position ${e.n}: the traced state differs from the ledger recomputed along the sequence`);
    }
    expected.set(keyOf(e.producer, e.seq), out);
  }
  const finalStateMatches = lineage.length === N && canonicalJson(ledgerView(state)) === canonicalJson(input.final);
  if (!finalStateMatches) note('the final state differs from the ledger recomputed from the producers\' messages in the traced order');

  let outputsChecked = 0;
  let outputMismatches = 0;
  for (const o of input.outputs) {
    if (!published.has(keyOf(o.producer, o.seq)) || o.body === undefined) continue;
    outputsChecked++;
    const want = expected.get(keyOf(o.producer, o.seq));
    if (!want || canonicalJson(want) !== canonicalJson(JSON.parse(o.body))) {
      outputMismatches++;
      note(`output for ${o.producer}#${o.seq} from ${o.instance} is not what the sequence computes`);
    }
  }

  const ok = problems.length === 0 && divergences === 0 && lost === 0 && duplicated === 0 && outOfOrder === 0 && outputMismatches === 0 && finalStateMatches;
  return { ok, problems, positions: lineage.length, compared, divergences, lost, duplicated, outOfOrder, unlogged, outputsChecked, outputMismatches, finalStateMatches };
}
