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
 * Identity comes from the runtime (./identity: the UTS hostname locally, a downward-API file on
 * Kubernetes), never from an environment variable: a process restored by CRIU keeps its whole memory and
 * environment, but sees its new identity before it runs, so the copy notices it is a copy before it
 * consumes or emits anything.
 *
 * Every decision is the core's (./core); this class is the transport around it: consumers, the outbox
 * published with confirms, reconnection, and watching the hostname.
 */
import * as amqp from 'amqplib';
import { performance } from 'node:perf_hooks';
import {
  admit,
  becomeCopy,
  command,
  confirmed,
  createCore,
  logReturned,
  markActivated,
  outputOf,
  readIncoming,
  refusal,
  report,
  settle,
  streams,
  withDigest,
  type Context,
  type CoreState,
  type Effect,
  type InputMessage,
  type Outgoing,
} from './core';
import { CONTROL_QUEUE_ARGS, controlQueueName, handoffRefusal, stateDigest, type ControlCommand, type ControlReply, type InstanceStatus, type Marks } from './protocol';
import { Reconnector } from './reconnect';
import { untilSoleConsumer } from './sole-consumer';
import { identitySource, type IdentitySource } from './identity';
import { InputWindow } from './input-window';
import { Outbox } from './outbox';

import type { ApplyContext, ServiceOptions } from './service-options';

export type { InputMessage } from './core';
export type { ApplyContext, ServiceOptions } from './service-options';
export { HEADER_RESENT } from './protocol';

/** How long a fence, or a stop, waits for the broker to confirm what the instance published. */
const CONFIRM_TIMEOUT_MS = 5000;
/** Work done between two turns of the event loop, at most (one message's, if it takes longer). */
const YIELD_AFTER_MS = 1;
/** Deliveries of the control queue in hand at a time: a status poll may come while a command runs. */
const CONTROL_PREFETCH = 2;

interface Delivery {
  msg: amqp.ConsumeMessage;
  from: 'primary' | 'replay';
  generation: number;
}

/**
 * Does not install signal handlers or exit: the program embedding it decides how it stops (the examples
 * call stop() on SIGTERM and SIGINT).
 */
export class MigratableService<S> {
  state: S;
  private readonly core: CoreState;

  private conn: amqp.ChannelModel | null = null;
  private ch: amqp.Channel | null = null;
  private pub: amqp.ConfirmChannel | null = null;
  /** Bumped on every (re)connection: deliveries of an older generation belong to a dead channel. */
  private generation = 0;
  private primaryTag: string | null = null;
  private attaching: Promise<void> | null = null;
  /** Subscribing again with another window: still consuming the primary queue, as far as anyone asks. */
  private resizing = false;
  private attachingReplay: Promise<void> | null = null;
  private replayTag: string | null = null;
  private deliveries: Delivery[] = [];
  private readonly outbox = new Outbox({
    confirmed: (batch) => confirmed(this.core, batch),
    broken: (err) => this.dropConnection(`publish failed, everything unconfirmed is kept to send again: ${err.message}`),
  });
  private readonly window: InputWindow;
  /** The prefetch last set on a channel, for the consumers it subscribes next. */
  private qos: { ch: amqp.Channel; size: number } | null = null;
  private pumping = false;
  private idleWaiters: Array<() => void> = [];
  /** Catch-up commands waiting for the copy to reach the fenced position. */
  private caughtUpWaiters: Array<() => void> = [];
  private stopping = false;
  private identityWatch: NodeJS.Timeout | null = null;
  private readonly reconnector = new Reconnector(() => this.connect(), {
    onFailure: (err) => this.log(`reconnect failed: ${err.message}`),
  });

  private readonly identity: IdentitySource;

  constructor(private readonly opts: ServiceOptions<S>) {
    this.state = opts.initialState();
    this.identity = opts.identity ?? identitySource();
    this.window = new InputWindow(opts.prefetch);
    this.core = createCore(this.identity(), opts.input.queue);
  }

  /** Who this instance is now (a restored copy: its new identity, once it has seen it). */
  get instanceId(): string {
    return this.core.identity;
  }

  /** The per-producer high-water marks, which the checkpoint carries with the state. */
  get marks(): Marks {
    return this.core.marks;
  }

  private log(line: string): void {
    (this.opts.log ?? ((l: string) => console.log(l)))(`[${new Date().toISOString()} ${this.core.identity}] ${line}`);
  }

