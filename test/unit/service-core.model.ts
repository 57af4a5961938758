/**
 * A model of a migration for property tests of the service core: a broker (the primary queue, the
 * replay queue holding the source's apply log, unacknowledged deliveries returned on a lost connection,
 * lost confirms) and instances that run the real core (service/core) the way MigratableService does,
 * with an order-sensitive application (a hash chain) in place of a service.
 *
 * The broker returns a dead connection's deliveries when it notices the death, which is a step of its
 * own: until then that connection's consumers still count, and newer messages may be delivered to others
 * meanwhile (returned ones land at the head of the queue, behind what went out before them).
 *
 * It records what the properties judge: every instance's apply history, the source's chain and digest at
 * every position, every output that reached the broker, and every violation seen while running.
 */
import { createHash } from 'node:crypto';
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
  report,
  settle,
  streams,
  withDigest,
  type CoreState,
  type Effect,
  type Incoming,
  type Outgoing,
  type RawMessage,
} from '../../service/core';
import { HEADER_END, HEADER_PRODUCER, HEADER_RESENT, HEADER_SEQ, stateDigest, type ControlCommand } from '../../service/protocol';

export const PRIMARY = 'svc.primary';
export const REPLAY = 'ms2m.replay.svc.m1';
const PREFETCH = 3;

interface BrokerMsg {
  id: number;
  raw: RawMessage;
  redelivered: boolean;
}

interface Queue {
  ready: BrokerMsg[];
  /** Delivered and not yet acknowledged, in delivery order, with the connection they went out on. */
  unacked: Array<{ msg: BrokerMsg; holder: Inst; conn: number }>;
}

/** A connection the broker has not yet noticed is dead: its unacknowledged deliveries and its consumers. */
interface Returning {
  queue: string;
  msgs: BrokerMsg[];
  consumer: boolean;
}

interface Buffered {
  from: 'primary' | 'replay';
  msg: BrokerMsg;
  generation: number;
}

interface App {
  chain: string;
  n: number;
}

export interface Inst {
  name: string;
  alive: boolean;
  core: CoreState;
  app: App;
  outbox: Outgoing[];
  connected: boolean;
  /** Which connection of this instance: unacked deliveries belong to one. */
  conn: number;
  generation: number;
  buffer: Buffered[];
  primaryOn: boolean;
  /** Waiting to consume a queue until no other consumer holds it, as MigratableService does. */
  waiting: boolean;
  /** Fenced, applying what the primary queue had delivered before it answers. */
  draining: boolean;
  replayOn: string | null;
  /** `producer:seq` of every message applied, in order (a copy's starts with its source's). */
  history: string[];
  /** The next publish of this instance reaches the broker but its confirm is lost with the connection. */
  loseNextConfirm: boolean;
}

export interface OutputSeen {
  instance: string;
  id: string;
  resent: boolean;
}

export type Reply = { ok: true; applied: number; digest: string; consuming: string; replayGaps: number; role: string; activatedAt: number | null } | { ok: false; code: string };

const chainStep = (chain: string, id: string) => createHash('sha1').update(`${chain}|${id}`).digest('hex').slice(0, 16);
const appDigest = (i: Inst) => stateDigest(i.app, i.core.marks);

export class World {
  readonly queues = new Map<string, Queue>([[PRIMARY, { ready: [], unacked: [] }]]);
  readonly outputs: OutputSeen[] = [];
  /** Oldest first. */
  readonly returning: Returning[] = [];
  readonly violations: string[] = [];
  /** The source's chain and digest after each position it applied. */
  readonly sourceAt: Array<{ chain: string; digest: string }> = [];
  readonly published = new Map<string, number>();
  readonly source: Inst;
  copy: Inst | null = null;
  /** The source's position when the checkpoint was taken. */
  checkpointedAt: number | null = null;
  private nextId = 1;
  private now = 1;

