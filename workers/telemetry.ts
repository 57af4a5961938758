/**
 * What a worker process sets up before its first Temporal connection: its logger, the Temporal SDK's
 * runtime (logger and metrics), its /metrics endpoint, tracing when configured, and the interceptors
 * that put a migration's id and phase on every log line.
 */
import type { WorkerOptions } from '@temporalio/worker';
import { migrationContextInterceptors } from '../lib/activity-context';
import { configureLogger, logger } from '../lib/log';
import { serveMetrics } from '../lib/metrics-server';
import { installTemporalRuntime, metricsEnabled } from '../lib/temporal-runtime';
import { startTracing } from '../lib/tracing';

export async function startTelemetry(component: 'orchestrator' | 'agent', node?: string) {
  const log = configureLogger({ component, ...(node ? { node } : {}) });
  const { sdkMetricsUrl } = await installTemporalRuntime({ metrics: metricsEnabled() });
  const metrics = await serveMetrics({ component, ...(node ? { node } : {}), sdkMetricsUrl });
  const tracing = startTracing(`ms2m-${component}`, node ? { 'ms2m.node': node } : {});
  const interceptors: NonNullable<WorkerOptions['interceptors']> = {
    activity: [migrationContextInterceptors, ...(tracing?.activityInterceptors ?? [])],
    workflowModules: [require.resolve('../workflows/interceptors'), ...(tracing?.workflowModules ?? [])],
  };
  log.info({ metrics: metrics?.url ?? 'off', tracing: tracing ? (process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT) : 'off' }, `${component} telemetry`);
  return {
    log,
    metrics,
    tracing,
    interceptors,
    async close() {
      await tracing?.shutdown().catch((err: Error) => logger().warn({ err: err.message }, 'flushing the last spans failed'));
      await metrics?.close();
    },
  };
}
