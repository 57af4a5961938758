/**
 * ms2m's own Prometheus metrics (prom-client), one registry per process. Every name is here, so the alert
 * rules and the dashboard under infra/observability can be checked against it (test/unit/metrics.test.ts).
 *
 * Labels are bounded: strategy, outcome, phase, node, activity and error type take a handful of values
 * each. A service name appears only on the replay-lag gauge, which holds one series per migration running
 * now (its series is removed when the migration ends).
 *
 * Where the figures come from:
 * - the orchestrator records migrations from the workflow through a sink (workflows/metrics-sinks), which
 *   the SDK does not call while replaying, so a restarted orchestrator counts nothing twice;
 * - a node agent times every activity it runs, and the tools inside (CRIU's dump and restore, the image
 *   transfer) from the activities' own results (lib/activity-telemetry);
 * - the process that verified a migration against the producers' and output logs (the demo, chaos, the
 *   benchmark, a test) records what the verification found.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InjectedSinks } from '@temporalio/worker';
import type { MigrationReport, Verification } from './migration';
import type { MetricsSinks } from '../workflows/metrics-sinks';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'ms2m_process_' });

/** Seconds: from a few ms (a 10 MB fence) to minutes (a 1 GB migration under load). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Downtime and freeze are the figures users watch closely: finer buckets at the low end. */
const SHORT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2.5, 5];
const BYTE_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096].map((mb) => mb * 1024 * 1024);

const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers: [registry] });
const histogram = (name: string, help: string, buckets: number[], labelNames: string[] = []) => new Histogram({ name, help, buckets, labelNames, registers: [registry] });

export const metrics = {
  migrationsStarted: counter('ms2m_migrations_started_total', 'Migrations started, by strategy.', ['strategy']),
  migrationsFinished: counter(
    'ms2m_migrations_finished_total',
    'Migrations ended, by strategy and outcome (completed, rolled_back, refused, not_serving, cancelled, failed).',
    ['strategy', 'outcome'],
  ),
  migrationDuration: histogram('ms2m_migration_duration_seconds', 'Total time of a migration, start to end.', DURATION_BUCKETS, ['strategy', 'outcome']),
  phaseDuration: histogram('ms2m_migration_phase_duration_seconds', 'Time of each phase of a migration.', DURATION_BUCKETS, ['phase']),
  downtime: histogram(
    'ms2m_migration_downtime_seconds',
    "Downtime of a completed migration by the instances' own clocks: the source stopped consuming the primary queue until the copy consumed it.",
    SHORT_BUCKETS,
    ['strategy'],
  ),
  freeze: histogram('ms2m_migration_freeze_seconds', 'How long the source process was frozen for its checkpoint.', SHORT_BUCKETS, ['strategy']),
  checkpointBytes: histogram('ms2m_migration_checkpoint_bytes', 'Size of the checkpoint image a migration moved.', BYTE_BUCKETS, ['strategy']),
  replayLag: new Gauge({
    name: 'ms2m_replay_lag_messages',
    help: 'Messages the copy is behind while it replays (one series per running migration, removed at its end).',
    labelNames: ['service', 'migration_id'],
    registers: [registry],
  }),
  // From the instances' own counters, in every migration's report.
  handoffGaps: counter('ms2m_handoff_sequence_gaps_total', "Jumps in a producer's sequence that the instances saw during migrations (messages that never arrived)."),
  handoffSkippedDuplicates: counter('ms2m_handoff_skipped_duplicates_total', 'Redeliveries and producer resends the instances skipped during migrations (applied once, as they must be).'),
  // From a verification against the producers' and the output logs.
  verifications: counter('ms2m_verifications_total', 'Migrations verified against the producers\' and the output logs.'),
  verifiedLost: counter('ms2m_verification_messages_lost_total', 'Messages a verification found lost (published, confirmed, never applied). Must stay 0.'),
  verifiedDuplicated: counter('ms2m_verification_messages_duplicated_total', 'Messages a verification found applied twice. Must stay 0.'),
  verifiedDuplicateOutputs: counter('ms2m_verification_duplicate_outputs_total', 'Outputs a verification found emitted twice. Must stay 0.'),
  verifiedStateMismatches: counter('ms2m_verification_state_mismatches_total', "Verifications whose final state differed from the one rebuilt from the producers' log. Must stay 0."),
  // Node agents.
  nodeActivityDuration: histogram('ms2m_node_activity_duration_seconds', 'Activities a node agent ran, by name and outcome (ok, error).', DURATION_BUCKETS, ['node', 'activity', 'outcome']),
  nodeActivityFailures: counter('ms2m_node_activity_failures_total', 'Activities of a node agent that failed, by error type.', ['node', 'activity', 'type']),
  criuDump: histogram('ms2m_criu_dump_seconds', "CRIU's dump of an instance, as the node agent timed it.", DURATION_BUCKETS, ['node']),
  criuFreeze: histogram('ms2m_criu_freeze_seconds', 'How long CRIU kept the instance frozen for its dump.', SHORT_BUCKETS, ['node']),
  criuRestore: histogram('ms2m_criu_restore_seconds', "CRIU's restore of a copy, as the node agent timed it.", DURATION_BUCKETS, ['node']),
  transferDuration: histogram('ms2m_image_transfer_seconds', 'Sending a checkpoint image to another node.', DURATION_BUCKETS, ['node']),
  transferBytes: counter('ms2m_image_transfer_bytes_total', 'Bytes of checkpoint images sent to other nodes.', ['node']),
  brokerReconnects: counter('ms2m_broker_reconnects_total', "Times a worker's broker connection was lost and made again."),
};

