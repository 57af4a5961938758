#!/usr/bin/env node
/**
 * ms2m command line: the demo (`npm start`), the dev stack, the workers, deploying services, migrations,
 * rebalancing, draining and rebalance schedules. All but demo and chaos talk to running workers through the SDK (sdk/).
 */
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { loadConfig, cacheDir } from '../lib/config';
import { STRATEGIES, type MigrationReport, type Strategy } from '../lib/migration';
import { Ms2mClient } from '../sdk';
import { gameTopology } from '../examples/game/game';
import { LoadGenerator } from '../examples/loadgen';
import { ensureStack } from '../lib/stack';
import { runNodeAgent } from '../workers/node-agent';
import { runOrchestrator } from '../workers/orchestrator';
import { showObservation, startObserving } from './observe';
import { loadRuntime, runtimeName } from '../runtimes';
import { RUNTIMES, type RuntimeName } from '../runtimes/runtime-names';
import { formatReport, verdict } from './report';
import { lazyOption, mechanismList, nonNegative, num, positive, progressPrinter, strategyOption, transferOption, workloadList } from './options';
import { formatOutcomes, formatPlan, formatSchedule, rebalanceInput, rebalanceOptions, table, waitShowingMoves, when } from './fleet-output';
import { runScenario } from './scenario';
import { WORKLOADS, type WorkloadName } from './workloads';
import { FAULTS } from '../chaos/faults';
import { runChaos } from '../chaos/run';
import { MECHANISM_LABELS } from '../lib/migration';


const program = new Command('ms2m').description('Live migration of stateful RabbitMQ consumers with CRIU, orchestrated by Temporal').showHelpAfterError();

