import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Reconnector, backoffDelay } from '../../service/reconnect';

/** An attempt that fails `failures` times, recording when each try started. */
function flaky(failures: number) {
  const tries: number[] = [];
  const t0 = performance.now();
  return {
    tries,
    attempt: async () => {
      tries.push(performance.now() - t0);
      if (tries.length <= failures) throw new Error(`down (${tries.length})`);
    },
  };
}

describe('backoff', () => {
  it('doubles from 100 ms up to 2 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 40].map((k) => backoffDelay(k))).toEqual([100, 200, 400, 800, 1600, 2000, 2000, 2000]);
  });
});

describe('Reconnector', () => {
  it('retries with growing waits until an attempt succeeds, and reports each failure', async () => {
    const f = flaky(3);
    const failures: Array<[string, number]> = [];
    const r = new Reconnector(f.attempt, { firstDelayMs: 10, maxDelayMs: 40, onFailure: (e, next) => failures.push([e.message, next]) });
    r.request();
    expect(r.active).toBe(true);
    await r.settled();
    expect(r.active).toBe(false);
    expect(f.tries).toHaveLength(4);
    // Waits of 10, 20, 40, 40 ms before the tries (timers may fire late, never early).
    const gaps = f.tries.map((t, i) => t - (f.tries[i - 1] ?? 0));
    [10, 20, 40, 40].forEach((min, i) => expect(gaps[i]).toBeGreaterThanOrEqual(min - 2));
    expect(failures).toEqual([['down (1)', 20], ['down (2)', 40], ['down (3)', 40]]);
  });

  it('tries at once when asked to, and a second request during the wait only cuts it short if it is urgent', async () => {
    const f = flaky(1);
    const r = new Reconnector(f.attempt, { firstDelayMs: 1000 });
    r.request({ immediately: true });
    await sleep(20);
    expect(f.tries).toHaveLength(1);
    r.request();
    await sleep(20);
    expect(f.tries).toHaveLength(1);
    r.request({ immediately: true });
    await r.settled();
    expect(f.tries).toHaveLength(2);
    expect(f.tries[1]).toBeLessThan(500);
  });

  it('tries once more when asked again while an attempt is under way', async () => {
    let calls = 0;
    let r: Reconnector;
    r = new Reconnector(
      async () => {
        calls++;
        // The connection this attempt made closed before it finished.
        if (calls === 1) r.request();
      },
      { firstDelayMs: 5 },
    );
    r.request();
    await r.settled();
    expect(calls).toBe(2);
  });

  it('runs one loop at a time', async () => {
    const f = flaky(2);
    const r = new Reconnector(f.attempt, { firstDelayMs: 5 });
    for (let i = 0; i < 5; i++) r.request();
    await r.settled();
    expect(f.tries).toHaveLength(3);
  });

  it('stops waiting at once when stopped, and starts nothing afterwards', async () => {
    const f = flaky(100);
    const r = new Reconnector(f.attempt, { firstDelayMs: 60_000 });
    r.request();
    const t0 = performance.now();
    r.stop();
    await r.settled();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(f.tries).toHaveLength(0);
    r.request({ immediately: true });
    expect(r.active).toBe(false);
  });
});
