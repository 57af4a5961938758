import { describe, expect, it } from 'vitest';
import { observeReplay, type LagSample } from '../../lib/replay-stop';

const rules = { threshold: 10, cutoffMs: 60_000, stallMs: 3000 };

/** Feeds lags one second apart, as replayUntil reports them, and returns every observation. */
function feed(lags: number[], r = rules) {
  let samples: LagSample[] = [];
  return lags.map((lag, i) => {
    const o = observeReplay(samples, { at: i * 1000, lag, applied: i * 100 }, i * 1000, r);
    samples = o.samples;
    return o;
  });
}

describe('when replay ends', () => {
  it('at the threshold, at once', () => {
    expect(feed([500, 200, 10]).map((o) => o.endedBy)).toEqual(['none', 'none', 'threshold']);
  });

  it('at the cutoff, however the lag moves', () => {
    expect(feed([500, 400, 300], { ...rules, cutoffMs: 2000, stallMs: 0 }).map((o) => o.endedBy)).toEqual(['none', 'none', 'cutoff']);
  });

  it('when the lag does not fall over a whole window', () => {
    const seen = feed([100, 110, 105, 115, 120]);
    expect(seen.map((o) => o.endedBy)).toEqual(['none', 'none', 'none', 'not-converging', 'not-converging']);
    expect(seen[3].trend.etaMs).toBeNull();
  });

  it('when it falls, but would reach the threshold only after the cutoff', () => {
    // 1 message per second off a lag of 1000: about 990 s to go, against a 60 s cutoff.
    expect(feed([1000, 999, 998, 997]).at(-1)!.endedBy).toBe('not-converging');
  });

  it('not while it converges in time, nor before a whole window was watched', () => {
    const seen = feed([1000, 800, 600, 400, 200]);
    expect(seen.map((o) => o.endedBy)).toEqual(['none', 'none', 'none', 'none', 'none']);
    expect(seen.at(-1)!.trend.etaMs).toBeGreaterThan(0);
  });

  it('never for convergence when stallMs is 0', () => {
    expect(feed([100, 120, 140, 160, 180], { ...rules, stallMs: 0 }).every((o) => o.endedBy === 'none')).toBe(true);
  });

  it('judges on the latest window only', () => {
    // Fast early progress must not hide a lag that stopped falling.
    const seen = feed([5000, 3000, 1000, 1000, 1001, 1000, 1002]);
    expect(seen.at(-1)!.endedBy).toBe('not-converging');
    expect(seen.at(-1)!.samples[0].at).toBeGreaterThanOrEqual(3000);
  });
});
