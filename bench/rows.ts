/** Turns a MigrationReport into a benchmark CSV row. */
import { phaseMs, type MigrationReport, type Strategy } from '../lib/migration';
import type { BenchRow } from './types';

export interface RunPlan {
  run: number;
  repetition: number;
  sweep: BenchRow['sweep'];
  strategy: Strategy;
  rate: number;
  aboveCapacity: boolean;
  stateBytes: number;
  workMs: number;
}

export function rowOf(plan: RunPlan, r: MigrationReport | null): BenchRow {
  const v = r?.verification;
  return {
    run: plan.run,
    repetition: plan.repetition,
    sweep: plan.sweep,
    strategy: plan.strategy,
    msg_rate: plan.rate,
    above_capacity: plan.aboveCapacity,
    state_bytes: plan.stateBytes,
    work_ms: plan.workMs,
    checkpoint_bytes: r?.checkpointBytes ?? 0,
    total_ms: r?.totalMs ?? 0,
    validate_ms: r ? phaseMs(r, 'validate') : 0,
    prepare_ms: r ? phaseMs(r, 'prepare') : 0,
    checkpoint_ms: r ? phaseMs(r, 'checkpoint') : 0,
    freeze_ms: r?.freezeMs ?? 0,
    transfer_ms: r ? phaseMs(r, 'transfer') : 0,
    restore_ms: r ? phaseMs(r, 'restore') : 0,
    replay_ms: r ? phaseMs(r, 'replay') : 0,
    fence_ms: r ? phaseMs(r, 'fence') : 0,
    finalize_ms: r ? phaseMs(r, 'finalize') : 0,
    downtime_ms: r?.downtimeMs ?? 0,
    observed_downtime_ms: v?.observedDowntimeMs ?? 0,
    max_e2e_latency_ms: v?.maxE2eLatencyMs ?? 0,
    p99_e2e_latency_ms: v?.p99E2eLatencyMs ?? 0,
    baseline_max_e2e_latency_ms: v?.baselineMaxE2eLatencyMs ?? 0,
    baseline_p99_e2e_latency_ms: v?.baselineP99E2eLatencyMs ?? 0,
    published: v?.published ?? 0,
    processed: v?.processed ?? 0,
    lost: v?.lost ?? 0,
    duplicated: v?.duplicated ?? 0,
    duplicate_outputs: v?.duplicateOutputs ?? 0,
    state_match: !!r?.stateMatch && !!v?.finalStateMatchesProducers,
    replayed: r?.replay.replayed ?? 0,
    cutoff_fired: r?.replay.cutoffFired ?? false,
    outcome: r ? r.outcome : 'error',
  };
}

/**
 * The grid: per repetition and rate both strategies back to back, the first of the pair alternating by
 * repetition, so both see the same machine conditions and neither is always first.
 */
export function planGrid(o: {
  strategies: Strategy[];
  rates: number[];
  /** Measured capacity (msg/s) per processing cost; a rate a quarter above it is added for each. */
  capacity: Map<number, number> | null;
  repetitions: number;
  stateBytes: number;
  workMs: number[];
  stateSweep: number[];
  stateRate: number;
  stateRepetitions: number;
}): RunPlan[] {
  const plans: RunPlan[] = [];
  const order = (rep: number) => (rep % 2 === 0 ? o.strategies : [...o.strategies].reverse());
  for (let rep = 1; rep <= o.repetitions; rep++) {
    for (const workMs of o.workMs) {
      const capacity = o.capacity?.get(workMs);
      const overloadRate = capacity ? Math.ceil(capacity * 1.25) : null;
      const rates = [...o.rates.map((rate) => ({ rate, above: false })), ...(overloadRate ? [{ rate: overloadRate, above: true }] : [])];
      for (const { rate, above } of rates) {
        for (const strategy of order(rep)) {
          plans.push({ run: plans.length + 1, repetition: rep, sweep: 'rate', strategy, rate, aboveCapacity: above, stateBytes: o.stateBytes, workMs });
        }
      }
    }
  }
  for (let rep = 1; rep <= o.stateRepetitions; rep++) {
    for (const stateBytes of o.stateSweep) {
      for (const strategy of order(rep)) {
        plans.push({ run: plans.length + 1, repetition: rep, sweep: 'state', strategy, rate: o.stateRate, aboveCapacity: false, stateBytes, workMs: o.workMs[0] });
      }
    }
  }
  return plans;
}
