/**
 * An instance consumes its primary queue only once no other consumer holds it, on the real broker. The
 * other consumer here is a connection still holding deliveries it never acknowledged, as a killed
 * source's or the instance's own previous connection does until the broker notices it is gone: when the
 * broker finally returns them, they land at the head of the queue, behind whatever went out meanwhile.
 * An instance that had consumed the newer messages first would skip the returned ones as applied (its
 * marks are past them), losing them. The oracle is the order the application applied, against the
 * producer's order.
 */
import * as amqp from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config';
import { ensureStack } from '../../lib/stack';
import { MigratableService } from '../../service/migratable-service';
import { HEADER_PRODUCER, HEADER_SEQ } from '../../service/protocol';

const run = Date.now().toString(36);
const exchange = `sole-${run}.in`;
const queue = `sole-${run}.primary`;
let conn: amqp.ChannelModel;

beforeAll(async () => {
  await ensureStack({ quiet: true });
  conn = await amqp.connect(loadConfig().amqpUrl);
});

afterAll(async () => {
  const ch = await conn.createChannel();
  await ch.deleteQueue(queue);
  await ch.deleteQueue(`ms2m.ctl.sole-${run}`);
  await ch.deleteExchange(exchange);
  await conn.close();
});

describe('the service library and the broker', () => {
  it('waits for a connection that still holds deliveries, then applies them before the newer ones', async () => {
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange(exchange, 'topic', { durable: true });
    await ch.assertQueue(queue, { durable: true });
    await ch.bindQueue(queue, exchange, '#');
    const publish = async (from: number, to: number) => {
      for (let seq = from; seq <= to; seq++) ch.publish(exchange, 'ev', Buffer.from(String(seq)), { persistent: true, headers: { [HEADER_PRODUCER]: 'p1', [HEADER_SEQ]: seq } });
      await ch.waitForConfirms();
    };

    // The holder: takes 1..5 and never acknowledges them.
    const holder = await amqp.connect(loadConfig().amqpUrl);
    const held = await holder.createChannel();
    await held.prefetch(5);
    let taken = 0;
    await held.consume(queue, () => void taken++);
    await publish(1, 5);
    for (let i = 0; i < 100 && taken < 5; i++) await sleep(20);
    expect(taken).toBe(5);

    const applied: number[] = [];
    const lines: string[] = [];
    const svc = new MigratableService<{ n: number }>({
      service: `sole-${run}`,
      amqpUrl: loadConfig().amqpUrl,
      input: { exchange, queue, bindings: ['#'] },
      initialState: () => ({ n: 0 }),
      apply: (state, m) => {
        state.n++;
        applied.push(m.stamp!.seq);
      },
      identity: () => `sole-${run}`,
      log: (l) => lines.push(l),
    });
    void svc.start();
    try {
      await publish(6, 8);
      await sleep(800);
      expect(applied).toEqual([]);
      expect(svc.status(false).consuming).toBe('none');
      expect(lines.some((l) => l.includes(`waiting to consume ${queue}: 1 other consumer`))).toBe(true);

      // The broker notices the holder is gone and returns 1..5 to the head of the queue.
      await holder.close();
      for (let i = 0; i < 200 && applied.length < 8; i++) await sleep(25);
      expect(applied).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(svc.status(false)).toMatchObject({ consuming: 'primary', skippedDuplicates: 0, gaps: 0 });
    } finally {
      await svc.stop();
    }
  });
});
