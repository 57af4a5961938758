import { describe, expect, it } from 'vitest';
import { percentile, verify } from '../../lib/verify';
import type { OutputRecord } from '../../lib/output-log';

const pub = (producer: string, seq: number, publishedAt: number) => ({ producer, seq, publishedAt });
const out = (producer: string, seq: number, publishedAt: number, receivedAt: number): OutputRecord => ({ producer, seq, publishedAt, receivedAt, instance: 'i', resent: false });

describe('verification from the producer and output logs', () => {
  it('counts nothing wrong when every message has exactly one output', () => {
    const published = [pub('a', 1, 0), pub('a', 2, 10), pub('b', 1, 20)];
    const outputs = [out('a', 1, 0, 5), out('a', 2, 10, 15), out('b', 1, 20, 26)];
    const v = verify({ published, outputs, from: 8, to: 30, appliedByProducer: { a: 2, b: 1 }, finalStateMatchesProducers: true });
    expect(v).toMatchObject({ published: 3, processed: 3, lost: 0, duplicated: 0, duplicateOutputs: 0 });
    expect(v.maxE2eLatencyMs).toBe(6);
    expect(v.baselineMaxE2eLatencyMs).toBe(5);
  });
  it('finds lost messages, duplicate outputs and double applications', () => {
    const published = [pub('a', 1, 0), pub('a', 2, 10), pub('a', 3, 20)];
    const outputs = [out('a', 1, 0, 5), out('a', 1, 0, 6), out('a', 3, 20, 25), out('zz', 9, 0, 1)];
    const v = verify({ published, outputs, from: 0, to: 100, appliedByProducer: { a: 3 }, finalStateMatchesProducers: false });
    expect(v.lost).toBe(1);
    expect(v.duplicateOutputs).toBe(1);
    // a:2 never produced an output yet 3 applications were counted: one message was applied twice.
    expect(v.duplicated).toBe(1);
    expect(v.processed).toBe(2);
  });
  it('measures the longest time a waiting message went unserved', () => {
    const published = [pub('a', 1, 0), pub('a', 2, 100), pub('a', 3, 120), pub('a', 4, 900)];
    const outputs = [out('a', 1, 0, 2), out('a', 2, 100, 102), out('a', 3, 120, 600), out('a', 4, 900, 903)];
    const v = verify({ published, outputs, from: 50, to: 1000, appliedByProducer: { a: 4 }, finalStateMatchesProducers: true });
    // a:3 was published at 120 and served at 600; the quiet time before a:4 was published is not downtime.
    expect(v.observedDowntimeMs).toBe(480);
  });
  it('computes nearest-rank percentiles', () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 99)).toBe(99);
    expect(percentile([], 99)).toBe(0);
  });
});
