import { describe, expect, it } from 'vitest';
import { admit, becomeCopy, classify, command, createCore, outputOf, readIncoming, settle, streams, withDigest, type CoreState, type RawMessage } from '../../service/core';
import { HEADER_END, HEADER_LOG_INDEX, HEADER_LOG_ROUTING_KEY, HEADER_PRODUCER, HEADER_RESENT, HEADER_SEQ } from '../../service/protocol';

const ctx = { now: 1000, digest: () => 'd' };
const stamped = (producer: string, seq: number): RawMessage => ({
  content: Buffer.from('x'),
  routingKey: 'ev',
  headers: { [HEADER_PRODUCER]: producer, [HEADER_SEQ]: seq },
  messageId: `${producer}:${seq}`,
});
const entry = (index: number, producer = 'p', seq = index): RawMessage => ({
  ...stamped(producer, seq),
  routingKey: 'ms2m.replay.s.m1',
  headers: { [HEADER_PRODUCER]: producer, [HEADER_SEQ]: seq, [HEADER_LOG_INDEX]: index, [HEADER_LOG_ROUTING_KEY]: 'ev' },
});
const fencing = { migrationId: 'm1', epoch: 1 };

function copyAt(applied: number, marks: Record<string, number> = { p: applied }): CoreState {
  const s = createCore('src', 'q');
  s.applied = applied;
  s.marks = marks;
  command(s, { kind: 'shadow', queue: 'R', ...fencing }, ctx);
  becomeCopy(s, 'copy', []);
  command(s, { kind: 'replay', queue: 'R', ...fencing }, ctx);
  return s;
}

describe('deliveries', () => {
  it('from the primary queue: skip what the marks hold, apply the rest (a jump is counted, not refused)', () => {
    const s = createCore('src', 'q');
    s.marks = { p: 5 };
    expect(classify(s, readIncoming('primary', stamped('p', 5)))).toEqual({ kind: 'skip', by: 'marks' });
    expect(classify(s, readIncoming('primary', stamped('p', 6)))).toEqual({ kind: 'apply' });
    const gap = admit(s, readIncoming('primary', stamped('p', 9)), ctx);
    expect(gap.verdict).toEqual({ kind: 'apply' });
    expect(s.counts.gaps).toBe(1);
  });

  it('from the apply log: apply at exactly its position, skip what the checkpoint holds, drop past the fence', () => {
    const s = copyAt(3);
    expect(classify(s, readIncoming('replay', entry(3)))).toEqual({ kind: 'skip', by: 'position' });
    expect(classify(s, readIncoming('replay', entry(4)))).toEqual({ kind: 'apply' });
    expect(classify(s, readIncoming('replay', { ...entry(4), headers: {} }))).toEqual({ kind: 'drop', why: 'no-position' });
    s.upTo = 4;
    expect(classify(s, readIncoming('replay', entry(5)))).toEqual({ kind: 'drop', why: 'past-fence' });
    // The entry's routing key is the message's, its own headers are gone.
    const d = readIncoming('replay', entry(4));
    expect(d.message.routingKey).toBe('ev');
    expect(Object.keys(d.message.headers).sort()).toEqual([HEADER_PRODUCER, HEADER_SEQ].sort());
  });

  it('a copy applies an entry at its index, suppresses its outputs, and stops reading at the fenced position', () => {
    const s = copyAt(3);
    s.upTo = 4;
    const d = readIncoming('replay', entry(4));
    expect(admit(s, d, ctx).verdict.kind).toBe('apply');
    const effects = settle(s, d, [outputOf('out', 'r', {}, d.message.stamp, 'copy', 0)], 1001);
    expect(effects).toEqual([{ kind: 'ack' }, { kind: 'stop-replay' }]);
    expect(s.applied).toBe(4);
    expect(s.counts.outputsSuppressed).toBe(1);
    expect(s.owed.size).toBe(1);
    expect(s.replayQueue).toBeNull();
  });

  it('counts a missing position in the log', () => {
    const s = copyAt(3);
    admit(s, readIncoming('replay', entry(6)), ctx);
    expect(s.counts.replayGaps).toBe(1);
  });

  it('a shadowed source publishes the log entry before the outputs', () => {
    const s = createCore('src', 'q');
    command(s, { kind: 'shadow', queue: 'R', ...fencing }, ctx);
    const d = readIncoming('primary', stamped('p', 1));
    admit(s, d, ctx);
    const [publish] = settle(s, d, [outputOf('out', 'r', {}, d.message.stamp, 'src', 0)], 1001);
    expect(publish.kind === 'publish' && publish.out.map((o) => [o.log ?? false, o.headers[HEADER_LOG_INDEX]])).toEqual([
      [true, 1],
      [false, undefined],
    ]);
  });

  it('the end marker of this migration takes over when adopting; a stale one is only acknowledged', () => {
    const s = copyAt(2);
    const end = (m: string): RawMessage => ({ content: Buffer.from('{}'), routingKey: 'R', headers: { [HEADER_END]: m } });
    expect(admit(s, readIncoming('replay', end('m0')), ctx).effects).toEqual([{ kind: 'ack' }]);
    command(s, { kind: 'adopt', queue: 'R', ...fencing }, ctx);
    const { effects } = admit(s, readIncoming('replay', end('m1')), ctx);
    expect(effects.map((e) => e.kind)).toEqual(['stop-replay', 'consume-primary', 'activated', 'log', 'ack']);
    expect(s.role).toBe('primary');
    expect(s.activatedDigest).toBe('d');
  });

  it('an adopted stream re-emits, flagged, the outputs the dead source may not have emitted', () => {
    const s = copyAt(0, {});
    const d = readIncoming('replay', entry(1));
    admit(s, d, ctx);
    settle(s, d, [outputOf('out', 'r', {}, d.message.stamp, 'copy', 0)], 1);
    s.role = 'primary';
    const { effects } = admit(s, readIncoming('primary', stamped('p', 1)), ctx);
    expect(effects[0].kind === 'publish' && effects[0].out[0].headers[HEADER_RESENT]).toBe(true);
    expect(s.owed.size).toBe(0);
  });
});

