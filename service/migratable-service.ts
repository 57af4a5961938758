/**
 * The library a stateful RabbitMQ consumer embeds to take part in ms2m migrations.
 *
 * It owns the consume → apply → emit → ack loop so that it can hold the guarantees of the handoff:
 * per-producer high-water marks live next to the application state (a checkpoint carries them), anything
 * at or below a mark is skipped, outputs are emitted only by the instance that owns the stream, and the
 * instance obeys the control commands of the orchestrator (shadow, replay, fence, catch-up, activate,
 * unfence, adopt).
 *
 * While a migration shadows it, the source writes every message it applies, in apply order, to the
 * migration's replay queue (the apply log), and the copy replays that log and nothing else. The copy
 * therefore applies exactly the source's sequence: the broker orders messages per publishing channel
 * only, so a second queue bound to the same exchange could hold the producers' messages in another
 * interleaving, and a copy that replayed it would reach the same marks with a different state whenever
 * the application's transitions do not commute.
 *
 * Identity is the UTS hostname, never an environment variable or a file: a process restored by CRIU keeps
 * its whole memory and environment, but the node agent gives it a new hostname before letting it run, so
 * the copy notices it is a copy before it consumes or emits anything.
 */
import * as os from 'node:os';
import * as amqp from 'amqplib';
import {
  CONTROL_QUEUE_ARGS,
  HEADER_END,
  HEADER_LOG_INDEX,
  HEADER_LOG_ROUTING_KEY,
  HEADER_PRODUCER,
  HEADER_PUBLISHED_AT,
  HEADER_SEQ,
  acceptFencing,
  controlQueueName,
  judge,
  readStamp,
  stateDigest,
  type ControlCommand,
  type ControlReply,
  type InstanceStatus,
  type Marks,
  type Role,
  type Stamp,
} from './protocol';

export interface InputMessage {
  body: Buffer;
  routingKey: string;
  stamp: Stamp | undefined;
  headers: Record<string, unknown>;
}

export interface ApplyContext {
  /** Queue an output; it is published (or suppressed on a copy) after apply returns. */
  emit(routingKey: string, body: unknown): void;
}

export interface ServiceOptions<S> {
  service: string;
  amqpUrl: string;
  input: { exchange: string; exchangeType?: 'topic' | 'direct' | 'fanout'; queue: string; bindings?: string[] };
  output?: { exchange: string; exchangeType?: 'topic' | 'direct' | 'fanout' };
  prefetch?: number;
  initialState(): S;
  /**
   * Must be synchronous and deterministic: it is the state transition the copy replays. It need not
   * commute: the copy applies the source's messages in the source's order.
   */
  apply(state: S, message: InputMessage, ctx: ApplyContext): void;
  /** The part of the state compared at the fence (default: all of it). */
  digestOf?(state: S): unknown;
  /** A small summary reported in status replies. */
  describe?(state: S): Record<string, unknown>;
  log?(line: string): void;
}

interface Delivery {
  msg: amqp.ConsumeMessage;
  from: 'primary' | 'replay';
  generation: number;
}

/** Something to publish with confirms before the input it came from is acknowledged. */
interface Outgoing {
  exchange: string;
  routingKey: string;
  content: Buffer;
  headers: Record<string, unknown>;
  /** `<producer>:<seq>:<n>` for an output: the same for every copy of it, so a consumer can drop a resend. */
  messageId?: string;
  /** An apply-log entry (sent to the replay queue, returned if that queue is gone) rather than an output. */
  log?: true;
}

/**
 * Set on an output published again because the first attempt's confirm never came (the broker connection
 * dropped), or emitted for a lost source that may already have emitted it. The broker may hold both
 * copies; a consumer drops the second by message id. Every other output is published once.
 */
export const HEADER_RESENT = 'x-ms2m-resent';

const LOG_HEADERS = [HEADER_LOG_INDEX, HEADER_LOG_ROUTING_KEY];

