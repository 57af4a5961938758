/** One benchmark run as it is written to the CSV (column names are the snake_case keys). */
import type { Strategy } from '../lib/migration';
export interface BenchRow {
  run: number;
  repetition: number;
  strategy: Strategy;
  msg_rate: number;
  /** True for the rate chosen above the service's processing capacity. */
  above_capacity: boolean;
  state_bytes: number;
  work_ms: number;
  checkpoint_bytes: number;
  total_ms: number;
  validate_ms: number;
  prepare_ms: number;
  checkpoint_ms: number;
  freeze_ms: number;
  transfer_ms: number;
  restore_ms: number;
  replay_ms: number;
  fence_ms: number;
  finalize_ms: number;
  downtime_ms: number;
  observed_downtime_ms: number;
  max_e2e_latency_ms: number;
  p99_e2e_latency_ms: number;
  baseline_max_e2e_latency_ms: number;
  baseline_p99_e2e_latency_ms: number;
  published: number;
  processed: number;
  lost: number;
  duplicated: number;
  duplicate_outputs: number;
  state_match: boolean;
  replayed: number;
  cutoff_fired: boolean;
  outcome: 'completed' | 'rolled-back' | 'error';
  /** Which sweep the row belongs to: the rate grid or the state-size sweep. */
  sweep: 'rate' | 'state';
}

export const BENCH_COLUMNS: Array<keyof BenchRow> = [
  'run', 'repetition', 'sweep', 'strategy', 'msg_rate', 'above_capacity', 'state_bytes', 'work_ms', 'checkpoint_bytes', 'total_ms',
  'validate_ms', 'prepare_ms', 'checkpoint_ms', 'freeze_ms', 'transfer_ms', 'restore_ms', 'replay_ms', 'fence_ms', 'finalize_ms',
  'downtime_ms', 'observed_downtime_ms', 'max_e2e_latency_ms', 'p99_e2e_latency_ms', 'baseline_max_e2e_latency_ms',
  'baseline_p99_e2e_latency_ms', 'published', 'processed', 'lost', 'duplicated', 'duplicate_outputs', 'state_match', 'replayed',
  'cutoff_fired', 'outcome',
];