export type MigrationOutcome = 'completed' | 'rolled_back' | 'refused' | 'not_serving' | 'cancelled' | 'failed';

/** The outcome label of a migration's end: its report if the workflow returned or failed with one. */
export function outcomeOf(report: MigrationReport | null, failureType?: string): MigrationOutcome {
  if (failureType === 'CancelledFailure') return 'cancelled';
  if (!report) return failureType === 'InvalidInput' ? 'refused' : 'failed';
  if (report.notServing) return 'not_serving';
  if (report.outcome === 'completed') return 'completed';
  return report.failure?.phase === 'validate' ? 'refused' : 'rolled_back';
}

export function recordMigrationStarted(strategy: string): void {
  metrics.migrationsStarted.inc({ strategy });
}

export function recordReplayLag(service: string, migrationId: string, lag: number | null): void {
  if (lag === null) metrics.replayLag.remove({ service, migration_id: migrationId });
  else metrics.replayLag.set({ service, migration_id: migrationId }, lag);
}

/** A migration's end, from its report (null when it failed before it had one, e.g. invalid input). */
export function recordMigrationEnded(strategy: string, report: MigrationReport | null, failureType?: string): void {
  const outcome = outcomeOf(report, failureType);
  metrics.migrationsFinished.inc({ strategy, outcome });
  if (!report) return;
  recordReplayLag(report.service, report.migrationId, null);
  metrics.migrationDuration.observe({ strategy, outcome }, report.totalMs / 1000);
  for (const p of report.phases) metrics.phaseDuration.observe({ phase: p.phase }, p.ms / 1000);
  if (report.freezeMs > 0) metrics.freeze.observe({ strategy }, report.freezeMs / 1000);
  if (report.checkpointBytes > 0) metrics.checkpointBytes.observe({ strategy }, report.checkpointBytes);
  if (outcome === 'completed') metrics.downtime.observe({ strategy }, report.downtimeMs / 1000);
  const a = report.accounting;
  metrics.handoffGaps.inc(a.source.gaps + (a.copy ? a.copy.replayGaps + (a.copy.afterSwap?.gaps ?? 0) : 0));
  metrics.handoffSkippedDuplicates.inc(a.source.skippedDuplicates + (a.copy?.afterSwap?.skippedDuplicates ?? 0));
}

/** The workflows' metrics calls (workflows/metrics-sinks), run on the orchestrator's worker, never while a workflow replays. */
export const migrationSinks: InjectedSinks<MetricsSinks> = {
  migrationMetrics: {
    started: { fn: (_info, strategy) => recordMigrationStarted(strategy) },
    replayLag: { fn: (_info, service, migrationId, lag) => recordReplayLag(service, migrationId, lag) },
    ended: { fn: (_info, strategy, report, failureType) => recordMigrationEnded(strategy, report, failureType) },
  },
};

export function recordVerification(v: Verification): void {
  metrics.verifications.inc();
  metrics.verifiedLost.inc(v.lost);
  metrics.verifiedDuplicated.inc(v.duplicated);
  metrics.verifiedDuplicateOutputs.inc(v.duplicateOutputs);
  if (!v.finalStateMatchesProducers || v.order?.ok === false) metrics.verifiedStateMismatches.inc();
}