export class MigratableService<S> {
  state: S;
  marks: Marks = {};
  private identity = os.hostname();
  private role: Role = 'primary';
  private fenced = false;
  private epoch = 0;
  private migrationId: string | null = null;
  private applied = 0;
  private skippedDuplicates = 0;
  private gaps = 0;
  private outputsEmitted = 0;
  private outputsSuppressed = 0;
  private unstamped = 0;
  private lastUnstampedAt: number | null = null;
  /** While shadowed: the replay queue the source writes its apply log to. */
  private applyLog: string | null = null;
  private logged = 0;
  private replaySkipped = 0;
  private replayGaps = 0;
  /**
   * Outputs a copy computed but did not emit, by input message: if the source dies before the fence they
   * may still be owed (the source applied a message but never emitted for it). Activation after a normal
   * fence drops them; adoption emits those whose input the dead source had not acknowledged.
   */
  private owed = new Map<string, Outgoing[]>();
  /** Taking over from a source that is gone: replay the whole apply log up to its end marker. */
  private adopting = false;
  /** The end marker of the apply log arrived before the adopt command did: the log is fully applied. */
  private sealed = false;
  private fencedAt: number | null = null;
  private activatedAt: number | null = null;
  private activatedDigest: string | null = null;
  private lastPrimaryApplyAt: number | null = null;

  private conn: amqp.ChannelModel | null = null;
  private ch: amqp.Channel | null = null;
  private pub: amqp.ConfirmChannel | null = null;
  /** Bumped on every (re)connection: deliveries of an older generation belong to a dead channel. */
  private generation = 0;
  private primaryTag: string | null = null;
  private replayTag: string | null = null;
  private replayQueue: string | null = null;
  /** At the fence: the copy applies the log exactly up to this position (the fenced source's count). */
  private upTo: number | null = null;
  private deliveries: Delivery[] = [];
  private outbox: Outgoing[] = [];
  private pumping = false;
  private idleWaiters: Array<() => void> = [];
  private stopping = false;
  private reconnectDelay = 100;
  private reconnecting = false;

  constructor(private readonly opts: ServiceOptions<S>) {
    this.state = opts.initialState();
  }

  private log(line: string): void {
    (this.opts.log ?? ((l: string) => console.log(l)))(`[${new Date().toISOString()} ${this.identity}] ${line}`);
  }

  async start(): Promise<void> {
    process.on('SIGTERM', () => void this.stop().then(() => process.exit(0)));
    process.on('SIGINT', () => void this.stop().then(() => process.exit(0)));
    // A restored copy may sit idle with a dead socket that nothing reads; it still learns its identity promptly.
    setInterval(() => this.checkIdentity(), 50).unref();
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    try {
      if (this.ch && this.primaryTag) await this.ch.cancel(this.primaryTag);
      await this.waitIdle();
      await this.flushOutbox();
      await this.conn?.close();
    } catch {
      // The broker may already be gone; nothing is acknowledged that was not applied.
    }
  }

  /**
   * A copy is a process whose hostname no longer matches the identity it was checkpointed with. Called
   * before anything is consumed, applied or emitted; a copy drops the source's connection and reconnects.
   */
  private checkIdentity(): void {
    if (!this.adoptHostname()) return;
    const old = this.conn;
    this.conn = null;
    this.ch = null;
    this.pub = null;
    if (old) void old.close().catch(() => undefined);
    this.scheduleReconnect(0);
  }

