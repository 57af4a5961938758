/**
 * A node agent of the local runtime: a Temporal worker on the node's own task queue running the node
 * activities, plus an HTTP endpoint that receives checkpoint images from other agents. It registers the
 * node in the cluster store; the instances it starts run detached and survive its restarts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { imageReceiver } from '../activities/local/image-transfer';
import { createLocalNodeActivities } from '../activities/local/node-activities';
import { loadConfig } from '../lib/config';
import { withFailpoints } from '../lib/failpoints';
import { nodeTaskQueue } from '../lib/migration';
import { ClusterStore, DEFAULT_CAPACITY } from '../runtime/cluster-store';

/**
 * A restarted agent listens where it listened before when it can: a migration that was sending it an
 * image retries against the address it was given.
 */
async function listen(server: Server, portFile: string, wanted: number): Promise<number> {
  if (wanted > 0) return tryListen(server, wanted, portFile);
  const previous = existsSync(portFile) ? Number(readFileSync(portFile, 'utf8')) : 0;
  return tryListen(server, previous, portFile).catch(() => tryListen(server, 0, portFile));
}

async function tryListen(server: Server, port: number, portFile: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  writeFileSync(portFile, String(bound));
  return bound;
}

export async function runNodeAgent(node: string, port = 0, capacity = DEFAULT_CAPACITY): Promise<void> {
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(node)) throw new Error(`--node: "${node}" is not a node name (lowercase letters, digits, dashes), e.g. node-a`);
  const cfg = loadConfig();
  const dataDir = path.join(cfg.home, 'nodes', node);
  mkdirSync(dataDir, { recursive: true });
  const server = createServer(imageReceiver(path.join(dataDir, 'images'), node));
  const imageUrl = `http://127.0.0.1:${await listen(server, path.join(dataDir, 'agent.port'), port)}`;
  const taskQueue = nodeTaskQueue(cfg.taskQueue, node);
  const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
  const worker = await Worker.create({
    connection,
    namespace: cfg.temporalNamespace,
    taskQueue,
    activities: withFailpoints(node, createLocalNodeActivities({ node, dataDir, criu: cfg.criu, imageUrl })),
  });
  new ClusterStore(cfg.home).registerNode({ node, taskQueue, imageUrl, dataDir, pid: process.pid, updatedAt: Date.now(), capacity });
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