describe('control commands', () => {
  it('refuses a stale epoch and commands for the wrong role', () => {
    const s = createCore('src', 'q');
    command(s, { kind: 'shadow', queue: 'R', ...fencing }, ctx);
    expect(command(s, { kind: 'fence', migrationId: 'm0', epoch: 0 }, ctx).reply).toMatchObject({ ok: false, code: 'stale-epoch' });
    expect(command(s, { kind: 'replay', queue: 'R', ...fencing }, ctx).reply).toEqual({ ok: false, code: 'wrong-role', error: 'src: only a restored copy replays' });
  });

  it('fences once: stop consuming (requeue what was not started), then confirm everything', () => {
    const s = createCore('src', 'q');
    expect(command(s, { kind: 'fence', ...fencing }, ctx)).toEqual({ effects: [{ kind: 'stop-primary' }, { kind: 'confirm-all' }], reply: { ok: true, digest: true } });
    expect(command(s, { kind: 'fence', ...fencing }, ctx).effects).toEqual([{ kind: 'confirm-all' }]);
    expect(streams(s).primary).toBe(false);
    expect(command(s, { kind: 'unfence', ...fencing }, ctx).effects.map((e) => e.kind)).toEqual(['consume-primary', 'log']);
    expect(streams(s).primary).toBe(true);
  });

  it('a copy catches up to the fenced position before it may activate; the digest comes once it stopped reading', () => {
    const s = copyAt(3);
    expect(command(s, { kind: 'activate', ...fencing }, ctx).reply).toMatchObject({ ok: false, code: 'still-replaying' });
    const behind = command(s, { kind: 'catch-up', upTo: 5, ...fencing }, ctx);
    expect(behind).toEqual({ effects: [], reply: { ok: true, digest: 'caught-up' } });
    expect(withDigest(s, behind.reply as { digest: 'caught-up' })).toBe(false);
    // The last entry is applied while the reply is on its way: it must then carry the digest.
    const last = readIncoming('replay', entry(5));
    admit(s, last, ctx);
    s.applied = 4;
    settle(s, last, [], 1);
    expect(withDigest(s, behind.reply as { digest: 'caught-up' })).toBe(true);
    expect(command(s, { kind: 'catch-up', upTo: 5, ...fencing }, ctx)).toEqual({ effects: [{ kind: 'stop-replay' }], reply: { ok: true, digest: 'caught-up' } });
    const activate = command(s, { kind: 'activate', ...fencing }, ctx);
    expect(activate.effects.map((e) => e.kind)).toEqual(['drop-buffered-replay', 'consume-primary', 'activated', 'log']);
    expect(s.role).toBe('primary');
    // A retried catch-up after the swap reports the swap.
    s.activatedAt = 2000;
    expect(command(s, { kind: 'catch-up', upTo: 5, ...fencing }, ctx).reply).toEqual({ ok: true, digest: true });
  });

  it('a restored copy keeps its position, marks and fencing, and owes what its source had not confirmed', () => {
    const s = createCore('src', 'q');
    s.applied = 7;
    s.marks = { p: 7 };
    command(s, { kind: 'shadow', queue: 'R', ...fencing }, ctx);
    const pending = outputOf('out', 'r', {}, { producer: 'p', seq: 7 }, 'src', 0);
    expect(becomeCopy(s, 'copy', [pending, { ...pending, log: true }])).toBe('restored copy of src: standby, outputs suppressed');
    expect(s).toMatchObject({ identity: 'copy', role: 'standby', applied: 7, marks: { p: 7 }, epoch: 1, migrationId: 'm1', applyLog: null });
    expect([...s.owed.keys()]).toEqual(['p#7']);
  });
});
