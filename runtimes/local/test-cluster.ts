/**
 * A local ms2m cluster on this host: the orchestrator worker and one node agent per node, each its own
 * process (as they would be on separate machines), sharing one MS2M_HOME. Used by the demo, the tests,
 * the benchmark and the chaos command, through the port's ClusterHandle.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { loadConfig } from '../../lib/config';
import type { ClusterHandle, ClusterOptions, LocalSpec, NodeInfo, Placement, ServiceSpec } from '../types';
import { normalizePlacement } from '../placement';
import { ClusterStore, nodeInfo } from './cluster-store';
import { InstanceRegistry, type StoredInstance } from './instance-registry';
import { releaseImagesDir } from './images-dir';
import { nodeTaskQueue } from '../shared/task-queues';

const READY_MS = 60_000;

export class LocalCluster implements ClusterHandle {
  readonly runtime = 'local' as const;
  private readonly children = new Map<string, ChildProcess>();
  client!: Client;
  private connection!: Connection;
  private readonly store: ClusterStore;

  private constructor(readonly opts: ClusterOptions) {
    this.store = new ClusterStore(opts.home);
  }

  static async start(opts: ClusterOptions): Promise<LocalCluster> {
    mkdirSync(opts.home, { recursive: true });
    const cluster = new LocalCluster(opts);
    const cfg = loadConfig();
    cluster.connection = await Connection.connect({ address: cfg.temporalAddress });
    cluster.client = new Client({ connection: cluster.connection, namespace: cfg.temporalNamespace });
    try {
      await Promise.all([cluster.launch('orchestrator'), ...opts.nodes.map((n) => cluster.launch(`agent-${n}`))]);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /**
   * Starts a worker process ("orchestrator" or "agent-<node>") and waits until Temporal sees it poll its
   * task queue (its identity is its pid on this host): ready means taking work, whatever it prints.
   */
  async launch(name: string): Promise<void> {
    const node = name.startsWith('agent-') ? name.slice('agent-'.length) : null;
    const script = path.join(loadConfig().projectRoot, 'dist', 'workers', node ? 'node-agent.js' : 'orchestrator.js');
    const env = { ...process.env, MS2M_RUNTIME: 'local', MS2M_HOME: this.opts.home, MS2M_TASK_QUEUE: this.opts.taskQueue, ...(node ? (this.opts.nodeEnv?.[node] ?? {}) : {}) };
    const logFile = path.join(this.opts.home, `${name}.log`);
    const child = spawn(process.execPath, [script, ...(node ? ['--node', node] : [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.set(name, child);
    const sink = createWriteStream(logFile, { flags: 'a' });
    let errText = '';
    child.stdout!.pipe(sink, { end: false });
    child.stderr!.on('data', (d: Buffer) => {
      sink.write(d);
      errText = (errText + d.toString()).slice(-4000);
    });
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => {
        sink.end();
        reject(new Error(`${name} exited with ${code ?? signal} before it was ready: ${errText.trim().split('\n').slice(-5).join('\n')} (log: ${logFile})`));
      }),
    );
    exited.catch(() => undefined);
    const queue = node ? nodeTaskQueue(this.opts.taskQueue, node) : this.opts.taskQueue;
    const type = node ? temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY : temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW;
    await Promise.race([exited, this.polled(queue, type, `${child.pid}@${os.hostname()}`, name)]);
    this.opts.log?.(`${name} ready on task queue ${queue} (pid ${child.pid})`);
  }

  private async polled(queue: string, type: temporal.api.enums.v1.TaskQueueType, identity: string, name: string): Promise<void> {
    const until = Date.now() + READY_MS;
    while (Date.now() < until) {
      const r = await this.client.workflowService.describeTaskQueue({ namespace: this.client.options.namespace, taskQueue: { name: queue }, taskQueueType: type });
      if ((r.pollers ?? []).some((p) => p.identity === identity)) return;
      await sleep(50);
    }
    throw new Error(`${name} did not poll ${queue} within ${READY_MS / 1000} s (log: ${path.join(this.opts.home, `${name}.log`)})`);
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

  async crashAndRestart(name: string): Promise<void> {
    await this.stopProcess(name, 'SIGKILL');
    await this.launch(name);
  }

  /** From the agents' registries checked against /proc: a process check, independent of the agents and the broker. */
  async liveInstances(service: string): Promise<Array<{ instanceId: string; node: string }>> {
    return allInstances(this.opts.home)
      .filter((r) => r.service === service && r.alive)
      .map((r) => ({ instanceId: r.instanceId, node: r.node }));
  }

  /** The pid of a live instance (the harness's own fault injection, e.g. a cgroup). */
  instancePid(instanceId: string): number {
    const rec = allInstances(this.opts.home).find((r) => r.instanceId === instanceId && r.alive);
    if (!rec) throw new Error(`instance ${instanceId} is not alive on any node of ${this.opts.home}`);
    return rec.pid;
  }

  async signalInstance(instanceId: string, signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    process.kill(this.instancePid(instanceId), signal);
  }

  async placement(service: string): Promise<Placement | null> {
    return normalizePlacement(this.store.placement<Placement>(service));
  }

  async workloadSpec(_service: string, spec: LocalSpec): Promise<ServiceSpec> {
    return spec;
  }

  async discardWorkload(): Promise<void> {
    // An undeploy ended the process; nothing else was made for it.
  }

  async node(node: string): Promise<NodeInfo | null> {
    const n = this.store.node(node);
    return n ? nodeInfo(n) : null;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.children.keys()].map((n) => this.stopProcess(n)));
    await this.connection?.close().catch(() => undefined);
  }
}

function allInstances(home: string): Array<StoredInstance & { alive: boolean }> {
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
  // Images in memory (images-dir.ts) would outlive the home's files.
  const nodes = path.join(home, 'nodes');
  for (const n of existsSync(nodes) ? readdirSync(nodes) : []) releaseImagesDir(path.join(nodes, n));
  for (const rec of allInstances(home)) {
    if (!rec.alive) continue;
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
