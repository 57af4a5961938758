/**
 * A node agent of the local runtime: a Temporal worker on the node's own task queue running the node
 * activities, plus an HTTP endpoint that receives checkpoint images from other agents. It registers the
 * node in the cluster store; the instances it starts run detached and survive its restarts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { imageReceiver } from '../activities/local/image-transfer';
import { createLocalNodeActivities } from '../activities/local/node-activities';
import { loadConfig } from '../lib/config';
import { nodeTaskQueue } from '../lib/migration';
import { ClusterStore } from '../runtime/cluster-store';

export async function runNodeAgent(node: string, port = 0): Promise<void> {
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(node)) throw new Error(`--node: "${node}" is not a node name (lowercase letters, digits, dashes), e.g. node-a`);
  const cfg = loadConfig();
  const dataDir = path.join(cfg.home, 'nodes', node);
  const server = createServer(imageReceiver(path.join(dataDir, 'images')));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  const imageUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const taskQueue = nodeTaskQueue(cfg.taskQueue, node);
  const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
  const worker = await Worker.create({
    connection,
    namespace: cfg.temporalNamespace,
    taskQueue,
    activities: createLocalNodeActivities({ node, dataDir, criu: cfg.criu, imageUrl }),
  });
  new ClusterStore(cfg.home).registerNode({ node, taskQueue, imageUrl, dataDir, pid: process.pid, updatedAt: Date.now() });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => worker.shutdown());
  console.log(`[ms2m] node agent ${node} ready on task queue ${taskQueue}, images at ${imageUrl}, data in ${dataDir}`);
  await worker.run();
  server.close();
  await connection.close();
}

if (require.main === module) {
  const i = process.argv.indexOf('--node');
  const node = i > 0 ? process.argv[i + 1] : process.env.MS2M_NODE;
  if (!node) {
    console.error('usage: node-agent --node <name>');
    process.exit(2);
  }
  runNodeAgent(node).catch((err) => {
    console.error(`[ms2m] node agent failed: ${(err as Error).message}`);
    process.exit(1);
  });
}