  async start(): Promise<void> {
    // A restored copy may sit idle with a dead socket that nothing reads; it still learns its identity promptly.
    this.identityWatch = setInterval(() => this.checkIdentity(), 50).unref();
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.reconnector.stop();
    if (this.identityWatch) clearInterval(this.identityWatch);
    try {
      await this.attaching;
      if (this.ch && this.primaryTag) await this.ch.cancel(this.primaryTag);
      await this.waitIdle();
      await this.outbox.settled(CONFIRM_TIMEOUT_MS);
      await this.conn?.close();
    } catch {
      // The broker may already be gone; nothing is acknowledged that was not applied.
    }
  }

  /**
   * A copy is a process whose identity no longer matches the identity it was checkpointed with. Called
   * before anything is consumed, applied or emitted; a copy drops the source's connection and reconnects.
   */
  private checkIdentity(): void {
    if (!this.adoptIdentity()) return;
    const old = this.conn;
    this.conn = null;
    this.ch = null;
    this.pub = null;
    if (old) void old.close().catch(() => undefined);
    this.reconnector.request({ immediately: true });
  }

  private adoptIdentity(): boolean {
    const now = this.identity();
    if (now === this.core.identity) return false;
    const line = becomeCopy(this.core, now, this.outbox.take());
    this.primaryTag = null;
    this.replayTag = null;
    this.deliveries = [];
    this.generation++;
    this.log(line);
    return true;
  }

  private async connect(): Promise<void> {
    this.adoptIdentity();
    const generation = ++this.generation;
    // noDelay: pipelined, the instance writes small frames back to back (an acknowledgement, then a
    // publish); with Nagle the second waits for the broker's delayed TCP ack, ~40 ms, and the fence with it.
    const conn = await amqp.connect(this.opts.amqpUrl, { noDelay: true, clientProperties: { connection_name: this.core.identity } });
    conn.on('error', () => undefined);
    conn.on('close', () => {
      if (generation !== this.generation || this.stopping) return;
      this.log('broker connection lost; reconnecting');
      this.outbox.detach();
      this.conn = null;
      this.ch = null;
      this.pub = null;
      this.primaryTag = null;
      this.replayTag = null;
      this.reconnector.request();
    });
    const ch = await conn.createChannel();
    const pub = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    pub.on('error', () => undefined);
    // A channel the broker closed (e.g. a publish to an exchange that is gone) leaves the connection up.
    // (Deferred: when the connection itself goes, its close comes after its channels' and clears this.conn.)
    for (const c of [ch, pub]) c.on('close', () => setImmediate(() => this.conn === conn && this.dropConnection('a channel closed')));
    // A log entry the broker could not route: the replay queue is gone (the migration ended or was rolled back).
    pub.on('return', (m: amqp.Message) => {
      const line = logReturned(this.core, m.fields.routingKey);
      if (line) this.log(line);
    });
    await ch.prefetch(CONTROL_PREFETCH);
    this.qos = { ch, size: CONTROL_PREFETCH };
    const { input, output } = this.opts;
    await ch.assertExchange(input.exchange, input.exchangeType ?? 'topic', { durable: true });
    await ch.assertQueue(input.queue, { durable: true });
    for (const key of input.bindings ?? ['#']) await ch.bindQueue(input.queue, input.exchange, key);
    if (output) await ch.assertExchange(output.exchange, output.exchangeType ?? 'topic', { durable: true });
    const ctl = controlQueueName(this.core.identity);
    await ch.assertQueue(ctl, CONTROL_QUEUE_ARGS);
    if (generation !== this.generation) {
      // Became a copy while connecting: this connection was made under the old identity, and the next one is due.
      await conn.close().catch(() => undefined);
      throw new Error('the identity changed while connecting');
    }
    this.conn = conn;
    this.ch = ch;
    this.pub = pub;
    await ch.consume(ctl, (m) => m && void this.onControl(m, generation));
    this.outbox.attach(pub);
    const want = streams(this.core);
    if (want.primary) await this.consumePrimary();
    if (want.replay && !this.replayTag) await this.consumeReplay(want.replay);
    this.log(`connected as ${this.core.role}${this.core.fenced ? ' (fenced)' : ''}`);
  }

  /** One attachment per stream at a time: two concurrent ones would leave a consumer nothing cancels. */
  private consumePrimary(): Promise<void> {
    if (!this.ch || this.primaryTag) return Promise.resolve();
    this.attaching ??= this.attach('primary', this.opts.input.queue).finally(() => (this.attaching = null));
    return this.attaching;
  }

  private consumeReplay(queue: string): Promise<void> {
    if (!this.ch || this.replayTag) return Promise.resolve();
    this.attachingReplay ??= this.attach('replay', queue).finally(() => (this.attachingReplay = null));
    return this.attachingReplay;
  }

