/**
 * What a migration adds to every log line of its workflow and of the activities it runs: its migration
 * id, service and current phase. Workflow code; the module's state is the workflow's own (the SDK gives
 * each workflow execution its own module instances).
 *
 * The worker registers `./interceptors` as a workflow interceptor module: it puts these fields on the
 * workflow's log lines and, as headers, on every activity it schedules, where lib/activity-context
 * reads them for the activity's lines.
 */
export interface MigrationLogContext {
  migrationId?: string;
  service?: string;
  phase?: string;
}

export const HEADER_CONTEXT = 'ms2m-log-context';

let current: MigrationLogContext = {};

export function setLogContext(c: MigrationLogContext): void {
  current = { ...current, ...c };
}

export const logContext = (): MigrationLogContext => current;
