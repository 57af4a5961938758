/**
 * Load generator for the example services: several stamping producers sharing a total rate, each with
 * its own confirm channel on one connection (the broker orders messages per channel only, so this is the
 * setting in which two queues can see different interleavings), and a log of every message the broker
 * confirmed (the "published" side of the loss accounting). It rides out a broker restart: the producers
 * reconnect and send again, with the same stamps, whatever the broker had not confirmed (each producer's
 * Reconnector backs off while the broker is down; they share the one connection this opens for them).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as amqp from 'amqplib';
import { StampingProducer, type Published } from '../service/producer';
import { eventFor } from './game/game';

export interface LoadOptions {
  amqpUrl: string;
  exchange: string;
  /** Messages per second, across all producers. */
  rate: number;
  producers?: number;
  players?: number;
  /** The message producer `index` (from 0) sends as its `seq`-th (from 1); the game's events by default. */
  message?: (index: number, seq: number) => { routingKey: string; body: unknown };
  /** Relative rates of the producers (e.g. [10, 25, 45]); equal shares by default. */
  weights?: number[];
  /** Prefix of producer ids; keep it unique per run so sequences never collide with an earlier run. */
  producerPrefix: string;
  /** Stop sending after this long (ms); without it the load runs until stop(). */
  durationMs?: number;
}

/** How long stop() and finished() wait for the broker to confirm what was sent before giving up on it. */
const CONFIRM_TIMEOUT_MS = 30_000;

export class LoadGenerator {
  readonly published: Published[] = [];
  private conn: amqp.ChannelModel | null = null;
  private connecting: Promise<amqp.ChannelModel> | null = null;
  private stopped = false;
  private producers: StampingProducer[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inflight = new Set<Promise<unknown>>();
  private failures = 0;
  /** Messages sent by each producer so far. */
  private sent: number[] = [];
  private shares: number[] = [];
  private startedAt = 0;

  constructor(private readonly opts: LoadOptions) {}

  async start(): Promise<void> {
    const { rate, producers = 4 } = this.opts;
    if (!(rate > 0)) throw new Error(`rate must be a positive number of messages per second, got ${rate}`);
    const weights = this.opts.weights ?? Array.from({ length: producers }, () => 1);
    if (weights.length !== producers || weights.some((w) => !(w > 0))) throw new Error(`weights must be ${producers} positive numbers, got ${JSON.stringify(weights)}`);
    const total = weights.reduce((a, w) => a + w, 0);
    this.shares = weights.map((w) => w / total);
    this.sent = weights.map(() => 0);
    for (let i = 0; i < producers; i++) {
      const reopen = () => this.openChannel();
      this.producers.push(new StampingProducer(await reopen(), `${this.opts.producerPrefix}-p${i + 1}`, this.opts.exchange, 0, reopen));
    }
    this.startedAt = performance.now();
    // Pace by elapsed time rather than by timer ticks, so timer jitter does not change the rate.
    this.timer = setInterval(() => this.tick(), 5);
  }

  /** A confirm channel on the shared connection; after the broker dropped the connection, on a new one. */
  private async openChannel(): Promise<amqp.ConfirmChannel> {
    if (this.stopped) throw new Error('load generator stopped');
    const conn = this.conn ?? (await (this.connecting ??= this.connect().finally(() => (this.connecting = null))));
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    await ch.assertExchange(this.opts.exchange, 'topic', { durable: true });
    return ch;
  }

  private async connect(): Promise<amqp.ChannelModel> {
    const conn = await amqp.connect(this.opts.amqpUrl, { clientProperties: { connection_name: 'ms2m-loadgen' } });
    // The producers notice the loss on their channels and reopen; this only forgets the dead connection.
    conn.on('error', () => undefined);
    conn.on('close', () => {
      if (this.conn === conn) this.conn = null;
    });
    if (this.stopped) {
      await conn.close().catch(() => undefined);
      throw new Error('load generator stopped');
    }
    this.conn = conn;
    return conn;
  }

  /** Resolves when the duration has passed and the broker has confirmed everything sent (or 30 s passed). */
  async finished(): Promise<void> {
    if (this.opts.durationMs === undefined) throw new Error('finished() needs a durationMs');
    while (this.timer) await sleep(50);
    await this.settle();
  }

  private tick(): void {
    const elapsed = performance.now() - this.startedAt;
    if (this.opts.durationMs !== undefined && elapsed >= this.opts.durationMs) {
      this.tick0(this.opts.durationMs);
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      return;
    }
    this.tick0(elapsed);
  }

  private tick0(elapsed: number): void {
    const players = this.opts.players ?? 200;
    const message = this.opts.message ?? ((index: number, seq: number) => {
      const event = eventFor(index, seq, players);
      return { routingKey: `event.${event.player}`, body: event };
    });
    // Each producer's share of the total due, cut at cumulative shares so the parts add up to the total exactly.
    const total = (elapsed * this.opts.rate) / 1000;
    let before = 0;
    for (const [index, producer] of this.producers.entries()) {
      const upTo = index === this.producers.length - 1 ? Math.floor(total) : Math.floor(total * (before + this.shares[index]));
      const due = upTo - Math.floor(total * before);
      before += this.shares[index];
      while (this.sent[index] < due) {
        const m = message(index, ++this.sent[index]);
        const p = producer
          .publish(m.routingKey, m.body)
          .then((rec) => void this.published.push(rec))
          .catch(() => void this.failures++)
          .finally(() => this.inflight.delete(p));
        this.inflight.add(p);
      }
    }
  }

  /** Publishes the broker never confirmed (given up after 30 s of trying). */
  get publishFailures(): number {
    return this.failures;
  }

  /** Copies sent again because the broker did not confirm the first (same producer and sequence number). */
  get republished(): number {
    return this.producers.reduce((n, p) => n + p.republished, 0);
  }

  /** Waits for every producer's confirms (giving up after a bound) and stops them. */
  private async settle(): Promise<void> {
    await Promise.all(this.producers.map((p) => p.close(CONFIRM_TIMEOUT_MS)));
    await Promise.all([...this.inflight]);
  }

  /** Stops sending and waits for the broker to confirm what is in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.settle();
    this.stopped = true;
    await this.conn?.close().catch(() => undefined);
    this.conn = null;
  }
}