program
  .command('demo', { isDefault: false })
  .description('bring up the stack and two nodes, deploy the example game service on node-a under load, migrate it to node-b, print the report')
  .addOption(strategyOption())
  .addOption(transferOption())
  .addOption(lazyOption())
  .addOption(
    new Option('--runtime <name>', 'where the services run: local processes, or the project\'s two-node Kubernetes test cluster (built and started on first use)')
      .choices([...RUNTIMES])
      .default(runtimeName()),
  )
  .option('--rate <msgs>', 'messages per second from the load generator', positive('--rate'), 50)
  .addOption(new Option('--service <name>', 'the example service: game (per-player scores) or ledger (order-sensitive transfers)').choices([...WORKLOADS]).default('game'))
  .option('--producers <n>', 'number of producers sharing the rate (default 4 for the game, 3 for the ledger)', positive('--producers', true))
  .option('--state-mb <mb>', 'extra in-memory state of the service, in MB', nonNegative('--state-mb'), 8)
  .option('--work-ms <ms>', 'CPU cost of processing one message', nonNegative('--work-ms'), 0)
  .option('--threshold <msgs>', 'fence when the copy is at most this many messages behind', nonNegative('--threshold'), 10)
  .option('--cutoff-ms <ms>', 'fence after this long in replay regardless', nonNegative('--cutoff-ms'), 120_000)
  .option('--stall-ms <ms>', 'watch the lag trend this long, then fence a copy that is not converging (0: never)', nonNegative('--stall-ms'), 3_000)
  .option('--json', 'print the MigrationReport as JSON on the last line of stdout')
  .option('--keep', 'leave the service and the workers running afterwards')
  .option('--observe', 'also start a Prometheus (local runtime) that scrapes the workers, and print where the migration shows in it')
  .action(async (o) => {
    const say = o.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
    if (o.observe && o.runtime !== 'local') {
      throw new Error(`--observe: the demo's Prometheus scrapes local workers; on kubernetes, scrape the ms2m pods (their prometheus.io annotations, infra/observability/README.md), or run --runtime local`);
    }
    say(`[ms2m] bringing up the dev stack (Temporal, RabbitMQ, CRIU${o.observe ? ', Prometheus' : ''})…`);
    await ensureStack({ observe: Boolean(o.observe) });
    const observation = o.observe ? await startObserving() : null;
    const cfg = loadConfig();
    const home = path.join(cacheDir(), 'demo');
    const runtime = await loadRuntime(o.runtime as RuntimeName);
    runtime.reap(home);
    rmSync(home, { recursive: true, force: true });
    say(`[ms2m] starting the orchestrator and the node agents node-a and node-b (${runtime.name} runtime)…`);
    // The test cluster's workers outlive the demo (it stays warm): on a queue of their own, they never take a local demo's work.
    const taskQueue = runtime.name === 'kubernetes' ? `${cfg.taskQueue}-k8s` : cfg.taskQueue;
    const cluster = await runtime.startCluster({ nodes: ['node-a', 'node-b'], home, taskQueue, log: (l) => say(l) });
    let report: MigrationReport;
    try {
      ({ report } = await runScenario(cluster, {
        service: o.service,
        workload: o.service as WorkloadName,
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
        mechanisms: { transfer: o.transfer, lazy: Boolean(o.lazy) },
        keep: o.keep,
        log: (l) => say(`[ms2m] ${l}`),
        onProgress: progressPrinter(say),
      }));
      // While the workers still serve their metrics.
      if (observation) await showObservation(observation, report, say);
    } finally {
      if (!o.keep) await cluster.stop();
    }
    say(formatReport(report, cfg.temporalUi));
    const good = verdict(report);
    say(good ? '\nOK: nothing lost, nothing applied or emitted twice, states equal.' : '\nFAILED: see the report above.');
    if (o.json) console.log(JSON.stringify(report));
    if (runtime.name === 'kubernetes') {
      say(`[ms2m] the Kubernetes test cluster keeps running (warm for the next run), its ms2m on task queue ${taskQueue} (MS2M_TASK_QUEUE=${taskQueue} for the CLI); stop it with: bash infra/k8s/cluster.sh down`);
    }
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
  .option('--listen <host:port>', 'where it receives images from other nodes (default 127.0.0.1, the port it had before, else any)')
  .option('--port <port>', 'shorthand for --listen 127.0.0.1:<port>', nonNegative('--port'))
  .option('--capacity <n>', 'how many service instances the node takes (placement by rebalance and drain; default 10)', positive('--capacity', true))
  .action((o) => runNodeAgent({ node: o.node, capacity: o.capacity, listen: o.listen ?? (o.port !== undefined ? `127.0.0.1:${o.port}` : undefined) }));

program
  .command('chaos')
  .description('repeated migrations of the example services (game, ledger), each with a random fault (process kills, broken image path, RabbitMQ restart, crashes, cancellation); prints a summary')
  .option('--rounds <n>', 'number of migrations', positive('--rounds', true), 20)
  .option('--seed <n>', 'seed of the fault draw (the same seed draws the same faults)', nonNegative('--seed'), Date.now() % 100_000)
  .option('--rate <msgs>', 'messages per second during each migration', positive('--rate'), 40)
  .option('--faults <names>', `only these faults, comma-separated: ${FAULTS.map((f) => f.name).join(', ')}`, (v: string) => {
    const names = v.split(',').map((x) => x.trim()).filter(Boolean);
    const unknown = names.filter((n) => !FAULTS.some((f) => f.name === n));
    if (unknown.length) throw new InvalidArgumentError(`unknown fault(s) ${unknown.join(', ')}; choose from ${FAULTS.map((f) => f.name).join(', ')}`);
    return names;
  })
  .addOption(new Option('--services <names>', 'draw the migrated service from these, comma-separated').default([...WORKLOADS]).argParser(workloadList))
  .addOption(
    new Option('--mechanisms <list>', `draw how each image moves from these, comma-separated: ${MECHANISM_LABELS.join(', ')} (faults of one mechanism keep theirs)`)
      .default([...MECHANISM_LABELS])
      .argParser(mechanismList),
  )
  .option('--out <dir>', 'where to write rounds.csv and summary.md', path.join('chaos-results', new Date().toISOString().slice(0, 19).replace(/:/g, '-')))
  .action(async (o) => {
    console.log(`[chaos] ${o.rounds} rounds, seed ${o.seed}, ${o.rate} msg/s, services ${o.services.join(', ')}, mechanisms ${o.mechanisms.join(', ')}`);
    const { clean } = await runChaos({ rounds: o.rounds, seed: o.seed, rate: o.rate, faults: o.faults, workloads: o.services, mechanisms: o.mechanisms, out: o.out, log: (l) => console.log(l) });
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

/** Connects for one command; the process ends with the command, closing it. */
const connect = () => Ms2mClient.connect();

program
  .command('migrate')
  .description('migrate a deployed service to another node and wait for the report')
  .requiredOption('--service <name>', 'service to move')
  .requiredOption('--to <node>', 'target node')
  .addOption(strategyOption())
  .addOption(transferOption())
  .addOption(lazyOption())
  .option('--threshold <msgs>', 'replay threshold', nonNegative('--threshold'), 10)
  .option('--cutoff-ms <ms>', 'replay cutoff', nonNegative('--cutoff-ms'), 120_000)
  .option('--stall-ms <ms>', 'watch the lag trend this long, then fence a copy that is not converging (0: never)', nonNegative('--stall-ms'), 3_000)
  .option('--json', 'print the report as JSON')
  .action(async (o) => {
    const ms2m = await connect();
    const handle = await ms2m.startMigration({
      service: o.service,
      targetNode: o.to,
      strategy: o.strategy,
      replay: { threshold: o.threshold, cutoffMs: o.cutoffMs, stallMs: o.stallMs },
      mechanisms: { transfer: o.transfer, lazy: Boolean(o.lazy) },
    });
    const report = await handle.result({ onProgress: progressPrinter((l) => console.error(l)) });
    console.log(o.json ? JSON.stringify(report) : formatReport(report, loadConfig().temporalUi));
    process.exit(report.outcome === 'completed' ? 0 : 1);
  });

/** Numbers are passed on unchecked: the input schema refuses bad ones with the same message the workflow would. */

/** What a failed workflow said (its refusal and the refusal's type), rather than "Workflow execution failed". */
function failureText(err: unknown): string {
  const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
  if (cause instanceof ApplicationFailure) return `${cause.type ? `${cause.type}: ` : ''}${cause.message}`;
  return cause?.message ?? (err as Error).message;
}

function envEntry(value: string, env: Record<string, string>): Record<string, string> {
  const i = value.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`--env takes NAME=value, e.g. --env MS2M_AMQP_URL=amqp://guest:guest@127.0.0.1:5672, got "${value}"`);
  return { ...env, [value.slice(0, i)]: value.slice(i + 1) };
}

program
  .command('deploy')
  .description(
    'start a service instance on a node and record its placement; refused at once, with the reason, if the program cannot run, ' +
      'exits, does not answer ms2m control commands within --ready-ms, or consumes another queue than --queue',
  )
  .usage('--service <name> --node <node> --queue <primaryQueue> [--env K=V ...] [--cwd dir] [--ready-ms n] -- <command...>')
  .requiredOption('--service <name>', 'service name, e.g. game')
  .requiredOption('--node <node>', 'node to run it on, e.g. node-a')
  .requiredOption('--queue <primaryQueue>', 'the queue the service consumes, e.g. game.primary')
  .option('--env <K=V>', 'an environment variable of the service; repeat for more', envEntry, {})
  .option('--cwd <dir>', "the service's working directory (relative: to this directory); relative program paths resolve against it. Default: the node agent's")
  .option('--ready-ms <ms>', 'how long the instance has to answer ms2m control commands (default 20000)', num)
  .option('--workload <Kind/name>', 'kubernetes runtime: take this workload under ms2m, e.g. Deployment/orders (no command then)')
  .option('--namespace <ns>', 'kubernetes runtime: the workload\'s namespace', 'default')
  .option('--container <name>', 'kubernetes runtime: the container that runs the service', 'app')
  .option('--json', 'print the placement as JSON')
  .argument('[command...]', 'the program and its arguments, after --, e.g. -- node dist/examples/game/service.js')
  .action(async (command: string[], o) => {
    if (!o.workload && command.length === 0) program.error('deploy needs the program after -- (local runtime) or --workload Kind/name (kubernetes runtime)');
    const [kind, name] = String(o.workload ?? '').split('/');
    const spec = o.workload
      ? { runtime: 'kubernetes' as const, namespace: o.namespace, kind: kind as 'Deployment', name, container: o.container, primaryQueue: o.queue }
      : { command, env: o.env, primaryQueue: o.queue, ...(o.cwd !== undefined && { cwd: path.resolve(o.cwd) }) };
    const ms2m = await connect();
    const run = await ms2m.startDeploy({
      service: o.service,
      node: o.node,
      spec,
      ...(o.readyMs !== undefined && { readyMs: o.readyMs }),
    });
    console.error(`[ms2m] deploying ${o.service} on ${o.node} (workflow ${run.workflowId})…`);
    let placement;
    try {
      placement = await run.result();
    } catch (err) {
      console.error(`[ms2m] deploy of ${o.service} refused: ${failureText(err)}`);
      process.exit(1);
    }
    console.log(
      o.json
        ? JSON.stringify(placement)
        : `[ms2m] ${placement.service} deployed on ${placement.node} as instance ${placement.instanceId}, consuming ${placement.spec.primaryQueue}: ${placement.spec.runtime === 'local' ? placement.spec.command.join(' ') : `${placement.spec.kind} ${placement.spec.namespace}/${placement.spec.name}`}`,
    );
    process.exit(0);
  });

program
  .command('undeploy')
  .description("stop a service's instance and remove its placement")
  .requiredOption('--service <name>', 'service to remove')
  .action(async (o) => {
    const { stopped, placement } = await (await connect()).undeploy(o.service);
    if (!placement) {
      console.error(`[ms2m] no service named "${o.service}" is deployed; nothing to undeploy`);
      process.exit(1);
    }
    console.log(`[ms2m] ${o.service} undeployed: instance ${placement.instanceId} on ${placement.node} ${stopped ? 'stopped' : 'had already exited'}`);
    process.exit(0);
  });

rebalanceOptions(program.command('rebalance'))
  .description('move services off overloaded nodes (plans from measured CPU load), printing the plan and each move\'s outcome')
  .option('--json', 'print the RebalanceResult as JSON')
  .action(async (o) => {
    const say = o.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
    const ms2m = await connect();
    const run = await ms2m.startRebalance(rebalanceInput(o));
    say(`[ms2m] rebalance ${run.workflowId} started${o.dryRun ? ' (dry run)' : ''}; measuring load…`);
    const result = await waitShowingMoves(ms2m, run, say);
    if (o.json) console.log(JSON.stringify(result));
    else {
      say(formatPlan(result.plan));
      if (!result.dryRun && result.outcomes.length) say(`outcomes:\n${formatOutcomes(result.outcomes)}`);
    }
    process.exit(result.outcomes.every((m) => m.outcome === 'completed') ? 0 : 1);
  });

program
  .command('drain')
  .description('cordon a node and migrate every service off it, printing a report per service')
  .requiredOption('--node <name>', 'node to drain')
  .option('--concurrency <n>', 'migrations at a time (default 1)', num)
  .addOption(new Option('--strategy <name>', 'migration strategy (default shadow)').choices([...STRATEGIES]))
  .option('--json', 'print the DrainReport as JSON')
  .action(async (o) => {
    const say = o.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
    const ms2m = await connect();
    const run = await ms2m.startDrain({ node: o.node, ...(o.concurrency !== undefined && { concurrency: o.concurrency }), ...(o.strategy && { strategy: o.strategy }) });
    say(`[ms2m] drain ${run.workflowId} started`);
    const report = await waitShowingMoves(ms2m, run, say);
    if (o.json) console.log(JSON.stringify(report));
    else {
      say(report.services.length ? formatOutcomes(report.services) : `nothing moved off ${report.node}`);
      if (report.stranded.length) say(`stranded (no schedulable node with room; still on ${report.node}): ${report.stranded.join(', ')}`);
      say(`${report.node} stays cordoned; \`ms2m uncordon --node ${report.node}\` takes it back (${((report.endedAt - report.startedAt) / 1000).toFixed(1)} s)`);
    }
    process.exit(report.stranded.length || report.services.some((m) => m.outcome !== 'completed') ? 1 : 0);
  });

for (const [name, schedulable] of [['cordon', false], ['uncordon', true]] as const) {
  program
    .command(name)
    .description(schedulable ? 'let rebalancing and draining place services on a node again' : 'keep rebalancing and draining from placing services on a node')
    .requiredOption('--node <name>', 'node')
    .action(async (o) => {
      const ms2m = await connect();
      await ms2m.setNodeSchedulable(o.node, schedulable);
      console.log(`[ms2m] ${o.node} is ${schedulable ? 'schedulable' : 'cordoned'}`);
      process.exit(0);
    });
}

const schedule = program.command('schedule').description('periodic rebalancing (Temporal Schedules; a run due while the previous one runs is skipped)');
rebalanceOptions(schedule.command('create'))
  .description('create a schedule that runs the rebalance workflow every interval')
  .requiredOption('--id <id>', 'schedule id')
  .requiredOption('--every <duration>', 'interval, e.g. 10m, 90s, 1h')
  .option('--paused', 'create it paused')
  .action(async (o) => {
    const ms2m = await connect();
    console.log(formatSchedule(await ms2m.createRebalanceSchedule({ scheduleId: o.id, every: o.every, input: rebalanceInput(o), paused: o.paused })));
    process.exit(0);
  });
schedule
  .command('list')
  .description('schedules that run the rebalance workflow')
  .action(async () => {
    const all = await (await connect()).listSchedules();
    console.log(all.length ? all.map(formatSchedule).join('\n') : 'no rebalance schedules');
    process.exit(0);
  });
schedule
  .command('describe <id>')
  .description('a schedule: its input, recent runs with their workflow ids, next run times')
  .option('--json', 'as JSON')
  .action(async (id: string, o) => {
    const d = await (await connect()).describeSchedule(id);
    console.log(o.json ? JSON.stringify(d) : formatSchedule(d));
    process.exit(0);
  });
const scheduleActions = {
  pause: (c: Ms2mClient, id: string, note?: string) => c.pauseSchedule(id, note),
  unpause: (c: Ms2mClient, id: string, note?: string) => c.unpauseSchedule(id, note),
  trigger: (c: Ms2mClient, id: string) => c.triggerSchedule(id),
  delete: (c: Ms2mClient, id: string) => c.deleteSchedule(id),
};
for (const [name, act] of Object.entries(scheduleActions)) {
  const cmd = schedule.command(`${name} <id>`).description(`${name} a schedule`);
  if (name === 'pause' || name === 'unpause') cmd.option('--note <text>', 'why, shown with the schedule');
  cmd.action(async (id: string, o) => {
    await act(await connect(), id, o.note);
    console.log(`[ms2m] schedule ${id}: ${name}${name.endsWith('e') ? 'd' : 'ed'}`);
    process.exit(0);
  });
}

program
  .command('migrations')
  .description('list migrations, newest first (from Temporal visibility)')
  .option('--service <name>', 'of this service')
  .option('--node <name>', 'from or to this node')
  .option('--phase <stage>', 'now in (or ended in) this stage, e.g. replay, done, rolled-back')
  .option('--running', 'only running ones')
  .option('--limit <n>', 'at most this many', positive('--limit', true), 50)
  .option('--json', 'as JSON')
  .action(async (o) => {
    const list = await (await connect()).listMigrations({ service: o.service, node: o.node, phase: o.phase, running: o.running ? true : undefined, limit: o.limit });
    if (o.json) console.log(JSON.stringify(list));
    else if (!list.length) console.log('no migrations found');
    else {
      const t = table(['workflow', 'service', 'from', 'to', 'strategy', 'stage', 'status', 'started', 'ended']);
      for (const m of list) t.push([m.workflowId, m.service ?? '?', m.sourceNode ?? '?', m.targetNode ?? '?', m.strategy ?? '?', m.phase ?? '?', m.status, when(m.startTime), when(m.closeTime)]);
      console.log(t.toString());
    }
    process.exit(0);
  });

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`[ms2m] error: ${failureText(err)}`);
  process.exit(1);
});