  constructor() {
    this.source = {
      name: 'src',
      alive: true,
      core: createCore('src', PRIMARY),
      app: { chain: '0', n: 0 },
      outbox: [],
      connected: false,
      conn: 0,
      generation: 0,
      buffer: [],
      primaryOn: false,
      waiting: false,
      draining: false,
      replayOn: null,
      history: [],
      loseNextConfirm: false,
    };
    this.sourceAt[0] = { chain: '0', digest: appDigest(this.source) };
    this.reconnect(this.source);
  }

  get instances(): Inst[] {
    return this.copy ? [this.source, this.copy] : [this.source];
  }

  // ---- producers and the broker -------------------------------------------------------------------

  /** The producer's next message, or (`again`) one it published before, sent again with the same stamp. */
  publish(producer: string, again?: number): void {
    const last = this.published.get(producer) ?? 0;
    const seq = again === undefined || last === 0 ? last + 1 : 1 + (again % last);
    if (seq > last) this.published.set(producer, seq);
    const headers = { [HEADER_PRODUCER]: producer, [HEADER_SEQ]: seq };
    this.queues.get(PRIMARY)!.ready.push(this.message({ content: Buffer.from(`${producer}:${seq}`), routingKey: `ev.${producer}`, headers, messageId: `${producer}:${seq}` }));
  }

  declareReplay(): void {
    if (!this.queues.has(REPLAY)) this.queues.set(REPLAY, { ready: [], unacked: [] });
  }

  seal(): void {
    this.queues.get(REPLAY)?.ready.push(this.message({ content: Buffer.from('{}'), routingKey: REPLAY, headers: { [HEADER_END]: 'm1' } }));
  }

  private message(raw: RawMessage): BrokerMsg {
    return { id: this.nextId++, raw, redelivered: false };
  }

  /** The broker hands the instance the next message of a queue it consumes, up to the prefetch. */
  deliver(i: Inst, from: 'primary' | 'replay'): boolean {
    if (i.waiting) this.attach(i);
    const name = from === 'primary' ? (i.primaryOn ? PRIMARY : null) : i.replayOn;
    const q = name ? this.queues.get(name) : undefined;
    if (!i.alive || !i.connected || !q || q.ready.length === 0) return false;
    if (q.unacked.filter((u) => u.holder === i).length >= PREFETCH) return false;
    const msg = q.ready.shift()!;
    q.unacked.push({ msg, holder: i, conn: i.conn });
    i.buffer.push({ from, msg, generation: i.generation });
    return true;
  }

  /**
   * The connection dies. What it had not acknowledged, and its consumers, stay with it until the broker
   * notices (`land`).
   */
  drop(i: Inst): void {
    if (!i.connected) return;
    for (const [name, q] of this.queues) {
      const msgs = q.unacked.filter((u) => u.holder === i && u.conn === i.conn).map((u) => u.msg);
      const consumer = (name === PRIMARY && i.primaryOn) || name === i.replayOn;
      q.unacked = q.unacked.filter((u) => !msgs.includes(u.msg));
      if (msgs.length > 0 || consumer) this.returning.push({ queue: name, msgs, consumer });
    }
    i.connected = false;
    i.primaryOn = false;
    i.waiting = false;
    i.replayOn = null;
  }

  /** The broker notices the oldest dead connection: its deliveries go back to the head of their queue, redelivered. */
  land(): boolean {
    const r = this.returning.shift();
    if (!r) return false;
    this.queues.get(r.queue)?.ready.unshift(...r.msgs.map((m) => ({ ...m, redelivered: true })));
    return true;
  }

  /** Consumers of a queue other than `i`, dead connections' included. */
  private otherConsumers(i: Inst, queue: string): number {
    const live = this.instances.filter((x) => x !== i && x.connected && (queue === PRIMARY ? x.primaryOn : x.replayOn === queue)).length;
    return live + this.returning.filter((r) => r.queue === queue && r.consumer).length;
  }

  /** Consumes the streams the instance should, each once nobody else holds its queue; otherwise waits. */
  private attach(i: Inst): void {
    i.waiting = false;
    if (!i.alive || !i.connected) return;
    const want = streams(i.core);
    if (want.primary && !i.primaryOn) {
      if (this.otherConsumers(i, PRIMARY) > 0) i.waiting = true;
      else i.primaryOn = true;
    }
    if (want.replay && !i.replayOn) {
      if (this.otherConsumers(i, want.replay) > 0) i.waiting = true;
      else i.replayOn = want.replay;
    }
  }

