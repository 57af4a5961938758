/** At-least-once publishing with stable stamps, against a fake confirm channel. */
import { EventEmitter } from 'node:events';
import type * as amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { Redeliveries } from '../../lib/output-log';
import { StampingProducer, type Published } from '../../service/producer';

interface Sent {
  seq: number;
  messageId: string;
  publishedAt: number;
  cb: (err: Error | null) => void;
}

class FakeChannel extends EventEmitter {
  sent: Sent[] = [];
  closed = false;

  publish(_exchange: string, _key: string, _content: Buffer, options: amqp.Options.Publish, cb: (err: Error | null) => void): boolean {
    if (this.closed) throw new Error('Channel closed');
    const h = options.headers!;
    this.sent.push({ seq: h['x-ms2m-seq'], messageId: options.messageId!, publishedAt: h['x-ms2m-published-at'], cb });
    return true;
  }

  ack(seq: number): void {
    this.sent.find((s) => s.seq === seq)!.cb(null);
  }

  async close(): Promise<void> {
    this.lose();
  }

  /** What amqplib does when the connection drops: every unconfirmed publish fails, then 'close'. */
  lose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sent) s.cb(new Error('channel closed'));
    this.emit('close');
  }
}

const asChannel = (c: FakeChannel) => c as unknown as amqp.ConfirmChannel;
const tick = () => new Promise((r) => setTimeout(r, 0));

function producerWithChannels() {
  const channels = [new FakeChannel()];
  const producer = new StampingProducer(asChannel(channels[0]), 'p', 'x', 0, async () => {
    channels.push(new FakeChannel());
    return asChannel(channels[channels.length - 1]);
  });
  const published: Published[] = [];
  const publish = (n: number) => {
    for (let i = 0; i < n; i++) void producer.publish('k', { i }).then((p) => published.push(p), () => undefined);
  };
  return { channels, producer, published, publish };
}

describe('stamping producer', () => {
  it('reports confirmed messages once each, in sequence order, whatever order the confirms come in', async () => {
    const { channels, published, publish } = producerWithChannels();
    publish(3);
    channels[0].ack(2);
    channels[0].ack(3);
    await tick();
    expect(published).toEqual([]);
    channels[0].ack(1);
    await tick();
    expect(published.map((p) => p.seq)).toEqual([1, 2, 3]);
  });

  it('sends what was not confirmed again after a lost channel, with the same stamps and in order, before anything newer', async () => {
    const { channels, producer, published, publish } = producerWithChannels();
    publish(3);
    channels[0].ack(1);
    const first = channels[0].sent.map((s) => ({ ...s, cb: undefined }));
    channels[0].lose();
    publish(1);
    await tick();
    expect(channels).toHaveLength(2);
    expect(channels[1].sent.map((s) => s.seq)).toEqual([2, 3, 4]);
    expect(channels[1].sent.slice(0, 2).map((s) => ({ ...s, cb: undefined }))).toEqual(first.slice(1));
    for (const seq of [2, 3, 4]) channels[1].ack(seq);
    await tick();
    expect(published.map((p) => p.seq)).toEqual([1, 2, 3, 4]);
    expect(producer.republished).toBe(2);
  });

  it('treats a nack like a lost channel, so no later message overtakes the retry', async () => {
    const { channels, published, publish } = producerWithChannels();
    publish(3);
    channels[0].sent[0].cb(new Error('message nacked'));
    await tick();
    expect(channels[0].closed).toBe(true);
    expect(channels[1].sent.map((s) => s.seq)).toEqual([1, 2, 3]);
    for (const seq of [1, 2, 3]) channels[1].ack(seq);
    await tick();
    expect(published.map((p) => p.seq)).toEqual([1, 2, 3]);
  });

  it('close() waits for confirms, then gives up on the rest and says how many', async () => {
    const { channels, producer, publish } = producerWithChannels();
    publish(2);
    const results = [producer.publish('k', 3).then(() => 'ok', () => 'failed')];
    channels[0].ack(1);
    channels[0].ack(3);
    expect(await producer.close(50)).toBe(1);
    // 3 was confirmed, so the broker owns it even though 2 before it was not.
    expect(await results[0]).toBe('ok');
    await expect(producer.publish('k', 4)).rejects.toThrow(/closed/);
  });

  it('without a way to reopen, a lost channel fails what was not confirmed', async () => {
    const ch = new FakeChannel();
    const producer = new StampingProducer(asChannel(ch), 'p', 'x');
    const pending = producer.publish('k', 1);
    ch.lose();
    await expect(pending).rejects.toThrow(/channel closed/);
  });
});

describe('output redeliveries', () => {
  it('records a redelivery of an output it already recorded only once, and a second publish of it again', () => {
    const r = new Redeliveries(3);
    expect(['a', 'b', 'c'].map((id) => r.isNew(id, false))).toEqual([true, true, true]);
    r.channelLost();
    // b and c were redelivered (their acks lost), then the service published c again.
    expect(r.isNew('b', true)).toBe(false);
    expect(r.isNew('c', true)).toBe(false);
    expect(r.isNew('c', false)).toBe(true);
    expect(r.skipped).toBe(2);
  });

  it('records a redelivered output it never received', () => {
    const r = new Redeliveries(3);
    r.isNew('a', false);
    r.channelLost();
    expect(r.isNew('z', true)).toBe(true);
  });

  it('forgets what may have been unacknowledged once fresh outputs arrive', () => {
    const r = new Redeliveries(3);
    r.isNew('a', false);
    r.channelLost();
    r.isNew('b', false);
    expect(r.isNew('a', true)).toBe(true);
  });
});
