/** Turns a MigrationReport into a benchmark CSV row. */
import { labelOf, phaseMs, type MechanismLabel, type MigrationReport, type Strategy } from '../lib/migration';
import type { BenchRow } from './types';

export interface RunPlan {
  run: number;
  repetition: number;
  sweep: BenchRow['sweep'];
  strategy: Strategy;
  mechanism: MechanismLabel;
  rate: number;
  aboveCapacity: boolean;
  stateBytes: number;
  workMs: number;
}

/** A plan as reports.jsonl keeps it: runs from before the mechanisms have none. */
export type SavedPlan = Omit<RunPlan, 'mechanism'> & Partial<Pick<RunPlan, 'mechanism'>>;

/**
 * The row of one run. Reports from before the mechanisms lack `mechanisms`, `tools`, `streamedBytes`
 * and `lazy`: they moved their image as files, and the missing figures are 0.
 */
export function rowOf(plan: SavedPlan, r: MigrationReport | null): BenchRow {
  const v = r?.verification;
  return {
    run: plan.run,
    repetition: plan.repetition,
    sweep: plan.sweep,
    strategy: plan.strategy,
    mechanism: plan.mechanism ?? (r?.mechanisms ? labelOf(r.mechanisms) : 'files'),
    msg_rate: plan.rate,
    above_capacity: plan.aboveCapacity,
    state_bytes: plan.stateBytes,
    work_ms: plan.workMs,
    checkpoint_bytes: r?.checkpointBytes ?? 0,
    streamed_bytes: r?.streamedBytes ?? 0,
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
    lazy_bytes: r?.lazy?.bytesLeft ?? 0,
    lazy_ms: r?.lazy?.ms ?? 0,
    dump_ms: r?.tools?.dumpMs ?? 0,
    transfer_tool_ms: r?.tools?.transferMs ?? 0,
    restore_tool_ms: r?.tools?.restoreMs ?? 0,
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
 * The grid: per repetition and rate every strategy and mechanism back to back (the mechanisms of one
 * strategy next to each other), the order of both reversed every other repetition, so all of them see the
 * same machine conditions and none is always first. With one mechanism this is the order of the grid
 * before the mechanisms.
 */
export function planGrid(o: {
  strategies: Strategy[];
  /** Default: only `files`, the baseline. */
  mechanisms?: MechanismLabel[];
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
  const alternate = <T>(xs: readonly T[], rep: number): T[] => (rep % 2 === 0 ? [...xs] : [...xs].reverse());
  const mechanisms = o.mechanisms?.length ? o.mechanisms : (['files'] as MechanismLabel[]);
  /** Every strategy × mechanism of one cell of the grid, in this repetition's order. */
  const cell = (rep: number): Array<{ strategy: Strategy; mechanism: MechanismLabel }> =>
    alternate(o.strategies, rep).flatMap((strategy) => alternate(mechanisms, rep).map((mechanism) => ({ strategy, mechanism })));
  for (let rep = 1; rep <= o.repetitions; rep++) {
    for (const workMs of o.workMs) {
      const capacity = o.capacity?.get(workMs);
      const overloadRate = capacity ? Math.ceil(capacity * 1.25) : null;
      const rates = [...o.rates.map((rate) => ({ rate, above: false })), ...(overloadRate ? [{ rate: overloadRate, above: true }] : [])];
      for (const { rate, above } of rates) {
        for (const { strategy, mechanism } of cell(rep)) {
          plans.push({ run: plans.length + 1, repetition: rep, sweep: 'rate', strategy, mechanism, rate, aboveCapacity: above, stateBytes: o.stateBytes, workMs });
        }
      }
    }
  }
  for (let rep = 1; rep <= o.stateRepetitions; rep++) {
    for (const stateBytes of o.stateSweep) {
      for (const { strategy, mechanism } of cell(rep)) {
        plans.push({ run: plans.length + 1, repetition: rep, sweep: 'state', strategy, mechanism, rate: o.stateRate, aboveCapacity: false, stateBytes, workMs: o.workMs[0] });
      }
    }
  }
  return plans;
}
