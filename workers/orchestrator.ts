/**
 * The orchestrator worker: runs the workflows, the broker and lock activities, and the cluster activities
 * of the configured runtime (MS2M_RUNTIME) on the orchestrator's task queue ("ms2m" unless MS2M_TASK_QUEUE
 * says otherwise).
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createBrokerActivities, warmBrokerConnection } from '../activities/broker';
import { createLockActivities } from '../activities/lock';
import { loadConfig } from '../lib/config';
import { withFailpoints } from '../lib/failpoints';
import { loadRuntime } from '../runtimes';
import { migrationSinks } from '../lib/metrics';
import { startTelemetry } from './telemetry';
import { logger } from '../lib/log';

export async function runOrchestrator(): Promise<void> {
  const cfg = loadConfig();
  const runtime = await loadRuntime();
  // Before the first connection: the Temporal runtime's logger and metrics are set when it is made.
  const telemetry = await startTelemetry('orchestrator');
  const { log } = telemetry;
  const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
  const client = new Client({ connection: await Connection.connect({ address: cfg.temporalAddress }), namespace: cfg.temporalNamespace });
  const worker = await Worker.create({
    connection,
    namespace: cfg.temporalNamespace,
    taskQueue: cfg.taskQueue,
    // In a pod, its name: a restarted orchestrator is told apart from the one before.
    ...(process.env.POD_NAME ? { identity: process.env.POD_NAME } : {}),
    workflowsPath: require.resolve('../workflows'),
    dataConverter: { payloadConverterPath: require.resolve('../lib/payload-converter') },
    sinks: { ...migrationSinks, ...telemetry.tracing?.sinks },
    interceptors: telemetry.interceptors,
    activities: withFailpoints('orchestrator', {
      ...createBrokerActivities(),
      ...createLockActivities(client, cfg.taskQueue),
      ...(await runtime.clusterActivities()),
    }),
  });
  warmBrokerConnection();
  // Not awaited: the worker serves while the webhook waits for its port. A webhook that cannot serve ends
  // the orchestrator, so that its controller restarts it (evictions it should see are held meanwhile).
  const beside = runtime.serveBesideOrchestrator?.(client, cfg.taskQueue).catch((err: Error) => {
    log.error({ err: err.message }, 'the eviction webhook stopped; the orchestrator ends so that its controller restarts it');
    process.exitCode = 1;
    worker.shutdown();
    return null;
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => worker.shutdown());
  log.info({ runtime: runtime.name, taskQueue: cfg.taskQueue, temporal: cfg.temporalAddress, metrics: telemetry.metrics?.url ?? 'off' }, `orchestrator (${runtime.name} runtime) ready on task queue ${cfg.taskQueue}`);
  await worker.run();
  (await beside)?.close();
  await connection.close();
  await telemetry.close();
}

if (require.main === module) {
  runOrchestrator().catch((err) => {
    logger().fatal({ err: (err as Error).message }, 'orchestrator failed');
    process.exit(1);
  });
}
