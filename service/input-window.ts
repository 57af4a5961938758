/**
 * How many unacknowledged deliveries the broker may hand the instance at a time (its consumer prefetch).
 *
 * Two costs pull it in opposite directions. An input is acknowledged only once its log entry and outputs
 * are confirmed (./outbox), so a window of one or two leaves the instance idle for a broker round trip per
 * message whenever the work is short. But at the fence the source applies every delivery it holds, and
 * the copy replays them before it serves: each one waiting adds its work to the downtime. So the window
 * holds about `BUDGET_MS` of waiting work: wide for a service that applies in microseconds, three for one
 * that works for milliseconds.
 *
 * RabbitMQ fixes a consumer's prefetch when it subscribes (the per-channel alternative, global QoS, is
 * refused by default since RabbitMQ 4.3), so a new size means subscribing again; it is only worth it when
 * the size is well off, and work near a boundary must not flip it back and forth.
 */

/** The work the deliveries in hand may add to the fence. */
export const BUDGET_MS = 5;
export const MIN_WINDOW = 3;
export const MAX_WINDOW = 64;
/** The work per delivery is the mean of the last SAMPLES (a garbage collection is one slow delivery among them). */
const SAMPLES = 64;
/** Deliveries measured before the first resize, and between two. */
const SETTLE = 32;
/** Windows this small change by one: 3 and 4 differ by a whole broker round trip per message at 2 ms of work. */
const SMALL = 4;

export class InputWindow {
  private readonly samples: number[] = [];
  private sum = 0;
  private measured = 0;
  private resizedAt = 0;
  private current: number;

  /** `fixed`: the service chose its prefetch; it is never changed. */
  constructor(private readonly fixed?: number) {
    this.current = fixed ?? MIN_WINDOW;
  }

  get size(): number {
    return this.current;
  }

  /** The mean time the instance took per delivery lately, in ms (null before the first). */
  get workMs(): number | null {
    return this.samples.length ? this.sum / this.samples.length : null;
  }

  /** One delivery took `ms` to handle. */
  record(ms: number): void {
    this.samples.push(ms);
    this.sum += ms;
    if (this.samples.length > SAMPLES) this.sum -= this.samples.shift()!;
    this.measured++;
  }

  /**
   * The size to subscribe again with, if the measured work says the current one is off: by 2× or more, or
   * by one for a small window; narrowing also only once a third less work would still call for less.
   */
  due(): number | null {
    const work = this.workMs;
    if (this.fixed !== undefined || work === null || this.measured < SETTLE || this.measured - this.resizedAt < SETTLE) return null;
    const want = windowFor(work);
    const small = Math.min(want, this.current) <= SMALL;
    const grow = want > this.current && (small || want >= this.current * 2);
    const shrink = want < this.current && windowFor(work / 1.5) < this.current && (small || want * 2 <= this.current);
    if (!grow && !shrink) return null;
    this.current = want;
    this.resizedAt = this.measured;
    return want;
  }
}

/**
 * The window for deliveries that each take `workMs`: one being applied, one whose confirm has arrived but
 * is read only after that apply (the socket is read between applies), and about BUDGET_MS of work
 * waiting. At least three, or the instance waits a round trip for each delivery whatever its work.
 */
export function windowFor(workMs: number): number {
  const n = 2 + Math.floor(BUDGET_MS / Math.max(workMs, 0.001));
  return Math.min(MAX_WINDOW, Math.max(MIN_WINDOW, n));
}
