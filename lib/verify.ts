/**
 * Loss, duplicate and latency accounting from the producers' log and the output log, never from queue
 * depths or from what the service says about itself.
 */
import type { Published } from '../service/producer';
import type { OutputRecord } from './output-log';
import type { Verification } from './migration';

export interface VerifyInput {
  published: Published[];
  outputs: OutputRecord[];
  /** The migration's span (epoch ms); latency before `from` is the baseline. */
  from: number;
  to: number;
  /** Applications per producer as counted by the final instance's application state. */
  appliedByProducer: Record<string, number>;
  /** Whether the final order-independent state equals the one rebuilt from `published`. */
  finalStateMatchesProducers: boolean;
}

const key = (producer: string, seq: number) => `${producer}#${seq}`;

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function verify(v: VerifyInput): Verification {
  const publishedKeys = new Set(v.published.map((p) => key(p.producer, p.seq)));
  const seen = new Map<string, number>();
  // A repeat flagged as a resend (its first confirm was lost) is the at-least-once window of a broker
  // failure, which consumers close by message id; any other repeat is a duplicate output.
  let duplicateOutputs = 0;
  let resentOutputs = 0;
  for (const o of v.outputs) {
    const k = key(o.producer, o.seq);
    if (!publishedKeys.has(k)) continue;
    const n = (seen.get(k) ?? 0) + 1;
    seen.set(k, n);
    if (n > 1 && o.resent) resentOutputs++;
    else if (n > 1) duplicateOutputs++;
  }
  const processed = seen.size;
  const lost = publishedKeys.size - processed;

  // Applied twice: the application counted more applications than distinct messages it could have seen.
  const publishedBy = new Map<string, number>();
  const lostBy = new Map<string, number>();
  for (const p of v.published) {
    publishedBy.set(p.producer, (publishedBy.get(p.producer) ?? 0) + 1);
    if (!seen.has(key(p.producer, p.seq))) lostBy.set(p.producer, (lostBy.get(p.producer) ?? 0) + 1);
  }
  let duplicated = 0;
  for (const [producer, n] of publishedBy) duplicated += Math.max(0, (v.appliedByProducer[producer] ?? 0) - (n - (lostBy.get(producer) ?? 0)));

  const firstOutputs = new Map<string, OutputRecord>();
  for (const o of v.outputs) if (publishedKeys.has(key(o.producer, o.seq)) && !firstOutputs.has(key(o.producer, o.seq))) firstOutputs.set(key(o.producer, o.seq), o);
  const ordered = [...firstOutputs.values()].sort((a, b) => a.receivedAt - b.receivedAt);
  const during = ordered.filter((o) => o.receivedAt >= v.from && o.receivedAt <= v.to);
  const before = ordered.filter((o) => o.receivedAt < v.from);
  const lat = (os: OutputRecord[]) => os.map((o) => o.receivedAt - o.publishedAt);

  // A message waited unserved from when it was published (or the previous output, if later) until its output.
  let observedDowntimeMs = 0;
  for (let i = 1; i < ordered.length; i++) {
    const cur = ordered[i];
    if (cur.receivedAt < v.from || cur.receivedAt > v.to + 60_000) continue;
    observedDowntimeMs = Math.max(observedDowntimeMs, cur.receivedAt - Math.max(ordered[i - 1].receivedAt, cur.publishedAt));
  }

  return {
    published: publishedKeys.size,
    processed,
    lost,
    duplicated,
    duplicateOutputs,
    resentOutputs,
    observedDowntimeMs,
    maxE2eLatencyMs: Math.max(0, ...lat(during)),
    p99E2eLatencyMs: percentile(lat(during), 99),
    baselineMaxE2eLatencyMs: Math.max(0, ...lat(before)),
    baselineP99E2eLatencyMs: percentile(lat(before), 99),
    finalStateMatchesProducers: v.finalStateMatchesProducers,
  };
}
