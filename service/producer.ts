/**
 * Publishes messages stamped with a producer id and a per-producer increasing sequence number, the
 * stamp that lets a migrated copy skip what it already applied and notice a gap instead of diverging.
 */
import type * as amqp from 'amqplib';
import { HEADER_PRODUCER, HEADER_PUBLISHED_AT, HEADER_SEQ } from './protocol';

export interface Published {
  producer: string;
  seq: number;
  publishedAt: number;
}

export class StampingProducer {
  private seq: number;

  /** `startAfter` continues a sequence across producer restarts; reusing a sequence number drops messages as duplicates. */
  constructor(
    private readonly channel: amqp.ConfirmChannel,
    readonly producerId: string,
    private readonly exchange: string,
    startAfter = 0,
  ) {
    this.seq = startAfter;
  }

  /** Resolves once the broker has confirmed the message, so a resolved publish is one the broker owns. */
  async publish(routingKey: string, body: unknown): Promise<Published> {
    const seq = ++this.seq;
    const publishedAt = Date.now();
    await new Promise<void>((resolve, reject) => {
      this.channel.publish(
        this.exchange,
        routingKey,
        Buffer.from(JSON.stringify(body)),
        {
          persistent: true,
          messageId: `${this.producerId}:${seq}`,
          headers: { [HEADER_PRODUCER]: this.producerId, [HEADER_SEQ]: seq, [HEADER_PUBLISHED_AT]: publishedAt },
        },
        (err) => (err ? reject(err) : resolve()),
      );
    });
    return { producer: this.producerId, seq, publishedAt };
  }
}
