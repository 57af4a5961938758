/**
 * An activity's log lines carry the migration it works for: the id, service and phase its workflow
 * passed in a header (workflows/interceptors), beside what the SDK adds (workflowId, activityType).
 */
import type { Context } from '@temporalio/activity';
import { defaultPayloadConverter } from '@temporalio/common';
import type { ActivityExecuteInput, ActivityInterceptors, GetLogAttributesInput, Next, ActivityInboundCallsInterceptor, ActivityOutboundCallsInterceptor } from '@temporalio/worker';
import { HEADER_CONTEXT, type MigrationLogContext } from '../workflows/log-context';
import { migrationIdOf } from '../workflows/migration-failures';

export function migrationContextInterceptors(ctx: Context): ActivityInterceptors {
  // Until the headers are read (the SDK's own "Activity started" line comes first): the migration's id
  // from its workflow's identity, which is how the workflow makes it.
  const wf = ctx.info.workflowExecution;
  let fields: MigrationLogContext = wf && ctx.info.workflowType === 'migrateService' ? { migrationId: migrationIdOf(wf.workflowId, wf.runId) } : {};
  const inbound: ActivityInboundCallsInterceptor = {
    execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) {
      const h = input.headers[HEADER_CONTEXT];
      if (h) {
        try {
          fields = { ...fields, ...defaultPayloadConverter.fromPayload<MigrationLogContext>(h) };
        } catch {
          // a header from another version of ms2m: its lines go without it
        }
      }
      return next(input);
    },
  };
  const outbound: ActivityOutboundCallsInterceptor = {
    getLogAttributes(input: GetLogAttributesInput, next: Next<ActivityOutboundCallsInterceptor, 'getLogAttributes'>) {
      return next({ ...input, ...fields });
    },
  };
  return { inbound, outbound };
}
