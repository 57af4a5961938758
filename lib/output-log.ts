/**
 * Records every output a service publishes (the "output" side of the loss accounting): which message it
 * answers, when that message was published, when the output arrived, and which instance sent it.
 */
import * as amqp from 'amqplib';
import { HEADER_PRODUCER, HEADER_PUBLISHED_AT, HEADER_SEQ } from '../service/protocol';

export interface OutputRecord {
  producer: string;
  seq: number;
  publishedAt: number;
  receivedAt: number;
  instance: string;
}

export class OutputCollector {
  readonly outputs: OutputRecord[] = [];
  private conn: amqp.ChannelModel | null = null;

  constructor(
    private readonly amqpUrl: string,
    private readonly exchange: string,
  ) {}

  async start(): Promise<void> {
    this.conn = await amqp.connect(this.amqpUrl, { clientProperties: { connection_name: 'ms2m-output-log' } });
    const ch = await this.conn.createChannel();
    await ch.assertExchange(this.exchange, 'topic', { durable: true });
    const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
    await ch.bindQueue(queue, this.exchange, '#');
    await ch.consume(
      queue,
      (m) => {
        if (!m) return;
        const h = m.properties.headers ?? {};
        this.outputs.push({
          producer: String(h[HEADER_PRODUCER]),
          seq: Number(h[HEADER_SEQ]),
          publishedAt: Number(h[HEADER_PUBLISHED_AT]),
          receivedAt: Date.now(),
          instance: String(h['x-ms2m-instance'] ?? ''),
        });
      },
      { noAck: true },
    );
  }

  async stop(): Promise<void> {
    await this.conn?.close().catch(() => undefined);
    this.conn = null;
  }
}
