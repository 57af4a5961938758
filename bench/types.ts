/** One benchmark run as it is written to the CSV (column names are the snake_case keys). */
import type { MechanismLabel, Strategy } from '../lib/migration';
export interface BenchRow {
  run: number;
  repetition: number;
  strategy: Strategy;
  /** How the image moved (lib/migration.ts, MECHANISM_LABELS); `files` for runs from before the mechanisms. */
  mechanism: MechanismLabel;
  msg_rate: number;
  /** True for the rate chosen above the service's processing capacity. */
  above_capacity: boolean;
  state_bytes: number;
  work_ms: number;
  checkpoint_bytes: number;
  /** Of checkpoint_bytes, the pages that went to the target during the dump (`stream`); 0 otherwise. */
  streamed_bytes: number;
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
  /** `lazy`: the bytes left on the source at the transfer, fetched by the copy afterwards; 0 otherwise. */
  lazy_bytes: number;
  /** `lazy`: the lazy phase, from the restore to the last page in (it overlaps the replay); 0 otherwise. */
  lazy_ms: number;
  // Time inside the tools, as the activities measured it: the phases add Temporal dispatch on top.
  dump_ms: number;
  transfer_tool_ms: number;
  restore_tool_ms: number;
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
  'run', 'repetition', 'sweep', 'strategy', 'mechanism', 'msg_rate', 'above_capacity', 'state_bytes', 'work_ms', 'checkpoint_bytes',
  'streamed_bytes', 'total_ms', 'validate_ms', 'prepare_ms', 'checkpoint_ms', 'freeze_ms', 'transfer_ms', 'restore_ms', 'replay_ms',
  'fence_ms', 'finalize_ms', 'lazy_bytes', 'lazy_ms', 'dump_ms', 'transfer_tool_ms', 'restore_tool_ms', 'downtime_ms',
  'observed_downtime_ms', 'max_e2e_latency_ms', 'p99_e2e_latency_ms', 'baseline_max_e2e_latency_ms', 'baseline_p99_e2e_latency_ms',
  'published', 'processed', 'lost', 'duplicated', 'duplicate_outputs', 'state_match', 'replayed', 'cutoff_fired', 'outcome',
];

/**
 * Columns added with the mechanisms, and what a CSV or report from before them means by their absence:
 * every run then moved its image as files, and nothing was streamed or fetched lazily.
 */
export const LATER_COLUMN_DEFAULTS: Partial<Record<keyof BenchRow, string>> = {
  mechanism: 'files',
  streamed_bytes: '0',
  lazy_bytes: '0',
  lazy_ms: '0',
  dump_ms: '0',
  transfer_tool_ms: '0',
  restore_tool_ms: '0',
};
