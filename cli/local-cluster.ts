/**
 * A local ms2m cluster on this host: the orchestrator worker and one node agent per node, each its own
 * process (as they would be on separate machines), sharing one MS2M_HOME. Used by the demo, the tests and
 * the benchmark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { InstanceRegistry } from '../activities/local/instance-registry';
import type { InstanceRecord } from '../activities/types';
import { loadConfig } from '../lib/config';

export interface ClusterOptions {
  nodes: string[];
  home: string;
  taskQueue: string;
  /** Extra environment per node agent, e.g. a different CRIU to inject a fault. */
  nodeEnv?: Record<string, Record<string, string>>;
  log?: (line: string) => void;
}

export class LocalCluster {
  private readonly children = new Map<string, ChildProcess>();
  client!: Client;
  private connection!: Connection;

  private constructor(readonly opts: ClusterOptions) {}

  static async start(opts: ClusterOptions): Promise<LocalCluster> {
    mkdirSync(opts.home, { recursive: true });
    const cluster = new LocalCluster(opts);
    try {
      await Promise.all([cluster.launch('orchestrator'), ...opts.nodes.map((n) => cluster.launch(`agent-${n}`))]);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    const cfg = loadConfig();
    cluster.connection = await Connection.connect({ address: cfg.temporalAddress });
    cluster.client = new Client({ connection: cluster.connection, namespace: cfg.temporalNamespace });
    return cluster;
  }

  /** Starts a worker process ("orchestrator" or "agent-<node>") and waits until it says it is ready. */
  launch(name: string): Promise<void> {
    const node = name.startsWith('agent-') ? name.slice('agent-'.length) : null;
    const script = path.join(loadConfig().projectRoot, 'dist', 'workers', node ? 'node-agent.js' : 'orchestrator.js');
    const env = { ...process.env, MS2M_HOME: this.opts.home, MS2M_TASK_QUEUE: this.opts.taskQueue, ...(node ? (this.opts.nodeEnv?.[node] ?? {}) : {}) };
    const logFile = path.join(this.opts.home, `${name}.log`);
    return new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [script, ...(node ? ['--node', node] : [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      this.children.set(name, child);
      const sink = createWriteStream(logFile, { flags: 'a' });
      let ready = false;
      let errText = '';
      child.stdout!.on('data', (d: Buffer) => {
        sink.write(d);
        if (!ready && d.toString().includes(' ready ')) {
          ready = true;
          this.opts.log?.(d.toString().trim());
          resolve();
        }
      });
      child.stderr!.on('data', (d: Buffer) => {
        sink.write(d);
        errText += d.toString();
      });
      child.on('exit', (code) => {
        sink.end();
        if (!ready) reject(new Error(`${name} exited with ${code} before it was ready: ${errText.trim().split('\n').slice(-5).join('\n')} (log: ${logFile})`));
      });
    });
  }

  /** Stops one process (e.g. a node agent, to show that instances survive it) and waits for it to exit. */
  async stopProcess(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.children.get(name);
    this.children.delete(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill(signal);
    });
  }

  /** Kills a worker process outright and starts it again, as a crash and a supervisor's restart would. */
  async crashAndRestart(name: string): Promise<void> {
    await this.stopProcess(name, 'SIGKILL');
    await this.launch(name);
  }

  /** Live instances of a service on every node, from the agents' registries (a process check, not a broker one). */
  liveInstances(service: string): InstanceRecord[] {
    return allInstances(this.opts.home).filter((r) => r.service === service && r.alive);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.children.keys()].map((n) => this.stopProcess(n)));
    await this.connection?.close().catch(() => undefined);
  }
}

function allInstances(home: string): Array<InstanceRecord & { alive: boolean }> {
  const nodesDir = path.join(home, 'nodes');
  if (!existsSync(nodesDir)) return [];
  return readdirSync(nodesDir).flatMap((node) => {
    const registry = new InstanceRegistry(path.join(nodesDir, node));
    return registry.all().map((r) => ({ ...r, alive: registry.alive(r) }));
  });
}

/**
 * Stops service instances left behind by an earlier run under `home` (a crashed demo leaves detached
 * processes that would keep consuming).
 */
export function reapInstances(home: string): void {
  for (const rec of allInstances(home)) {
    if (!rec.alive) continue;
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
