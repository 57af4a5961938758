/**
 * What the workflows, the SDK and the CLI agree on, in one place: the workflows' names and types (for
 * typed starts), their queries, and the failure types they end with. Imported by the workflow sandbox.
 */
import { defineQuery } from '@temporalio/workflow';
import type * as workflows from '../workflows';
import type { MigrationProgress, MigrationReport } from './migration';

/** The workflow functions by name: `client.workflow.start<Workflows['migrateService']>('migrateService', …)` checks args and result. */
export type Workflows = typeof workflows;

export const progressQuery = defineQuery<MigrationProgress>('progress');
/** The report so far; after the end, the final one (also of a cancelled migration, whose result carries none). */
export const reportQuery = defineQuery<MigrationReport>('report');

/** Every failure type a workflow or activity ends with on purpose. */
export const FAILURE = {
  /** A field of the input is wrong; the message names it and the fix. */
  InvalidInput: 'InvalidInput',
  InvalidSpec: 'InvalidSpec',
  ServiceNotFound: 'ServiceNotFound',
  NotMigratable: 'NotMigratable',
  MigrationInProgress: 'MigrationInProgress',
  LockContention: 'LockContention',
  NodeUnreachable: 'NodeUnreachable',
  SourceNotServing: 'SourceNotServing',
  ControlRefused: 'ControlRefused',
  InstanceNotFound: 'InstanceNotFound',
  InstanceExited: 'InstanceExited',
  NotReady: 'NotReady',
  ImageMissing: 'ImageMissing',
  /** The runtime could not start the copy from its image (kubernetes: the container never ran). */
  RestoreFailed: 'RestoreFailed',
  /** A lazy restore could not fetch every page; the copy was killed before it could take over. */
  LazyPagesFailed: 'LazyPagesFailed',
  /** The node cannot do what the migration asked of it (a mechanism its kernel, CRIU or runtime lacks). */
  Unsupported: 'Unsupported',
  PrepareTimeout: 'PrepareTimeout',
  CatchUpTimeout: 'CatchUpTimeout',
  CopyNotStandby: 'CopyNotStandby',
  CopyLost: 'CopyLost',
  SourceLost: 'SourceLost',
  /** The copy was compared at the fence and may not take over; the source kept the stream. */
  StateMismatch: 'StateMismatch',
  /** The migration failed and was undone; the report is in the failure's details. */
  MigrationRolledBack: 'MigrationRolledBack',
  /** Not exactly one instance serves at the end: an alert, with the report in the details. */
  ServiceNotServing: 'ServiceNotServing',
  /**
   * shadow-swap: the shadow serves, but the second handoff (to the pod of the StatefulSet's name) failed
   * and was undone; the StatefulSet stays held. The report, in the details, says where.
   */
  IdentitySwapFailed: 'IdentitySwapFailed',
} as const;
export type FailureType = (typeof FAILURE)[keyof typeof FAILURE];

/** Failures that say something definite: retrying the activity cannot change them. */
export const NON_RETRYABLE: FailureType[] = [
  FAILURE.InvalidInput,
  FAILURE.ServiceNotFound,
  FAILURE.NotMigratable,
  FAILURE.MigrationInProgress,
  FAILURE.ControlRefused,
  FAILURE.InstanceNotFound,
  FAILURE.ImageMissing,
  FAILURE.RestoreFailed,
  FAILURE.LazyPagesFailed,
  FAILURE.Unsupported,
  FAILURE.PrepareTimeout,
  FAILURE.CatchUpTimeout,
  FAILURE.InvalidSpec,
  FAILURE.InstanceExited,
];