  private adoptHostname(): boolean {
    const now = os.hostname();
    if (now === this.identity) return false;
    const previous = this.identity;
    this.identity = now;
    this.role = 'standby';
    this.fenced = false;
    this.fencedAt = null;
    this.activatedAt = null;
    this.activatedDigest = null;
    this.outputsSuppressed = 0;
    this.outputsEmitted = 0;
    this.replaySkipped = 0;
    this.replayGaps = 0;
    this.logged = 0;
    this.primaryTag = null;
    this.replayTag = null;
    this.replayQueue = null;
    this.upTo = null;
    // The source writes the apply log; its copy only reads it.
    this.applyLog = null;
    // Outputs the source still owed stay the source's, unless the source dies and the copy adopts its stream.
    for (const o of this.outbox) if (!o.log) this.owe(o);
    this.outbox = [];
    this.owed = new Map([...this.owed].filter(([, outs]) => outs.length > 0));
    this.adopting = false;
    this.sealed = false;
    this.deliveries = [];
    this.generation++;
    this.log(`restored copy of ${previous}: standby, outputs suppressed`);
    return true;
  }

  private scheduleReconnect(delay = this.reconnectDelay): void {
    if (this.stopping || this.reconnecting) return;
    this.reconnecting = true;
    setTimeout(() => {
      this.connect()
        .then(() => {
          this.reconnecting = false;
        })
        .catch((err) => {
          this.log(`reconnect failed: ${(err as Error).message}`);
          this.reconnecting = false;
          this.reconnectDelay = Math.min(this.reconnectDelay * 2, 2000);
          this.scheduleReconnect();
        });
    }, delay);
  }

  private async connect(): Promise<void> {
    this.adoptHostname();
    const generation = ++this.generation;
    const conn = await amqp.connect(this.opts.amqpUrl, { clientProperties: { connection_name: this.identity } });
    conn.on('error', () => undefined);
    conn.on('close', () => {
      if (generation !== this.generation || this.stopping) return;
      this.log('broker connection lost; reconnecting');
      this.ch = null;
      this.pub = null;
      this.primaryTag = null;
      this.replayTag = null;
      this.scheduleReconnect();
    });
    const ch = await conn.createChannel();
    const pub = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    pub.on('error', () => undefined);
    // A log entry the broker could not route: the replay queue is gone (the migration ended or was rolled back).
    pub.on('return', (m: amqp.Message) => {
      if (this.applyLog && m.fields.routingKey === this.applyLog) {
        this.log(`apply log ${this.applyLog} is gone; no longer writing it`);
        this.applyLog = null;
      }
    });
    await ch.prefetch(this.opts.prefetch ?? 20);
    const { input, output } = this.opts;
    await ch.assertExchange(input.exchange, input.exchangeType ?? 'topic', { durable: true });
    await ch.assertQueue(input.queue, { durable: true });
    for (const key of input.bindings ?? ['#']) await ch.bindQueue(input.queue, input.exchange, key);
    if (output) await ch.assertExchange(output.exchange, output.exchangeType ?? 'topic', { durable: true });
    const ctl = controlQueueName(this.identity);
    await ch.assertQueue(ctl, CONTROL_QUEUE_ARGS);
    this.conn = conn;
    this.ch = ch;
    this.pub = pub;
    this.reconnectDelay = 100;
    await ch.consume(ctl, (m) => m && void this.onControl(m, generation));
    await this.flushOutbox();
    if (this.role === 'primary' && !this.fenced) await this.consumePrimary();
    if (this.role === 'standby' && this.replayQueue && !this.replayTag) await this.consumeReplay(this.replayQueue);
    this.log(`connected as ${this.role}${this.fenced ? ' (fenced)' : ''}`);
  }

  private async consumePrimary(): Promise<void> {
    if (!this.ch || this.primaryTag) return;
    const generation = this.generation;
    const { consumerTag } = await this.ch.consume(this.opts.input.queue, (m) => m && this.enqueue(m, 'primary', generation));
    this.primaryTag = consumerTag;
  }

  private async consumeReplay(queue: string): Promise<void> {
    if (!this.ch || this.replayTag) return;
    const generation = this.generation;
    const { consumerTag } = await this.ch.consume(queue, (m) => m && this.enqueue(m, 'replay', generation));
    this.replayTag = consumerTag;
  }

