/**
 * Evidence about a Kubernetes migration that ms2m does not produce: every connection that consumed the
 * service's primary queue (from RabbitMQ's management API; the service library names its connection after
 * its identity, the pod's name) and every pod of the service that ever existed (from the API server, by
 * name prefix, so a pod a controller started on its own shows too).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { loadConfig } from '../../../lib/config';
import type { KubeApi } from '../../../runtimes/kubernetes/kube-api';

export interface Witnessed {
  consumers: Set<string>;
  pods: Set<string>;
}

export function witness(api: KubeApi, service: string, queue: string, namespace = 'default') {
  const seen: Witnessed = { consumers: new Set(), pods: new Set() };
  let stopped = false;
  const url = new URL(loadConfig().amqpMgmtUrl);
  const auth = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  const base = `${url.protocol}//${url.host}`;
  const names = new Map<string, string>();
  const loop = (async () => {
    while (!stopped) {
      const [q, pods] = await Promise.all([
        fetch(`${base}/api/queues/%2F/${encodeURIComponent(queue)}`, { headers: { authorization: auth } })
          .then((r) => (r.ok ? (r.json() as Promise<{ consumer_details?: Array<{ channel_details?: { connection_name?: string } }> }>) : null))
          .catch(() => null),
        api.get<{ items: V1Pod[] }>(`/api/v1/namespaces/${namespace}/pods`).catch(() => ({ items: [] as V1Pod[] })),
      ]);
      for (const c of q?.consumer_details ?? []) {
        const server = c.channel_details?.connection_name;
        if (!server) continue;
        // The broker names a connection by its addresses; the name the client gave it is in the connection.
        if (!names.has(server)) {
          const conn = await fetch(`${base}/api/connections/${encodeURIComponent(server)}`, { headers: { authorization: auth } })
            .then((r) => (r.ok ? (r.json() as Promise<{ client_properties?: { connection_name?: string } }>) : null))
            .catch(() => null);
          names.set(server, conn?.client_properties?.connection_name ?? `(unnamed ${server})`);
        }
        seen.consumers.add(names.get(server)!);
      }
      for (const p of pods.items) if (p.metadata?.name?.startsWith(`${service}-`)) seen.pods.add(p.metadata.name);
      await sleep(100);
    }
  })();
  return {
    seen,
    async stop(): Promise<Witnessed> {
      stopped = true;
      await loop;
      return seen;
    },
  };
}