  /** Consumes a queue once no other consumer holds it (./sole-consumer says why). */
  private async attach(from: Delivery['from'], queue: string): Promise<void> {
    const { ch, generation } = this;
    if (!ch) return;
    const wanted = () => {
      const want = streams(this.core);
      return generation === this.generation && this.ch === ch && !this.stopping && (from === 'primary' ? want.primary : want.replay === queue);
    };
    try {
      const waited = (n: number) => this.log(`waiting to consume ${queue}: ${n} other consumer(s) still hold it (a connection the broker has not closed yet, or another instance)`);
      if (!(await untilSoleConsumer(ch, queue, wanted, waited))) return;
      // Per consumer, so the size is the one it subscribes with (./input-window). Sent only when it
      // changes: the activation's consume is inside the downtime window, and replay used the same size.
      if (this.qos?.ch !== ch || this.qos.size !== this.window.size) {
        await ch.prefetch(this.window.size);
        this.qos = { ch, size: this.window.size };
      }
      const { consumerTag } = await ch.consume(queue, (m) => m && this.enqueue(m, from, generation));
      if (from === 'primary') this.primaryTag = consumerTag;
      else this.replayTag = consumerTag;
    } catch (err) {
      // The channel died with the connection: connecting again consumes what the instance should.
      this.log(`could not consume ${queue}: ${(err as Error).message}`);
    }
  }

  private async stopReplay(): Promise<void> {
    await this.attachingReplay;
    const tag = this.replayTag;
    this.replayTag = null;
    if (tag && this.ch) await this.ch.cancel(tag).catch(() => undefined);
  }

  /**
   * The fence: nothing more from the primary queue, and everything already delivered is applied. None of
   * it goes back: the broker may requeue a delivery after the copy, consuming, has taken a later message
   * of the same producer, and the copy would then skip it as applied (seen on Kubernetes: the returns of
   * one nack-loop landing 50 ms apart, around the copy's first deliveries).
   */
  private async stopPrimary(): Promise<void> {
    await this.attaching;
    const tag = this.primaryTag;
    this.primaryTag = null;
    // After cancel-ok nothing more comes for the tag: what it delivered is in the buffer.
    if (tag && this.ch) await this.ch.cancel(tag);
    await this.waitIdle();
  }

  private enqueue(msg: amqp.ConsumeMessage, from: Delivery['from'], generation: number): void {
    this.deliveries.push({ msg, from, generation });
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      let yielded = performance.now();
      for (;;) {
        // Becoming a copy empties the buffer (those deliveries belong to the source's dead channel).
        this.checkIdentity();
        const d = this.deliveries.shift();
        if (!d) break;
        if (d.generation !== this.generation) continue;
        const started = performance.now();
        await this.handle(d);
        const done = performance.now();
        this.window.record(done - started);
        this.resizeWindow();
        // The socket is read only in the event loop's poll phase: without passing through it, the confirms
        // that free the window would be read only once the buffer is empty. (One setImmediate queued from
        // a delivery runs before the next poll; the second one runs after it.)
        if (done - yielded > YIELD_AFTER_MS) {
          await new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
          yielded = performance.now();
        }
      }
    } finally {
      this.pumping = false;
    }
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * Subscribes to the primary queue again with the window the measured work calls for. Nothing is lost or
   * reordered: after cancel-ok the old consumer's deliveries are all in the buffer, ahead of the new one's.
   */
  private resizeWindow(): void {
    const { ch } = this;
    const tag = this.primaryTag;
    if (!ch || !tag || this.attaching || this.stopping) return;
    const size = this.window.due();
    if (size === null) return;
    this.resizing = true;
    this.attaching = (async () => {
      await ch.cancel(tag);
      if (this.primaryTag === tag) this.primaryTag = null;
      this.log(`consuming ${this.opts.input.queue} with a window of ${size} (${this.window.workMs!.toFixed(3)} ms per message)`);
      await this.attach('primary', this.opts.input.queue);
    })()
      .catch((err: Error) => this.log(`could not resize the window: ${err.message}`))
      .finally(() => {
        this.attaching = null;
        this.resizing = false;
      });
  }

  private dropConnection(why: string): void {
    const conn = this.conn;
    if (!conn || this.stopping) return;
    this.log(`${why}; reconnecting`);
    void conn.close().catch(() => undefined);
  }

