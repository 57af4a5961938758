/**
 * Request/reply over RabbitMQ to service instances through their control queues, using direct reply-to
 * so no reply queue has to be created or removed.
 */
import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import { CONTROL_QUEUE_ARGS, controlQueueName, type ControlCommand, type ControlReply, type InstanceStatus } from './protocol';

const REPLY_TO = 'amq.rabbitmq.reply-to';

export class ControlError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export class ControlClient {
  private pending = new Map<string, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private closed = false;

  private constructor(
    private readonly conn: amqp.ChannelModel,
    private readonly ch: amqp.Channel,
  ) {
    const fail = (err?: Error) => {
      this.closed = true;
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new ControlError(`broker connection closed: ${err?.message ?? 'closed'}`, 'disconnected'));
        this.pending.delete(id);
      }
    };
    conn.on('error', (e: Error) => fail(e));
    conn.on('close', (e?: Error) => fail(e));
    // Replies arrive on this channel only: without it the client is useless, and callers reconnect when it is closed.
    ch.on('error', () => undefined);
    ch.on('close', () => {
      fail(new Error('control channel closed'));
      void conn.close().catch(() => undefined);
    });
  }

  static async connect(url: string, name = 'ms2m-control'): Promise<ControlClient> {
    // noDelay: commands inside the downtime window must not wait for a delayed TCP ack (Nagle).
    const conn = await amqp.connect(url, { noDelay: true, clientProperties: { connection_name: name } });
    conn.on('error', () => undefined);
    const ch = await conn.createChannel();
    const client = new ControlClient(conn, ch);
    await ch.consume(
      REPLY_TO,
      (m) => {
        const id = m?.properties.correlationId;
        const p = id ? client.pending.get(id) : undefined;
        if (!m || !p || !id) return;
        client.pending.delete(id);
        clearTimeout(p.timer);
        p.resolve(JSON.parse(m.content.toString()));
      },
      { noAck: true },
    );
    return client;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** A channel of its own for topology changes: a broker error closes the channel it happened on. */
  async openChannel(): Promise<amqp.Channel> {
    if (this.closed) throw new ControlError('control connection is closed', 'disconnected');
    try {
      return await this.conn.createChannel();
    } catch (err) {
      throw new ControlError(`cannot open a channel: ${(err as Error).message}`, 'disconnected');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.conn.close().catch(() => undefined);
  }

  private request<T>(publish: (id: string) => void, timeoutMs: number, what: string): Promise<T> {
    if (this.closed) return Promise.reject(new ControlError('control connection is closed', 'disconnected'));
    const id = randomUUID();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlError(`no reply to ${what} within ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        publish(id);
      } catch (err) {
        // amqplib throws synchronously on a channel that is closing.
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new ControlError(`cannot send ${what}: ${(err as Error).message}`, 'disconnected'));
      }
    });
  }

  /** Sends a command to an instance and returns its result; a refusal becomes a ControlError with its code. */
  async command(instanceId: string, cmd: ControlCommand, timeoutMs = 10_000): Promise<InstanceStatus> {
    const queue = controlQueueName(instanceId);
    if (this.closed) throw new ControlError('control connection is closed', 'disconnected');
    // Declared here too so a command sent before the instance (re)connects waits instead of being dropped.
    try {
      await this.ch.assertQueue(queue, CONTROL_QUEUE_ARGS);
    } catch (err) {
      throw new ControlError(`cannot declare ${queue}: ${(err as Error).message}`, 'disconnected');
    }
    const reply = await this.request<ControlReply>(
      (id) =>
        this.ch.sendToQueue(queue, Buffer.from(JSON.stringify(cmd)), {
          correlationId: id,
          replyTo: REPLY_TO,
          // A command nobody took in time must not steer an instance later.
          expiration: String(timeoutMs),
        }),
      timeoutMs,
      `${cmd.kind} sent to ${instanceId}`,
    );
    if (!reply.ok || !reply.result) throw new ControlError(reply.error ?? `${cmd.kind} refused`, reply.code ?? 'refused');
    return reply.result;
  }
}
