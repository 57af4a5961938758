/**
 * The cluster an end-to-end file runs on: the stack brought up, a fresh home, and the configured
 * runtime's orchestrator and node agents; stopping it also ends the instances a failed test left
 * running (they would keep consuming after the run).
 */
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureStack } from '../../lib/stack';
import { loadRuntime } from '../../runtimes';
import { infra } from '../../runtimes/kubernetes/test-cluster';
import type { ClusterHandle, ClusterOptions, Runtime, RuntimeName } from '../../runtimes/types';

export interface E2eCluster {
  runtime: Runtime;
  cluster: ClusterHandle;
  home: string;
}

export async function startE2eCluster(
  name: string,
  nodes: string[],
  o: { taskQueue?: string; nodeEnv?: (home: string) => ClusterOptions['nodeEnv']; runtime?: RuntimeName } = {},
): Promise<E2eCluster> {
  await ensureStack();
  const home = mkdtempSync(path.join(os.tmpdir(), `ms2m-${name}-`));
  const runtime = await loadRuntime(o.runtime);
  const cluster = await runtime.startCluster({ nodes, home, taskQueue: o.taskQueue ?? `ms2m-${name}-${Date.now().toString(36)}`, nodeEnv: o.nodeEnv?.(home) });
  return { runtime, cluster, home };
}

export async function stopE2eCluster(e: E2eCluster | undefined): Promise<void> {
  if (!e) return;
  await e.cluster.stop();
  e.runtime.reap(e.home);
  // The test cluster's control plane and kubelets would otherwise share the CPUs with the files after this one.
  if (e.runtime.name === 'kubernetes') await infra('cluster.sh', ['down']);
}
