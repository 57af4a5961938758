/**
 * The runtime contract, run against the local runtime: two node agents' activities in this process, each
 * node with its own data directory and image receiver, registered in a cluster store as their agents
 * would register them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { workload } from '../../cli/workloads';
import { loadConfig } from '../../lib/config';
import { createClusterActivities } from '../../runtimes/local/cluster-activities';
import { ClusterStore } from '../../runtimes/local/cluster-store';
import { imageReceiver } from '../../runtimes/shared/image-transfer';
import { PageStreamReceiver } from '../../runtimes/local/page-stream-receiver';
import { nodeTls } from '../../runtimes/local/pki';
import { createLocalNodeActivities } from '../../runtimes/local/node-activities';
import { nodeTaskQueue } from '../../runtimes/shared/task-queues';
import { reapInstances } from '../../runtimes/local/test-cluster';
import { describeRuntimeContract } from './runtime-contract';

async function listening(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describeRuntimeContract({
  runtime: 'local',
  async setup() {
    const home = mkdtempSync(path.join(os.tmpdir(), 'ms2m-contract-'));
    // Failpoints and the workloads' files live under MS2M_HOME; none is armed here.
    process.env.MS2M_HOME = home;
    const store = new ClusterStore(home);
    const servers: Server[] = [];
    const peer = (n: string) => {
      const rec = store.node(n);
      return rec ? { imageUrl: rec.imageUrl, dataDir: rec.dataDir } : null;
    };
    const nodeOf = async (node: string) => {
      const dataDir = path.join(home, 'nodes', node);
      const pageStreams = new Map<string, PageStreamReceiver>();
      const server = createServer(imageReceiver(path.join(dataDir, 'images'), node, { pageStream: async (id) => (pageStreams.get(id) ? pageStreams.get(id)!.settled() : 'no page stream') }));
      servers.push(server);
      const imageUrl = await listening(server);
      store.registerNode({ node, taskQueue: nodeTaskQueue('contract', node), imageUrl, dataDir, pid: process.pid, updatedAt: Date.now() });
      const tls = nodeTls(home, node, '127.0.0.1');
      return { node, activities: createLocalNodeActivities({ node, dataDir, criu: loadConfig().criu, imageUrl, host: '127.0.0.1', tls, pageStreams, peer, log: () => undefined }) };
    };
    const [a, b] = await Promise.all([nodeOf('node-a'), nodeOf('node-b')]);
    return {
      a,
      b,
      cluster: createClusterActivities(store),
      spec: async (service) => workload('game').spec(service, { home, stateBytes: 0, workMs: 0 }),
      async teardown() {
        reapInstances(home);
        for (const s of servers) s.close();
        rmSync(home, { recursive: true, force: true });
        delete process.env.MS2M_HOME;
      },
    };
  },
});
