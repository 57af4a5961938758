/**
 * The kubernetes runtime: services are Deployments, StatefulSets or Pods, instances are pods, nodes are the cluster's
 * Nodes; checkpoints go through the kubelet's API, restores through checkpoint images in containerd.
 * The API client is built when first needed (the harness starts the cluster before it has a kube config).
 */
import { log } from '../../lib/log';
import { loadConfig } from '../../lib/config';
import type { Runtime } from '../types';
import { createKubeClusterActivities } from './cluster-activities';
import { kubeSettings } from './config';
import { evictionDeps, serveEvictionWebhook } from './eviction-webhook';
import { kubeApi } from './kube-api';
import { startKubeNodeAgent } from './node-agent';
import { KubeTestCluster } from './test-cluster';

export const kubernetesRuntime: Runtime = {
  name: 'kubernetes',
  clusterActivities: async () => createKubeClusterActivities({ api: await kubeApi(), taskQueue: loadConfig().taskQueue, namespaces: kubeSettings().namespaces }),
  startNodeAgent: async (opts) => startKubeNodeAgent(await kubeApi(), opts),
  startCluster: (opts) => KubeTestCluster.start(opts),
  // Nothing of this runtime lives under a harness's home: its leftovers are pods, which `infra/k8s/cluster.sh down` ends.
  reap: () => undefined,
  async serveBesideOrchestrator(client, taskQueue) {
    const s = kubeSettings();
    if (!s.webhookListen) return null;
    const deps = evictionDeps(await kubeApi(), client, taskQueue, s.namespaces);
    const server = await serveEvictionWebhook({ listen: s.webhookListen, certDir: s.webhookCertDir, deps, log: (l) => log('info', l) });
    return { close: () => void server.close() };
  },
};
