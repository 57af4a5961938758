/**
 * What a migration tells the orchestrator's metrics (lib/metrics), through Temporal sinks: a sink call is
 * no command and leaves no trace in the history, and the SDK skips it while replaying, so a workflow
 * replayed by a restarted orchestrator is not counted again. Workflow code.
 */
import { proxySinks, type Sinks } from '@temporalio/workflow';
import type { MigrationReport } from '../lib/migration';

export interface MetricsSinks extends Sinks {
  migrationMetrics: {
    started(strategy: string): void;
    /** null: the replay ended (or never began). */
    replayLag(service: string, migrationId: string, lag: number | null): void;
    /** `report` is null when the migration failed before it had one; `failureType` is the failure's type, if it failed. */
    ended(strategy: string, report: MigrationReport | null, failureType?: string): void;
  };
}

export const { migrationMetrics } = proxySinks<MetricsSinks>();
