import type { ConfirmChannel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import type { Outgoing } from '../../service/core';
import { InputWindow, MAX_WINDOW, MIN_WINDOW, windowFor } from '../../service/input-window';
import { Outbox } from '../../service/outbox';
import { HEADER_RESENT } from '../../service/protocol';

type Confirm = (err: Error | null) => void;

/** A confirm channel that records what was published and confirms only when the test says so. */
class FakeChannel {
  published: Array<{ routingKey: string; headers: Record<string, unknown>; confirm: Confirm }> = [];
  refuse = false;

  publish(_exchange: string, routingKey: string, _content: Buffer, options: { headers: Record<string, unknown> }, cb: Confirm): boolean {
    if (this.refuse) throw new Error('Channel closed');
    this.published.push({ routingKey, headers: { ...options.headers }, confirm: cb });
    return true;
  }

  ack(...keys: string[]): void {
    for (const k of keys) this.published.find((p) => p.routingKey === k)!.confirm(null);
  }

  get keys(): string[] {
    return this.published.map((p) => p.routingKey);
  }

  asChannel(): ConfirmChannel {
    return this as unknown as ConfirmChannel;
  }
}

const output = (key: string): Outgoing => ({ exchange: 'out', routingKey: key, content: Buffer.from(key), headers: {} });
const logEntry = (key: string): Outgoing => ({ ...output(key), exchange: '', log: true });

function setup() {
  const confirmed: string[] = [];
  const broken: string[] = [];
  const box = new Outbox({ confirmed: (b) => confirmed.push(...b.map((o) => o.routingKey)), broken: (e) => broken.push(e.message) });
  const ch = new FakeChannel();
  box.attach(ch.asChannel());
  return { box, ch, confirmed, broken };
}

describe('the outbox', () => {
  it('publishes without waiting for the confirm of what went before', () => {
    const { box, ch } = setup();
    box.send([logEntry('l1'), output('o1')]);
    box.send([output('o2')]);
    expect(ch.keys).toEqual(['l1', 'o1', 'o2']);
    expect(box.size).toBe(3);
  });

  it('acknowledges an input only once everything published before it is confirmed, in the order asked', () => {
    const { box, ch, confirmed } = setup();
    const acked: string[] = [];
    box.send([logEntry('l1'), output('o1')]);
    box.afterConfirms(() => acked.push('in1'));
    box.send([logEntry('l2')]);
    box.afterConfirms(() => acked.push('in2'));
    ch.ack('o1', 'l2');
    expect(acked).toEqual([]);
    // The broker may confirm out of order; the count of what is written follows publication order.
    expect(confirmed).toEqual([]);
    ch.ack('l1');
    expect(acked).toEqual(['in1', 'in2']);
    expect(confirmed).toEqual(['l1', 'o1', 'l2']);
  });

  it('acknowledges at once when nothing is unconfirmed', () => {
    const { box } = setup();
    let acked = false;
    box.afterConfirms(() => (acked = true));
    expect(acked).toBe(true);
  });

  it('on a nack keeps everything unconfirmed, drops the waiting acknowledgements, and sends it all again in order on the next channel', () => {
    const { box, ch, broken } = setup();
    const acked: string[] = [];
    box.send([logEntry('l1'), output('o1'), output('o2')]);
    box.afterConfirms(() => acked.push('in1'));
    ch.ack('l1');
    ch.published[1].confirm(new Error('message nacked'));
    expect(broken).toEqual(['message nacked']);
    // Confirms of the broken channel no longer count.
    ch.ack('o2');
    expect(box.size).toBe(2);
    const next = new FakeChannel();
    box.attach(next.asChannel());
    expect(next.keys).toEqual(['o1', 'o2']);
    expect(next.published.every((p) => p.headers[HEADER_RESENT] === true)).toBe(true);
    next.ack('o1', 'o2');
    expect(box.size).toBe(0);
    expect(acked).toEqual([]);
  });

  it('marks only outputs as sent again: a log entry is placed by its position', () => {
    const { box } = setup();
    box.send([logEntry('l1'), output('o1')]);
    box.detach();
    const next = new FakeChannel();
    box.attach(next.asChannel());
    expect(next.published.map((p) => p.headers[HEADER_RESENT])).toEqual([undefined, true]);
  });

  it('holds what is sent while detached, and sends it first-time on the next channel', () => {
    const { box } = setup();
    box.detach();
    box.send([output('o1')]);
    const next = new FakeChannel();
    box.attach(next.asChannel());
    expect(next.keys).toEqual(['o1']);
    expect(next.published[0].headers[HEADER_RESENT]).toBeUndefined();
  });

  it('reports a channel that refuses a publish as broken, and keeps the message', () => {
    const { box, ch, broken } = setup();
    ch.refuse = true;
    box.send([output('o1')]);
    expect(broken).toEqual(['Channel closed']);
    expect(box.size).toBe(1);
  });

  it('gives a restored copy what the source had unconfirmed, and lets the channel go', () => {
    const { box, ch } = setup();
    let acked = false;
    box.send([logEntry('l1'), output('o1')]);
    box.afterConfirms(() => (acked = true));
    expect(box.take().map((o) => o.routingKey)).toEqual(['l1', 'o1']);
    ch.ack('l1', 'o1');
    box.send([output('o2')]);
    expect(ch.keys).toEqual(['l1', 'o1']);
    expect(acked).toBe(false);
  });

  it('is settled once everything is confirmed, and not if the channel breaks or the time runs out', async () => {
    const { box, ch } = setup();
    expect(await box.settled(10)).toBe(true);
    box.send([output('o1')]);
    const waiting = box.settled(1000);
    ch.ack('o1');
    expect(await waiting).toBe(true);
    box.send([output('o2')]);
    expect(await box.settled(20)).toBe(false);
    const broken = box.settled(1000);
    ch.published[1].confirm(new Error('message nacked'));
    expect(await broken).toBe(false);
  });
});

describe('the input window', () => {
  it('holds about 5 ms of waiting work plus the two a pipeline needs, between 3 and 64 deliveries', () => {
    expect(windowFor(0)).toBe(MAX_WINDOW);
    expect(windowFor(0.1)).toBe(52);
    expect(windowFor(2)).toBe(4);
    expect(windowFor(10)).toBe(MIN_WINDOW);
    expect(MIN_WINDOW).toBe(3);
  });

  it('starts small and widens once a fast service has been measured', () => {
    const w = new InputWindow();
    expect(w.size).toBe(MIN_WINDOW);
    for (let i = 0; i < 31; i++) w.record(0.05);
    expect(w.due()).toBeNull();
    w.record(0.05);
    expect(w.due()).toBe(MAX_WINDOW);
    expect(w.due()).toBeNull();
  });

  it('narrows again when the work grows, but not for a change under half', () => {
    const w = new InputWindow();
    for (let i = 0; i < 40; i++) w.record(0.05);
    w.due();
    for (let i = 0; i < 200; i++) w.record(0.12);
    expect(w.due()).toBeNull();
    for (let i = 0; i < 200; i++) w.record(10);
    expect(w.due()).toBe(MIN_WINDOW);
  });

  it('goes from 3 to 4 for 2 ms of work, and does not flip back for work near the boundary', () => {
    const w = new InputWindow();
    for (let i = 0; i < 40; i++) w.record(2.2);
    expect(w.due()).toBe(4);
    // 2.6 ms alone would call for 3, but a third less work would still want 4: not worth re-subscribing.
    for (let i = 0; i < 64; i++) w.record(2.6);
    expect(windowFor(2.6)).toBe(3);
    expect(w.due()).toBeNull();
  });

  it('resizes at most once every 32 deliveries', () => {
    const w = new InputWindow();
    for (let i = 0; i < 32; i++) w.record(0.05);
    expect(w.due()).toBe(MAX_WINDOW);
    for (let i = 0; i < 31; i++) w.record(10);
    expect(w.due()).toBeNull();
    w.record(10);
    expect(w.due()).toBe(MIN_WINDOW);
  });

  it('never changes a prefetch the service chose', () => {
    const w = new InputWindow(7);
    for (let i = 0; i < 100; i++) w.record(0.01);
    expect(w.size).toBe(7);
    expect(w.due()).toBeNull();
  });
});
