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
  private constructor(
    readonly client: Client,
    private readonly connection: Connection,
    private readonly children: Map<string, ChildProcess>,
    readonly opts: ClusterOptions,
  ) {}

  static async start(opts: ClusterOptions): Promise<LocalCluster> {
    mkdirSync(opts.home, { recursive: true });
    const root = loadConfig().projectRoot;
    const baseEnv = { ...process.env, MS2M_HOME: opts.home, MS2M_TASK_QUEUE: opts.taskQueue };
    const children = new Map<string, ChildProcess>();
    const launch = (name: string, script: string, args: string[], env: NodeJS.ProcessEnv) =>
      new Promise<void>((resolve, reject) => {
        const logFile = path.join(opts.home, `${name}.log`);
        const child = spawn(process.execPath, [path.join(root, 'dist', 'workers', script), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        children.set(name, child);
        let ready = false;
        let errText = '';
        const sink = createWriteStream(logFile, { flags: 'a' });
        child.stdout!.on('data', (d: Buffer) => {
          sink.write(d);
          if (!ready && d.toString().includes(' ready ')) {
            ready = true;
            opts.log?.(d.toString().trim());
            resolve();
          }
        });
        child.stderr!.on('data', (d: Buffer) => {
          sink.write(d);
          errText += d.toString();
        });
        child.on('exit', (code) => {
          if (!ready) reject(new Error(`${name} exited with ${code} before it was ready: ${errText.trim().split('\n').slice(-5).join('\n')} (log: ${logFile})`));
        });
      });
    try {
      await Promise.all([
        launch('orchestrator', 'orchestrator.js', [], baseEnv),
        ...opts.nodes.map((n) => launch(`agent-${n}`, 'node-agent.js', ['--node', n], { ...baseEnv, ...(opts.nodeEnv?.[n] ?? {}) })),
      ]);
    } catch (err) {
      for (const c of children.values()) c.kill('SIGTERM');
      throw err;
    }
    const cfg = loadConfig();
    const connection = await Connection.connect({ address: cfg.temporalAddress });
    const client = new Client({ connection, namespace: cfg.temporalNamespace });
    return new LocalCluster(client, connection, children, opts);
  }

  /** Stops one process (e.g. a node agent, to show that instances survive it) and waits for it to exit. */
  async stopProcess(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.children.get(name);
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill(signal);
    });
    this.children.delete(name);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.children.keys()].map((n) => this.stopProcess(n)));
    await this.connection.close().catch(() => undefined);
  }
}

/**
 * Stops service instances left behind by an earlier run under `home` (a crashed demo leaves detached
 * processes that would keep consuming).
 */
export function reapInstances(home: string): void {
  const nodesDir = path.join(home, 'nodes');
  if (!existsSync(nodesDir)) return;
  for (const node of readdirSync(nodesDir)) {
    const registry = new InstanceRegistry(path.join(nodesDir, node));
    for (const rec of registry.all()) {
      if (registry.alive(rec)) {
        try {
          process.kill(rec.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
  }
}
