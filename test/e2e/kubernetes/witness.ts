/**
 * Evidence about a Kubernetes migration that ms2m does not produce: every connection that consumed the
 * service's primary queue (from RabbitMQ's management API; the service library names its connection after
 * its identity, the pod's name) and every pod of the service that ever existed (from the API server, by
 * name prefix, so a pod a controller started on its own shows too, and by uid, since a StatefulSet's pod
 * and the one that replaces it share a name); each pod's log; and every delivery
 * from the primary queue by the broker's firehose. A migration that was not exact leaves all of it in a
 * file (`writeEvidence`).
 */
import { writeFileSync } from 'node:fs';
import * as amqp from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { loadConfig } from '../../../lib/config';
import { managementGet, setTracing } from '../../../lib/rabbit-admin';
import type { KubeApi } from '../../../runtimes/kubernetes/kube-api';

export interface Witnessed {
  /** Every instance that consumed the primary queue: delivered to by the firehose, or listed by the management API. */
  consumers: Set<string>;
  pods: Set<string>;
  /** Every pod of the service by uid: its name, its node, and the pod it was restored from (ms2m's annotation) if any. */
  podsByUid: Map<string, { name: string; node: string; copyOf: string | null }>;
  /** The uids of the pods the firehose saw the primary queue deliver to. */
  consumerUids: Set<string>;
  /** Each pod's log as last read (a deleted pod's log ends where it was last read). */
  logs: Map<string, string>;
  /** Every consumer of the primary queue (connection name and consumer tag): when it was first and last seen. */
  timeline: Map<string, { first: number; last: number }>;
  /**
   * Every delivery from the primary queue, as the broker's firehose saw it (the witness turns tracing on
   * for the vhost while it runs): when, to which connection and channel, the stamp, redelivered.
   */
  deliveries: string[];
  /** The broker's name of each consuming connection (its addresses) and the name its client gave it. */
  connections: Map<string, string>;
}

