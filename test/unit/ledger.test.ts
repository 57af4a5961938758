import { describe, expect, it } from 'vitest';
import { applyTransfer, initialLedger, ledgerView, transferFor } from '../../examples/ledger/ledger';
import { checkLedger, parseTrace, type TraceEntry } from '../../examples/ledger/oracle';
import type { OutputRecord } from '../../lib/output-log';
import type { Published } from '../../service/producer';

const PREFIX = 'run';
const producer = (i: number) => `${PREFIX}-p${i + 1}`;

/** An interleaving of three producers' messages: 1:2:4 shares, the way the load generator paces them. */
function interleaving(total: number): Array<{ index: number; seq: number }> {
  const order: Array<{ index: number; seq: number }> = [];
  const sent = [0, 0, 0];
  const shares = [1 / 7, 2 / 7, 4 / 7];
  for (let t = 1; order.length < total; t++) {
    for (let i = 0; i < 3 && order.length < total; i++) {
      while (sent[i] < Math.floor(t * shares[i])) order.push({ index: i, seq: ++sent[i] });
    }
  }
  return order;
}

/** Applies `order` on one instance and returns its trace, outputs and final view. */
function run(order: Array<{ index: number; seq: number }>, instance: string, from = 1) {
  const state = initialLedger(0);
  const trace: TraceEntry[] = [];
  const outputs: OutputRecord[] = [];
  for (const m of order) {
    const out = applyTransfer(state, transferFor(m.index, m.seq), producer(m.index), m.seq);
    if (out.n < from) continue;
    trace.push({ n: out.n, producer: out.producer, seq: out.seq, head: out.head, instance });
    outputs.push({ producer: out.producer, seq: out.seq, publishedAt: 0, receivedAt: 0, instance, resent: false, body: JSON.stringify(out) });
  }
  return { trace, outputs, final: ledgerView(state) };
}

const publishedOf = (order: Array<{ index: number; seq: number }>): Published[] => order.map((m) => ({ producer: producer(m.index), seq: m.seq, publishedAt: 0 }));

describe('the ledger', () => {
  it('depends on the order of messages across producers', () => {
    const order = interleaving(300);
    const swapped = [...order];
    // One adjacent inversion between two producers, as the broker can produce between two queues.
    const i = swapped.findIndex((m, k) => k > 100 && swapped[k + 1] && swapped[k + 1].index !== m.index);
    [swapped[i], swapped[i + 1]] = [swapped[i + 1], swapped[i]];
    expect(run(order, 'a').final.head).not.toBe(run(swapped, 'a').final.head);
    // And refusals happen, so order decides balances too, not only the chain.
    expect(run(order, 'a').final.rejected).toBeGreaterThan(10);
  });
});

describe('the ledger oracle', () => {
  const order = interleaving(400);
  const published = publishedOf(order);

  it('accepts a source and a copy that applied the same sequence', () => {
    const src = run(order.slice(0, 300), 'source');
    const copy = run(order, 'copy', 201); // restored at position 200, replayed 201..300, served 301..400
    const r = checkLedger({ trace: [...src.trace, ...copy.trace], published, producerPrefix: PREFIX, outputs: [...src.outputs, ...copy.outputs.filter((o) => JSON.parse(o.body!).n > 300)], final: copy.final });
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ ok: true, positions: 400, compared: 100, divergences: 0, lost: 0, duplicated: 0, outOfOrder: 0, finalStateMatches: true });
    expect(r.outputsChecked).toBe(400);
  });

  it('finds a copy that replayed one pair of messages in another order, even if it was rolled back', () => {
    const swapped = [...order];
    const i = swapped.findIndex((m, k) => k > 250 && swapped[k + 1].index !== m.index);
    [swapped[i], swapped[i + 1]] = [swapped[i + 1], swapped[i]];
    const src = run(order, 'source');
    const copy = run(swapped.slice(0, 300), 'copy', 201);
    const r = checkLedger({ trace: [...src.trace, ...copy.trace], published, producerPrefix: PREFIX, outputs: src.outputs, final: src.final });
    expect(r.ok).toBe(false);
    expect(r.divergences).toBeGreaterThan(0);
    expect(r.problems[0]).toMatch(new RegExp(`^position ${i + 1}: `));
  });

  it('finds a message applied twice, one lost, and an output that the sequence does not compute', () => {
    const twice = [...order.slice(0, 200), order[150], ...order.slice(200)];
    const r = run(twice, 'source');
    expect(checkLedger({ trace: r.trace, published, producerPrefix: PREFIX, outputs: r.outputs, final: r.final })).toMatchObject({ ok: false, duplicated: 1 });
    const lossy = run([...order.slice(0, 200), ...order.slice(201)], 'source');
    expect(checkLedger({ trace: lossy.trace, published, producerPrefix: PREFIX, outputs: lossy.outputs, final: lossy.final })).toMatchObject({ ok: false, lost: 1 });
    const good = run(order, 'source');
    const forged = good.outputs.map((o, k) => (k === 10 ? { ...o, body: JSON.stringify({ ...JSON.parse(o.body!), accepted: !JSON.parse(o.body!).accepted }) } : o));
    expect(checkLedger({ trace: good.trace, published, producerPrefix: PREFIX, outputs: forged, final: good.final })).toMatchObject({ ok: false, outputMismatches: 1 });
  });

  it('allows a killed source a tail its successor never saw, and nothing else', () => {
    const src = run([...order.slice(0, 250), order[260]], 'source'); // applied one message out of turn, then died
    const copy = run(order, 'copy', 201);
    const trace = [...src.trace, ...copy.trace];
    const outputs = [...src.outputs.slice(0, 250), ...copy.outputs.filter((o) => JSON.parse(o.body!).n > 250)];
    expect(checkLedger({ trace, published, producerPrefix: PREFIX, outputs, final: copy.final, killed: ['source'] })).toMatchObject({ ok: true, divergences: 0 });
    expect(checkLedger({ trace, published, producerPrefix: PREFIX, outputs, final: copy.final }).ok).toBe(false);
  });

  it('reads the trace lines the service writes', () => {
    expect(parseTrace('[1,"run-p1",1,"ab","ledger-1"]\n\n[2,"run-p2",1,"cd","ledger-1"]\n')).toEqual([
      { n: 1, producer: 'run-p1', seq: 1, head: 'ab', instance: 'ledger-1' },
      { n: 2, producer: 'run-p2', seq: 1, head: 'cd', instance: 'ledger-1' },
    ]);
  });
});
