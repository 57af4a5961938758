/** The local runtime: service instances are processes on this host, checkpointed and restored with CRIU. */
import { loadConfig } from '../../lib/config';
import type { Runtime } from '../types';
import { createClusterActivities } from './cluster-activities';
import { ClusterStore } from './cluster-store';
import { startLocalNodeAgent } from './node-agent';
import { LocalCluster, reapInstances } from './test-cluster';

export const localRuntime: Runtime = {
  name: 'local',
  clusterActivities: async () => createClusterActivities(new ClusterStore(loadConfig().home)),
  startNodeAgent: startLocalNodeAgent,
  startCluster: (opts) => LocalCluster.start(opts),
  reap: reapInstances,
};
