/**
 * Publishes messages stamped with a producer id and a per-producer increasing sequence number, the
 * stamp that lets a migrated copy skip what it already applied and notice a gap instead of diverging.
 *
 * Publishing is at-least-once: a message the broker did not confirm (channel or connection lost, nack) is
 * sent again with the same stamp, so a repeat is one the consumer skips by its marks. A repeat under a
 * new sequence number would be applied twice, and one that reached the broker but was given up on would
 * be applied without being in anybody's log.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type * as amqp from 'amqplib';
import { HEADER_PRODUCER, HEADER_PUBLISHED_AT, HEADER_SEQ } from './protocol';
import { Reconnector } from './reconnect';

export interface Published {
  producer: string;
  seq: number;
  publishedAt: number;
}

/** Opens a fresh confirm channel (on a fresh connection if the old one is gone). */
export type ChannelSource = () => Promise<amqp.ConfirmChannel>;

interface Outgoing {
  seq: number;
  routingKey: string;
  content: Buffer;
  publishedAt: number;
  confirmed: boolean;
  /** The channel the latest copy went out on: a confirm or failure from an earlier channel is stale. */
  sentOn: amqp.ConfirmChannel | null;
  resolve(p: Published): void;
  reject(e: Error): void;
}

export class StampingProducer {
  private seq: number;
  private channel: amqp.ConfirmChannel | null = null;
  /** Everything not yet reported, in sequence order; a confirmed message waits here behind unconfirmed ones. */
  private outgoing: Outgoing[] = [];
  private readonly reopener: Reconnector | null;
  private closed = false;
  private lastError: Error | null = null;
  private idleWaiters: Array<() => void> = [];
  private resent = 0;

  /**
   * `startAfter` continues a sequence across producer restarts; reusing a sequence number drops messages as
   * duplicates. With `reopen`, a lost channel is replaced and the unconfirmed messages are sent again on
   * the new one; without it, losing the channel fails every unconfirmed publish and the producer.
   */
  constructor(
    channel: amqp.ConfirmChannel,
    readonly producerId: string,
    private readonly exchange: string,
    startAfter = 0,
    reopen?: ChannelSource,
  ) {
    this.seq = startAfter;
    this.reopener = reopen ? new Reconnector(() => this.replaceChannel(reopen), { onFailure: (err) => (this.lastError = err) }) : null;
    this.use(channel);
  }

  /**
   * Resolves once the broker has confirmed the message and every earlier one of this producer, so a
   * resolved publish is one the broker owns and publishes resolve in sequence order.
   */
  publish(routingKey: string, body: unknown): Promise<Published> {
    if (this.closed) return Promise.reject(new Error(`producer ${this.producerId} is closed${this.lastError ? `: ${this.lastError.message}` : ''}`));
    return new Promise<Published>((resolve, reject) => {
      const m: Outgoing = {
        seq: ++this.seq,
        routingKey,
        content: Buffer.from(JSON.stringify(body)),
        publishedAt: Date.now(),
        confirmed: false,
        sentOn: null,
        resolve,
        reject,
      };
      this.outgoing.push(m);
      if (this.channel) this.send(m, this.channel);
    });
  }

  /** Messages published but not yet resolved. */
  get unconfirmed(): number {
    return this.outgoing.length;
  }

  /** Copies sent again after a lost channel or a nack. */
  get republished(): number {
    return this.resent;
  }

  /**
   * Waits until everything published so far is confirmed, then stops the producer. After `timeoutMs` it
   * gives up: the publishes still unconfirmed reject (whether the broker got them is unknown) and their
   * number is returned.
   */
  async close(timeoutMs = 30_000): Promise<number> {
    if (this.outgoing.length > 0) {
      const timeout = new AbortController();
      await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), sleep(timeoutMs, undefined, { signal: timeout.signal }).catch(() => undefined)]);
      timeout.abort();
    }
    const unconfirmed = this.outgoing.filter((m) => !m.confirmed).length;
    this.shutDown(new Error(`not confirmed within ${timeoutMs} ms${this.lastError ? ` (last error: ${this.lastError.message})` : ''}`));
    return unconfirmed;
  }

  private use(ch: amqp.ConfirmChannel): void {
    this.channel = ch;
    ch.on('error', (err: Error) => (this.lastError = err));
    ch.on('close', () => this.lost(ch, new Error('channel closed')));
    for (const m of this.outgoing) {
      if (this.channel !== ch) break;
      if (m.confirmed) continue;
      if (m.sentOn) this.resent++;
      this.send(m, ch);
    }
  }

  private send(m: Outgoing, ch: amqp.ConfirmChannel): void {
    m.sentOn = ch;
    try {
      ch.publish(
        this.exchange,
        m.routingKey,
        m.content,
        {
          persistent: true,
          messageId: `${this.producerId}:${m.seq}`,
          headers: { [HEADER_PRODUCER]: this.producerId, [HEADER_SEQ]: m.seq, [HEADER_PUBLISHED_AT]: m.publishedAt },
        },
        (err) => {
          if (m.sentOn !== ch) return;
          if (err) return this.lost(ch, err);
          m.confirmed = true;
          this.report();
        },
      );
    } catch (err) {
      // The channel is closing; its close event resends this message on the next channel.
      this.lost(ch, err as Error);
    }
  }

  /**
   * The channel failed or nacked. Later messages must not overtake the one to retry (the consumer would
   * skip it as already seen), so the channel is dropped and every unconfirmed message goes out again, in
   * order, on a new one.
   */
  private lost(ch: amqp.ConfirmChannel, err: Error): void {
    if (ch !== this.channel) return;
    this.channel = null;
    this.lastError = err;
    void ch.close().catch(() => undefined);
    if (this.closed) return;
    if (!this.reopener) return this.shutDown(err);
    this.reopener.request({ immediately: true });
  }

  private async replaceChannel(reopen: ChannelSource): Promise<void> {
    const ch = await reopen();
    if (this.closed) await ch.close().catch(() => undefined);
    else this.use(ch);
  }

  private report(): void {
    while (this.outgoing[0]?.confirmed) {
      const m = this.outgoing.shift()!;
      m.resolve({ producer: this.producerId, seq: m.seq, publishedAt: m.publishedAt });
    }
    if (this.outgoing.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Stops for good: confirmed messages still resolve (the broker owns them), the others reject. */
  private shutDown(err: Error): void {
    this.closed = true;
    this.reopener?.stop();
    const ch = this.channel;
    this.channel = null;
    if (ch) void ch.close().catch(() => undefined);
    for (const m of this.outgoing.splice(0)) {
      if (m.confirmed) m.resolve({ producer: this.producerId, seq: m.seq, publishedAt: m.publishedAt });
      else m.reject(err);
    }
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
