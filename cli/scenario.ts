/**
 * One measured migration of an example service (cli/workloads.ts) under load: deploy on a node, produce at a rate,
 * migrate, keep producing, then account for every message from the producers' and the output logs.
 * The demo, the end-to-end tests and the benchmark all run this.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as amqp from 'amqplib';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MigrationHandle } from '../sdk';
import { recordVerification } from '../lib/metrics';
import { LoadGenerator } from '../examples/loadgen';
import { loadConfig } from '../lib/config';
import { NAME_KEEPING, type Mechanisms, type MigrationProgress, type MigrationReport, type Strategy, type Verification } from '../lib/migration';
import { OutputCollector } from '../lib/output-log';
import { verify } from '../lib/verify';
import { ControlClient } from '../service/control-client';
import type { Published } from '../service/producer';
import type { ClusterHandle, Placement, WorkloadKind, WorkloadShape } from '../runtimes/types';
import { workload, type Workload, type WorkloadName } from './workloads';
import { FAILURE, type Workflows } from '../lib/contracts';

export interface ScenarioOptions {
  service: string;
  /** Which example service to migrate (default `game`). */
  workload?: WorkloadName;
  /** Its workload kind where the runtime has kinds (default: a StatefulSet for sequential and shadow-swap, else a Deployment). */
  kind?: WorkloadKind;
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
  /** How the image moves (the migration input's `mechanisms`; default files, not lazy). */
  mechanisms?: Partial<Mechanisms>;
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


/** Deploys an example service on a node and waits until it serves. */
export async function deployWorkload(
  cluster: ClusterHandle,
  name: WorkloadName,
  service: string,
  node: string,
  o: { stateBytes?: number; workMs?: number } & WorkloadShape = {},
): Promise<Placement> {
  const w = workload(name);
  w.reset(service, cluster.opts.home);
  return (await cluster.client.workflow.execute('deployService', {
    taskQueue: cluster.opts.taskQueue,
    workflowId: `deploy-${service}-${Date.now()}`,
    args: [{ service, node, spec: await cluster.workloadSpec(service, w.spec(service, { home: cluster.opts.home, stateBytes: o.stateBytes ?? 0, workMs: o.workMs ?? 0 }), node, { kind: o.kind, migrateOnEviction: o.migrateOnEviction }) }],
  })) as Placement;
}

