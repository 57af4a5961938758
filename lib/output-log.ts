/**
 * Records every output a service publishes (the "output" side of the loss accounting): which message it
 * answers, when that message was published, when the output arrived, and which instance sent it.
 *
 * The queue is durable and the collector reconnects to it, so outputs published while the broker restarts
 * are still counted. Every output the service published is recorded, a repeated one as often as it came:
 * duplicates are what the verification looks for.
 */
import { randomBytes } from 'node:crypto';
import * as amqp from 'amqplib';
import { HEADER_PRODUCER, HEADER_PUBLISHED_AT, HEADER_RESENT, HEADER_SEQ } from '../service/protocol';
import { Reconnector } from '../service/reconnect';

export interface OutputRecord {
  producer: string;
  seq: number;
  publishedAt: number;
  receivedAt: number;
  instance: string;
  /** Published again after a lost confirm (or for a lost source): a second copy of it is a resend, not a bug. */
  resent: boolean;
  /** The output itself, for oracles that check what a service computed, not only that it answered. */
  body?: string;
}

/** An abandoned collector's queue (its process died before stop()) goes away by itself. */
const QUEUE_EXPIRES_MS = 10 * 60_000;
const PREFETCH = 200;

export class OutputCollector {
  readonly outputs: OutputRecord[] = [];
  readonly queue = `ms2m.outputs.${randomBytes(6).toString('hex')}`;
  private conn: amqp.ChannelModel | null = null;
  private stopping = false;
  /** After a lost connection: a new one, backing off while the broker is down. */
  private readonly reconnector = new Reconnector(() => this.connect());
  private readonly redeliveries = new Redeliveries(PREFETCH);

  constructor(
    private readonly amqpUrl: string,
    private readonly exchange: string,
  ) {}

  /** Redelivered outputs that were already recorded before a connection loss (not counted twice). */
  get redeliveriesSkipped(): number {
    return this.redeliveries.skipped;
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const conn = await amqp.connect(this.amqpUrl, { clientProperties: { connection_name: 'ms2m-output-log' } });
    let closed = false;
    conn.on('error', () => undefined);
    conn.on('close', () => {
      closed = true;
      this.redeliveries.channelLost();
      if (this.conn !== conn) return;
      this.conn = null;
      this.reconnector.request();
    });
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.assertExchange(this.exchange, 'topic', { durable: true });
      await ch.assertQueue(this.queue, { durable: true, arguments: { 'x-expires': QUEUE_EXPIRES_MS } });
      await ch.bindQueue(this.queue, this.exchange, '#');
      await ch.prefetch(PREFETCH);
      await ch.consume(this.queue, (m) => m && this.receive(ch, m), { noAck: false });
    } catch (err) {
      await conn.close().catch(() => undefined);
      throw err;
    }
    if (closed) throw new Error('connection closed while subscribing');
    if (this.stopping) {
      await conn.close().catch(() => undefined);
      return;
    }
    this.conn = conn;
  }

  /** Records the output, then acknowledges it. */
  private receive(ch: amqp.Channel, m: amqp.ConsumeMessage): void {
    const h = m.properties.headers ?? {};
    const id = `${String(h[HEADER_PRODUCER])}#${String(h[HEADER_SEQ])}#${String(h['x-ms2m-instance'] ?? '')}#${String(h[HEADER_PUBLISHED_AT])}#${m.content.toString('base64')}`;
    if (this.redeliveries.isNew(id, m.fields.redelivered)) {
      this.outputs.push({
        producer: String(h[HEADER_PRODUCER]),
        seq: Number(h[HEADER_SEQ]),
        publishedAt: Number(h[HEADER_PUBLISHED_AT]),
        receivedAt: Date.now(),
        instance: String(h['x-ms2m-instance'] ?? ''),
        resent: h[HEADER_RESENT] === true,
        body: m.content.toString(),
      });
    }
    try {
      ch.ack(m);
    } catch {
      // The channel is gone: the broker redelivers the output and the check above recognises it.
    }
  }

  /** Stops consuming and deletes the queue (if the broker is down, its expiry removes it later). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.reconnector.stop();
    const conn = this.conn ?? (await amqp.connect(this.amqpUrl).catch(() => null));
    this.conn = null;
    if (!conn) return;
    conn.on('error', () => undefined);
    try {
      const ch = await conn.createChannel();
      await ch.deleteQueue(this.queue);
    } catch {
      // Gone with the broker: the queue expires.
    }
    await conn.close().catch(() => undefined);
  }
}

/**
 * Tells a redelivery from a new message. Acknowledgements are not confirmed, so when a connection dies the
 * broker redelivers outputs whose ack it had not processed, some of which were already recorded. Such a
 * redelivery is the same broker message and must not count twice; a second publish of the same output is
 * a different message (not flagged redelivered) and must. Messages carry no broker-assigned id, so a
 * redelivery is matched by content against what the dead channel may have left unacknowledged: with
 * at most `prefetch` unacknowledged deliveries per channel and acks processed in order, that is the last
 * `prefetch` messages received on it.
 */
export class Redeliveries {
  /** Identities received on the current channel, newest last, at most `prefetch`. */
  private recent: string[] = [];
  /** What dead channels may have left unacknowledged (a multiset). */
  private unsettled = new Map<string, number>();
  skipped = 0;

  constructor(private readonly prefetch: number) {}

  /** Whether to record this delivery. */
  isNew(id: string, redelivered: boolean): boolean {
    this.recent.push(id);
    if (this.recent.length > this.prefetch) this.recent.shift();
    // Requeued messages are delivered ahead of newer ones: once a fresh one arrives, whatever was not
    // redelivered had been acknowledged after all.
    if (!redelivered) {
      this.unsettled.clear();
      return true;
    }
    const n = this.unsettled.get(id) ?? 0;
    if (n === 0) return true;
    if (n === 1) this.unsettled.delete(id);
    else this.unsettled.set(id, n - 1);
    this.skipped++;
    return false;
  }

  channelLost(): void {
    for (const id of this.recent) this.unsettled.set(id, (this.unsettled.get(id) ?? 0) + 1);
    this.recent = [];
  }
}
