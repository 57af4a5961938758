/**
 * One measured migration of the example game service under load: deploy on a node, produce at a rate,
 * migrate, keep producing, then account for every message from the producers' and the output logs.
 * The demo, the end-to-end tests and the benchmark all run this.
 */
import * as path from 'node:path';
import * as amqp from 'amqplib';
import type { WorkflowHandle } from '@temporalio/client';
import { MigrationHandle } from '../sdk';
import { ClusterStore } from '../runtime/cluster-store';
import { applyGameEvent, eventFor, gameTopology, initialGameState, scoreboard } from '../examples/game/game';
import { LoadGenerator } from '../examples/loadgen';
import { loadConfig } from '../lib/config';
import type { MigrationProgress, MigrationReport, ServiceSpec, Strategy, Verification } from '../lib/migration';
import { OutputCollector } from '../lib/output-log';
import { verify } from '../lib/verify';
import { ControlClient } from '../service/control-client';
import { canonicalJson } from '../service/protocol';
import type { Published } from '../service/producer';
import type { Placement } from '../activities/types';
import type { LocalCluster } from './local-cluster';

export interface ScenarioOptions {
  service: string;
  from: string;
  to: string;
  strategy: Strategy;
  rate: number;
  producers?: number;
  stateBytes?: number;
  workMs?: number;
  threshold?: number;
  cutoffMs?: number;
  stallMs?: number;
  warmupMs?: number;
  settleMs?: number;
  keep?: boolean;
  onProgress?: (p: MigrationProgress) => void;
  /** Runs once the service is deployed and before the load starts. */
  afterDeploy?: (placement: Placement) => Promise<void>;
  /** Runs alongside the migration from its start (fault injection); the result waits for it. */
  duringMigration?: (handle: WorkflowHandle) => Promise<void>;
  /** Extra fields of the migration input (e.g. timeouts). */
  input?: Record<string, unknown>;
  log?: (line: string) => void;
}

export interface ScenarioResult {
  report: MigrationReport;
  /** The workflow ended cancelled (its report then comes from the `report` query). */
  cancelled: boolean;
  /** The instance the cluster's placement names at the end. */
  placed: string;
  /** Instances of the service alive at the end on any node. */
  live: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The order-independent state the final instance must hold if every published message was applied once. */
export function expectedScoreboard(published: Published[], producerPrefix: string, players: number) {
  const state = initialGameState(0);
  for (const p of published) {
    const index = Number(p.producer.slice(producerPrefix.length + 2)) - 1;
    applyGameEvent(state, eventFor(index, p.seq, players), p.producer);
  }
  return scoreboard(state);
}

/** The deploy spec of the example game service (built in dist/). */
export function gameSpec(service: string, stateBytes = 0, workMs = 0): ServiceSpec {
  const cfg = loadConfig();
  return {
    command: [process.execPath, path.join(cfg.projectRoot, 'dist', 'examples', 'game', 'service.js')],
    env: { MS2M_SERVICE: service, MS2M_AMQP_URL: cfg.amqpUrl, MS2M_GAME_STATE_BYTES: String(stateBytes), MS2M_GAME_WORK_MS: String(workMs) },
    primaryQueue: gameTopology(service).queue,
  };
}

/** Deploys the example game service on a node and waits until it serves. */
export async function deployGame(cluster: LocalCluster, service: string, node: string, stateBytes: number, workMs: number): Promise<Placement> {
  return (await cluster.client.workflow.execute('deployService', {
    taskQueue: cluster.opts.taskQueue,
    workflowId: `deploy-${service}-${Date.now()}`,
    args: [{ service, node, spec: gameSpec(service, stateBytes, workMs) }],
  })) as Placement;
}

export async function undeploy(cluster: LocalCluster, service: string): Promise<void> {
  await cluster.client.workflow.execute('undeployService', { taskQueue: cluster.opts.taskQueue, workflowId: `undeploy-${service}-${Date.now()}`, args: [{ service }] });
}

/** Waits until every published message has an output, giving up only when outputs stop arriving. */
export async function drained(collector: OutputCollector, published: Published[], stallMs = 15_000): Promise<void> {
  const keys = new Set(published.map((p) => `${p.producer}#${p.seq}`));
  let seen = -1;
  let progressAt = Date.now();
  for (;;) {
    const done = new Set(collector.outputs.filter((x) => keys.has(`${x.producer}#${x.seq}`)).map((x) => `${x.producer}#${x.seq}`)).size;
    if (done >= keys.size) return;
    if (done > seen) {
      seen = done;
      progressAt = Date.now();
    } else if (Date.now() - progressAt > stallMs) {
      return;
    }
    await sleep(200);
  }
}

async function resetQueues(amqpUrl: string, queues: string[]): Promise<void> {
  const conn = await amqp.connect(amqpUrl);
  try {
    const ch = await conn.createChannel();
    for (const q of queues) await ch.deleteQueue(q);
  } finally {
    await conn.close();
  }
}

/**
 * Load on one game service and the accounting of it: the producers' confirmed log against the output log
 * and the final state of whichever instance the cluster places at the end.
 */
export class GameLoad {
  private readonly players = 200;
  private readonly producerPrefix: string;
  private readonly collector: OutputCollector;
  private readonly load: LoadGenerator;

