/** The few RabbitMQ management API calls ms2m needs (queue counters), and a broker restart for fault tests. */
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as amqp from 'amqplib';
import { loadConfig } from './config';

function split(mgmtUrl: string, amqpUrl: string): { base: string; auth: string; vhost: string } {
  const u = new URL(mgmtUrl);
  const auth = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username || 'guest')}:${decodeURIComponent(u.password || 'guest')}`).toString('base64');
  u.username = '';
  u.password = '';
  const vhostPath = new URL(amqpUrl).pathname.replace(/^\//, '');
  return { base: u.toString().replace(/\/$/, ''), auth, vhost: encodeURIComponent(vhostPath ? decodeURIComponent(vhostPath) : '/') };
}

/** A GET of the management API; `path` gets the vhost of `amqpUrl`, URL-encoded. */
export async function managementGet<T>(path: (vhost: string) => string, mgmtUrl = loadConfig().amqpMgmtUrl, amqpUrl = loadConfig().amqpUrl): Promise<T> {
  return get<T>(mgmtUrl, amqpUrl, path);
}

async function get<T>(mgmtUrl: string, amqpUrl: string, path: (vhost: string) => string): Promise<T> {
  const { base, auth, vhost } = split(mgmtUrl, amqpUrl);
  const res = await fetch(`${base}${path(vhost)}`, { headers: { authorization: auth } });
  if (!res.ok) throw new Error(`RabbitMQ management API ${path(vhost)}: HTTP ${res.status} (is the management plugin enabled? set MS2M_AMQP_MGMT_URL)`);
  return (await res.json()) as T;
}

/** Messages ready plus unacknowledged in a queue; 0 if it does not exist. */
export async function queueDepth(mgmtUrl: string, amqpUrl: string, queue: string): Promise<number> {
  try {
    const q = await get<{ messages?: number }>(mgmtUrl, amqpUrl, (v) => `/api/queues/${v}/${encodeURIComponent(queue)}`);
    return q.messages ?? 0;
  } catch (err) {
    if (/HTTP 404/.test((err as Error).message)) return 0;
    throw err;
  }
}

/**
 * Turns the broker's firehose on or off for the vhost of `amqpUrl`: while on, RabbitMQ copies every
 * publish and delivery to amq.rabbitmq.trace (`deliver.<queue>` names who got what, and whether again).
 */
export async function setTracing(on: boolean): Promise<void> {
  const { base, auth, vhost } = split(loadConfig().amqpMgmtUrl, loadConfig().amqpUrl);
  const res = await fetch(`${base}/api/vhosts/${vhost}`, { method: 'PUT', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ tracing: on }) });
  if (!res.ok) throw new Error(`RabbitMQ management API PUT /api/vhosts/${vhost}: HTTP ${res.status}`);
}

/** Every queue of the vhost with its consumer count. */
export function listQueues(): Promise<Array<{ name: string; consumers: number }>> {
  return managementGet((v) => `/api/queues/${v}?columns=name,consumers`);
}

const execFileP = promisify(execFile);

async function rabbitmqctl(...args: string[]): Promise<void> {
  try {
    // Debian installs it in /usr/sbin, which a non-login PATH may lack.
    await execFileP('rabbitmqctl', args, { timeout: 120_000, env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error('rabbitmqctl not found: restarting the broker needs a local RabbitMQ (the one infra/stack.sh installs) and its CLI on PATH');
    }
    throw new Error(`rabbitmqctl ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/**
 * Restarts the local broker's application (not its Erlang VM): every client connection is closed, and
 * durable queues with their persistent messages come back. `downMs` is how long the broker refused
 * AMQP, from the moment it closed a probe connection until a new connection succeeded.
 */
export async function restartBroker(opts: { downMs?: number } = {}): Promise<{ downMs: number }> {
  const url = loadConfig().amqpUrl;
  let closedAt: number | null = null;
  const probe = await amqp.connect(url, { clientProperties: { connection_name: 'ms2m-restart-probe' } }).catch(() => null);
  probe?.on('error', () => undefined);
  probe?.on('close', () => (closedAt ??= performance.now()));
  const stopCalledAt = performance.now();
  await rabbitmqctl('stop_app');
  if (opts.downMs) await sleep(opts.downMs);
  await rabbitmqctl('start_app');
  for (const deadline = Date.now() + 60_000; ; ) {
    const conn = await amqp.connect(url).catch((err: Error) => {
      if (Date.now() > deadline) throw new Error(`RabbitMQ did not accept AMQP connections within 60 s of start_app: ${err.message}`);
      return null;
    });
    if (conn) {
      const upAt = performance.now();
      await conn.close().catch(() => undefined);
      return { downMs: Math.round(upAt - (closedAt ?? stopCalledAt)) };
    }
    await sleep(100);
  }
}
