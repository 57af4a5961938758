/**
 * The cluster an end-to-end file runs on: the stack brought up, a fresh home, and the configured
 * runtime's orchestrator and node agents; stopping it also ends the instances a failed test left
 * running (they would keep consuming after the run).
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as amqp from 'amqplib';
import { loadConfig } from '../../lib/config';
import { listQueues } from '../../lib/rabbit-admin';
import { ensureStack } from '../../lib/stack';
import { loadRuntime } from '../../runtimes';
import { infra } from '../../runtimes/kubernetes/test-cluster';
import type { ClusterHandle, ClusterOptions, Runtime, RuntimeName } from '../../runtimes/types';

export interface E2eCluster {
  runtime: Runtime;
  cluster: ClusterHandle;
  home: string;
  /** The broker's queues before the file ran: the ones it adds are deleted after it. */
  queuesBefore: Set<string>;
}

export async function startE2eCluster(
  name: string,
  nodes: string[],
  o: { taskQueue?: string; nodeEnv?: (home: string) => ClusterOptions['nodeEnv']; runtime?: RuntimeName } = {},
): Promise<E2eCluster> {
  await ensureStack();
  const queuesBefore = new Set((await listQueues()).map((q) => q.name));
  const home = mkdtempSync(path.join(os.tmpdir(), `ms2m-${name}-`));
  const runtime = await loadRuntime(o.runtime);
  const cluster = await runtime.startCluster({ nodes, home, taskQueue: o.taskQueue ?? `ms2m-${name}-${Date.now().toString(36)}`, nodeEnv: o.nodeEnv?.(home) });
  return { runtime, cluster, home, queuesBefore };
}

export async function stopE2eCluster(e: E2eCluster | undefined): Promise<void> {
  if (!e) return;
  await e.cluster.stop();
  e.runtime.reap(e.home);
  await deleteQueuesAdded(e.queuesBefore);
  // The test cluster's control plane and kubelets would otherwise share the CPUs with the files after this one.
  // MS2M_K8S_KEEP=1 leaves it up, for running one file again and again.
  if (e.runtime.name === 'kubernetes' && process.env.MS2M_K8S_KEEP !== '1') await infra('cluster.sh', ['down']);
}

/**
 * Durable queues outlive the run that declared them, and a broker holding about a thousand cannot restart
 * within its file handles. Queues something still consumes are left alone (another run's).
 */
async function deleteQueuesAdded(before: Set<string>): Promise<void> {
  const added = (await listQueues()).filter((q) => !before.has(q.name) && q.consumers === 0);
  if (added.length === 0) return;
  const conn = await amqp.connect(loadConfig().amqpUrl);
  try {
    const ch = await conn.createChannel();
    for (const q of added) await ch.deleteQueue(q.name);
  } finally {
    await conn.close().catch(() => undefined);
  }
}
