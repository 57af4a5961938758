/**
 * `npm run bench -- …`: real migrations of the example service (on the local runtime, or with
 * `--runtime kubernetes` as a Deployment on the project's Kubernetes test cluster) over a grid of
 * strategies × message rates × repetitions (and optionally state sizes), one CSV row per run, a summary
 * table, a markdown report with the papers' numbers beside ours, and PNG plots.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadRuntime, runtimeName } from '../runtimes';
import { RUNTIMES, type RuntimeName } from '../runtimes/runtime-names';
import type { ClusterHandle } from '../runtimes/types';
import { runScenario } from '../cli/scenario';
import { mechanismList } from '../cli/options';
import { WORKLOADS, type WorkloadName } from '../cli/workloads';
import { cacheDir, loadConfig } from '../lib/config';
import { MECHANISM_LABELS, mechanismsOf, STRATEGIES, type MechanismLabel, type MigrationReport, type Strategy } from '../lib/migration';
import { ensureStack } from '../lib/stack';
import { writePlots } from './plots';
import { measureCapacity } from './capacity';
import { measureLimits, type Limits } from './limits';
import { profileMigration, type Profile } from './profile';
import { CAPACITY_HEAD, capacityRows, limitsTable, writeMarkdownReport, type ReportInput } from './report';
import Table from 'cli-table3';
import { planGrid, rowOf, type RunPlan, type SavedPlan } from './rows';
import { formatSummaryTable, median, ratios, summarize } from './summary';
import { writeCsv } from './csv';
import type { BenchRow } from './types';

function list(name: string, min: number, max: number) {
  return (value: string): number[] => {
    const xs = value.split(',').map((v) => Number(v.trim()));
    if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x < min || x > max)) {
      throw new InvalidArgumentError(`${name} takes comma-separated numbers between ${min} and ${max}, e.g. 10,60,120`);
    }
    return xs;
  };
}
function count(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
}
function strategies(value: string): Strategy[] {
  const xs = value.split(',').map((s) => s.trim());
  const bad = xs.filter((s) => !(STRATEGIES as readonly string[]).includes(s));
  if (bad.length) throw new InvalidArgumentError(`unknown strategy ${bad.join(', ')}; choose from ${STRATEGIES.join(', ')}`);
  return xs as Strategy[];
}

function service(value: string): WorkloadName {
  if (!(WORKLOADS as readonly string[]).includes(value)) throw new InvalidArgumentError(`unknown service ${value}; choose from ${WORKLOADS.join(', ')}`);
  return value as WorkloadName;
}

const program = new Command('bench')
  .description('benchmark live migrations over strategies × message rates × repetitions (× state sizes)')
  .addOption(
    new Option('--runtime <name>', "where the services run: local processes, or the project's two-node Kubernetes test cluster (built and started on first use)")
      .choices([...RUNTIMES])
      .default(runtimeName()),
  )
  .option('--service <name>', `the example service to migrate: ${WORKLOADS.join(' or ')} (ledger: order-sensitive, three producers at 10:25:45)`, service, 'game' as WorkloadName)
  .option('--strategies <list>', `strategies to compare, of ${STRATEGIES.join(', ')} (sequential and shadow-swap move a StatefulSet's pod)`, strategies, ['stop-and-copy', 'shadow'] as Strategy[])
  .option(
    '--mechanisms <list>',
    `how the image moves, of ${MECHANISM_LABELS.join(', ')} (files: the baseline); every run of the grid runs once per mechanism, their order alternating by repetition`,
    mechanismList,
    ['files'] as MechanismLabel[],
  )
  .option('--rates <list>', 'message rates in msg/s', list('--rates', 1, 10_000), [10, 20, 40, 60, 80, 100, 120])
  .option('--no-overload', 'leave out the rate above the service capacity')
  .option('--repetitions <n>', 'repetitions of the grid', count('--repetitions', 1, 100), 5)
  .option('--state-mb <mb>', 'state size of the service in the rate grid, MB', count('--state-mb', 0, 4096), 10)
  .option('--state-sweep <list>', 'also sweep these state sizes in MB (e.g. 10,100,1024) at --state-rate', list('--state-sweep', 0, 4096), [] as number[])
  .option('--state-rate <msgs>', 'message rate of the state-size sweep', count('--state-rate', 1, 10_000), 60)
  .option('--state-repetitions <n>', 'repetitions of the state-size sweep', count('--state-repetitions', 1, 100), 3)
  .option('--work-ms <ms>', 'CPU cost of processing one message in ms; a list makes it a grid dimension', list('--work-ms', 0, 1000), [2])
  .option('--threshold <msgs>', 'replay threshold', count('--threshold', 0, 1_000_000), 10)
  .option('--cutoff-ms <ms>', 'replay cutoff', count('--cutoff-ms', 0, 3_600_000), 120_000)
  .option('--stall-ms <ms>', 'watch the lag trend this long, then fence a copy that is not converging (0: only threshold or cutoff)', count('--stall-ms', 0, 3_600_000), 3_000)
  .option('--warmup-ms <ms>', 'load before each migration starts', count('--warmup-ms', 0, 600_000), 2000)
  .option('--settle-ms <ms>', 'load after each migration ends', count('--settle-ms', 0, 600_000), 1000)
  .option('--capacity-work-ms <list>', "measure the service's capacity (msg/s flat out on a backlog) at these ms of work per message before the grid", list('--capacity-work-ms', 0, 1000), [0, 2, 10])
  .option('--no-capacity', 'skip the capacity measurement (the rate above capacity then needs --no-overload)')
  .option('--no-limits', "skip measuring the machine's limits (bare criu dump/restore, copy + hash of the image, a RabbitMQ round trip) at each state size")
  .option('--capacity-repetitions <n>', 'capacity runs per work value; the median is reported (this VM varies by ±30 % run to run)', count('--capacity-repetitions', 1, 20), 3)
  .option('--capacity-only', 'measure the capacity (--capacity-work-ms), print it and write capacity.csv; run no migrations')
  .option('--rerender <dir>', "only write runs.csv, report.md and the plots again from the reports.jsonl of an earlier run in <dir> (after a change to the report); runs nothing")
  .option('--quick', 'a small grid that finishes in a few minutes: rates 20,60,120 + overload, 1 repetition, state sweep 10,64 MB')
  .option('--out <dir>', 'where to write runs.csv, report.md and the plots (default bench-results/<timestamp>)');

interface Options {
  runtime: RuntimeName;
  service: WorkloadName;
  strategies: Strategy[];
  mechanisms: MechanismLabel[];
  rates: number[];
  overload: boolean;
  repetitions: number;
  stateMb: number;
  stateSweep: number[];
  stateRate: number;
  stateRepetitions: number;
  workMs: number[];
  threshold: number;
  cutoffMs: number;
  stallMs: number;
  warmupMs: number;
  settleMs: number;
  capacityWorkMs: number[];
  capacity: boolean;
  capacityOnly?: boolean;
  capacityRepetitions: number;
  limits: boolean;
  rerender?: string;
  quick?: boolean;
  out?: string;
}

export async function main(argv: string[]): Promise<number> {
  program.parse(argv);
  const o = program.opts<Options>();
  if (o.quick) {
    Object.assign(o, { rates: [20, 60, 120], repetitions: 1, stateSweep: [10, 64], stateRepetitions: 1, warmupMs: 1500, settleMs: 500, stallMs: 3000 });
  }
  if (o.rerender) return rerender(path.resolve(o.rerender), o.service);
  if (o.capacityOnly && !o.capacity) throw new InvalidArgumentError('--capacity-only and --no-capacity leave nothing to run: drop one of them');
  if (o.overload && !o.capacity) throw new InvalidArgumentError('the rate above capacity needs the capacity: drop --no-capacity, or add --no-overload');
  const out = path.resolve(o.out ?? path.join('bench-results', new Date().toISOString().replace(/[:.]/g, '-')));
  mkdirSync(out, { recursive: true });
  await ensureStack({ quiet: true });
  const cfg = loadConfig();
  const home = path.join(cacheDir(), 'bench');
  const runtime = await loadRuntime(o.runtime);
  runtime.reap(home);
  // The test cluster's workers stay up after the run on the demo's queue; a local run has its own.
  const taskQueue = runtime.name === 'kubernetes' ? `${cfg.taskQueue}-k8s` : `${cfg.taskQueue}-bench`;
  const cluster = await runtime.startCluster({ nodes: ['node-a', 'node-b'], home, taskQueue, log: (l) => console.error(l) });
  const rows: BenchRow[] = [];
  let profile: Profile | undefined;
  let capacity: Map<number, number> | null = null;
  let limits: Limits[] | null = null;
  try {
    if (o.capacity) {
      capacity = new Map();
      for (const w of [...new Set([...o.capacityWorkMs, ...(o.overload ? o.workMs : [])])].sort((a, b) => a - b)) {
        const runs: number[] = [];
        for (let i = 0; i < o.capacityRepetitions; i++) runs.push(await measureCapacity(cluster, 'node-a', w, o.service));
        const c = Math.round(median(runs));
        capacity.set(w, c);
        console.error(`[bench] measured capacity at ${w} ms/message: ${c} msg/s (median of ${runs.join(', ')})${o.overload && o.workMs.includes(w) ? `; above-capacity rate ${Math.ceil(c * 1.25)} msg/s` : ''}`);
      }
      if (o.capacityOnly) return writeCapacity(out, Object.fromEntries(capacity), o);
    }
    const plans = planGrid({
      strategies: o.strategies,
      mechanisms: o.mechanisms,
      rates: o.rates,
      capacity: o.overload ? capacity : null,
      repetitions: o.repetitions,
      stateBytes: o.stateMb * 1024 * 1024,
      workMs: o.workMs,
      stateSweep: o.stateSweep.map((mb) => mb * 1024 * 1024),
      stateRate: o.stateRate,
      stateRepetitions: o.stateRepetitions,
    });
    if (o.limits && runtime.name === 'local') {
      limits = [];
      for (const bytes of [...new Set(plans.map((p) => p.stateBytes))].sort((a, b) => a - b)) {
        const l = await measureLimits(bytes, path.dirname(realpathSync(path.join(home, 'nodes', 'node-a', 'images'))));
        limits.push(l);
        console.error(`[bench] limits at ${(bytes / 1048576).toFixed(0)} MB: bare dump ${l.dumpMs.toFixed(0)} ms (frozen ${l.dumpFrozenMs?.toFixed(0) ?? '?'} ms), restore ${l.restoreMs.toFixed(0)} ms, copy + hash ${l.copyHashMs.toFixed(0)} ms (${l.copyHashMBps.toFixed(0)} MB/s), RabbitMQ round trip ${l.rabbitRttMs.toFixed(2)} ms`);
      }
    }
    console.error(`[bench] ${plans.length} runs of the ${o.service} service → ${out}`);
    // In a log (no terminal) the bar still prints a line every few seconds.
    const bar = new SingleBar({ format: '[bench] {bar} {value}/{total} runs | ETA {eta_formatted} | {what}', stream: process.stderr, etaBuffer: 8, hideCursor: true, noTTYOutput: true, notTTYSchedule: 10_000 });
    bar.start(plans.length, 0, { what: 'starting' });
    try {
      for (const plan of plans) {
        const mechanism = o.mechanisms.length > 1 ? ` (${plan.mechanism})` : '';
        bar.update(plan.run - 1, { what: `${plan.strategy}${mechanism} @ ${plan.rate} msg/s, ${(plan.stateBytes / 1048576).toFixed(0)} MB (rep ${plan.repetition})` });
        const report = await runOne(cluster, plan, o);
        rows.push(rowOf(plan, report));
        appendFileSync(path.join(out, 'reports.jsonl'), JSON.stringify({ plan, report }) + '\n');
        writeCsv(path.join(out, 'runs.csv'), rows);
        // The profile is of the first mechanism asked for (the baseline by default), as the report says.
        if (!profile && report && report.strategy === 'shadow' && report.outcome === 'completed' && plan.sweep === 'rate' && plan.rate >= 60 && plan.mechanism === o.mechanisms[0]) {
          profile = await profileMigration(cluster.client, report).catch(() => undefined);
        }
        bar.update(plan.run);
      }
    } finally {
      bar.stop();
    }
  } finally {
    await cluster.stop();
  }

  const machine = `${runtime.name} runtime; ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}`;
  const measured = capacity ? Object.fromEntries(capacity) : null;
  writeFileSync(path.join(out, 'options.json'), JSON.stringify({ ...o, capacity: measured, limits, machine, profile }, null, 2));
  return writeResults(out, rows, { machine, service: o.service, profile, runtime: runtime.name, capacity: measured, limits });
}

/** `--capacity-only`: the table on stdout, capacity.csv and options.json in `out`. */
function writeCapacity(out: string, capacity: Record<number, number>, o: Options): number {
  const t = new Table({ head: CAPACITY_HEAD, style: { head: [], border: [], compact: true } });
  for (const row of capacityRows(capacity)) t.push(row);
  console.log(`Capacity of the ${o.service} service (every run exact: 0 lost, 0 duplicated, 0 duplicate outputs, state match)\n${t.toString()}`);
  writeFileSync(path.join(out, 'capacity.csv'), ['work_ms,msg_per_s', ...Object.entries(capacity).map(([w, c]) => `${w},${c}`)].join('\n') + '\n');
  writeFileSync(path.join(out, 'options.json'), JSON.stringify({ ...o, capacity }, null, 2));
  console.log(`\n[bench] wrote ${path.join(out, 'capacity.csv')}`);
  return 0;
}

