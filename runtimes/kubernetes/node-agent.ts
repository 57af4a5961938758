/**
 * A node agent of the kubernetes runtime: one pod of the agents' DaemonSet per node, a Temporal worker on
 * its node's task queue, and the HTTP endpoint that receives images from other agents. It registers that
 * endpoint in a Lease named after its node (renewed while it runs), where the other agents look it up.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig } from '../../lib/config';
import { log } from '../../lib/log';
import { withFailpoints } from '../../lib/failpoints';
import type { NodeAgentOptions } from '../types';
import { imageReceiver } from '../shared/image-transfer';
import { withCombined } from '../shared/combined';
import { nodeTaskQueue } from '../shared/task-queues';
import { kubeSettings, transferSecret } from './config';
import { KubeError, seg, type KubeApi } from './kube-api';
import { TRANSFER_URL_ANNOTATION, agentLeaseName, createKubeNodeActivities } from './node-activities';

const RENEW_MS = 10_000;

/** Creates or renews the Lease where the other agents find this one's image endpoint. */
export async function registerAgent(api: KubeApi, ns: string, node: string, url: string): Promise<void> {
  const name = agentLeaseName(node);
  const lease = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace: ns, annotations: { [TRANSFER_URL_ANNOTATION]: url } },
    spec: { holderIdentity: process.env.POD_NAME ?? os.hostname(), leaseDurationSeconds: (3 * RENEW_MS) / 1000, renewTime: new Date().toISOString().replace('Z', '000Z') },
  };
  const p = `/apis/coordination.k8s.io/v1/namespaces/${seg(ns)}/leases`;
  try {
    await api.patch(`${p}/${seg(name)}`, { metadata: lease.metadata, spec: lease.spec });
  } catch (err) {
    if (!(err instanceof KubeError) || err.status !== 404) throw err;
    await api.post(p, lease);
  }
}

export async function startKubeNodeAgent(api: KubeApi, { node, shared = {}, combine, instrument = (a) => a, interceptors }: NodeAgentOptions) {
  const cfg = loadConfig();
  const k = kubeSettings();
  const secret = transferSecret();
  const server = createServer(imageReceiver(path.join(k.checkpointDir, 'ms2m'), node, { secret }));
  const [host, port] = [k.transferListen.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(k.transferListen)?.[1] ?? 0)];
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const url = `http://${k.advertise}:${(server.address() as AddressInfo).port}`;
  const taskQueue = nodeTaskQueue(cfg.taskQueue, node);
  const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
  const activities = createKubeNodeActivities({
    api,
    node,
    namespaces: k.namespaces,
    checkpointDir: k.checkpointDir,
    ctr: { bin: k.ctr, socket: k.containerdSocket },
    secret,
    agentNamespace: k.agentNamespace,
    transferUrl: url,
    ...(k.registry ? { registry: k.registry } : {}),
  });
  const worker = await Worker.create({ connection, namespace: cfg.temporalNamespace, taskQueue, ...(process.env.POD_NAME ? { identity: process.env.POD_NAME } : {}), ...(interceptors ? { interceptors } : {}), activities: withCombined(node, instrument(withFailpoints(node, { ...shared, ...activities })), combine) });
  await registerAgent(api, k.agentNamespace, node, url);
  const renew = setInterval(() => void registerAgent(api, k.agentNamespace, node, url).catch((e: Error) => log('warn', `renewing the agent's Lease failed: ${e.message}`)), RENEW_MS);
  log('info', `node agent ${node} (kubernetes) ready on task queue ${taskQueue}`, { taskQueue, images: url, checkpoints: k.checkpointDir });
  return {
    taskQueue,
    async run() {
      await worker.run();
      clearInterval(renew);
      server.close();
      await connection.close();
    },
    stop: () => worker.shutdown(),
  };
}
