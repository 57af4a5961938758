/**
 * The markdown report of a benchmark: what ran, the medians, shadow against stop-and-copy, every message
 * lost or duplicated, the plots, and our numbers beside the published ones (./paper-comparison).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  fmtBytes, fmtChange, fmtMs, fmtNum, fmtRate, fmtRatio, fmtStat, MECHANISM_COMPARISON_CAPTION, MECHANISM_NOTES, mechanismComparison,
  mechanismsIn, median, STRATEGIES, type Mechanism, type Metric, type RatioRow, type Summary, type SummaryGroup,
} from './summary';
import type { BenchRow } from './types';
import type { Limits } from './limits';
import { paperComparison } from './paper-comparison';

/** Same shape as bench/profile.ts's Profile, declared here so the report needs nothing from Temporal. */
export interface ReportProfile {
  title: string;
  rows: Array<{ part: string; ms: number; note?: string }>;
  orchestrationShare?: number;
}

export interface ReportInput {
  rows: readonly BenchRow[];
  summary: Summary;
  ratios: readonly RatioRow[];
  /** Paths of the PNGs; they are linked relative to the report's folder. */
  plots: readonly string[];
  /** Free text: CPU, memory, kernel, Node version. */
  machine: string;
  /** The example service migrated, e.g. "ledger". */
  service?: string;
  profile?: ReportProfile;
  /** Where the services ran (default local). */
  runtime?: 'local' | 'kubernetes';
  /** The service's measured capacity in msg/s, by ms of work per message. */
  capacity?: Record<number, number> | null;
  /** The machine's own limits, per state size, measured in the same run (bench/limits.ts). */
  limits?: Limits[] | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Markdown.

const mdTable = (head: string[], body: string[][]): string =>
  [head, head.map(() => '---'), ...body].map((cells) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`).join('\n');

const distinct = <T>(xs: readonly T[]): T[] => [...new Set(xs)];
const med = (g: SummaryGroup, m: Metric): string => (g.stats[m] ? fmtMs(g.stats[m]!.median) : '–');
const nCell = (g: SummaryGroup): string => (g.notCompleted ? `${g.n} (+${g.notCompleted} not completed)` : String(g.n));
const lossCell = (g: SummaryGroup): string => `${g.lost}/${g.duplicated}/${g.duplicate_outputs}`;

function whatWasRun(rows: readonly BenchRow[], machine: string, service?: string): string {
  const lines: string[] = [];
  if (service) lines.push(`- **Service**: the example \`${service}\` service (cli/workloads.ts).`);
  for (const sweep of ['rate', 'state'] as const) {
    const rs = rows.filter((r) => r.sweep === sweep);
    if (!rs.length) continue;
    const rates = distinct(rs.map((r) => r.msg_rate)).sort((a, b) => a - b)
      .map((rate) => (rs.some((r) => r.msg_rate === rate && r.above_capacity) ? `${rate} (above capacity)` : String(rate)));
    const sizes = distinct(rs.map((r) => r.state_bytes)).sort((a, b) => a - b).map(fmtBytes);
    const strategies = STRATEGIES.filter((s) => rs.some((r) => r.strategy === s));
    const mechanisms = mechanismsIn(rs);
    const mech = mechanisms.length > 1 ? ` × mechanisms ${mechanisms.join(', ')}` : '';
    const reps = Math.max(...rs.map((r) => r.repetition));
    const work = distinct(rs.map((r) => r.work_ms)).sort((a, b) => a - b).join(', ');
    lines.push(
      sweep === 'rate'
        ? `- **Rate sweep**: ${strategies.join(' and ')}${mech} × ${rates.join(', ')} msg/s × ${reps} repetition${reps > 1 ? 's' : ''}; state ${sizes.join(', ')}; work ${work} ms per message; ${rs.length} runs.`
        : `- **State-size sweep**: ${strategies.join(' and ')}${mech} × state ${sizes.join(', ')} at ${rates.join(', ')} msg/s × ${reps} repetition${reps > 1 ? 's' : ''}; work ${work} ms per message; ${rs.length} runs.`,
    );
  }
  const mechanisms = mechanismsIn(rows);
  if (mechanisms.length) {
    lines.push(`- **${mechanisms.length > 1 ? 'Mechanisms' : 'Mechanism'}** (how the image moves): ${mechanisms.map((m) => `\`${m}\`, ${MECHANISM_NOTES[m]}`).join('; ')}.`);
  }
  const done = rows.filter((r) => r.outcome === 'completed').length;
  lines.push(`- **Runs**: ${rows.length} in all, ${done} completed. Statistics use completed runs only; the others are listed under loss accounting.`);
  lines.push(`- **Machine**: ${machine}`);
  return lines.join('\n');
}

/** The mechanism's column, when more than one ran (one is said in the text above the tables). */
const mechHead = (several: boolean): string[] => (several ? ['mechanism'] : []);
const mechCell = (several: boolean, x: { mechanism: Mechanism }): string[] => (several ? [x.mechanism] : []);

function rateTable(groups: readonly SummaryGroup[], several: boolean): string {
  return mdTable(
    ['strategy', ...mechHead(several), 'rate (msg/s)', 'n', 'total ms, median (min–max)', 'downtime ms, median (min–max)', 'observed downtime ms',
      'freeze ms', 'checkpoint ms', 'replay ms', 'p99 / max latency ms', 'replay cutoff', 'lost/dup/dup-out'],
    groups.map((g) => [
      g.strategy, ...mechCell(several, g), fmtRate(g), nCell(g), fmtStat(g.stats.total_ms), fmtStat(g.stats.downtime_ms), med(g, 'observed_downtime_ms'),
      med(g, 'freeze_ms'), med(g, 'checkpoint_ms'), med(g, 'replay_ms'), `${med(g, 'p99_e2e_latency_ms')} / ${med(g, 'max_e2e_latency_ms')}`,
      `${g.cutoffFired}/${g.n}`, lossCell(g),
    ]),
  );
}

function stateTable(groups: readonly SummaryGroup[], several: boolean): string {
  return mdTable(
    ['strategy', ...mechHead(several), 'state', 'rate (msg/s)', 'n', 'checkpoint size', 'total ms, median (min–max)', 'downtime ms, median (min–max)',
      'checkpoint ms', 'transfer ms', 'restore ms', 'freeze ms', 'lost/dup/dup-out'],
    groups.map((g) => [
      g.strategy, ...mechCell(several, g), fmtBytes(g.state_bytes), fmtRate(g), nCell(g), g.stats.checkpoint_bytes ? fmtBytes(g.stats.checkpoint_bytes.median) : '–',
      fmtStat(g.stats.total_ms), fmtStat(g.stats.downtime_ms), med(g, 'checkpoint_ms'), med(g, 'transfer_ms'), med(g, 'restore_ms'),
      med(g, 'freeze_ms'), lossCell(g),
    ]),
  );
}

function ratioTable(ratioRows: readonly RatioRow[], several: boolean): string {
  if (!ratioRows.length) return 'No rate has completed runs of both strategies.';
  return mdTable(
    [...mechHead(several), 'rate (msg/s)', 'total: shadow ms', 'stop-and-copy ms', 'ratio', 'change', 'downtime: shadow ms', 'stop-and-copy ms', 'ratio', 'change'],
    ratioRows.map((r) => [
      ...mechCell(several, r), fmtRate(r), fmtMs(r.total.shadow), fmtMs(r.total.stopAndCopy), fmtRatio(r.total.ratio), fmtChange(r.total.reductionPct),
      fmtMs(r.downtime.shadow), fmtMs(r.downtime.stopAndCopy), fmtRatio(r.downtime.ratio), fmtChange(r.downtime.reductionPct),
    ]),
  );
}

/** Not clean: did not complete, lost or doubled a message, or ended with a state that differs from the producers'. */
export const isException = (r: BenchRow): boolean =>
  r.outcome !== 'completed' || r.lost > 0 || r.duplicated > 0 || r.duplicate_outputs > 0 || !r.state_match;

function lossAccounting(rows: readonly BenchRow[]): string {
  const sum = (f: (r: BenchRow) => number) => rows.reduce((a, r) => a + f(r), 0);
  const mismatched = rows.filter((r) => r.outcome === 'completed' && !r.state_match).length;
  const lines = [
    mdTable(
      ['published', 'processed', 'lost', 'applied twice', 'duplicate outputs', 'completed runs with a state mismatch'],
      [[fmtNum(sum((r) => r.published)), fmtNum(sum((r) => r.processed)), fmtNum(sum((r) => r.lost)), fmtNum(sum((r) => r.duplicated)),
        fmtNum(sum((r) => r.duplicate_outputs)), String(mismatched)]],
    ),
    '',
  ];
  const bad = rows.filter(isException);
  const several = mechanismsIn(rows).length > 1;
  if (!bad.length) {
    lines.push('Every run completed with nothing lost or duplicated and a matching state.');
  } else {
    lines.push(`${bad.length} run${bad.length > 1 ? 's' : ''} not clean:`, '');
    lines.push(mdTable(
      ['run', 'sweep', 'strategy', ...mechHead(several), 'rate (msg/s)', 'state', 'repetition', 'outcome', 'lost', 'applied twice', 'duplicate outputs', 'state match'],
      bad.map((r) => [
        String(r.run), r.sweep, r.strategy, ...mechCell(several, r), fmtRate(r), fmtBytes(r.state_bytes), String(r.repetition), r.outcome, String(r.lost),
        String(r.duplicated), String(r.duplicate_outputs), r.state_match ? 'yes' : 'no',
      ]),
    ));
  }
  return lines.join('\n');
}

const PLOT_CAPTIONS: Record<string, string> = {
  'total-vs-rate.png': 'Total migration time vs message rate',
  'downtime-vs-rate.png': 'Downtime vs message rate',
  'phases-at-60.png': 'Median phase times near 60 msg/s',
  'state-size.png': 'Checkpoint, transfer and restore time vs state size',
  'freeze-vs-state.png': 'Freeze time vs state size, one line per mechanism',
  'total-vs-state.png': 'Total migration time vs state size, one line per mechanism',
};

function plotsSection(plots: readonly string[], reportDir: string): string {
  if (!plots.length) return 'No plots were written.';
  return plots
    .map((p) => {
      const rel = path.relative(reportDir, path.resolve(p)).split(path.sep).join('/');
      const name = path.basename(p);
      return `![${PLOT_CAPTIONS[name] ?? name}](${rel})`;
    })
    .join('\n\n');
}

function profileSection(profile: ReportProfile): string {
  const total = profile.rows.reduce((a, r) => a + r.ms, 0);
  const pct = (ms: number) => (total > 0 ? `${fmtNum((ms / total) * 100, 1)} %` : '–');
  return [
    profile.title,
    '',
    mdTable(
      ['part', 'ms', 'share', 'note'],
      [...profile.rows.map((r) => [r.part, fmtMs(r.ms), pct(r.ms), r.note ?? '']), ['**total**', `**${fmtMs(total)}**`, '100 %', '']],
    ),
    ...(profile.orchestrationShare !== undefined
      ? ['', `Orchestration (Temporal dispatch, workflow tasks and the gaps between them): **${fmtNum(profile.orchestrationShare * 100, 1)} %** of this migration. Local activities run in the orchestrator's workflow tasks but are counted as the work they do.`]
      : []),
  ].join('\n');
}

