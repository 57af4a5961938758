/** `ms2m demo` (`npm start`): the stack, two nodes, the example service under load, one migration, the report. */
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import { cacheDir, loadConfig } from '../../lib/config';
import type { MigrationReport, Strategy, TransferMode } from '../../lib/migration';
import { RUNTIMES, type RuntimeName } from '../../runtimes/runtime-names';
import { lazyOption, nonNegative, positive, progressPrinter, strategyOption, transferOption } from '../options';
import { formatReport, verdict } from '../report';
import type * as Stack from '../../lib/stack';
import type * as Runtimes from '../../runtimes';
import type * as Observe from '../observe';
import type * as Scenario from '../scenario';
import type { ScenarioOptions } from '../scenario';
import { WORKLOADS, type WorkloadName } from '../workloads';
import { processIo, sayFor, type Io } from './context';

export interface DemoOptions {
  strategy: Strategy;
  transfer: TransferMode;
  lazy?: boolean;
  runtime: RuntimeName;
  rate: number;
  service: WorkloadName;
  producers?: number;
  stateMb: number;
  workMs: number;
  threshold: number;
  cutoffMs: number;
  stallMs: number;
  json?: boolean;
  keep?: boolean;
  observe?: boolean;
}

export interface DemoDeps {
  run(o: DemoOptions): Promise<void>;
}

/**
 * MS2M_RUNTIME as the --runtime default, read without loading the runtimes (the registry loads both); an
 * unknown name is refused by the registry's runtimeName when the demo runs.
 */
const envRuntime = (): RuntimeName => (process.env.MS2M_RUNTIME || 'local') as RuntimeName;

export function registerDemo(program: Command, deps: DemoDeps = { run: (o) => runDemo(o) }): Command {
  return program
    .command('demo', { isDefault: false })
    .description('bring up the stack and two nodes, deploy the example game service on node-a under load, migrate it to node-b, print the report')
    .addOption(strategyOption())
    .addOption(transferOption())
    .addOption(lazyOption())
    .addOption(
      new Option('--runtime <name>', 'where the services run: local processes, or the project\'s two-node Kubernetes test cluster (built and started on first use)')
        .choices([...RUNTIMES])
        .default(envRuntime()),
    )
    .option('--rate <msgs>', 'messages per second from the load generator', positive('--rate'), 50)
    .addOption(new Option('--service <name>', 'the example service: game (per-player scores) or ledger (order-sensitive transfers)').choices([...WORKLOADS]).default('game'))
    .option('--producers <n>', 'number of producers sharing the rate (default 4 for the game, 3 for the ledger)', positive('--producers', true, '4'))
    .option('--state-mb <mb>', 'extra in-memory state of the service, in MB', nonNegative('--state-mb', '8'), 8)
    .option('--work-ms <ms>', 'CPU cost of processing one message', nonNegative('--work-ms', '2'), 0)
    .option('--threshold <msgs>', 'fence when the copy is at most this many messages behind', nonNegative('--threshold'), 10)
    .option('--cutoff-ms <ms>', 'fence after this long in replay regardless', nonNegative('--cutoff-ms', '120000'), 120_000)
    .option('--stall-ms <ms>', 'watch the lag trend this long, then fence a copy that is not converging (0: never)', nonNegative('--stall-ms', '3000'), 3_000)
    .option('--json', 'print the MigrationReport as JSON on the last line of stdout')
    .option('--keep', 'leave the service and the workers running afterwards')
    .option('--observe', 'also start a Prometheus (local runtime) that scrapes the workers, and print where the migration shows in it')
    .action((o: DemoOptions) => deps.run(o));
}

/** The demo's migration: from node-a to node-b under the demo's load. */
export function demoScenario(o: DemoOptions, say: (line: string) => void): ScenarioOptions {
  return {
    service: o.service,
    workload: o.service,
    from: 'node-a',
    to: 'node-b',
    strategy: o.strategy,
    rate: o.rate,
    producers: o.producers,
    stateBytes: o.stateMb * 1024 * 1024,
    workMs: o.workMs,
    threshold: o.threshold,
    cutoffMs: o.cutoffMs,
    stallMs: o.stallMs,
    mechanisms: { transfer: o.transfer, lazy: Boolean(o.lazy) },
    keep: o.keep,
    log: (l) => say(`[ms2m] ${l}`),
    onProgress: progressPrinter(say),
  };
}

/** The workers, the runtimes and the stack are loaded only here: the other commands start without them. */
export async function runDemo(o: DemoOptions, io: Io = processIo): Promise<void> {
  if (o.observe && o.runtime !== 'local') {
    throw new Error(`--observe: the demo's Prometheus scrapes local workers; on kubernetes, scrape the ms2m pods (their prometheus.io annotations, infra/observability/README.md), or run --runtime local`);
  }
  const { ensureStack } = require('../../lib/stack') as typeof Stack;
  const { loadRuntime, runtimeName } = require('../../runtimes') as typeof Runtimes;
  const { runScenario } = require('../scenario') as typeof Scenario;
  const { showObservation, startObserving } = require('../observe') as typeof Observe;
  const say = sayFor(io, o.json);
  const runtime = await loadRuntime(runtimeName(o.runtime));
  say(`[ms2m] bringing up the dev stack (Temporal, RabbitMQ, CRIU${o.observe ? ', Prometheus' : ''})…`);
  await ensureStack({ observe: Boolean(o.observe) });
  const observation = o.observe ? await startObserving() : null;
  const cfg = loadConfig();
  const home = path.join(cacheDir(), 'demo');
  runtime.reap(home);
  rmSync(home, { recursive: true, force: true });
  say(`[ms2m] starting the orchestrator and the node agents node-a and node-b (${runtime.name} runtime)…`);
  // The test cluster's workers outlive the demo (it stays warm): on a queue of their own, they never take a local demo's work.
  const taskQueue = runtime.name === 'kubernetes' ? `${cfg.taskQueue}-k8s` : cfg.taskQueue;
  const cluster = await runtime.startCluster({ nodes: ['node-a', 'node-b'], home, taskQueue, log: (l) => say(l) });
  let report: MigrationReport;
  try {
    ({ report } = await runScenario(cluster, demoScenario(o, say)));
    // While the workers still serve their metrics.
    if (observation) await showObservation(observation, report, say);
  } finally {
    if (!o.keep) await cluster.stop();
  }
  say(formatReport(report, cfg.temporalUi));
  const good = verdict(report);
  say(good ? '\nOK: nothing lost, nothing applied or emitted twice, states equal.' : '\nFAILED: see the report above.');
  if (o.json) io.out(JSON.stringify(report));
  if (runtime.name === 'kubernetes') {
    say(`[ms2m] the Kubernetes test cluster keeps running (warm for the next run), its ms2m on task queue ${taskQueue} (MS2M_TASK_QUEUE=${taskQueue} for the CLI); stop it with: bash infra/k8s/cluster.sh down`);
  }
  if (o.keep) say(`[ms2m] still running (--keep); stop with Ctrl-C. Web UI: ${cfg.temporalUi}`);
  else io.exit(good ? 0 : 1);
}