  private ack(i: Inst, d: Buffered): void {
    // Acknowledgements of a dead connection never reach the broker.
    if (!i.connected || d.generation !== i.generation) return;
    for (const q of this.queues.values()) q.unacked = q.unacked.filter((x) => !(x.msg === d.msg && x.holder === i && x.conn === i.conn));
  }

  reconnect(i: Inst): void {
    if (!i.alive || i.connected) return;
    i.generation++;
    i.conn++;
    i.connected = true;
    this.flush(i);
    this.attach(i);
  }

  kill(i: Inst): void {
    this.drop(i);
    i.alive = false;
    i.buffer = [];
    i.outbox = [];
  }

  private flush(i: Inst): void {
    if (!i.connected || i.outbox.length === 0) return;
    const batch = i.outbox.slice();
    for (const o of batch) this.store(i, o);
    if (i.loseNextConfirm) {
      i.loseNextConfirm = false;
      for (const o of batch) if (!o.log) o.headers[HEADER_RESENT] = true;
      this.drop(i);
      return;
    }
    i.outbox.splice(0, batch.length);
    confirmed(i.core, batch);
  }

  private store(i: Inst, o: Outgoing): void {
    if (o.log) {
      const q = this.queues.get(o.routingKey);
      if (!q) logReturned(i.core, o.routingKey);
      else q.ready.push(this.message({ content: o.content, routingKey: o.routingKey, headers: { ...o.headers }, messageId: o.messageId }));
      return;
    }
    this.outputs.push({ instance: i.core.identity, id: o.messageId ?? '?', resent: o.headers[HEADER_RESENT] === true });
  }

  // ---- instances ----------------------------------------------------------------------------------

  /** The instance handles the next buffered delivery as MigratableService's pump does. */
  process(i: Inst): boolean {
    const d = i.buffer.shift();
    if (!i.alive || !d) return false;
    if (d.generation !== i.generation) return true;
    const incoming = readIncoming(d.from, d.msg.raw);
    const step = admit(i.core, incoming, this.context(i));
    this.perform(i, step.effects, d);
    if (step.verdict.kind !== 'apply') return true;
    const outputs = this.apply(i, incoming);
    this.finish(i, incoming, outputs, d);
    return true;
  }

  private apply(i: Inst, incoming: Incoming): Outgoing[] {
    const stamp = incoming.message.stamp!;
    const id = `${stamp.producer}:${stamp.seq}`;
    i.app.chain = chainStep(i.app.chain, id);
    i.app.n++;
    i.history.push(id);
    return [outputOf('out', `r.${stamp.producer}`, { n: i.app.n, chain: i.app.chain }, stamp, i.core.identity, 0)];
  }

  private finish(i: Inst, incoming: Incoming, outputs: Outgoing[], d: Buffered): void {
    const wasOwner = i.core.role === 'primary' && (!i.core.fenced || i.draining);
    const effects = settle(i.core, incoming, outputs, this.now++);
    if (effects.some((e) => e.kind === 'publish') && !wasOwner) this.violations.push(`${i.name} published the outputs of ${i.history.at(-1)} while not serving`);
    if (i === this.source) this.sourceAt[i.core.applied] = { chain: i.app.chain, digest: appDigest(i) };
    this.perform(i, effects, d);
  }

