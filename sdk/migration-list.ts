/** Finding migrations by their search attributes: the filter, the visibility query it becomes, and a summary per run. */
import type { WorkflowExecutionInfo, WorkflowExecutionStatusName } from '@temporalio/client';
import { SA_PHASE, SA_SERVICE, SA_SOURCE_NODE, SA_STRATEGY, SA_TARGET_NODE } from '../lib/search-attributes';

export interface MigrationFilter {
  service?: string;
  sourceNode?: string;
  targetNode?: string;
  /** Source or target. */
  node?: string;
  /** A stage, as in the Ms2mPhase search attribute (e.g. "replay", "done", "rolled-back"). */
  phase?: string;
  /** true: only running migrations; false: only closed ones. */
  running?: boolean;
  /** Only the migrations a rebalance or drain run started as its children. */
  parentWorkflowId?: string;
  /** Default 100. */
  limit?: number;
}

export interface MigrationSummary {
  workflowId: string;
  runId: string;
  status: WorkflowExecutionStatusName;
  startTime: Date;
  closeTime?: Date;
  /** Search attributes the workflow set; a migration refused at once may lack some. */
  service?: string;
  sourceNode?: string;
  targetNode?: string;
  strategy?: string;
  phase?: string;
}

/** A visibility query string literal (backslash and quote escaped, as the server's parser reads them). */
export const quoteValue = (v: string): string => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The visibility query listMigrations runs; `taskQueue` keeps out other ms2m installations sharing the namespace. */
export function migrationsQuery(f: MigrationFilter, taskQueue?: string): string {
  const terms = [`WorkflowType = 'migrateService'`];
  if (taskQueue !== undefined) terms.push(`TaskQueue = ${quoteValue(taskQueue)}`);
  const eq = (field: string, v: string | undefined) => {
    if (v !== undefined) terms.push(`${field} = ${quoteValue(v)}`);
  };
  eq(SA_SERVICE.name, f.service);
  eq(SA_SOURCE_NODE.name, f.sourceNode);
  eq(SA_TARGET_NODE.name, f.targetNode);
  if (f.node !== undefined) terms.push(`(${SA_SOURCE_NODE.name} = ${quoteValue(f.node)} OR ${SA_TARGET_NODE.name} = ${quoteValue(f.node)})`);
  eq(SA_PHASE.name, f.phase);
  eq('ParentWorkflowId', f.parentWorkflowId);
  if (f.running !== undefined) terms.push(`ExecutionStatus ${f.running ? '=' : '!='} 'Running'`);
  return terms.join(' AND ');
}

export function migrationSummary(w: WorkflowExecutionInfo): MigrationSummary {
  const sa = w.typedSearchAttributes;
  return {
    workflowId: w.workflowId,
    runId: w.runId,
    status: w.status.name,
    startTime: w.startTime,
    closeTime: w.closeTime,
    service: sa.get(SA_SERVICE),
    sourceNode: sa.get(SA_SOURCE_NODE),
    targetNode: sa.get(SA_TARGET_NODE),
    strategy: sa.get(SA_STRATEGY),
    phase: sa.get(SA_PHASE),
  };
}
