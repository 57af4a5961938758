/**
 * The Temporal SDK's runtime of a worker process, made once before its first connection: the SDK's
 * logger routed through ms2m's (./log), its core's own warnings forwarded there too, and its metrics
 * exported for the worker's /metrics endpoint (./metrics-server) unless metrics are off.
 */
import { createServer as netServer, type AddressInfo } from 'node:net';
import { Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { temporalLogger } from './log';

async function freeLoopbackPort(): Promise<number> {
  const s = netServer();
  await new Promise<void>((resolve, reject) => s.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Returns where the SDK serves its metrics (null: metrics off), for the worker's endpoint to append. */
export async function installTemporalRuntime(o: { metrics: boolean }): Promise<{ sdkMetricsUrl: string | null }> {
  // The SDK's exporter takes a fixed address: a free port is found first (the race is harmless on loopback).
  const port = o.metrics ? await freeLoopbackPort() : null;
  Runtime.install({
    logger: temporalLogger(),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN' }) },
      ...(port ? { metrics: { prometheus: { bindAddress: `127.0.0.1:${port}`, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true } } } : {}),
    },
  });
  return { sdkMetricsUrl: port ? `http://127.0.0.1:${port}/metrics` : null };
}

/** Whether this process serves metrics (MS2M_METRICS_LISTEN=off turns them off). */
export const metricsEnabled = (): boolean => process.env.MS2M_METRICS_LISTEN !== 'off';