export async function undeploy(cluster: ClusterHandle, service: string): Promise<void> {
  try {
    await cluster.client.workflow.execute('undeployService', { taskQueue: cluster.opts.taskQueue, workflowId: `undeploy-${service}-${Date.now()}`, args: [{ service }] });
  } finally {
    await cluster.discardWorkload(service);
  }
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
 * Load on one example service and the accounting of it: the producers' confirmed log against the output
 * log and the final state of whichever instance the cluster places at the end.
 */
export class ServiceLoad {
  readonly producerPrefix: string;
  readonly workload: Workload;
  private readonly collector: OutputCollector;
  private readonly load: LoadGenerator;

  constructor(
    private readonly cluster: ClusterHandle,
    readonly service: string,
    rate: number,
    producers?: number,
    name: WorkloadName = 'game',
  ) {
    const cfg = loadConfig();
    this.workload = workload(name);
    const topo = this.workload.topology(service);
    const n = producers ?? (name === 'ledger' ? 3 : 4);
    this.producerPrefix = `${service}-${Date.now().toString(36)}`;
    this.collector = new OutputCollector(cfg.amqpUrl, topo.outputExchange);
    this.load = new LoadGenerator({
      amqpUrl: cfg.amqpUrl,
      exchange: topo.exchange,
      rate,
      producers: n,
      message: (i, seq) => this.workload.message(i, seq),
      weights: this.workload.weights(n),
      producerPrefix: this.producerPrefix,
    });
  }

  /** Before deploying: a clean primary queue (messages of an earlier run belong to nobody's log) and the output log. */
  async prepare(): Promise<void> {
    await resetQueues(loadConfig().amqpUrl, [this.workload.topology(this.service).queue]);
    await this.collector.start();
  }

  start(): Promise<void> {
    return this.load.start();
  }

  /**
   * Stops the load, waits for the serving instance to drain it, and accounts for every message. `killed`
   * names instances killed outright during the run, whose last applications the oracle may not find again.
   */
  async finish(span: { from: number; to: number }, killed: string[] = []): Promise<{ verification: Verification; placed: string }> {
    await this.load.stop();
    const published = this.load.published;
    // Let the serving instance drain what is still queued before counting (a backlog above capacity takes a while).
    await drained(this.collector, published);
    await sleep(300);
    const placed = (await this.cluster.placement(this.service))?.instanceId ?? '';
    // Connected only now: a broker restarted meanwhile would have closed an earlier connection.
    const control = await ControlClient.connect(loadConfig().amqpUrl, 'ms2m-scenario');
    const final = await control
      .command(placed, { kind: 'status', digest: false })
      .catch(() => null)
      .finally(() => control.close());
    // Nothing serves (a failed post-condition): every message after the failure counts as lost, and no state matches.
    const judged = final
      ? this.workload.judge({ service: this.service, home: this.cluster.opts.home, producerPrefix: this.producerPrefix, published, outputs: this.collector.outputs, final, killed })
      : { appliedByProducer: {}, finalStateMatchesProducers: false };
    const verification = verify({
      published,
      outputs: this.collector.outputs,
      ...span,
      appliedByProducer: judged.appliedByProducer,
      finalStateMatchesProducers: judged.finalStateMatchesProducers,
    });
    if ('order' in judged && judged.order) verification.order = judged.order;
    return { verification, placed };
  }

  async close(): Promise<void> {
    await this.load.stop().catch(() => undefined);
    await this.collector.stop();
  }
}

export async function runScenario(cluster: ClusterHandle, o: ScenarioOptions): Promise<ScenarioResult> {
  const log = o.log ?? (() => undefined);
  const taskQueue = cluster.opts.taskQueue;
  const client = cluster.client;
  const load = new ServiceLoad(cluster, o.service, o.rate, o.producers, o.workload);
  await load.prepare();
  try {
    log(`deploying ${o.service} on ${o.from}`);
    const kind = o.kind ?? (NAME_KEEPING.includes(o.strategy) ? 'StatefulSet' : undefined);
    const placement = await deployWorkload(cluster, o.workload ?? 'game', o.service, o.from, { stateBytes: o.stateBytes, workMs: o.workMs, kind });
    log(`${placement.instanceId} serving on ${placement.node}; load ${o.rate} msg/s`);
    await o.afterDeploy?.(placement);
    await load.start();
    await sleep(o.warmupMs ?? 3000);

    const from = Date.now();
    const handle = await client.workflow.start<Workflows['migrateService']>('migrateService', {
      taskQueue,
      workflowId: `migrate-${o.service}`,
      args: [
        {
          service: o.service,
          targetNode: o.to,
          strategy: o.strategy,
          replay: { threshold: o.threshold ?? 10, cutoffMs: o.cutoffMs ?? 120_000, ...(o.stallMs !== undefined ? { stallMs: o.stallMs } : {}) },
          ...(o.mechanisms ? { mechanisms: o.mechanisms } : {}),
          ...o.input,
        },
      ],
    });
    log(`migration started: workflow ${handle.workflowId}`);
    const fault = o.duringMigration?.(handle);
    let report: MigrationReport;
    try {
      report = await new MigrationHandle(handle).result({ onProgress: o.onProgress, pollMs: 150 }).catch((err: unknown) => {
        // The post-condition failed (no instance, or more than one, serves): the report says so for the verdict.
        const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
        if (cause instanceof ApplicationFailure && cause.type === FAILURE.ServiceNotServing && cause.details?.[0]) return cause.details[0] as MigrationReport;
        throw err;
      });
    } finally {
      await fault;
    }
    // A cancelled migration ends Canceled, its report naming the cancellation as the failure.
    const cancelled = report.failure?.type === 'CancelledFailure';
    const to = Date.now();

    await sleep(o.settleMs ?? 2000);
    // A source lost mid-migration was killed outright: its last applications may be nobody else's.
    const { verification, placed } = await load.finish({ from, to }, report.sourceLost ? [report.sourceInstance] : []);
    report.verification = verification;
    recordVerification(verification);
    return { report, cancelled, placed, live: (await cluster.liveInstances(o.service)).map((i) => i.instanceId) };
  } finally {
    await load.close();
    if (!o.keep) await undeploy(cluster, o.service).catch((err) => log(`undeploy failed: ${(err as Error).message}`));
  }
}