function serviceState(rows: readonly BenchRow[]): string {
  const rateSizes = distinct(rows.filter((r) => r.sweep === 'rate').map((r) => r.state_bytes)).sort((a, b) => a - b);
  const stateSizes = distinct(rows.filter((r) => r.sweep === 'state').map((r) => r.state_bytes)).sort((a, b) => a - b);
  const parts = [];
  if (rateSizes.length) parts.push(`${rateSizes.map(fmtBytes).join(', ')} of state in the rate sweep`);
  if (stateSizes.length) parts.push(`${stateSizes.map(fmtBytes).join(', ')} in the state-size sweep`);
  return parts.join(' and ') || 'its state';
}

/** The service flat out on a backlog, against the bound its work alone sets (1000 / work ms). */
export const CAPACITY_HEAD = ['work ms per message', 'msg/s', 'bound msg/s', 'of the bound'];

export function capacityRows(capacity: Record<number, number>): string[][] {
  return Object.entries(capacity)
    .map(([w, c]) => [Number(w), c] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([w, c]) => [String(w), fmtNum(c), w > 0 ? fmtNum(Math.round(1000 / w)) : '–', w > 0 ? `${Math.round((c * w) / 10)} %` : '–']);
}

export function capacitySection(capacity: Record<number, number>): string {
  return (
    'Messages per second the example service processes flat out on a backlog (apply, publish the output with confirms, ' +
    'acknowledge), measured before the grid; *bound*: what its work alone allows. Every capacity run is accounted like a ' +
    'migration (0 lost, 0 duplicated, 0 duplicate outputs, final state = the producer\'s log), or the benchmark stops.\n\n' +
    mdTable(CAPACITY_HEAD, capacityRows(capacity))
  );
}

