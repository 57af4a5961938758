/**
 * Waiting until a queue has no consumer, before consuming it. The marks rely on each producer's order in
 * the primary queue, and a copy on the apply log's order; a delivery returned to a queue (by a connection
 * the broker has only now seen die: the instance's own previous one, or a killed source's) lands at its
 * head behind whatever went out meanwhile, so a consumer that took a later message first would skip the
 * returned one as applied, or replay the log out of order. The broker requeues a dead channel's
 * deliveries and drops its consumers in one step: a queue without consumers has nothing still to return.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type * as amqp from 'amqplib';

/** How often a waiting instance asks again. */
const WAIT_MS = 100;

/**
 * Resolves true once `queue` has no consumer, or false as soon as `wanted` says the instance no longer
 * means to consume it. `onWait` hears the count once, when waiting starts.
 */
export async function untilSoleConsumer(ch: amqp.Channel, queue: string, wanted: () => boolean, onWait: (consumers: number) => void): Promise<boolean> {
  for (let waiting = false; ; waiting = true) {
    if (!wanted()) return false;
    const { consumerCount } = await ch.checkQueue(queue);
    if (consumerCount === 0) return wanted();
    if (!waiting) onWait(consumerCount);
    await sleep(WAIT_MS);
  }
}