  private waitIdle(): Promise<void> {
    if (!this.pumping && this.deliveries.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async handle(d: Delivery): Promise<void> {
    const { msg } = d;
    const incoming = readIncoming(d.from, {
      content: msg.content,
      routingKey: msg.fields.routingKey,
      headers: (msg.properties.headers ?? {}) as Record<string, unknown>,
      messageId: msg.properties.messageId,
    });
    const { verdict, effects } = admit(this.core, incoming, this.context());
    if (verdict.kind !== 'apply') return void (await this.perform(effects, d));
    // Only log lines here, written without yielding: no command may run between the verdict and the apply.
    for (const e of effects) if (e.kind === 'log') this.log(e.line);
    const outputs = this.applyMessage(incoming.message);
    // A checkpoint taken during the apply resumes here in the copy, which must not emit as the source.
    this.checkIdentity();
    await this.perform(settle(this.core, incoming, outputs, Date.now()), d);
  }

  /** The state transition itself; the outputs it emits are routed by the core afterwards. */
  private applyMessage(m: InputMessage): Outgoing[] {
    const outputs: Outgoing[] = [];
    const out = this.opts.output;
    const ctx: ApplyContext = {
      emit: (routingKey, body) => {
        if (out) outputs.push(outputOf(out.exchange, routingKey, body, m.stamp, this.core.identity, outputs.length));
      },
    };
    this.opts.apply(this.state, m, ctx);
    return outputs;
  }

  /** Carries out the core's effects in order; returns a refusal if the outbox could not be confirmed. */
  private async perform(effects: Effect[], d?: Delivery): Promise<ControlReply | null> {
    for (const e of effects) {
      switch (e.kind) {
        case 'publish':
          this.outbox.send(e.out);
          break;
        case 'ack':
          if (d) this.outbox.afterConfirms(() => this.ack(d));
          break;
        case 'consume-primary': await this.consumePrimary(); break;
        case 'consume-replay': await this.consumeReplay(e.queue); break;
        case 'stop-replay':
          await this.stopReplay();
          for (const w of this.caughtUpWaiters.splice(0)) w();
          break;
        case 'stop-primary': await this.stopPrimary(); break;
        case 'drop-buffered-replay':
          this.deliveries = this.deliveries.filter((b) => b.from !== 'replay' || (this.ack(b), false));
          break;
        case 'confirm-all':
          if (!(await this.outbox.settled(CONFIRM_TIMEOUT_MS))) return refusal(this.core, 'unflushed', `${this.outbox.size} apply-log entries or outputs are not confirmed yet; ask again`);
          break;
        case 'activated': markActivated(this.core, Date.now()); break;
        case 'log': this.log(e.line); break;
      }
    }
    return null;
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

  // ---- control ------------------------------------------------------------------------------------

  private async onControl(msg: amqp.ConsumeMessage, generation: number): Promise<void> {
    let reply: ControlReply;
    try {
      reply = await this.command(JSON.parse(msg.content.toString()) as ControlCommand);
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

  private async command(cmd: ControlCommand): Promise<ControlReply> {
    this.checkIdentity();
    const { effects, reply } = command(this.core, cmd, this.context());
    const refused = await this.perform(effects);
    if (refused) return refused;
    if (!reply.ok) return reply;
    if (cmd.kind === 'catch-up' && reply.digest === 'caught-up') return this.catchUp(cmd);
    return { ok: true, result: this.status(withDigest(this.core, reply)) };
  }

  /** The rest of a catch-up command: the wait for the fenced position and the activation it may carry. */
  private async catchUp(cmd: Extract<ControlCommand, { kind: 'catch-up' }>): Promise<ControlReply> {
    // Caught up once the log is no longer read: the position is final and the replay consumer cancelled.
    const reading = () => this.core.replayQueue !== null || this.replayTag !== null;
    if (cmd.waitMs && reading()) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.caughtUpWaiters.push(resolve);
        timer = setTimeout(resolve, cmd.waitMs);
      });
      clearTimeout(timer);
    }
    const st = this.status(withDigest(this.core, { digest: 'caught-up' }));
    if (!cmd.activateIf || reading() || handoffRefusal(cmd.activateIf, st) !== null) return { ok: true, result: st };
    return this.command({ kind: 'activate', migrationId: cmd.migrationId, epoch: cmd.epoch });
  }

  private context(): Context {
    return { now: Date.now(), digest: () => this.digest() };
  }

  private digest(): string {
    return stateDigest(this.opts.digestOf ? this.opts.digestOf(this.state) : this.state, this.core.marks);
  }

  status(withDigest: boolean): InstanceStatus {
    return {
      ...report(this.core),
      service: this.opts.service,
      input: { exchange: this.opts.input.exchange, queue: this.opts.input.queue },
      consuming: this.primaryTag || this.resizing ? 'primary' : this.replayTag ? 'replay' : 'none',
      digest: withDigest ? this.digest() : '',
      pending: this.deliveries.length,
      app: this.opts.describe ? this.opts.describe(this.state) : {},
    };
  }
}