  private enqueue(msg: amqp.ConsumeMessage, from: Delivery['from'], generation: number): void {
    this.deliveries.push({ msg, from, generation });
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        // Becoming a copy empties the buffer (those deliveries belong to the source's dead channel).
        this.checkIdentity();
        const d = this.deliveries.shift();
        if (!d) break;
        if (d.generation !== this.generation) continue;
        if (d.from === 'replay') await this.replayEntry(d);
        else await this.consumeInput(d);
      }
    } finally {
      this.pumping = false;
    }
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private waitIdle(): Promise<void> {
    if (!this.pumping && this.deliveries.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private ack(d: Delivery): void {
    if (d.generation === this.generation && this.ch) {
      try {
        this.ch.ack(d.msg);
      } catch {
        // The channel died: the broker redelivers and the marks skip what was applied.
      }
    }
  }

  /** A message from the primary queue: skip what the marks say was applied, apply the rest. */
  private async consumeInput(d: Delivery): Promise<void> {
    const { msg } = d;
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    const stamp = readStamp(headers, msg.properties.messageId);
    if (stamp) {
      const verdict = judge(this.marks, stamp);
      if (verdict === 'duplicate') {
        this.skippedDuplicates++;
        const owed = this.role === 'primary' ? this.owed.get(owedKey(stamp.producer, stamp.seq)) : undefined;
        if (owed) {
          // Adopted from a dead source that never acknowledged this message: its output was never emitted.
          this.owed.delete(owedKey(stamp.producer, stamp.seq));
          // The source may have emitted them and died before acknowledging the input.
          for (const o of owed) o.headers[HEADER_RESENT] = true;
          this.outbox.push(...owed);
          await this.flushOutbox();
        }
        this.ack(d);
        return;
      }
      if (verdict === 'gap') {
        this.gaps++;
        this.log(`gap from ${stamp.producer}: expected ${(this.marks[stamp.producer] ?? 0) + 1}, got ${stamp.seq}`);
      }
    } else {
      this.unstamped++;
      this.lastUnstampedAt = Date.now();
    }
    const outputs = this.applyMessage({ body: msg.content, routingKey: msg.fields.routingKey, stamp, headers });
    this.lastPrimaryApplyAt = Date.now();
    this.checkIdentity();
    if (this.role === 'primary') {
      // The log entry goes out first on the same channel: an output the broker routed implies its entry is in the log.
      if (this.applyLog) this.outbox.push(this.logEntry(msg, headers));
      this.outbox.push(...outputs);
      await this.flushOutbox();
    } else {
      this.suppress(stamp, outputs);
    }
    this.ack(d);
  }

  /** An entry of the apply log: applied at exactly its position in the source's sequence, or skipped. */
  private async replayEntry(d: Delivery): Promise<void> {
    const { msg } = d;
    const logged = (msg.properties.headers ?? {}) as Record<string, unknown>;
    if (logged[HEADER_END]) {
      if (logged[HEADER_END] === this.migrationId) {
        // Sealed before or after the adopt command arrived: whichever comes second takes over.
        if (this.adopting) await this.takeOver();
        else this.sealed = true;
      }
      this.ack(d);
      return;
    }
    const index = Number(logged[HEADER_LOG_INDEX]);
    if (!Number.isSafeInteger(index) || index <= 0) {
      this.log(`a message without a log position in the replay queue was skipped`);
      this.ack(d);
      return;
    }
    if (index <= this.applied || (this.upTo !== null && index > this.upTo)) {
      // Already in the checkpoint (or written twice after a lost confirm); or past the fenced source's last position.
      if (index <= this.applied) this.replaySkipped++;
      this.ack(d);
      this.checkCaughtUp();
      return;
    }
    if (index > this.applied + 1) {
      // Something the source applied is not in its log: the copy cannot follow exactly, and the fence will say so.
      this.replayGaps++;
      this.log(`apply log ${this.replayQueue}: positions ${this.applied + 1}..${index - 1} are missing`);
    }
    const headers = Object.fromEntries(Object.entries(logged).filter(([k]) => !LOG_HEADERS.includes(k)));
    const stamp = readStamp(headers, msg.properties.messageId);
    const outputs = this.applyMessage({ body: msg.content, routingKey: String(logged[HEADER_LOG_ROUTING_KEY] ?? ''), stamp, headers });
    this.applied = index;
    this.checkIdentity();
    this.suppress(stamp, outputs);
    this.ack(d);
    this.checkCaughtUp();
  }

  /** The state transition itself, with the marks and the count that make it part of the sequence. */
  private applyMessage(m: InputMessage): Outgoing[] {
    const outputs: Outgoing[] = [];
    const out = this.opts.output;
    const { stamp } = m;
    const ctx: ApplyContext = {
      emit: (routingKey, body) => {
        if (!out) return;
        outputs.push({
          exchange: out.exchange,
          routingKey,
          messageId: stamp ? `${stamp.producer}:${stamp.seq}:${outputs.length}` : undefined,
          content: Buffer.from(JSON.stringify(body)),
          headers: {
            ...(stamp ? { [HEADER_PRODUCER]: stamp.producer, [HEADER_SEQ]: stamp.seq } : {}),
            ...(stamp?.publishedAt ? { [HEADER_PUBLISHED_AT]: stamp.publishedAt } : {}),
            'x-ms2m-instance': this.identity,
          },
        });
      },
    };
    this.opts.apply(this.state, m, ctx);
    if (stamp) this.marks[stamp.producer] = stamp.seq;
    this.applied++;
    return outputs;
  }

  private logEntry(msg: amqp.ConsumeMessage, headers: Record<string, unknown>): Outgoing {
    return {
      exchange: '',
      routingKey: this.applyLog!,
      content: msg.content,
      messageId: msg.properties.messageId,
      headers: { ...headers, [HEADER_LOG_INDEX]: this.applied, [HEADER_LOG_ROUTING_KEY]: msg.fields.routingKey },
      log: true,
    };
  }

  /** A copy's outputs: counted, and kept in case the source dies without having emitted them. */
  private suppress(stamp: Stamp | undefined, outputs: Outgoing[]): void {
    this.outputsSuppressed += outputs.length;
    if (stamp) this.owed.set(owedKey(stamp.producer, stamp.seq), outputs);
  }

  private owe(o: Outgoing): void {
    const producer = o.headers[HEADER_PRODUCER];
    const seq = o.headers[HEADER_SEQ];
    if (typeof producer !== 'string' || typeof seq !== 'number') return;
    const k = owedKey(producer, seq);
    this.owed.set(k, [...(this.owed.get(k) ?? []), o]);
  }

  /** The end of a sealed apply log reached while adopting: everything the source logged is applied. */
  private async takeOver(): Promise<void> {
    await this.stopReplay();
    this.adopting = false;
    this.sealed = false;
    this.activatedDigest = this.digest();
    this.role = 'primary';
    this.upTo = null;
    await this.consumePrimary();
    this.activatedAt = Date.now();
    this.log(`adopted the stream of a lost source: consuming ${this.opts.input.queue}, ${this.owed.size} outputs still owed`);
  }

  /** Publishes with publisher confirms; on failure everything stays queued and goes out after reconnecting. */
  private async flushOutbox(): Promise<void> {
    if (!this.pub || this.outbox.length === 0) return;
    const batch = this.outbox.slice();
    try {
      for (const o of batch) {
        this.pub.publish(o.exchange, o.routingKey, o.content, { headers: o.headers, messageId: o.messageId, persistent: true, mandatory: o.log === true });
      }
      await this.pub.waitForConfirms();
      this.outbox.splice(0, batch.length);
      for (const o of batch) {
        if (o.log) this.logged++;
        else this.outputsEmitted++;
      }
    } catch (err) {
      // Unconfirmed is not unpublished: the broker may have stored them, so the next attempt says so.
      for (const o of batch) if (!o.log) o.headers[HEADER_RESENT] = true;
      this.log(`publish failed, kept for retry: ${(err as Error).message}`);
    }
  }

  private checkCaughtUp(): void {
    if (this.upTo !== null && this.replayTag && this.applied >= this.upTo) void this.stopReplay();
  }

  private async stopReplay(): Promise<void> {
    const tag = this.replayTag;
    this.replayTag = null;
    this.replayQueue = null;
    if (tag && this.ch) await this.ch.cancel(tag).catch(() => undefined);
  }

  // ---- control ------------------------------------------------------------------------------------

  private async onControl(msg: amqp.ConsumeMessage, generation: number): Promise<void> {
    let reply: ControlReply;
    try {
      const cmd = JSON.parse(msg.content.toString()) as ControlCommand;
      reply = await this.command(cmd);
    } catch (err) {
      reply = { ok: false, code: 'error', error: (err as Error).message };
    }
    if (generation !== this.generation || !this.ch || !this.pub) return;
    if (msg.properties.replyTo) {
      this.pub.sendToQueue(msg.properties.replyTo, Buffer.from(JSON.stringify(reply)), { correlationId: msg.properties.correlationId });
    }
    try {
      this.ch.ack(msg);
    } catch {
      // Channel gone: the command is redelivered or expires; commands are idempotent.
    }
  }

  private reject(code: string, error: string): ControlReply {
    return { ok: false, code, error: `${this.identity}: ${error}` };
  }

  private async command(cmd: ControlCommand): Promise<ControlReply> {
    this.checkIdentity();
    if (cmd.kind === 'status') return { ok: true, result: this.status(cmd.digest ?? true) };
    const verdict = acceptFencing({ epoch: this.epoch, migrationId: this.migrationId }, cmd);
    if (verdict === 'stale') {
      return this.reject('stale-epoch', `command ${cmd.kind} for ${cmd.migrationId}@${cmd.epoch} is stale (now ${this.migrationId}@${this.epoch})`);
    }
    if (verdict === 'adopt') {
      this.epoch = cmd.epoch;
      this.migrationId = cmd.migrationId;
    }
    switch (cmd.kind) {
      case 'shadow': {
        if (this.role !== 'primary' || this.fenced) return this.reject('wrong-role', 'only a serving primary is shadowed');
        if (this.applyLog !== cmd.queue) {
          this.applyLog = cmd.queue;
          this.log(`shadowed: writing the apply log to ${cmd.queue} from position ${this.applied + 1}`);
        }
        return { ok: true, result: this.status(false) };
      }
      case 'replay': {
        if (this.role !== 'standby') return this.reject('wrong-role', 'only a restored copy replays');
        if (!this.replayTag) {
          this.replayQueue = cmd.queue;
          await this.consumeReplay(cmd.queue);
        }
        return { ok: true, result: this.status(false) };
      }
      case 'fence': {
        if (this.role !== 'primary') return this.reject('wrong-role', 'only the primary can be fenced');
        if (!this.fenced) {
          this.fenced = true;
          this.fencedAt = Date.now();
          const tag = this.primaryTag;
          this.primaryTag = null;
          if (tag && this.ch) await this.ch.cancel(tag);
          // Deliveries not yet started go back to the queue instead of delaying the handover: the copy takes
          // them from there after the swap. The one being applied finishes, so the count and marks are final.
          this.deliveries = this.deliveries.filter((d) => {
            if (d.from !== 'primary' || d.generation !== this.generation || !this.ch) return true;
            try {
              this.ch.nack(d.msg, false, true);
            } catch {
              // Channel gone: the broker requeues them itself.
            }
            return false;
          });
          await this.waitIdle();
        }
        // Every log entry and output is confirmed before the fence answers: the log is complete up to `applied`.
        await this.flushOutbox();
        if (this.outbox.length > 0) return this.reject('unflushed', `${this.outbox.length} apply-log entries or outputs are not confirmed yet; ask again`);
        return { ok: true, result: this.status(true) };
      }
      case 'catch-up': {
        if (this.role === 'primary' && this.activatedAt) return { ok: true, result: this.status(true) };
        if (this.role !== 'standby') return this.reject('wrong-role', 'only a restored copy catches up');
        this.upTo = cmd.upTo;
        if (this.applied >= this.upTo) await this.stopReplay();
        return { ok: true, result: this.status(!this.replayTag) };
      }
      case 'activate': {
        if (this.role === 'primary') return { ok: true, result: this.status(false) };
        if (this.replayTag) return this.reject('still-replaying', 'catch up before activation');
        this.activatedDigest = this.digest();
        this.role = 'primary';
        this.upTo = null;
        // The source was fenced alive and emitted every output up to its last position.
        this.owed.clear();
        // Log entries still buffered lie past the fence (there are none unless the log was written twice).
        this.deliveries = this.deliveries.filter((d) => d.from !== 'replay' || (this.ack(d), false));
        await this.consumePrimary();
        this.activatedAt = Date.now();
        this.log(`activated: consuming ${this.opts.input.queue}`);
        return { ok: true, result: this.status(false) };
      }
      case 'adopt': {
        if (this.role === 'primary') return { ok: true, result: this.status(false) };
        this.adopting = true;
        this.upTo = null;
        this.log('source lost: adopting its stream from its apply log');
        if (this.sealed) {
          await this.takeOver();
          return { ok: true, result: this.status(false) };
        }
        if (!this.replayTag) {
          this.replayQueue = cmd.queue;
          await this.consumeReplay(cmd.queue);
        }
        return { ok: true, result: this.status(false) };
      }
      case 'unfence': {
        if (this.role !== 'primary') return this.reject('wrong-role', 'only the primary can be unfenced');
        if (this.applyLog) this.log(`no longer shadowed: stopped writing ${this.applyLog}`);
        this.applyLog = null;
        if (this.fenced) {
          this.fenced = false;
          this.fencedAt = null;
          await this.consumePrimary();
          this.log('unfenced: consuming again');
        }
        return { ok: true, result: this.status(false) };
      }
    }
  }

  private digest(): string {
    return stateDigest(this.opts.digestOf ? this.opts.digestOf(this.state) : this.state, this.marks);
  }

  status(withDigest: boolean): InstanceStatus {
    return {
      instanceId: this.identity,
      service: this.opts.service,
      input: { exchange: this.opts.input.exchange, queue: this.opts.input.queue },
      role: this.role,
      consuming: this.primaryTag ? 'primary' : this.replayTag ? 'replay' : 'none',
      fenced: this.fenced,
      epoch: this.epoch,
      migrationId: this.migrationId,
      marks: { ...this.marks },
      digest: withDigest ? this.digest() : '',
      applied: this.applied,
      skippedDuplicates: this.skippedDuplicates,
      gaps: this.gaps,
      pending: this.deliveries.length,
      applyLog: this.applyLog,
      logged: this.logged,
      replaySkipped: this.replaySkipped,
      replayGaps: this.replayGaps,
      outputsEmitted: this.outputsEmitted,
      outputsSuppressed: this.outputsSuppressed,
      outputsOwed: this.owed.size,
      unstamped: this.unstamped,
      lastUnstampedAt: this.lastUnstampedAt,
      fencedAt: this.fencedAt,
      activatedAt: this.activatedAt,
      activatedDigest: this.activatedDigest,
      lastPrimaryApplyAt: this.lastPrimaryApplyAt,
      app: this.opts.describe ? this.opts.describe(this.state) : {},
    };
  }
}

const owedKey = (producer: string, seq: number) => `${producer}#${seq}`;
