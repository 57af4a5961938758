/** The load generator against the real broker: rate × duration messages, spread over the producers, all confirmed. */
import * as amqp from 'amqplib';
import { beforeAll, describe, expect, it } from 'vitest';
import { LoadGenerator } from '../../examples/loadgen';
import { loadConfig } from '../../lib/config';
import { ensureStack } from '../../lib/stack';

beforeAll(async () => {
  await ensureStack({ quiet: true });
});

describe('load generator', () => {
  it('publishes rate × duration stamped messages from several producers, each sequence gapless', async () => {
    const cfg = loadConfig();
    const exchange = `loadgen-${Date.now().toString(36)}.events`;
    const conn = await amqp.connect(cfg.amqpUrl);
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.assertExchange(exchange, 'topic', { durable: true });
    await ch.bindQueue(queue, exchange, '#');

    const load = new LoadGenerator({ amqpUrl: cfg.amqpUrl, exchange, rate: 200, producers: 3, durationMs: 1000, producerPrefix: 'lg' });
    await load.start();
    await load.finished();
    await load.stop();

    expect(load.published.length).toBe(200);
    const byProducer = new Map<string, number[]>();
    for (const p of load.published) byProducer.set(p.producer, [...(byProducer.get(p.producer) ?? []), p.seq]);
    expect([...byProducer.keys()].sort()).toEqual(['lg-p1', 'lg-p2', 'lg-p3']);
    for (const seqs of byProducer.values()) expect(seqs.sort((a, b) => a - b)).toEqual(seqs.map((_, i) => i + 1));
    expect((await ch.checkQueue(queue)).messageCount).toBe(200);
    await ch.deleteExchange(exchange);
    await conn.close();
  });
});
