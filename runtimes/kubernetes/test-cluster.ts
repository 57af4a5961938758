/**
 * The harness's handle on the project's Kubernetes test cluster (infra/k8s): it builds and starts the
 * cluster if needed, installs ms2m from its manifests (the orchestrator and the agents run as pods), and
 * waits until Temporal sees each of those pods poll its task queue. Faults are the cluster's own: a worker
 * pod deleted (its controller starts another), a node's agent kept away by a node label.
 *
 * What runs is read from the nodes' containerd (ctr), not from ms2m's agents or labels: every running
 * container of a pod whose name starts with the service's, which covers a pod a controller started on its
 * own (the test services' workloads are named after the service).
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { V1Node, V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { loadConfig } from '../../lib/config';
import type { ClusterHandle, ClusterOptions, LocalSpec, NodeInfo, Placement, ServiceSpec, WorkloadShape } from '../types';
import { deployExample, discardExample } from './example-workloads';
import { nodeTaskQueue } from '../shared/task-queues';
import { nodeInfoOf } from './cluster-activities';
import { kubeSettings } from './config';
import { kubeApi, seg, type KubeApi } from './kube-api';
import { findService } from './workloads';

const run = promisify(execFile);
const READY_MS = 180_000;
const SYSTEM = 'ms2m-system';
const AGENT_OFF = 'ms2m.io/agent';

export type InfraEnv = Record<string, string>;

/** Runs an infra/k8s script; its stdout is KEY=VALUE lines, its progress goes to stderr (ours). */
export async function infra(script: string, args: string[] = []): Promise<InfraEnv> {
  const file = path.join(loadConfig().projectRoot, 'infra', 'k8s', script);
  const child = execFile('bash', [file, ...args], { maxBuffer: 16 * 1024 * 1024 });
  child.stderr?.pipe(process.stderr);
  // The error carries the script's last messages: a test runner's summary is often all a CI log keeps.
  let messages = '';
  child.stderr?.on('data', (d: Buffer) => (messages = (messages + d.toString()).slice(-4000)));
  const out = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
    child.on('exit', (code) => {
      if (code === 0) return resolve(text);
      const last = messages.trimEnd().split('\n').slice(-30).join('\n');
      reject(new Error(`infra/k8s/${script} ${args.join(' ')} failed (exit ${code}); its last messages:\n${last}`));
    });
  });
  return Object.fromEntries(out.split('\n').flatMap((l) => (/^[A-Z_][A-Z0-9_]*=/.test(l) ? [[l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replace(/^"|"$/g, '')]] : [])));
}

export class KubeTestCluster implements ClusterHandle {
  readonly runtime = 'kubernetes' as const;
  client!: Client;
  private connection!: Connection;

  private constructor(
    readonly opts: ClusterOptions,
    readonly env: InfraEnv,
    readonly api: KubeApi,
  ) {}

  static async start(opts: ClusterOptions): Promise<KubeTestCluster> {
    const env = await infra('cluster.sh', ['up']);
    process.env.KUBECONFIG = env.KUBECONFIG;
    await infra('deploy.sh', [opts.taskQueue]);
    const cluster = new KubeTestCluster(opts, env, await kubeApi());
    const cfg = loadConfig();
    cluster.connection = await Connection.connect({ address: cfg.temporalAddress });
    cluster.client = new Client({ connection: cluster.connection, namespace: cfg.temporalNamespace });
    await Promise.all([cluster.ready('orchestrator'), ...opts.nodes.map((n) => cluster.ready(`agent-${n}`))]);
    return cluster;
  }

  /** The pod running worker `name` now (none while it is stopped). */
  private async workerPod(name: string): Promise<V1Pod | null> {
    const node = name.startsWith('agent-') ? name.slice('agent-'.length) : null;
    const component = node ? 'agent' : 'orchestrator';
    const pods = await this.api.get<{ items: V1Pod[] }>(`/api/v1/namespaces/${SYSTEM}/pods?labelSelector=${encodeURIComponent(`app.kubernetes.io/component=${component}`)}`);
    return pods.items.find((p) => !p.metadata?.deletionTimestamp && (!node || p.spec?.nodeName === node)) ?? null;
  }

  /** Waits until the worker's current pod polls its task queue (its worker identity is the pod's name). */
  private async ready(name: string): Promise<void> {
    const node = name.startsWith('agent-') ? name.slice('agent-'.length) : null;
    const queue = node ? nodeTaskQueue(this.opts.taskQueue, node) : this.opts.taskQueue;
    const type = node ? temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY : temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW;
    const until = Date.now() + READY_MS;
    while (Date.now() < until) {
      const pod = await this.workerPod(name);
      if (pod) {
        const r = await this.client.workflowService.describeTaskQueue({ namespace: this.client.options.namespace, taskQueue: { name: queue }, taskQueueType: type });
        if ((r.pollers ?? []).some((p) => p.identity === pod.metadata!.name)) {
          this.opts.log?.(`${name} ready on task queue ${queue} (pod ${SYSTEM}/${pod.metadata!.name})`);
          return;
        }
      }
      await sleep(200);
    }
    throw new Error(`${name} did not poll ${queue} within ${READY_MS / 1000} s (kubectl -n ${SYSTEM} get pods; kubectl -n ${SYSTEM} logs <pod>)`);
  }