export const limitsHead = (severalMechanisms: boolean): string[] => ['state', ...mechHead(severalMechanisms), 'what', 'limit', 'in the migration (median)', 'ratio'];

/** MB/s as the limits give it (MiB per second); NaN for a phase of no measured length, which the median leaves out. */
const mbPerS = (bytes: number, ms: number): number => (ms > 0 ? bytes / 1048576 / (ms / 1000) : Number.NaN);

/**
 * Each migration figure against the same thing done bare on this machine, per state size and mechanism:
 * the checkpoint phase against a bare criu dump and the freeze against that dump's own frozen time, the
 * transfer phase (and the lazy phase, which moves the pages left behind) against reading, hashing and
 * writing the image once, the restore phase against a bare criu restore, the downtime in broker round
 * trips. From the completed shadow runs of each size and mechanism.
 */
export function limitsTable(limits: readonly Limits[], rows: readonly BenchRow[]): { head: string[]; body: string[][] } {
  const shadowRuns = rows.filter((r) => r.strategy === 'shadow');
  const found = mechanismsIn(shadowRuns.length ? shadowRuns : rows);
  const mechanisms = found.length ? found : (['files'] as Mechanism[]);
  const several = mechanisms.length > 1;
  const body: string[][] = [];
  for (const l of [...limits].sort((a, b) => a.stateBytes - b.stateBytes)) {
    for (const m of mechanisms) {
      const runs = shadowRuns.filter((r) => r.outcome === 'completed' && r.state_bytes === l.stateBytes && r.mechanism === m);
      for (const cells of limitRows(l, m, runs)) body.push([fmtBytes(l.stateBytes), ...mechCell(several, { mechanism: m }), ...cells]);
    }
  }
  return { head: limitsHead(several), body };
}

