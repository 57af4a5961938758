import { describe, expect, it } from 'vitest';
import {
  HEADER_PRODUCER,
  HEADER_SEQ,
  acceptFencing,
  canonicalJson,
  handoffRefusal,
  judge,
  readStamp,
  stateDigest,
} from '../../service/protocol';

describe('producer stamps', () => {
  it('reads producer and sequence from the headers', () => {
    expect(readStamp({ [HEADER_PRODUCER]: 'p1', [HEADER_SEQ]: 7 })).toEqual({ producer: 'p1', seq: 7, publishedAt: undefined });
  });
  it('falls back to a "<producer>:<seq>" messageId', () => {
    expect(readStamp({}, 'orders-7:42')).toEqual({ producer: 'orders-7', seq: 42 });
  });
  it('rejects stamps that cannot order messages', () => {
    expect(readStamp({ [HEADER_PRODUCER]: 'p1', [HEADER_SEQ]: 0 })).toBeUndefined();
    expect(readStamp({ [HEADER_PRODUCER]: '', [HEADER_SEQ]: 3 })).toBeUndefined();
    expect(readStamp({}, 'no-sequence')).toBeUndefined();
    expect(readStamp({}, 'p:1.5')).toBeUndefined();
  });
});

describe('high-water marks', () => {
  it('applies the next message, skips what was applied, and flags a jump', () => {
    const marks = { a: 3 };
    expect(judge(marks, { producer: 'a', seq: 4 })).toBe('apply');
    expect(judge(marks, { producer: 'a', seq: 3 })).toBe('duplicate');
    expect(judge(marks, { producer: 'a', seq: 1 })).toBe('duplicate');
    expect(judge(marks, { producer: 'a', seq: 6 })).toBe('gap');
    expect(judge(marks, { producer: 'b', seq: 1 })).toBe('apply');
  });
});

describe('the handoff', () => {
  const src = { instanceId: 'src', applied: 120, digest: 'd1' };
  it('lets a copy take over only at the source\'s position, with its digest and no position missing', () => {
    expect(handoffRefusal(src, { instanceId: 'cp', applied: 120, digest: 'd1', replayGaps: 0 })).toBeNull();
    expect(handoffRefusal(src, { instanceId: 'cp', applied: 119, digest: 'd1', replayGaps: 0 })).toMatch(/cp stands at position 119, the source at 120/);
    expect(handoffRefusal(src, { instanceId: 'cp', applied: 120, digest: 'd2', replayGaps: 0 })).toMatch(/state digest of cp differs from src's at position 120/);
    // Equal digests do not excuse a hole in the log: the copy skipped what the source applied.
    expect(handoffRefusal(src, { instanceId: 'cp', applied: 120, digest: 'd1', replayGaps: 1 })).toMatch(/1 position\(s\) missing from the apply log/);
  });
});

describe('state digests', () => {
  it('do not depend on key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 2], c: null } })).toBe(canonicalJson({ a: { c: null, d: [1, 2] }, b: 1 }));
    expect(stateDigest({ x: 1, y: 2 }, { p: 1, q: 2 })).toBe(stateDigest({ y: 2, x: 1 }, { q: 2, p: 1 }));
  });
  it('change with the state and with the marks', () => {
    const base = stateDigest({ x: 1 }, { p: 1 });
    expect(stateDigest({ x: 2 }, { p: 1 })).not.toBe(base);
    expect(stateDigest({ x: 1 }, { p: 2 })).not.toBe(base);
    expect(stateDigest([1, 2], {})).not.toBe(stateDigest([2, 1], {}));
  });
});

describe('fencing of control commands', () => {
  it('adopts a newer epoch, accepts its own migration, refuses stale commands', () => {
    const now = { epoch: 3, migrationId: 'm3' };
    expect(acceptFencing(now, { epoch: 4, migrationId: 'm4' })).toBe('adopt');
    expect(acceptFencing(now, { epoch: 3, migrationId: 'm3' })).toBe('same');
    expect(acceptFencing(now, { epoch: 3, migrationId: 'other' })).toBe('stale');
    expect(acceptFencing(now, { epoch: 2, migrationId: 'm2' })).toBe('stale');
  });
});