  constructor(
    private readonly cluster: LocalCluster,
    readonly service: string,
    rate: number,
    producers = 4,
  ) {
    const cfg = loadConfig();
    const topo = gameTopology(service);
    this.producerPrefix = `${service}-${Date.now().toString(36)}`;
    this.collector = new OutputCollector(cfg.amqpUrl, topo.outputExchange);
    this.load = new LoadGenerator({ amqpUrl: cfg.amqpUrl, exchange: topo.exchange, rate, producers, players: this.players, producerPrefix: this.producerPrefix });
  }

  /** Before deploying: a clean primary queue (messages of an earlier run belong to nobody's log) and the output log. */
  async prepare(): Promise<void> {
    await resetQueues(loadConfig().amqpUrl, [gameTopology(this.service).queue]);
    await this.collector.start();
  }

  start(): Promise<void> {
    return this.load.start();
  }

  /** Stops the load, waits for the serving instance to drain it, and accounts for every message. */
  async finish(span: { from: number; to: number }): Promise<{ verification: Verification; placed: string }> {
    await this.load.stop();
    const published = this.load.published;
    // Let the serving instance drain what is still queued before counting (a backlog above capacity takes a while).
    await drained(this.collector, published);
    await sleep(300);
    const placed = new ClusterStore(this.cluster.opts.home).placement<Placement>(this.service)?.instanceId ?? '';
    // Connected only now: a broker restarted meanwhile would have closed an earlier connection.
    const control = await ControlClient.connect(loadConfig().amqpUrl, 'ms2m-scenario');
    const final = await control.command(placed, { kind: 'status', digest: false }).finally(() => control.close());
    const board = final.app.scoreboard as ReturnType<typeof scoreboard>;
    const verification = verify({
      published,
      outputs: this.collector.outputs,
      ...span,
      appliedByProducer: Object.fromEntries(Object.entries(board.appliedByProducer).filter(([p]) => p.startsWith(this.producerPrefix))),
      finalStateMatchesProducers: canonicalJson(expectedScoreboard(published, this.producerPrefix, this.players)) === canonicalJson(board),
    });
    return { verification, placed };
  }

  async close(): Promise<void> {
    await this.load.stop().catch(() => undefined);
    await this.collector.stop();
  }
}

export async function runScenario(cluster: LocalCluster, o: ScenarioOptions): Promise<ScenarioResult> {
  const log = o.log ?? (() => undefined);
  const taskQueue = cluster.opts.taskQueue;
  const client = cluster.client;
  const load = new GameLoad(cluster, o.service, o.rate, o.producers);
  await load.prepare();
  try {
    log(`deploying ${o.service} on ${o.from}`);
    const placement = await deployGame(cluster, o.service, o.from, o.stateBytes ?? 0, o.workMs ?? 0);
    log(`${placement.instanceId} serving on ${placement.node}; load ${o.rate} msg/s`);
    await o.afterDeploy?.(placement);
    await load.start();
    await sleep(o.warmupMs ?? 3000);

    const from = Date.now();
    const handle = await client.workflow.start('migrateService', {
      taskQueue,
      workflowId: `migrate-${o.service}`,
      args: [
        {
          service: o.service,
          targetNode: o.to,
          strategy: o.strategy,
          replay: { threshold: o.threshold ?? 10, cutoffMs: o.cutoffMs ?? 120_000, ...(o.stallMs !== undefined ? { stallMs: o.stallMs } : {}) },
          ...o.input,
        },
      ],
    });
    log(`migration started: workflow ${handle.workflowId}`);
    const fault = o.duringMigration?.(handle);
    let report: MigrationReport;
    try {
      report = await new MigrationHandle(handle).result({ onProgress: o.onProgress, pollMs: 150 });
    } finally {
      await fault;
    }
    // A cancelled migration ends Canceled, its report naming the cancellation as the failure.
    const cancelled = report.failure?.type === 'CancelledFailure';
    const to = Date.now();

    await sleep(o.settleMs ?? 2000);
    const { verification, placed } = await load.finish({ from, to });
    report.verification = verification;
    return { report, cancelled, placed, live: cluster.liveInstances(o.service).map((i) => i.instanceId) };
  } finally {
    await load.close();
    if (!o.keep) await undeploy(cluster, o.service).catch((err) => log(`undeploy failed: ${(err as Error).message}`));
  }
}
