/**
 * What the Kubernetes e2e files share: the test cluster brought up with ms2m installed for the file (and
 * down after it), and what of a Deployment a migration must leave as it was.
 */
import type { V1Deployment } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { afterAll, beforeAll } from 'vitest';
import type { KubeTestCluster } from '../../../runtimes/kubernetes/test-cluster';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from '../e2e-cluster';

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

export const deploymentShape = (d: V1Deployment) => ({
  replicas: d.spec?.replicas,
  template: d.spec?.template,
  strategy: d.spec?.strategy,
  selector: d.spec?.selector,
  generation: d.metadata?.generation,
  labels: d.metadata?.labels,
});
