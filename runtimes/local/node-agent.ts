/**
 * A node agent of the local runtime: a Temporal worker on the node's own task queue running the node
 * activities, plus an HTTP endpoint that receives checkpoint images from other agents. It registers the
 * node (its task queue, where it receives images) in the cluster store; the instances it starts run
 * detached and survive its restarts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig } from '../../lib/config';
import { parseListenAddress } from '../../lib/listen-address';
import { log } from '../../lib/log';
import { withFailpoints } from '../../lib/failpoints';
import { withCombined } from '../shared/combined';
import type { NodeAgentOptions } from '../types';
import { ClusterStore, DEFAULT_CAPACITY } from './cluster-store';
import { imageReceiver, stagingDir } from '../shared/image-transfer';
import { PageStreamReceiver } from './page-stream-receiver';
import { setUpImagesDir } from './images-dir';
import { nodeTls } from './pki';
import { createLocalNodeActivities } from './node-activities';
import { nodeTaskQueue } from '../shared/task-queues';


/** `host:port`, `host` or `:port`; the port may be 0 (any free one). */
/**
 * A restarted agent listens where it listened before when it can: a migration that was sending it an
 * image retries against the address the store has.
 */
async function listen(server: Server, portFile: string, host: string, wanted: number): Promise<number> {
  if (wanted > 0) return tryListen(server, host, wanted, portFile);
  const previous = existsSync(portFile) ? Number(readFileSync(portFile, 'utf8')) : 0;
  return tryListen(server, host, previous, portFile).catch(() => tryListen(server, host, 0, portFile));
}

async function tryListen(server: Server, host: string, port: number, portFile: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  writeFileSync(portFile, String(bound));
  return bound;
}

export async function startLocalNodeAgent({ node, capacity = DEFAULT_CAPACITY, listen: where, shared = {}, combine, instrument = (a) => a, interceptors }: NodeAgentOptions) {
  const cfg = loadConfig();
  const { host, port } = where ? parseListenAddress(where, '--listen') : { host: '127.0.0.1', port: 0 };
  const dataDir = path.join(cfg.home, 'nodes', node);
  mkdirSync(dataDir, { recursive: true });
  setUpImagesDir(dataDir);
  const store = new ClusterStore(cfg.home);
  const tls = nodeTls(cfg.home, node, host);
  const pageStreams = new Map<string, PageStreamReceiver>();
  const server = createServer(
    imageReceiver(path.join(dataDir, 'images'), node, {
      openPageStream: async (imageId) => {
        let r = pageStreams.get(imageId);
        if (!r) {
          r = await PageStreamReceiver.open(imageId, stagingDir(path.join(dataDir, 'images'), imageId), { node, host, criu: cfg.criu, tls, log: (l) => log('warn', l) });
          pageStreams.set(imageId, r);
        }
        return r.address;
      },
      pageStream: async (imageId) => (pageStreams.get(imageId) ? pageStreams.get(imageId)!.settled() : `no page stream was opened for image ${imageId} on ${node}`),
    }),
  );
  const imageUrl = `http://${host.includes(':') ? `[${host}]` : host}:${await listen(server, path.join(dataDir, 'agent.port'), host, port)}`;
  const taskQueue = nodeTaskQueue(cfg.taskQueue, node);
  const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
  const peer = (n: string) => {
    const rec = store.node(n);
    return rec ? { imageUrl: rec.imageUrl, dataDir: rec.dataDir } : null;
  };
  const worker = await Worker.create({
    connection,
    namespace: cfg.temporalNamespace,
    taskQueue,
    ...(interceptors ? { interceptors } : {}),
    activities: withCombined(
      node,
      instrument(
        withFailpoints(node, {
          ...shared,
          ...createLocalNodeActivities({ node, dataDir, criu: cfg.criu, imageUrl, host, tls, pageStreams, peer, log: (line) => log('info', line) }),
        }),
      ),
      combine,
    ),
  });
  store.registerNode({ node, taskQueue, imageUrl, dataDir, pid: process.pid, updatedAt: Date.now(), capacity });
  log('info', `node agent ${node} ready on task queue ${taskQueue}`, { taskQueue, images: imageUrl, data: dataDir });
  return {
    taskQueue,
    async run() {
      await worker.run();
      server.close();
      await connection.close();
    },
    stop: () => worker.shutdown(),
  };
}
