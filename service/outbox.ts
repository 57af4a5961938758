/**
 * What an instance publishes, pipelined: every apply-log entry and output goes out on the confirm channel
 * at once, without waiting for the previous one's confirm, and an input is acknowledged only once
 * everything published before its acknowledgement was asked for is confirmed.
 *
 * That order is what the handoff needs: an acknowledged input has its log entry and its outputs stored
 * by the broker, so a copy that adopts the stream of a lost source finds in the primary queue exactly the
 * inputs the log does not hold, and no output of an acknowledged input can be missing. Waiting for each
 * confirm before the next apply (the old way) held the same order at one broker round trip per message.
 *
 * A nack, or a publish the channel refuses, breaks the pipeline: the confirms after it say nothing about
 * the order in which the broker stored what came before, so the owner drops the connection, the broker
 * redelivers every unacknowledged input (the marks skip them), and `attach` sends everything unconfirmed
 * again, in order. An output sent again says so (`HEADER_RESENT`): the broker may have stored it.
 */
import type { ConfirmChannel } from 'amqplib';
import type { Outgoing } from './core';
import { HEADER_RESENT } from './protocol';

interface Entry {
  serial: number;
  out: Outgoing;
  /** Published on some channel at least once: a later send may be a duplicate. */
  sent: boolean;
  confirmed: boolean;
}

interface Waiter {
  /** Runs once every entry with a smaller serial is confirmed. */
  mark: number;
  run: () => void;
}

export interface OutboxHooks {
  /** The broker confirmed these, in publication order: count them as written. */
  confirmed(batch: Outgoing[]): void;
  /** The channel nacked or refused a publish: drop the connection, and attach the next one. */
  broken(err: Error): void;
}

export class Outbox {
  /** Unconfirmed entries in publication order (confirmed ones leave from the front). */
  private entries: Entry[] = [];
  private waiters: Waiter[] = [];
  private settledWaiters: Array<(ok: boolean) => void> = [];
  private nextSerial = 1;
  private channel: ConfirmChannel | null = null;
  /** Bumped on every attach and detach: confirms of an older channel are ignored. */
  private epoch = 0;

  constructor(private readonly hooks: OutboxHooks) {}

  /** Entries not yet confirmed. */
  get size(): number {
    return this.entries.length;
  }

  /** A new channel: everything unconfirmed goes out again, in order. */
  attach(channel: ConfirmChannel): void {
    this.channel = channel;
    const epoch = ++this.epoch;
    for (const e of this.entries) {
      if (e.sent && !e.out.log) e.out.headers[HEADER_RESENT] = true;
      this.publish(e, epoch);
      if (epoch !== this.epoch) return;
    }
  }

  /**
   * The channel is gone. The entries stay for the next one; the acknowledgements waiting on them are
   * dropped, since they were for deliveries of that connection, which the broker gives out again.
   */
  detach(): void {
    this.channel = null;
    this.epoch++;
    this.waiters = [];
    this.wakeSettled(false);
  }

  send(out: Outgoing[]): void {
    for (const o of out) {
      const e: Entry = { serial: this.nextSerial++, out: o, sent: false, confirmed: false };
      this.entries.push(e);
      if (this.channel) this.publish(e, this.epoch);
    }
  }

  /** Runs `run` once everything sent so far is confirmed: at once if it is. */
  afterConfirms(run: () => void): void {
    if (this.entries.length === 0) return run();
    this.waiters.push({ mark: this.nextSerial, run });
  }

  /**
   * Everything unconfirmed, taken out (a restored copy: those are the source's to publish), and the
   * channel let go: it is the source's connection.
   */
  take(): Outgoing[] {
    const out = this.entries.map((e) => e.out);
    this.entries = [];
    this.detach();
    return out;
  }

  /** True once everything sent so far is confirmed; false if the channel breaks or `timeoutMs` passes first. */
  settled(timeoutMs: number): Promise<boolean> {
    if (this.entries.length === 0) return Promise.resolve(true);
    if (!this.channel) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.settledWaiters = this.settledWaiters.filter((w) => w !== done);
        resolve(ok);
      };
      this.settledWaiters.push(done);
    });
  }

  private publish(e: Entry, epoch: number): void {
    const ch = this.channel!;
    const { out } = e;
    e.sent = true;
    try {
      ch.publish(out.exchange, out.routingKey, out.content, { headers: out.headers, messageId: out.messageId, persistent: true, mandatory: out.log === true }, (err) => {
        if (epoch !== this.epoch) return;
        if (err) return this.break(err);
        this.confirm(e);
      });
    } catch (err) {
      this.break(err as Error);
    }
  }

  private break(err: Error): void {
    this.detach();
    this.hooks.broken(err);
  }

  private confirm(e: Entry): void {
    e.confirmed = true;
    let n = 0;
    while (n < this.entries.length && this.entries[n].confirmed) n++;
    if (n === 0) return;
    const batch = this.entries.splice(0, n).map((x) => x.out);
    this.hooks.confirmed(batch);
    const head = this.entries.length > 0 ? this.entries[0].serial : this.nextSerial;
    let w = 0;
    while (w < this.waiters.length && this.waiters[w].mark <= head) w++;
    // Waiters are in mark order: the ones due are a prefix, and run in the order they were asked for.
    for (const waiter of this.waiters.splice(0, w)) waiter.run();
    if (this.entries.length === 0) this.wakeSettled(true);
  }

  private wakeSettled(ok: boolean): void {
    for (const w of this.settledWaiters.slice()) w(ok);
  }
}