export function witness(api: KubeApi, service: string, queue: string, namespace = 'default') {
  const seen: Witnessed = { consumers: new Set(), pods: new Set(), podsByUid: new Map(), consumerUids: new Set(), logs: new Map(), timeline: new Map(), deliveries: [], connections: new Map() };
  let stopped = false;
  const names = seen.connections;
  /** Pod IPs, for the broker's connection names (`<client ip>:<port> -> <broker>`) of the firehose's deliveries. */
  const podOfIp = new Map<string, { name: string; uid: string }>();
  const deliveredTo = new Set<string>();
  let round = 0;
  const readLogs = (pods: V1Pod[]) =>
    Promise.all(
      pods.map(async (p) => {
        const name = p.metadata!.name!;
        const text = await api.text(`/api/v1/namespaces/${namespace}/pods/${name}/log`).catch(() => null);
        if (text) seen.logs.set(name, text);
      }),
    );
  const firehose = (async () => {
    await setTracing(true);
    const conn = await amqp.connect(loadConfig().amqpUrl);
    const ch = await conn.createChannel();
    const { queue: q } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
    await ch.bindQueue(q, 'amq.rabbitmq.trace', `deliver.${queue}`);
    await ch.consume(
      q,
      (m) => {
        if (!m) return;
        const h = m.properties.headers as { connection?: string; channel?: number; redelivered?: number; properties?: { headers?: Record<string, unknown> } };
        const stamp = h.properties?.headers ?? {};
        if (h.connection) deliveredTo.add(h.connection);
        seen.deliveries.push(`${new Date().toISOString()} ${String(stamp['x-ms2m-producer'] ?? '?').split('-').pop()}#${String(stamp['x-ms2m-seq'] ?? '?')} to ${h.connection} ch ${h.channel}${h.redelivered ? ' (redelivered)' : ''}`);
      },
      { noAck: true },
    );
    return conn;
  })().catch(() => null);
  const loop = (async () => {
    while (!stopped) {
      const [q, pods] = await Promise.all([
        managementGet<{ consumer_details?: Array<{ consumer_tag?: string; channel_details?: { connection_name?: string } }> }>((v) => `/api/queues/${v}/${encodeURIComponent(queue)}`).catch(() => null),
        api.get<{ items: V1Pod[] }>(`/api/v1/namespaces/${namespace}/pods`).catch(() => ({ items: [] as V1Pod[] })),
      ]);
      for (const c of q?.consumer_details ?? []) {
        const server = c.channel_details?.connection_name;
        if (!server) continue;
        // The broker names a connection by its addresses; the name the client gave it is in the connection.
        if (!names.has(server)) {
          const conn = await managementGet<{ client_properties?: { connection_name?: string } }>(() => `/api/connections/${encodeURIComponent(server)}`).catch(() => null);
          names.set(server, conn?.client_properties?.connection_name ?? `(unnamed ${server})`);
        }
        seen.consumers.add(names.get(server)!);
        const key = `${names.get(server)} ${c.consumer_tag ?? ''}`;
        const now = Date.now();
        seen.timeline.set(key, { first: seen.timeline.get(key)?.first ?? now, last: now });
      }
      const ours = pods.items.filter((p) => p.metadata?.name?.startsWith(`${service}-`));
      for (const p of ours) {
        const uid = p.metadata!.uid!;
        seen.pods.add(p.metadata!.name!);
        seen.podsByUid.set(uid, { name: p.metadata!.name!, node: p.spec?.nodeName ?? '', copyOf: p.metadata?.annotations?.['ms2m.io/copy-of'] ?? null });
        if (p.status?.podIP) podOfIp.set(p.status.podIP, { name: p.metadata!.name!, uid });
      }
      if (round++ % 5 === 0) await readLogs(ours);
      await sleep(100);
    }
  })();
  return {
    seen,
    async stop(): Promise<Witnessed> {
      stopped = true;
      await loop;
      await (await firehose)?.close().catch(() => undefined);
      await setTracing(false).catch(() => undefined);
      const pods = await api.get<{ items: V1Pod[] }>(`/api/v1/namespaces/${namespace}/pods`).catch(() => ({ items: [] as V1Pod[] }));
      await readLogs(pods.items.filter((p) => p.metadata?.name?.startsWith(`${service}-`)));
      // The management API's consumer list is a sample (its statistics come every 5 s): a consumer of a
      // few seconds can fall between two. A delivery the firehose saw names its consumer for certain.
      for (const server of deliveredTo) {
        const pod = podOfIp.get(server.split(':')[0]);
        seen.consumers.add(pod?.name ?? names.get(server) ?? `(unknown ${server})`);
        seen.consumerUids.add(pod?.uid ?? `(unknown ${server})`);
      }
      return seen;
    },
  };
}

/**
 * When a migration was not exact: what the broker holds of the service's queues now and every pod's log,
 * written to `file` for the one reading the failure.
 */
export async function writeEvidence(file: string, service: string, seen: Witnessed, problems: string[], status: unknown): Promise<void> {
  const queues = await managementGet<Array<{ name: string }>>((v) => `/api/queues/${v}?columns=name,messages_ready,messages_unacknowledged,consumers`).catch((err: Error) => [
    { name: `(the management API did not answer: ${err.message})` },
  ]);
  const lines = [
    `problems:\n${problems.join('\n')}`,
    `consumers of the primary queue (first and last seen):\n${[...seen.timeline].map(([k, t]) => `${k} ${new Date(t.first).toISOString()} .. ${new Date(t.last).toISOString()}`).join('\n')}`,
    `connections:\n${[...seen.connections].map(([server, client]) => `${server} is ${client}`).join('\n')}`,
    `deliveries from the primary queue:\n${seen.deliveries.join('\n')}`,
    `the serving instance now:\n${JSON.stringify(status)}`,
    `queues:\n${queues.filter((q) => q.name.includes(service)).map((q) => JSON.stringify(q)).join('\n')}`,
    ...[...seen.logs].map(([pod, text]) => `log of ${pod}:\n${text}`),
  ];
  writeFileSync(file, `${lines.join('\n\n')}\n`);
}