/** what, limit, ours, ratio: the lines of one state size and mechanism. */
function limitRows(l: Limits, mechanism: Mechanism, runs: readonly BenchRow[]): string[][] {
  const med = (f: (r: BenchRow) => number): number | null => {
    const xs = runs.map(f).filter(Number.isFinite);
    return xs.length ? median(xs) : null;
  };
  const ratio = (ours: number | null, limit: number) => (ours === null ? '–' : `${fmtNum(ours / limit, 1)}×`);
  const ms = (x: number | null) => (x === null ? '–' : `${fmtMs(x)} ms`);
  const copyHash = `${fmtMs(l.copyHashMs)} ms (${fmtNum(l.copyHashMBps, 0)} MB/s)`;
  const out: string[][] = [];
  const checkpoint = med((r) => r.checkpoint_ms);
  out.push(['checkpoint vs bare criu dump', `${fmtMs(l.dumpMs)} ms (${fmtBytes(l.imageBytes)} image)`, ms(checkpoint), ratio(checkpoint, l.dumpMs)]);
  // Runs measured before the bare dump's frozen time was recorded have no limit to set the freeze against.
  if (l.dumpFrozenMs !== undefined) {
    const freeze = med((r) => r.freeze_ms);
    out.push(["freeze vs the bare dump's frozen time", `${fmtMs(l.dumpFrozenMs)} ms`, ms(freeze), ratio(freeze, l.dumpFrozenMs)]);
  }
  // Effective: the whole image over the phase, although with stream or lazy part of it moves in another phase.
  const transfer = med((r) => r.transfer_ms);
  const mbps = med((r) => mbPerS(r.checkpoint_bytes, r.transfer_ms));
  const elsewhere: string[] = [];
  if (mechanism.startsWith('stream')) elsewhere.push(`the pages, ${fmtBytes(med((r) => r.streamed_bytes) ?? 0)}, travel inside the checkpoint phase`);
  if (mechanism.endsWith('lazy')) elsewhere.push(`${fmtBytes(med((r) => r.lazy_bytes) ?? 0)} left for the lazy phase`);
  const transferCell = transfer === null ? '–' : `${fmtMs(transfer)} ms (${mbps === null ? '–' : fmtNum(mbps, 0)} MB/s${elsewhere.map((e) => `; ${e}`).join('')})`;
  out.push(['transfer phase vs copy + SHA-256 of the image', copyHash, transferCell, ratio(transfer, l.copyHashMs)]);
  const restore = med((r) => r.restore_ms);
  out.push(['restore vs bare criu restore', `${fmtMs(l.restoreMs)} ms`, ms(restore), ratio(restore, l.restoreMs)]);
  if (mechanism.endsWith('lazy')) {
    const lazy = med((r) => r.lazy_ms);
    const lazyMbps = med((r) => mbPerS(r.lazy_bytes, r.lazy_ms));
    out.push(['lazy phase vs copy + SHA-256 of the image', copyHash, lazy === null ? '–' : `${fmtMs(lazy)} ms (${lazyMbps === null ? '–' : fmtNum(lazyMbps, 0)} MB/s)`, ratio(lazy, l.copyHashMs)]);
  }
  const downtime = med((r) => r.downtime_ms);
  out.push(['downtime vs one RabbitMQ round trip', `${fmtNum(l.rabbitRttMs, 2)} ms`, ms(downtime), ratio(downtime, l.rabbitRttMs)]);
  return out;
}