  /**
   * CRIU: the copy is the source's memory, restored with a new hostname and a dead socket. With
   * `midApply`, the checkpoint is taken while the source is inside the application's apply of its next
   * delivery: both finish that apply, each as what it is.
   */
  checkpoint(midApply: boolean): void {
    const s = this.source;
    let inFlight: { d: Buffered; incoming: Incoming; outputs: Outgoing[] } | null = null;
    while (midApply && s.buffer.length > 0 && !inFlight) {
      const d = s.buffer.shift()!;
      if (d.generation !== s.generation) continue;
      const incoming = readIncoming(d.from, d.msg.raw);
      const step = admit(s.core, incoming, this.context(s));
      this.perform(s, step.effects, d);
      if (step.verdict.kind === 'apply') inFlight = { d, incoming, outputs: this.apply(s, incoming) };
    }
    const c: Inst = {
      ...s,
      name: 'copy',
      core: cloneCore(s.core),
      app: { ...s.app },
      outbox: s.outbox.map(cloneOutgoing),
      buffer: [...s.buffer],
      history: [...s.history],
      loseNextConfirm: false,
    };
    this.copy = c;
    this.checkpointedAt = s.core.applied;
    if (inFlight) this.finish(s, inFlight.incoming, inFlight.outputs, inFlight.d);
    // The restored copy's socket is closed; it notices its hostname before anything else.
    c.connected = false;
    c.primaryOn = false;
    c.waiting = false;
    c.replayOn = null;
    becomeCopy(c.core, 'copy', c.outbox);
    c.outbox = [];
    c.buffer = [];
    c.generation++;
    if (inFlight) this.finish(c, inFlight.incoming, inFlight.outputs.map(cloneOutgoing), inFlight.d);
  }

  /**
   * A control command as the instance's control consumer handles it; null if it cannot receive it now.
   * With `meanwhile`, the instance handles that many buffered deliveries between deciding and replying, as
   * the shell's pump does while a command awaits its effects.
   */
  send(i: Inst, cmd: ControlCommand, meanwhile = 0): Reply | null {
    if (!i.alive || !i.connected) return null;
    const { effects, reply } = command(i.core, cmd, this.context(i));
    if (!this.perform(i, effects)) return { ok: false, code: 'unflushed' };
    for (let n = 0; n < meanwhile; n++) this.process(i);
    if (!reply.ok) return { ok: false, code: reply.code };
    const r = report(i.core);
    return {
      ok: true,
      applied: r.applied,
      digest: withDigest(i.core, reply) ? appDigest(i) : '',
      consuming: i.primaryOn ? 'primary' : i.replayOn ? 'replay' : 'none',
      replayGaps: r.replayGaps,
      role: r.role,
      activatedAt: r.activatedAt,
    };
  }

  private context(i: Inst) {
    return { now: this.now++, digest: () => appDigest(i) };
  }

  /** Carries out effects as MigratableService.perform does; false if the outbox could not be confirmed. */
  private perform(i: Inst, effects: Effect[], d?: Buffered): boolean {
    for (const e of effects) {
      switch (e.kind) {
        case 'publish':
          if (e.out.some((o) => !o.log) && i.core.role !== 'primary') this.violations.push(`${i.name} emitted outputs as a ${i.core.role}`);
          i.outbox.push(...e.out);
          this.flush(i);
          break;
        case 'ack':
          if (d) this.ack(i, d);
          break;
        case 'consume-primary':
        case 'consume-replay':
          this.attach(i);
          break;
        case 'stop-replay':
          i.replayOn = null;
          break;
        case 'stop-primary':
          // Cancelled: what was delivered is in the buffer, and all of it is applied before the reply.
          i.primaryOn = false;
          i.draining = true;
          while (i.buffer.some((b) => b.from === 'primary')) this.process(i);
          i.draining = false;
          break;
        case 'drop-buffered-replay':
          for (const b of i.buffer.filter((x) => x.from === 'replay')) this.ack(i, b);
          i.buffer = i.buffer.filter((x) => x.from !== 'replay');
          break;
        case 'confirm-all':
          this.flush(i);
          if (i.outbox.length > 0) return false;
          break;
        case 'activated':
          markActivated(i.core, this.now++);
          break;
        case 'log':
          break;
      }
    }
    return true;
  }
}

function cloneOutgoing(o: Outgoing): Outgoing {
  return { ...o, headers: { ...o.headers } };
}

function cloneCore(s: CoreState): CoreState {
  return { ...s, marks: { ...s.marks }, counts: { ...s.counts }, owed: new Map([...s.owed].map(([k, outs]) => [k, outs.map(cloneOutgoing)])) };
}
