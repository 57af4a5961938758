/**
 * One reconnect loop per broker client: tries again after 100 ms, 200 ms, 400 ms … at most 2 s apart
 * until an attempt succeeds or the owner stops. A broker that restarts closes every connection at once,
 * and every client retrying in step at a fixed short interval would only add load to its start-up.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface BackoffOptions {
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** An attempt failed; the next one comes after `nextDelayMs`. */
  onFailure?(err: Error, nextDelayMs: number): void;
}

/** The wait before try `k` (from 0): first·2^k, at most max. */
export function backoffDelay(k: number, firstDelayMs = 100, maxDelayMs = 2000): number {
  return Math.min(firstDelayMs * 2 ** Math.min(k, 30), maxDelayMs);
}

export class Reconnector {
  private running: Promise<void> | null = null;
  private attempting = false;
  /** Asked again while an attempt was under way: the connection it makes may be the one that just closed. */
  private again = false;
  private readonly stopper = new AbortController();
  /** Aborted to cut the current wait short. */
  private wake: AbortController | null = null;

  constructor(
    private readonly attempt: () => Promise<void>,
    private readonly opts: BackoffOptions = {},
  ) {}

  get active(): boolean {
    return this.running !== null;
  }

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  /**
   * Starts reconnecting unless a loop already runs. `immediately` skips the first wait (or the rest of the
   * wait under way): the owner knows its connection is dead, not that the broker is down.
   */
  request(opts: { immediately?: boolean } = {}): void {
    if (this.stopped) return;
    if (this.running) {
      if (this.attempting) this.again = true;
      else if (opts.immediately) this.wake?.abort();
      return;
    }
    this.running = this.loop(opts.immediately ?? false).finally(() => (this.running = null));
  }

  /** No attempt starts after this; a wait under way ends at once (the attempt under way, if any, finishes). */
  stop(): void {
    this.stopper.abort();
  }

  /** Resolves when no loop runs. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private async loop(immediately: boolean): Promise<void> {
    const first = this.opts.firstDelayMs ?? 100;
    const max = this.opts.maxDelayMs ?? 2000;
    for (let k = 0; !this.stopped; k++) {
      await this.pause(k === 0 && immediately ? 0 : backoffDelay(k, first, max));
      if (this.stopped) return;
      this.again = false;
      this.attempting = true;
      try {
        await this.attempt();
        this.attempting = false;
        if (!this.again) return;
        k = -1;
        immediately = false;
      } catch (err) {
        this.attempting = false;
        this.opts.onFailure?.(err as Error, backoffDelay(k + 1, first, max));
      }
    }
  }

  private async pause(ms: number): Promise<void> {
    if (ms <= 0) return;
    const wake = (this.wake = new AbortController());
    try {
      await sleep(ms, undefined, { signal: AbortSignal.any([this.stopper.signal, wake.signal]) });
    } catch {
      // Woken early: stopped, or asked to try at once.
    } finally {
      this.wake = null;
    }
  }
}
