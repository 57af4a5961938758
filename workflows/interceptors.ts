/**
 * The workflow interceptors of ms2m's orchestrator (registered as a workflow interceptor module by the
 * worker): a migration's id, service and phase on every log line of the workflow, and passed to every
 * activity in a header, for its lines (./log-context). Workflow code.
 */
import {
  defaultPayloadConverter,
  workflowInfo,
  type ActivityInput,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type GetLogAttributesInput,
  type LocalActivityInput,
  type Next,
  type WorkflowInterceptors,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import { HEADER_CONTEXT, logContext, setLogContext, type MigrationLogContext } from './log-context';
import { migrationIdOf } from './migration-failures';

/** A migration's id and service from its first line on (the SDK's own "started" line included). */
class MigrationStartInterceptor implements WorkflowInboundCallsInterceptor {
  execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const info = workflowInfo();
    if (info.workflowType === 'migrateService') {
      const arg = input.args[0] as { service?: unknown } | undefined;
      setLogContext({ migrationId: migrationIdOf(info.workflowId, info.runId), phase: 'validate', ...(typeof arg?.service === 'string' ? { service: arg.service } : {}) });
    }
    return next(input);
  }
}

class MigrationContextInterceptor implements WorkflowOutboundCallsInterceptor {
  getLogAttributes(input: GetLogAttributesInput, next: Next<WorkflowOutboundCallsInterceptor, 'getLogAttributes'>): Record<string, unknown> {
    return next({ ...input, ...contextNow() });
  }

  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    return next({ ...input, headers: withContext(input.headers) });
  }

  scheduleLocalActivity(input: LocalActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>): Promise<unknown> {
    return next({ ...input, headers: withContext(input.headers) });
  }
}

/**
 * The context so far; before the workflow's code has run (the SDK's own "Workflow started" line), a
 * migration's id and first phase from its workflow's identity.
 */
function contextNow(): MigrationLogContext {
  const c = logContext();
  if (c.migrationId) return c;
  const info = workflowInfo();
  return info.workflowType === 'migrateService' ? { migrationId: migrationIdOf(info.workflowId, info.runId), phase: 'validate', ...c } : c;
}

function withContext<H extends object>(headers: H): H {
  const c = contextNow();
  return c.migrationId ? { ...headers, [HEADER_CONTEXT]: defaultPayloadConverter.toPayload(c) } : headers;
}

export const interceptors = (): WorkflowInterceptors => ({ inbound: [new MigrationStartInterceptor()], outbound: [new MigrationContextInterceptor()] });