  /**
   * What the worker's pod serves on /metrics now. Its address is the one it logged at start (on this
   * cluster the pods share the host's network, so each takes a free port, as deploy.sh configures).
   */
  async metricsOf(name: string): Promise<string> {
    const pod = await this.workerPod(name);
    if (!pod) throw new Error(`${name} has no pod`);
    const logs = await this.api.text(`/api/v1/namespaces/${SYSTEM}/pods/${seg(pod.metadata!.name!)}/log`);
    const url = logs
      .split('\n')
      .map((l) => {
        try {
          return (JSON.parse(l) as { metrics?: unknown }).metrics;
        } catch {
          return undefined; // not one of its JSON lines
        }
      })
      .filter((u): u is string => typeof u === 'string' && u.startsWith('http'))
      .pop();
    if (!url) throw new Error(`${name}'s pod ${pod.metadata!.name} logged no metrics address (is MS2M_METRICS_LISTEN "off"?)`);
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return res.text();
  }

  private async podGone(pod: V1Pod): Promise<void> {
    for (let i = 0; i < 600 && (await this.api.find(`/api/v1/namespaces/${SYSTEM}/pods/${seg(pod.metadata!.name!)}`)); i++) await sleep(100);
  }

  async stopProcess(name: string): Promise<void> {
    const pod = await this.workerPod(name);
    if (name.startsWith('agent-')) {
      await this.api.patch(`/api/v1/nodes/${seg(name.slice('agent-'.length))}`, { metadata: { labels: { [AGENT_OFF]: 'off' } } });
    } else {
      await this.api.patch(`/apis/apps/v1/namespaces/${SYSTEM}/deployments/ms2m-orchestrator`, { spec: { replicas: 0 } });
    }
    if (pod) await this.podGone(pod);
  }

  async launch(name: string): Promise<void> {
    if (name.startsWith('agent-')) {
      await this.api.patch(`/api/v1/nodes/${seg(name.slice('agent-'.length))}`, { metadata: { labels: { [AGENT_OFF]: null } } });
    } else {
      await this.api.patch(`/apis/apps/v1/namespaces/${SYSTEM}/deployments/ms2m-orchestrator`, { spec: { replicas: 1 } });
    }
    await this.ready(name);
  }

  /** Deletes the worker's pod at once (no grace), as a crash would end it; its controller starts another. */
  async crashAndRestart(name: string): Promise<void> {
    const pod = await this.workerPod(name);
    if (!pod) throw new Error(`${name} has no pod to crash`);
    await this.api.remove(`/api/v1/namespaces/${SYSTEM}/pods/${seg(pod.metadata!.name!)}`, { gracePeriodSeconds: 0 });
    await this.podGone(pod);
    await this.ready(name);
  }

  /** Running containers per node, from containerd: pod name, container name, container id. */
  private async containers(node: string): Promise<Array<{ pod: string; namespace: string; container: string; id: string }>> {
    const ctr = (...args: string[]) => run(this.env.CTR, ['-a', path.join(this.env.RUN, node, 'sock', 'containerd.sock'), '-n', 'k8s.io', ...args]).then((r) => r.stdout);
    const running = (await ctr('tasks', 'ls')).split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f[2] === 'RUNNING').map((f) => f[0]);
    const out = [];
    for (const id of running) {
      const info = JSON.parse(await ctr('containers', 'info', id)) as { Labels?: Record<string, string> };
      const l = info.Labels ?? {};
      if (l['io.cri-containerd.kind'] !== 'container') continue;
      out.push({ pod: l['io.kubernetes.pod.name'], namespace: l['io.kubernetes.pod.namespace'], container: l['io.kubernetes.container.name'], id });
    }
    return out;
  }

  async liveInstances(service: string): Promise<Array<{ instanceId: string; node: string }>> {
    const out: Array<{ instanceId: string; node: string }> = [];
    const namespaces = kubeSettings().namespaces;
    for (const node of this.opts.nodes) {
      for (const c of await this.containers(node)) if (namespaces.includes(c.namespace) && c.pod.startsWith(`${service}-`) && !out.some((o) => o.instanceId === c.pod)) out.push({ instanceId: c.pod, node });
    }
    return out;
  }

  async signalInstance(instanceId: string, signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    for (const node of this.opts.nodes) {
      for (const c of await this.containers(node)) {
        if (c.pod !== instanceId) continue;
        const sock = path.join(this.env.RUN, node, 'sock', 'containerd.sock');
        // SIGSTOP/SIGCONT freeze a container the way a stalled process would; ctr pauses through the freezer.
        const args = signal === 'SIGSTOP' ? ['tasks', 'pause', c.id] : signal === 'SIGCONT' ? ['tasks', 'resume', c.id] : ['tasks', 'kill', '-s', signal, c.id];
        execFileSync(this.env.CTR, ['-a', sock, '-n', 'k8s.io', ...args]);
        return;
      }
    }
    throw new Error(`instance ${instanceId}: no running container of that pod on ${this.opts.nodes.join(', ')}`);
  }

  placement(service: string): Promise<Placement | null> {
    return findService(this.api, kubeSettings().namespaces, service);
  }

  get example() {
    return { api: this.api, image: this.env.IMAGE_MS2M, criuConfig: this.env.CRIU_CONFIG, amqpUrl: readFileSync(this.env.AMQP_URL_FILE, 'utf8').trim() };
  }

  workloadSpec(service: string, spec: LocalSpec, node: string, shape: WorkloadShape = {}): Promise<ServiceSpec> {
    return deployExample(service, spec, node, this.example, shape);
  }

  discardWorkload(service: string): Promise<void> {
    return discardExample(this.api, service);
  }

  async node(node: string): Promise<NodeInfo | null> {
    const n = await this.api.find<V1Node>(`/api/v1/nodes/${seg(node)}`);
    return n ? nodeInfoOf(n, this.opts.taskQueue) : null;
  }

  async stop(): Promise<void> {
    await this.connection?.close().catch(() => undefined);
  }
}
