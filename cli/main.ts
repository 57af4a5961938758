#!/usr/bin/env node
/**
 * ms2m command line: the demo (`npm start`), the dev stack, the workers, and migrations.
 */
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Client, Connection } from '@temporalio/client';
import { loadConfig, cacheDir } from '../lib/config';
import { MigrateInputSchema, STRATEGIES, describeInputError, type MigrationProgress, type MigrationReport, type Strategy } from '../lib/migration';
import { gameTopology } from '../examples/game/game';
import { LoadGenerator } from '../examples/loadgen';
import { ensureStack } from '../lib/stack';
import { runNodeAgent } from '../workers/node-agent';
import { runOrchestrator } from '../workers/orchestrator';
import { LocalCluster, reapInstances } from './local-cluster';
import { formatReport, verdict } from './report';
import { runScenario } from './scenario';
import { FAULTS } from '../chaos/faults';
import { runChaos } from '../chaos/run';

function positive(name: string, integer = false) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${name} must be a positive ${integer ? 'integer' : 'number'}, e.g. 50`);
    }
    return n;
  };
}
function nonNegative(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0`);
    return n;
  };
}
const strategyOption = () => new Option('--strategy <name>', 'migration strategy').choices([...STRATEGIES]).default('shadow');

/** Prints a line per stage change, and the lag while replaying. */
function progressPrinter(write: (line: string) => void) {
  let last = '';
  return (p: MigrationProgress) => {
    const line = `${p.stage}${p.stage === 'replay' && p.lag !== null ? ` (lag ${p.lag})` : ''}`;
    if (line !== last) write(`  [${(p.elapsedMs / 1000).toFixed(2).padStart(6)} s] ${line}`);
    last = line;
  };
}

const program = new Command('ms2m').description('Live migration of stateful RabbitMQ consumers with CRIU, orchestrated by Temporal').showHelpAfterError();

program
  .command('demo', { isDefault: false })
  .description('bring up the stack and two nodes, deploy the example game service on node-a under load, migrate it to node-b, print the report')
  .addOption(strategyOption())
  .option('--rate <msgs>', 'messages per second from the load generator', positive('--rate'), 50)
  .option('--producers <n>', 'number of producers sharing the rate', positive('--producers', true), 4)
  .option('--state-mb <mb>', 'extra in-memory state of the service, in MB', nonNegative('--state-mb'), 8)
  .option('--work-ms <ms>', 'CPU cost of processing one message', nonNegative('--work-ms'), 0)
  .option('--threshold <msgs>', 'fence when the copy is at most this many messages behind', nonNegative('--threshold'), 10)
  .option('--cutoff-ms <ms>', 'fence after this long in replay regardless', nonNegative('--cutoff-ms'), 120_000)
  .option('--stall-ms <ms>', 'watch the lag trend this long, then fence a copy that is not converging (0: never)', nonNegative('--stall-ms'), 3_000)
  .option('--json', 'print the MigrationReport as JSON on the last line of stdout')
  .option('--keep', 'leave the service and the workers running afterwards')
  .action(async (o) => {
    const say = o.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
    say('[ms2m] bringing up the dev stack (Temporal, RabbitMQ, CRIU)…');
    await ensureStack();
    const cfg = loadConfig();
    const home = path.join(cacheDir(), 'demo');
    reapInstances(home);
    rmSync(home, { recursive: true, force: true });
    say('[ms2m] starting the orchestrator and the node agents node-a and node-b…');
    const cluster = await LocalCluster.start({ nodes: ['node-a', 'node-b'], home, taskQueue: cfg.taskQueue, log: (l) => say(l) });
    let report: MigrationReport;
    try {
      ({ report } = await runScenario(cluster, {
        service: 'game',
        from: 'node-a',
        to: 'node-b',
        strategy: o.strategy as Strategy,
        rate: o.rate,
        producers: o.producers,
        stateBytes: o.stateMb * 1024 * 1024,
        workMs: o.workMs,
        threshold: o.threshold,
        cutoffMs: o.cutoffMs,
        stallMs: o.stallMs,
        keep: o.keep,
        log: (l) => say(`[ms2m] ${l}`),
        onProgress: progressPrinter(say),
      }));
    } finally {
      if (!o.keep) await cluster.stop();
    }
    say(formatReport(report, cfg.temporalUi));
    const good = verdict(report);
    say(good ? '\nOK: nothing lost, nothing applied or emitted twice, states equal.' : '\nFAILED: see the report above.');
    if (o.json) console.log(JSON.stringify(report));
    if (o.keep) say(`[ms2m] still running (--keep); stop with Ctrl-C. Web UI: ${cfg.temporalUi}`);
    else process.exit(good ? 0 : 1);
  });

program
  .command('stack')
  .description('install what is missing and start the dev stack; prints its coordinates')
  .action(async () => {
    const env = await ensureStack();
    for (const [k, v] of Object.entries(env)) console.log(`${k}=${v}`);
  });

program.command('orchestrator').description('run the orchestrator worker (workflows, broker and cluster activities)').action(() => runOrchestrator());

