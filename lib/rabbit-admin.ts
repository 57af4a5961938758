/** The few RabbitMQ management API calls ms2m needs: bindings to copy and queue counters. */
export interface Binding {
  source: string;
  routing_key: string;
  arguments: Record<string, unknown>;
}

function split(mgmtUrl: string, amqpUrl: string): { base: string; auth: string; vhost: string } {
  const u = new URL(mgmtUrl);
  const auth = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username || 'guest')}:${decodeURIComponent(u.password || 'guest')}`).toString('base64');
  u.username = '';
  u.password = '';
  const vhostPath = new URL(amqpUrl).pathname.replace(/^\//, '');
  return { base: u.toString().replace(/\/$/, ''), auth, vhost: encodeURIComponent(vhostPath ? decodeURIComponent(vhostPath) : '/') };
}

async function get<T>(mgmtUrl: string, amqpUrl: string, path: (vhost: string) => string): Promise<T> {
  const { base, auth, vhost } = split(mgmtUrl, amqpUrl);
  const res = await fetch(`${base}${path(vhost)}`, { headers: { authorization: auth } });
  if (!res.ok) throw new Error(`RabbitMQ management API ${path(vhost)}: HTTP ${res.status} (is the management plugin enabled? set MS2M_AMQP_MGMT_URL)`);
  return (await res.json()) as T;
}

/** Exchange bindings of a queue (the default exchange's implicit binding left out). */
export async function queueBindings(mgmtUrl: string, amqpUrl: string, queue: string): Promise<Binding[]> {
  const all = await get<Binding[]>(mgmtUrl, amqpUrl, (v) => `/api/queues/${v}/${encodeURIComponent(queue)}/bindings`);
  return all.filter((b) => b.source !== '');
}
