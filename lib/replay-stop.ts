/**
 * When replay ends: the copy is close enough (threshold), it has had its time (cutoff), or its lag does
 * not fall fast enough to reach the threshold before the cutoff (not converging), in which case waiting
 * only delays the same catch-up: fencing now costs downtime, never messages. Pure, so the workflow's
 * decision is unit-tested; imported by the workflow sandbox.
 */
import type { ReplayStats } from './migration';

export interface LagSample {
  at: number;
  lag: number;
  /** The copy's applied counter. */
  applied: number;
}

export interface LagTrend {
  /** Least-squares slope of the lag, messages per second (negative: converging). */
  slopePerSec: number | null;
  applyRatePerSec: number | null;
  /** When the lag would reach the threshold at this slope; null if it is not falling. */
  etaMs: number | null;
}

/** The replay lag's trend over samples (oldest first), to judge whether the copy converges. */
export function lagTrend(samples: LagSample[], threshold: number): LagTrend {
  if (samples.length < 2) return { slopePerSec: null, applyRatePerSec: null, etaMs: null };
  const first = samples[0];
  const last = samples[samples.length - 1];
  const spanSec = (last.at - first.at) / 1000;
  if (spanSec <= 0) return { slopePerSec: null, applyRatePerSec: null, etaMs: null };
  const n = samples.length;
  const mt = samples.reduce((a, s) => a + (s.at - first.at) / 1000, 0) / n;
  const ml = samples.reduce((a, s) => a + s.lag, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    const t = (s.at - first.at) / 1000 - mt;
    num += t * (s.lag - ml);
    den += t * t;
  }
  const slopePerSec = den > 0 ? num / den : 0;
  const applyRatePerSec = (last.applied - first.applied) / spanSec;
  const etaMs = slopePerSec < 0 ? (Math.max(0, last.lag - threshold) / -slopePerSec) * 1000 : null;
  return { slopePerSec, applyRatePerSec, etaMs };
}

export interface ReplayRules {
  threshold: number;
  cutoffMs: number;
  /** How long a window of the trend is watched before convergence is judged; 0 never judges it. */
  stallMs: number;
}

export interface ReplayObservation {
  /** The samples to keep for the next observation (the trend's window). */
  samples: LagSample[];
  trend: LagTrend;
  endedBy: ReplayStats['endedBy'];
}

/** Takes one lag sample, `elapsedMs` into replay, and says whether replay ends and why ('none': go on). */
export function observeReplay(previous: LagSample[], sample: LagSample, elapsedMs: number, rules: ReplayRules): ReplayObservation {
  const samples = [...previous, sample];
  // The window is the latest stallMs: older samples would let a copy that stopped converging look fine.
  while (samples.length > 2 && sample.at - samples[1].at >= rules.stallMs) samples.shift();
  const trend = lagTrend(samples, rules.threshold);
  let endedBy: ReplayStats['endedBy'] = 'none';
  if (sample.lag <= rules.threshold) endedBy = 'threshold';
  else if (elapsedMs >= rules.cutoffMs) endedBy = 'cutoff';
  else if (rules.stallMs > 0 && sample.at - samples[0].at >= rules.stallMs && trend.slopePerSec !== null) {
    if (trend.etaMs === null || elapsedMs + trend.etaMs > rules.cutoffMs) endedBy = 'not-converging';
  }
  return { samples, trend, endedBy };
}