program
  .command('agent')
  .description('run the node agent of one node (needs root for CRIU)')
  .requiredOption('--node <name>', 'node name, e.g. node-a')
  .option('--port <port>', 'port for receiving images (0 = the one it had before, else any)', nonNegative('--port'), 0)
  .action((o) => runNodeAgent(o.node, o.port));

program
  .command('chaos')
  .description('repeated migrations of the game service, each with a random fault (process kills, broken image path, RabbitMQ restart, crashes, cancellation); prints a summary')
  .option('--rounds <n>', 'number of migrations', positive('--rounds', true), 20)
  .option('--seed <n>', 'seed of the fault draw (the same seed draws the same faults)', nonNegative('--seed'), Date.now() % 100_000)
  .option('--rate <msgs>', 'messages per second during each migration', positive('--rate'), 40)
  .option('--faults <names>', `only these faults, comma-separated: ${FAULTS.map((f) => f.name).join(', ')}`, (v: string) => {
    const names = v.split(',').map((x) => x.trim()).filter(Boolean);
    const unknown = names.filter((n) => !FAULTS.some((f) => f.name === n));
    if (unknown.length) throw new InvalidArgumentError(`unknown fault(s) ${unknown.join(', ')}; choose from ${FAULTS.map((f) => f.name).join(', ')}`);
    return names;
  })
  .option('--out <dir>', 'where to write rounds.csv and summary.md', path.join('chaos-results', new Date().toISOString().slice(0, 19).replace(/:/g, '-')))
  .action(async (o) => {
    console.log(`[chaos] ${o.rounds} rounds, seed ${o.seed}, ${o.rate} msg/s`);
    const { clean } = await runChaos({ rounds: o.rounds, seed: o.seed, rate: o.rate, faults: o.faults, out: o.out, log: (l) => console.log(l) });
    process.exitCode = clean ? 0 : 1;
  });

program
  .command('load')
  .description("publish stamped game events to a service's input exchange at a rate, for a duration, from several producers")
  .requiredOption('--service <name>', 'service whose exchange receives the load, e.g. game')
  .option('--rate <msgs>', 'messages per second across all producers', positive('--rate'), 50)
  .option('--duration-ms <ms>', 'how long to publish', positive('--duration-ms', true), 30_000)
  .option('--producers <n>', 'number of producers', positive('--producers', true), 4)
  .option('--log <file>', 'write every confirmed publish (producer, seq, time) as JSON lines')
  .action(async (o) => {
    const load = new LoadGenerator({
      amqpUrl: loadConfig().amqpUrl,
      exchange: gameTopology(o.service).exchange,
      rate: o.rate,
      producers: o.producers,
      durationMs: o.durationMs,
      producerPrefix: `${o.service}-load-${Date.now().toString(36)}`,
    });
    await load.start();
    await load.finished();
    await load.stop();
    if (o.log) writeFileSync(o.log, load.published.map((p) => JSON.stringify(p)).join('\n') + '\n');
    console.log(`[ms2m] published ${load.published.length} messages (${load.publishFailures} failed) in ${o.durationMs} ms`);
  });

async function temporalClient(): Promise<Client> {
  const cfg = loadConfig();
  return new Client({ connection: await Connection.connect({ address: cfg.temporalAddress }), namespace: cfg.temporalNamespace });
}

program
  .command('migrate')
  .description('migrate a deployed service to another node and wait for the report')
  .requiredOption('--service <name>', 'service to move')
  .requiredOption('--to <node>', 'target node')
  .addOption(strategyOption())
  .option('--threshold <msgs>', 'replay threshold', nonNegative('--threshold'), 10)
  .option('--cutoff-ms <ms>', 'replay cutoff', nonNegative('--cutoff-ms'), 120_000)
  .option('--stall-ms <ms>', 'watch the lag trend this long, then fence a copy that is not converging (0: never)', nonNegative('--stall-ms'), 3_000)
  .option('--json', 'print the report as JSON')
  .action(async (o) => {
    const input = { service: o.service, targetNode: o.to, strategy: o.strategy, replay: { threshold: o.threshold, cutoffMs: o.cutoffMs, stallMs: o.stallMs } };
    const parsed = MigrateInputSchema.safeParse(input);
    if (!parsed.success) throw new Error(describeInputError('migrate', parsed.error));
    const client = await temporalClient();
    const handle = await client.workflow.start('migrateService', { taskQueue: loadConfig().taskQueue, workflowId: `migrate-${o.service}`, args: [input] });
    const print = progressPrinter((l) => console.error(l));
    const timer = setInterval(() => void handle.query<MigrationProgress>('progress').then(print, () => undefined), 200);
    try {
      const report = (await handle.result()) as MigrationReport;
      console.log(o.json ? JSON.stringify(report) : formatReport(report, loadConfig().temporalUi));
    } finally {
      clearInterval(timer);
    }
    process.exit(0);
  });

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`[ms2m] error: ${err.message}`);
  process.exit(1);
});