export function limitsSection(limits: readonly Limits[], rows: readonly BenchRow[]): string {
  const t = limitsTable(limits, rows);
  return (
    'What this machine does bare, measured in the same run: a process holding the same state alone in a PID namespace, ' +
    'with no broker connection, agent or workflow, dumped and restored by criu (*frozen time*: what criu --display-stats ' +
    'reports for that dump); its image read once in 4 MiB chunks, hashed with SHA-256 and written once, on the disk the agents ' +
    'keep their images on (the best case of any transfer); a publish → get on one channel, median of 200. Each migration ' +
    'figure of the shadow runs is a ratio to it; the phases include Temporal dispatch. MB/s of the transfer phase: the whole ' +
    'checkpoint over the phase, although with `stream` the pages travel inside the checkpoint phase and with `lazy` the pages ' +
    'left on the source come in the lazy phase, beside the replay.\n\n' +
    mdTable(t.head, t.body)
  );
}

export function renderMarkdownReport(input: ReportInput, reportDir = '.'): string {
  const rate = input.summary.filter((g) => g.sweep === 'rate');
  const state = input.summary.filter((g) => g.sweep === 'state');
  const ran = STRATEGIES.filter((s) => input.rows.some((r) => r.strategy === s));
  const mechanisms = mechanismsIn(input.rows);
  const several = mechanisms.length > 1;
  const title = `# ms2m benchmark: ${ran.join(' vs ')}${several ? `; ${mechanisms.join(', ')}` : ''}`;
  const out: string[] = [title, '', '## What was run', '', whatWasRun(input.rows, input.machine, input.service), ''];
  out.push(
    '## Medians',
    '',
    'Times in ms; median (min–max) over completed runs. *Downtime*: from the source no longer consuming to the copy consuming, ' +
      'by the instances\' own clocks. *Observed downtime*: the longest a published message waited unserved, from the output log. ' +
      '*Freeze*: how long CRIU kept the source frozen for the dump. lost/dup/dup-out: messages lost, applied twice, and outputs ' +
      'emitted twice, summed over all runs. ' +
      '\\* marks the rate above the service\'s capacity. ' +
      (several ? '*Mechanism*: how the image moved (see above).' : `Every run moved its image by \`${mechanisms[0] ?? 'files'}\`.`),
    '',
  );
  if (rate.length) out.push('### Rate sweep', '', rateTable(rate, several), '');
  if (state.length) out.push('### State-size sweep', '', stateTable(state, several), '');
  out.push(
    '## Shadow vs stop-and-copy',
    '',
    `Ratio = shadow median / stop-and-copy median; change = ratio − 1${several ? '; each mechanism against the stop-and-copy runs of the same mechanism' : ''}.`,
    '',
    ratioTable(input.ratios, several),
    '',
  );
  const cmp = mechanismComparison(input.summary);
  if (cmp) out.push('## Mechanisms side by side', '', `${MECHANISM_COMPARISON_CAPTION}.`, '', mdTable(cmp.head, cmp.body), '');
  out.push('## Loss accounting', '', lossAccounting(input.rows), '');
  if (input.capacity && Object.keys(input.capacity).length) out.push('## Capacity of the service', '', capacitySection(input.capacity), '');
  if (input.limits?.length) out.push('## Against the machine\'s limits', '', limitsSection(input.limits, input.rows), '');
  out.push('## Plots', '', plotsSection(input.plots, reportDir), '');
  if (input.profile) out.push('## Where the time goes', '', profileSection(input.profile), '');
  out.push(
    '## Compared with the papers',
    '',
    ...(several ? [`From the \`${mechanisms[0]}\` runs, except where a line names a mechanism.`, ''] : []),
    mdTable(['source', 'setting', 'published', 'ours (from these runs)'], paperComparison(input).map((p) => [p.source, p.setting, p.published, p.ours])),
    '',
    'These are not like-for-like, and not the same machine. ' +
      (input.runtime === 'kubernetes'
        ? 'Ours ran on one host: a two-node test cluster whose kubelets, containerd, runc and CRIU share one VM, the service as a pod, '
        : 'Ours ran on one host, with the service as plain processes rather than containers or pods, ') +
      `and the service is a small Node.js process holding ${serviceState(input.rows)}; the papers ` +
      'migrate containers between machines over a network, with their own load, message rates and downtime probes ' +
      '(SHADOW measures downtime with an HTTP probe, we measure the time no instance consumes the queue). Read the table as orders ' +
      'of magnitude and directions of change, not as a ranking.',
    '',
  );
  return out.join('\n');
}

export function writeMarkdownReport(file: string, input: ReportInput): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, renderMarkdownReport(input, path.dirname(path.resolve(file))));
}
