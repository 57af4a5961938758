/**
 * OpenTelemetry tracing of migrations, on when OTEL_EXPORTER_OTLP_ENDPOINT is set (spans go there over
 * OTLP/HTTP), off otherwise. One trace per workflow execution: the workflow's run, a span per phase of a
 * migration (with its id and service as attributes), and a span per activity in the worker that ran it,
 * carried across processes in the activities' headers (@temporalio/interceptors-opentelemetry).
 */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  makeWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import type { OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry';

export interface Tracing {
  activityInterceptors: ActivityInterceptorsFactory[];
  /** Workflow interceptor modules (the orchestrator's worker). */
  workflowModules: string[];
  sinks: InjectedSinks<OpenTelemetrySinks>;
  /** Sends what is buffered. */
  shutdown(): Promise<void>;
}

export function startTracing(serviceName: string, attributes: Record<string, string> = {}): Tracing | null {
  if (!process.env.OTEL_EXPORTER_OTLP_ENDPOINT && !process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return null;
  const resource = new Resource({ [ATTR_SERVICE_NAME]: serviceName, ...attributes });
  // Short batches: a migration takes about a second, and its spans are wanted while it is looked at.
  const processor = new BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: 500 });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register();
  return {
    activityInterceptors: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) })],
    workflowModules: [require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors')],
    sinks: { exporter: makeWorkflowExporter(processor, resource) },
    shutdown: () => provider.shutdown(),
  };
}
