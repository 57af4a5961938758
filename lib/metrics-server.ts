/**
 * A worker's `/metrics` endpoint: ms2m's own metrics (./metrics) and, in a Temporal worker, the SDK's
 * runtime metrics (task latencies, slots, polls, sticky cache), on one port.
 *
 * The SDK's core exports its metrics only through its own Prometheus server, so that server listens on a
 * loopback port of its own and this endpoint appends what it serves: one scrape target per process.
 *
 * Settings: MS2M_METRICS_LISTEN, `host:port` (default 127.0.0.1:0, any free port) or `off`. When a
 * Prometheus runs beside the stack (infra/ensure-prometheus.sh), the process also writes its address into
 * that Prometheus's file-based discovery directory (MS2M_METRICS_TARGETS) and removes it when it exits.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { loadConfig } from './config';
import { parseListenAddress } from './listen-address';
import { registry } from './metrics';
import { metricsEnabled } from './temporal-runtime';

export interface MetricsEndpoint {
  /** http://host:port/metrics */
  url: string;
  close(): Promise<void>;
}

export interface MetricsOptions {
  /** What the process is: a label on every series Prometheus scrapes from it. */
  component: 'orchestrator' | 'agent' | 'cli';
  /** The node of an agent. */
  node?: string;
  /** Where the Temporal SDK serves its metrics (./temporal-runtime), appended to ours. */
  sdkMetricsUrl?: string | null;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Target files of processes that died without removing theirs (a crash, a SIGKILL in a fault test). */
function pruneTargets(dir: string): void {
  for (const f of readdirSync(dir)) {
    const pid = Number(/-(\d+)\.json(\.tmp)?$/.exec(f)?.[1]);
    if (pid && !alive(pid)) rmSync(path.join(dir, f), { force: true });
  }
}

/** The `cluster` label of a process's series: MS2M_METRICS_CLUSTER, else its MS2M_HOME's name. */
export const metricsCluster = (): string => process.env.MS2M_METRICS_CLUSTER ?? path.basename(loadConfig().home);

export async function serveMetrics(o: MetricsOptions): Promise<MetricsEndpoint | null> {
  if (!metricsEnabled()) return null;
  const setting = process.env.MS2M_METRICS_LISTEN ?? '127.0.0.1:0';
  const { host, port } = parseListenAddress(setting, 'MS2M_METRICS_LISTEN (or "off")');
  const sdkMetrics = o.sdkMetricsUrl ?? null;
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || !req.url?.startsWith('/metrics')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('ms2m serves /metrics only\n');
      return;
    }
    void (async () => {
      const own = await registry.metrics();
      // The SDK's exporter starts with its first worker; until then (or if it fails) ours are served alone.
      const sdk = sdkMetrics ? await fetch(sdkMetrics, { signal: AbortSignal.timeout(2000) }).then((r) => (r.ok ? r.text() : ''), () => '') : '';
      res.writeHead(200, { 'content-type': registry.contentType }).end(sdk ? `${own.trimEnd()}\n${sdk}` : own);
    })().catch((err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`));
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  const bound = (server.address() as AddressInfo).port;
  const hostPart = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const address = `${hostPart}:${bound}`;

  const cfg = loadConfig();
  let targetFile: string | null = null;
  if (cfg.metricsTargets) {
    mkdirSync(cfg.metricsTargets, { recursive: true });
    pruneTargets(cfg.metricsTargets);
    targetFile = path.join(cfg.metricsTargets, `${o.component}${o.node ? `-${o.node}` : ''}-${process.pid}.json`);
    // `cluster` tells apart the local clusters sharing one Prometheus (each demo run, each test's).
    const labels = { component: o.component, cluster: metricsCluster(), ...(o.node ? { node: o.node } : {}) };
    // Renamed into place: Prometheus never reads half a file.
    writeFileSync(`${targetFile}.tmp`, JSON.stringify([{ targets: [address], labels }]));
    renameSync(`${targetFile}.tmp`, targetFile);
  }
  const unregister = () => {
    if (targetFile && existsSync(targetFile)) rmSync(targetFile, { force: true });
  };
  process.once('exit', unregister);
  return {
    url: `http://${address}/metrics`,
    async close() {
      unregister();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
