/**
 * Load generator for the example game service: several stamping producers sharing a total rate, each
 * with its own confirm channel, and a log of every message the broker confirmed (the "published" side of
 * the loss accounting).
 */
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
  /** Prefix of producer ids; keep it unique per run so sequences never collide with an earlier run. */
  producerPrefix: string;
  /** Stop sending after this long (ms); without it the load runs until stop(). */
  durationMs?: number;
}

export class LoadGenerator {
  readonly published: Published[] = [];
  private conn: amqp.ChannelModel | null = null;
  private producers: StampingProducer[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inflight = new Set<Promise<unknown>>();
  private failures = 0;
  private sent = 0;
  private startedAt = 0;

  constructor(private readonly opts: LoadOptions) {}

  async start(): Promise<void> {
    const { rate, producers = 4 } = this.opts;
    if (!(rate > 0)) throw new Error(`rate must be a positive number of messages per second, got ${rate}`);
    this.conn = await amqp.connect(this.opts.amqpUrl, { clientProperties: { connection_name: 'ms2m-loadgen' } });
    for (let i = 0; i < producers; i++) {
      const ch = await this.conn.createConfirmChannel();
      await ch.assertExchange(this.opts.exchange, 'topic', { durable: true });
      this.producers.push(new StampingProducer(ch, `${this.opts.producerPrefix}-p${i + 1}`, this.opts.exchange));
    }
    this.startedAt = performance.now();
    // Pace by elapsed time rather than by timer ticks, so timer jitter does not change the rate.
    this.timer = setInterval(() => this.tick(), 5);
  }

  /** Resolves when the duration has passed and the broker has confirmed everything sent. */
  async finished(): Promise<void> {
    if (this.opts.durationMs === undefined) throw new Error('finished() needs a durationMs');
    while (this.timer) await new Promise((r) => setTimeout(r, 50));
    await Promise.all([...this.inflight]);
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
    const due = Math.floor((elapsed * this.opts.rate) / 1000);
    while (this.sent < due) {
      const index = this.sent % this.producers.length;
      const producer = this.producers[index];
      this.sent++;
      const event = eventFor(index, Math.ceil(this.sent / this.producers.length), this.opts.players ?? 200);
      const p = producer
        .publish(`event.${event.player}`, event)
        .then((rec) => void this.published.push(rec))
        .catch(() => void this.failures++)
        .finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }
  }

  get publishFailures(): number {
    return this.failures;
  }

  /** Stops sending and waits for the broker to confirm what is in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.inflight]);
    await this.conn?.close().catch(() => undefined);
    this.conn = null;
  }
}
