/**
 * What the Kubernetes e2e files share: the test cluster brought up with ms2m installed for the file (and
 * down after it), and what of a Deployment a migration must leave as it was.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { afterAll, beforeAll, expect } from 'vitest';
import { runScenario, type ScenarioOptions } from '../../../cli/scenario';
import { ledgerTopology } from '../../../examples/ledger/ledger';
import { loadConfig } from '../../../lib/config';
import { ControlClient } from '../../../service/control-client';
import type { KubeTestCluster } from '../../../runtimes/kubernetes/test-cluster';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from '../e2e-cluster';
import { witness, writeEvidence } from './witness';

export function kubeE2e(name: string): { run: string; cluster(): KubeTestCluster; home(): string } {
  const run = Date.now().toString(36);
  let e2e: E2eCluster | undefined;
  beforeAll(async () => {
    e2e = await startE2eCluster(name, ['node-a', 'node-b'], { runtime: 'kubernetes', taskQueue: `ms2m-${name}-${run}` });
  }, 900_000);
  afterAll(async () => {
    await stopE2eCluster(e2e);
  });
  return { run, cluster: () => e2e!.cluster as KubeTestCluster, home: () => e2e!.home };
}

/**
 * The ledger under load migrated from node-a to node-b (shadow unless told), with the witness watching;
 * the service is kept for the test to inspect and undeploy. A migration that was not exact leaves the
 * broker's view and every pod's log in the file's home, named in the output.
 */
export async function migrateLedger(cluster: KubeTestCluster, service: string, o: Partial<ScenarioOptions>) {
  let w: ReturnType<typeof witness> | undefined;
  const result = await runScenario(cluster, {
    service,
    workload: 'ledger',
    from: 'node-a',
    to: 'node-b',
    strategy: 'shadow',
    rate: 40,
    warmupMs: 2000,
    settleMs: 1500,
    keep: true,
    ...o,
    afterDeploy: async (p) => {
      w = witness(cluster.api, service, ledgerTopology(service).queue);
      await o.afterDeploy?.(p);
    },
  });
  const seen = await w!.stop();
  const order = result.report.verification?.order;
  if (order && !order.ok) {
    const file = path.join(cluster.opts.home, `evidence-${service}.txt`);
    const control = await ControlClient.connect(loadConfig().amqpUrl, 'ms2m-evidence');
    const status = await control
      .command(result.placed, { kind: 'status', digest: false })
      .catch((err: Error) => err.message)
      .finally(() => control.close());
    await writeEvidence(file, service, seen, order.problems, status);
    console.log(`${service} was not exact; the broker's queues and the pods' logs are in ${file}`);
  }
  return { ...result, seen };
}

/**
 * Removes every name of the ms2m base image from node-b's containerd (its own and the ids the CRI plugin
 * keeps), so that a restore there fails; `reloadImages` puts them back.
 */
export function breakRestoresOnNodeB(cluster: KubeTestCluster): void {
  const ctr = (...args: string[]) => spawnSync(cluster.env.CTR, ['-a', `${cluster.env.RUN}/node-b/sock/containerd.sock`, '-n', 'k8s.io', ...args], { encoding: 'utf8' });
  const target = (name: string) => ctr('images', 'ls', `name==${name}`).stdout.split('\n')[1]?.trim().split(/\s+/)[2];
  const digest = target(cluster.env.IMAGE_MS2M);
  const names = ctr('images', 'ls', '-q').stdout.split('\n').filter((n) => n && target(n) === digest);
  expect(names).toContain(cluster.env.IMAGE_MS2M);
  const rm = ctr('images', 'rm', ...names);
  expect(rm.status, rm.stderr).toBe(0);
}

/** Loads what is missing on the nodes again (`cluster.sh up` is incremental). */
export const reloadImages = (): void => void spawnSync('bash', ['infra/k8s/cluster.sh', 'up'], { stdio: 'ignore' });

export const deploymentShape = (d: V1Deployment) => ({
  replicas: d.spec?.replicas,
  template: d.spec?.template,
  strategy: d.spec?.strategy,
  selector: d.spec?.selector,
  generation: d.metadata?.generation,
  labels: d.metadata?.labels,
});
