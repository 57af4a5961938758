/**
 * The library a stateful RabbitMQ consumer embeds to take part in ms2m migrations.
 *
 * It owns the consume → apply → emit → ack loop so that it can hold the guarantees of the handoff:
 * per-producer high-water marks live next to the application state (a checkpoint carries them), anything
 * at or below a mark is skipped, outputs are emitted only by the instance that owns the stream, and the
 * instance obeys the control commands of the orchestrator (replay, fence, catch-up, activate, unfence).
 *
 * Identity is the UTS hostname, never an environment variable or a file: a process restored by CRIU keeps
 * its whole memory and environment, but the node agent gives it a new hostname before letting it run, so
 * the copy notices it is a copy before it consumes or emits anything.
 */
import * as os from 'node:os';
import * as amqp from 'amqplib';
import {
  CONTROL_QUEUE_ARGS,
  HEADER_CUT,
  HEADER_END,
  HEADER_PRODUCER,
  HEADER_PUBLISHED_AT,
  HEADER_SEQ,
  acceptFencing,
  controlQueueName,
  judge,
  readStamp,
  reached,
  stateDigest,
  type ControlCommand,
  type ControlReply,
  type CutReply,
  type Fencing,
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
  /** Must be synchronous and deterministic: it is the state transition the copy replays. */
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

interface Output {
  routingKey: string;
  content: Buffer;
  headers: Record<string, unknown>;
  /** `<producer>:<seq>:<n>`: the same for every copy of this output, so a consumer can drop a resend. */
  messageId?: string;
}

/**
 * Set on an output published again because the first attempt's confirm never came (the broker connection
 * dropped), or emitted for a lost source that may already have emitted it. The broker may hold both
 * copies; a consumer drops the second by message id. Every other output is published once.
 */
export const HEADER_RESENT = 'x-ms2m-resent';

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
  private outputsSuppressed = 0;
  private unstamped = 0;
  private lastUnstampedAt: number | null = null;
  /**
   * Outputs a copy computed but did not emit, by input message: if the source dies before the fence they
   * may still be owed (the source applied a message but never emitted for it). Activation after a normal
   * fence drops them; adoption emits those whose input the dead source had not acknowledged.
   */
  private owed = new Map<string, Output[]>();
  /** Taking over from a source that is gone: replay without a bound up to the replay queue's end marker. */
  private adopting = false;
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
  /** During replay the copy applies nothing beyond the source's progress, so it is never ahead of it. */
  private bound: Marks = {};
  /** At the fence: the copy applies exactly up to these marks and drops the rest of the replay queue. */
  private target: Marks | null = null;
  private boundChanged: (() => void) | null = null;
  private deliveries: Delivery[] = [];
  private outbox: Output[] = [];
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
    this.primaryTag = null;
    this.replayTag = null;
    this.replayQueue = null;
    this.bound = {};
    this.target = null;
    // Outputs the source still owed stay the source's, unless the source dies and the copy adopts its stream.
    for (const o of this.outbox) this.owe(o);
    this.outbox = [];
    this.owed = new Map([...this.owed].filter(([, outs]) => outs.length > 0));
    this.adopting = false;
    this.deliveries = [];
    this.generation++;
    this.wakeHolders();
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
      this.wakeHolders();
      this.scheduleReconnect();
    });
    const ch = await conn.createChannel();
    const pub = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    pub.on('error', () => undefined);
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
        const d = this.deliveries[0];
        if (!d) break;
        if (d.generation !== this.generation) {
          this.deliveries.shift();
          continue;
        }
        const hold = this.holdFor(d);
        if (hold) {
          await hold;
          continue;
        }
        this.deliveries.shift();
        await this.handle(d);
      }
    } finally {
      this.pumping = false;
    }
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** A replayed message beyond the source's known progress waits until the bound moves or a target is set. */
  private holdFor(d: Delivery): Promise<void> | null {
    if (d.from !== 'replay' || this.target || this.adopting) return null;
    const stamp = readStamp(d.msg.properties.headers, d.msg.properties.messageId);
    if (!stamp || d.msg.properties.headers?.[HEADER_CUT]) return null;
    if (stamp.seq <= (this.bound[stamp.producer] ?? 0)) return null;
    return new Promise((resolve) => {
      this.boundChanged = resolve;
    });
  }

  private wakeHolders(): void {
    const w = this.boundChanged;
    this.boundChanged = null;
    w?.();
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

  private async handle(d: Delivery): Promise<void> {
    const { msg } = d;
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    if (headers[HEADER_CUT]) {
      if (d.from === 'primary') await this.onCut(msg);
      this.ack(d);
      return;
    }
    if (headers[HEADER_END]) {
      if (d.from === 'replay' && this.adopting && headers[HEADER_END] === this.migrationId) await this.takeOver();
      this.ack(d);
      return;
    }
    const stamp = readStamp(headers, msg.properties.messageId);
    if (stamp) {
      if (d.from === 'replay' && this.target && stamp.seq > (this.target[stamp.producer] ?? 0)) {
        // Past the source's final marks: the message is also in the primary queue, where the copy gets it after activation.
        this.ack(d);
        this.checkCaughtUp();
        return;
      }
      const verdict = judge(this.marks, stamp);
      if (verdict === 'duplicate') {
        this.skippedDuplicates++;
        const owed = d.from === 'primary' && this.role === 'primary' ? this.owed.get(ownedKey(stamp.producer, stamp.seq)) : undefined;
        if (owed) {
          // Adopted from a dead source that never acknowledged this message: its output was never emitted.
          this.owed.delete(ownedKey(stamp.producer, stamp.seq));
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
    } else if (d.from === 'replay') {
      // Without a stamp a replayed message cannot be told from one the checkpoint already holds.
      this.log('unstamped message on the replay queue skipped; stamp messages with the ms2m producer helper');
      this.ack(d);
      return;
    } else {
      this.unstamped++;
      this.lastUnstampedAt = Date.now();
    }

    const outputs: Output[] = [];
    const ctx: ApplyContext = {
      emit: (routingKey, body) =>
        outputs.push({
          routingKey,
          messageId: stamp ? `${stamp.producer}:${stamp.seq}:${outputs.length}` : undefined,
          content: Buffer.from(JSON.stringify(body)),
          headers: {
            ...(stamp ? { [HEADER_PRODUCER]: stamp.producer, [HEADER_SEQ]: stamp.seq } : {}),
            ...(stamp?.publishedAt ? { [HEADER_PUBLISHED_AT]: stamp.publishedAt } : {}),
            'x-ms2m-instance': this.identity,
          },
        }),
    };
    this.opts.apply(this.state, { body: msg.content, routingKey: msg.fields.routingKey, stamp, headers }, ctx);
    if (stamp) this.marks[stamp.producer] = stamp.seq;
    this.applied++;
    if (d.from === 'primary') this.lastPrimaryApplyAt = Date.now();
    this.checkIdentity();
    if (this.role === 'primary') {
      this.outbox.push(...outputs);
      await this.flushOutbox();
    } else {
      this.outputsSuppressed += outputs.length;
      if (stamp) this.owed.set(ownedKey(stamp.producer, stamp.seq), outputs);
    }
    this.ack(d);
    this.checkCaughtUp();
  }

  private owe(o: Output): void {
    const producer = o.headers[HEADER_PRODUCER];
    const seq = o.headers[HEADER_SEQ];
    if (typeof producer !== 'string' || typeof seq !== 'number') return;
    const k = ownedKey(producer, seq);
    this.owed.set(k, [...(this.owed.get(k) ?? []), o]);
  }

  /** The end of a sealed replay queue reached while adopting: everything before the seal is applied. */
  private async takeOver(): Promise<void> {
    await this.stopReplay();
    this.adopting = false;
    this.activatedDigest = this.digest();
    this.role = 'primary';
    this.target = null;
    await this.consumePrimary();
    this.activatedAt = Date.now();
    this.log(`adopted the stream of a lost source: consuming ${this.opts.input.queue}, ${this.owed.size} outputs still owed`);
  }

  /** Publishes owed outputs with publisher confirms; on failure they stay owed and go out after reconnecting. */
  private async flushOutbox(): Promise<void> {
    const out = this.opts.output;
    if (!out || !this.pub || this.outbox.length === 0) {
      if (!out) this.outbox = [];
      return;
    }
    const batch = this.outbox.slice();
    try {
      for (const o of batch) this.pub.publish(out.exchange, o.routingKey, o.content, { headers: o.headers, messageId: o.messageId, persistent: true });
      await this.pub.waitForConfirms();
      this.outbox.splice(0, batch.length);
    } catch (err) {
      // Unconfirmed is not unpublished: the broker may have stored them, so the next attempt says so.
      for (const o of batch) o.headers[HEADER_RESENT] = true;
      this.log(`output publish failed, kept for retry: ${(err as Error).message}`);
    }
  }

  private async onCut(msg: amqp.ConsumeMessage): Promise<void> {
    const cut = JSON.parse(msg.content.toString()) as Fencing;
    const verdict = acceptFencing({ epoch: this.epoch, migrationId: this.migrationId }, cut);
    if (verdict === 'stale') return;
    if (verdict === 'adopt') {
      this.epoch = cut.epoch;
      this.migrationId = cut.migrationId;
    }
    const reply: CutReply = { migrationId: cut.migrationId, instanceId: this.identity, marks: { ...this.marks }, appliedAt: Date.now() };
    if (msg.properties.replyTo && this.pub) {
      this.pub.sendToQueue(msg.properties.replyTo, Buffer.from(JSON.stringify(reply)), { correlationId: msg.properties.correlationId });
    }
  }

  private checkCaughtUp(): void {
    if (this.target && this.replayTag && reached(this.marks, this.target)) void this.stopReplay();
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
      case 'replay': {
        if (this.role !== 'standby') return this.reject('wrong-role', 'only a restored copy replays');
        this.bound = mergeMax(this.bound, cmd.bound);
        if (!this.replayTag) {
          this.replayQueue = cmd.queue;
          await this.consumeReplay(cmd.queue);
        }
        this.wakeHolders();
        return { ok: true, result: this.status(false) };
      }
      case 'bound': {
        this.bound = mergeMax(this.bound, cmd.bound);
        this.wakeHolders();
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
          // them from there after the swap. The one being applied finishes, so the marks are final.
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
          await this.flushOutbox();
        }
        return { ok: true, result: this.status(true) };
      }
      case 'catch-up': {
        if (this.role === 'primary' && this.activatedAt) return { ok: true, result: this.status(true) };
        if (this.role !== 'standby') return this.reject('wrong-role', 'only a restored copy catches up');
        this.target = { ...cmd.target };
        this.wakeHolders();
        if (reached(this.marks, this.target)) await this.stopReplay();
        return { ok: true, result: this.status(!this.replayTag) };
      }
      case 'activate': {
        if (this.role === 'primary') return { ok: true, result: this.status(false) };
        if (this.replayTag) return this.reject('still-replaying', 'catch up before activation');
        this.activatedDigest = this.digest();
        this.role = 'primary';
        this.target = null;
        // The source was fenced alive and emitted every output up to its final marks.
        this.owed.clear();
        // Replayed messages still buffered lie beyond the fence marks and are in the primary queue too.
        this.deliveries = this.deliveries.filter((d) => d.from !== 'replay' || (this.ack(d), false));
        this.wakeHolders();
        await this.consumePrimary();
        this.activatedAt = Date.now();
        this.log(`activated: consuming ${this.opts.input.queue}`);
        return { ok: true, result: this.status(false) };
      }
      case 'adopt': {
        if (this.role === 'primary') return { ok: true, result: this.status(false) };
        this.adopting = true;
        this.target = null;
        if (!this.replayTag) {
          this.replayQueue = cmd.queue;
          await this.consumeReplay(cmd.queue);
        }
        this.wakeHolders();
        this.log('source lost: adopting its stream from the replay queue');
        return { ok: true, result: this.status(false) };
      }
      case 'unfence': {
        if (this.role !== 'primary') return this.reject('wrong-role', 'only the primary can be unfenced');
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

const ownedKey = (producer: string, seq: number) => `${producer}#${seq}`;

function mergeMax(a: Marks, b: Marks): Marks {
  const out = { ...a };
  for (const [p, s] of Object.entries(b)) out[p] = Math.max(out[p] ?? 0, s);
  return out;
}