type ResultContext = Pick<ReportInput, 'machine' | 'service' | 'profile' | 'runtime' | 'capacity' | 'limits'>;

/** The summary table on stdout; runs.csv, the plots and report.md in `out`. Exit code 1 if a run was not clean. */
async function writeResults(out: string, rows: BenchRow[], ctx: ResultContext): Promise<number> {
  writeCsv(path.join(out, 'runs.csv'), rows);
  const summary = summarize(rows);
  const r = ratios(summary);
  console.log(formatSummaryTable(summary, r));
  if (ctx.limits?.length) {
    const { head, body } = limitsTable(ctx.limits, rows);
    const t = new Table({ head, style: { head: [], border: [], compact: true } });
    for (const row of body) t.push(row);
    console.log(`Against the machine's limits (measured in this run; shadow runs, medians)\n${t.toString()}`);
  }
  const plots = await writePlots(out, rows);
  writeMarkdownReport(path.join(out, 'report.md'), { rows, summary, ratios: r, plots, ...ctx });
  console.log(`\n[bench] wrote ${path.join(out, 'runs.csv')}, ${path.join(out, 'report.md')} and ${plots.length} plots`);
  const bad = rows.filter((x) => x.outcome !== 'completed' || x.lost > 0 || x.duplicated > 0 || x.duplicate_outputs > 0 || !x.state_match);
  if (bad.length) console.log(`[bench] ${bad.length} run(s) not clean: ${bad.map((x) => `#${x.run} ${x.outcome}`).join(', ')} (see report.md)`);
  return bad.length ? 1 : 0;
}

/** Writes the results of an earlier run again from its reports.jsonl and options.json, with today's report code. */
async function rerender(dir: string, service: WorkloadName): Promise<number> {
  const file = path.join(dir, 'reports.jsonl');
  if (!existsSync(file)) throw new InvalidArgumentError(`--rerender: ${file} does not exist; give the folder of an earlier run (it holds reports.jsonl)`);
  const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => {
    // Runs from before the mechanisms have none in their plan or report: rowOf counts them as files.
    const { plan, report } = JSON.parse(l) as { plan: SavedPlan; report: MigrationReport | null };
    return rowOf(plan, report);
  });
  const optionsFile = path.join(dir, 'options.json');
  const saved = (existsSync(optionsFile) ? JSON.parse(readFileSync(optionsFile, 'utf8')) : {}) as Omit<Partial<Options>, 'capacity' | 'limits'> & { machine?: string; capacity?: Record<number, number> | null; limits?: Limits[] | null; profile?: Profile };
  const runtime = saved.runtime ?? 'local';
  return writeResults(dir, rows, {
    machine: saved.machine ?? `${runtime} runtime (machine not recorded)`,
    service: saved.service ?? service,
    profile: saved.profile,
    runtime,
    capacity: saved.capacity ?? null,
    limits: saved.limits ?? null,
  });
}

async function runOne(cluster: ClusterHandle, plan: RunPlan, o: Options): Promise<MigrationReport | null> {
  try {
    const { report } = await runScenario(cluster, {
      service: 'bench',
      workload: o.service,
      from: 'node-a',
      to: 'node-b',
      strategy: plan.strategy,
      mechanisms: mechanismsOf(plan.mechanism),
      rate: plan.rate,
      stateBytes: plan.stateBytes,
      workMs: plan.workMs,
      threshold: o.threshold,
      cutoffMs: o.cutoffMs,
      stallMs: o.stallMs,
      warmupMs: o.warmupMs,
      settleMs: o.settleMs,
    });
    return report;
  } catch (err) {
    console.error(`\n[bench] run ${plan.run} failed: ${(err as Error).message}`);
    return null;
  }
}

if (require.main === module) {
  main(process.argv).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(`[bench] error: ${err.message}`);
      process.exit(2);
    },
  );
}
