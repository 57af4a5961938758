import Table from 'cli-table3';
import { MECHANISM_LABELS } from '../lib/migration';
import type { BenchRow } from './types';

export type Strategy = BenchRow['strategy'];
export type Sweep = BenchRow['sweep'];
export type Mechanism = BenchRow['mechanism'];

/** What each mechanism does, for captions: the labels alone say little to a reader of the report. */
export const MECHANISM_NOTES: Record<Mechanism, string> = {
  files: 'the image dumped to files, then sent',
  stream: 'the pages streamed to the target during the dump',
  lazy: 'post-copy: the copy restored before its pages arrive, fetching them from the source while it replays',
  'stream+lazy': 'the pages streamed during the dump, and the copy restored before they are all in',
};

/**
 * Stop-and-copy first: it is the baseline every other number is read against (for a StatefulSet's pod,
 * sequential is).
 */
export const STRATEGIES: readonly Strategy[] = ['stop-and-copy', 'shadow', 'sequential', 'shadow-swap'];

/** The migration phases in the order they run. */
export const PHASES = [
  'validate_ms', 'prepare_ms', 'checkpoint_ms', 'transfer_ms', 'restore_ms', 'replay_ms', 'fence_ms', 'finalize_ms',
] as const satisfies ReadonlyArray<keyof BenchRow>;

export const METRICS = [
  'total_ms', 'downtime_ms', 'observed_downtime_ms', ...PHASES, 'freeze_ms', 'checkpoint_bytes',
  'max_e2e_latency_ms', 'p99_e2e_latency_ms', 'streamed_bytes', 'lazy_bytes', 'lazy_ms', 'dump_ms', 'transfer_tool_ms',
  'restore_tool_ms',
] as const satisfies ReadonlyArray<keyof BenchRow>;
export type Metric = (typeof METRICS)[number];

export interface Stat {
  median: number;
  min: number;
  max: number;
}

/** One cell of the grid: every run of one strategy and mechanism at one rate, state size and processing cost. */
export interface SummaryGroup {
  sweep: Sweep;
  strategy: Strategy;
  mechanism: Mechanism;
  msg_rate: number;
  state_bytes: number;
  /** Part of the key because the bench can make it a grid dimension; usually one value. */
  work_ms: number;
  above_capacity: boolean;
  /** Completed runs: the only ones that enter the statistics. */
  n: number;
  /** Runs that rolled back or failed. */
  notCompleted: number;
  /** Null when no run of the group completed. */
  stats: Record<Metric, Stat | null>;
  // Message counts are summed over every run, completed or not: a message lost by a rolled-back run is still lost.
  published: number;
  lost: number;
  duplicated: number;
  duplicate_outputs: number;
  /** Over completed runs only: a run that did not finish has no migrated state to compare. */
  stateMatchAll: boolean;
  /** Completed runs whose replay was ended by the cutoff rather than by catching up. */
  cutoffFired: number;
}

export type Summary = SummaryGroup[];

export interface RatioPair {
  shadow: number;
  stopAndCopy: number;
  /** shadow / stop-and-copy; null when the baseline median is 0. */
  ratio: number | null;
  /** (1 − ratio) × 100: positive when shadow is faster. */
  reductionPct: number | null;
}

export interface RatioRow {
  /** Both strategies moved their image this way: each mechanism has its own baseline. */
  mechanism: Mechanism;
  msg_rate: number;
  state_bytes: number;
  work_ms: number;
  above_capacity: boolean;
  total: RatioPair;
  downtime: RatioPair;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Non-finite values (a metric a run could not measure, written as NaN) are left out rather than poisoning the median. */
export function stat(values: readonly number[]): Stat | null {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v) };
}

const groupKey = (r: Pick<BenchRow, 'sweep' | 'strategy' | 'mechanism' | 'msg_rate' | 'state_bytes' | 'work_ms'>): string =>
  `${r.sweep}|${r.strategy}|${r.mechanism}|${r.msg_rate}|${r.state_bytes}|${r.work_ms}`;

/** The order mechanisms are listed in: the baseline (files) first, as strategies list stop-and-copy first. */
export const mechanismOrder = (m: Mechanism): number => MECHANISM_LABELS.indexOf(m);

const sweepOrder = (s: Sweep): number => (s === 'rate' ? 0 : 1);

export function summarize(rows: readonly BenchRow[]): Summary {
  const groups = new Map<string, BenchRow[]>();
  for (const r of rows) {
    const k = groupKey(r);
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  const summary: Summary = [];
  for (const runs of groups.values()) {
    const first = runs[0];
    const done = runs.filter((r) => r.outcome === 'completed');
    const stats = Object.fromEntries(METRICS.map((m) => [m, stat(done.map((r) => r[m]))])) as Record<Metric, Stat | null>;
    const sum = (f: (r: BenchRow) => number): number => runs.reduce((a, r) => a + f(r), 0);
    summary.push({
      sweep: first.sweep,
      strategy: first.strategy,
      mechanism: first.mechanism,
      msg_rate: first.msg_rate,
      state_bytes: first.state_bytes,
      work_ms: first.work_ms,
      above_capacity: runs.some((r) => r.above_capacity),
      n: done.length,
      notCompleted: runs.length - done.length,
      stats,
      published: sum((r) => r.published),
      lost: sum((r) => r.lost),
      duplicated: sum((r) => r.duplicated),
      duplicate_outputs: sum((r) => r.duplicate_outputs),
      stateMatchAll: done.every((r) => r.state_match),
      cutoffFired: done.filter((r) => r.cutoff_fired).length,
    });
  }
  return summary.sort(
    (a, b) =>
      sweepOrder(a.sweep) - sweepOrder(b.sweep) ||
      a.work_ms - b.work_ms ||
      a.state_bytes - b.state_bytes ||
      a.msg_rate - b.msg_rate ||
      STRATEGIES.indexOf(a.strategy) - STRATEGIES.indexOf(b.strategy) ||
      mechanismOrder(a.mechanism) - mechanismOrder(b.mechanism),
  );
}

function pair(shadow: Stat, stopAndCopy: Stat): RatioPair {
  const ratio = stopAndCopy.median === 0 ? null : shadow.median / stopAndCopy.median;
  return { shadow: shadow.median, stopAndCopy: stopAndCopy.median, ratio, reductionPct: ratio === null ? null : (1 - ratio) * 100 };
}

/**
 * Shadow against stop-and-copy at each rate of the rate sweep where both have completed runs, per
 * mechanism: a mechanism changes both strategies' transfer, so each is read against its own baseline.
 */
export function ratios(summary: Summary): RatioRow[] {
  const out: RatioRow[] = [];
  for (const s of summary) {
    if (s.sweep !== 'rate' || s.strategy !== 'shadow') continue;
    const base = summary.find(
      (b) =>
        b.sweep === 'rate' && b.strategy === 'stop-and-copy' && b.mechanism === s.mechanism && b.msg_rate === s.msg_rate &&
        b.state_bytes === s.state_bytes && b.work_ms === s.work_ms,
    );
    const [st, sd, bt, bd] = [s.stats.total_ms, s.stats.downtime_ms, base?.stats.total_ms, base?.stats.downtime_ms];
    if (!st || !sd || !bt || !bd) continue;
    out.push({
      mechanism: s.mechanism,
      msg_rate: s.msg_rate,
      state_bytes: s.state_bytes,
      work_ms: s.work_ms,
      above_capacity: s.above_capacity || (base?.above_capacity ?? false),
      total: pair(st, bt),
      downtime: pair(sd, bd),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting shared with the report.

/** Thousands separators by hand: toLocaleString depends on the ICU build Node was compiled with. */
export function fmtNum(x: number, digits = 0): string {
  const [int, frac] = Math.abs(x).toFixed(digits).split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${x < 0 && Number(Math.abs(x).toFixed(digits)) !== 0 ? '−' : ''}${grouped}${frac ? `.${frac}` : ''}`;
}

/** Milliseconds: one decimal below 10 ms, where a whole number would hide the difference. */
export function fmtMs(x: number): string {
  return fmtNum(x, Math.abs(x) < 10 && x !== 0 ? 1 : 0);
}

export function fmtStat(s: Stat | null, fmt: (x: number) => string = fmtMs): string {
  if (!s) return '–';
  return s.min === s.max ? fmt(s.median) : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}

/** Binary units, because the bench sizes state in MiB (--state-mb × 1024²). */
export function fmtBytes(b: number): string {
  const units: Array<[number, string]> = [[2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
  for (const [size, unit] of units) {
    if (b >= size) return `${fmtNum(b / size, b % size === 0 ? 0 : 1)} ${unit}`;
  }
  return `${b} B`;
}

export function fmtRate(g: { msg_rate: number; above_capacity: boolean }): string {
  return `${g.msg_rate}${g.above_capacity ? '*' : ''}`;
}

export function fmtPct(p: number | null): string {
  return p === null ? '–' : `${fmtNum(p, 1)} %`;
}

/** A reduction shown as a signed change, as the papers write it: −19.9 % is shadow 19.9 % below stop-and-copy. */
export function fmtChange(reductionPct: number | null): string {
  if (reductionPct === null) return '–';
  const change = -reductionPct;
  return `${change > 0 ? '+' : ''}${fmtNum(change, 1)} %`;
}

export function fmtRatio(r: number | null): string {
  return r === null ? '–' : `${r.toFixed(2)}×`;
}

const fmtN = (g: SummaryGroup): string => (g.notCompleted ? `${g.n} (+${g.notCompleted} not completed)` : `${g.n}`);
const fmtLoss = (g: SummaryGroup): string => `${g.lost}/${g.duplicated}/${g.duplicate_outputs}${g.stateMatchAll ? '' : ' state≠'}`;

const distinct = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

/** The mechanisms among `xs`, the baseline first. */
export function mechanismsIn(xs: ReadonlyArray<{ mechanism: Mechanism }>): Mechanism[] {
  return distinct(xs.map((x) => x.mechanism)).sort((a, b) => mechanismOrder(a) - mechanismOrder(b));
}

/**
 * The mechanism as a caption says it when every row shares one (the tables then have no column for it),
 * or '' when there are several.
 */
export function oneMechanism(xs: ReadonlyArray<{ mechanism: Mechanism }>): string {
  const ms = mechanismsIn(xs);
  return ms.length === 1 ? `mechanism ${ms[0]}` : '';
}

const medianCell = (g: SummaryGroup, m: Metric): string => (g.stats[m] ? fmtMs(g.stats[m]!.median) : '–');

function groupTable(groups: readonly SummaryGroup[], withState: boolean, withMechanism: boolean): string {
  // A column that would repeat one value on every line is said once in the caption instead.
  const withWork = distinct(groups.map((g) => g.work_ms)).length > 1;
  const t = new Table({
    head: [
      'strategy', ...(withMechanism ? ['mechanism'] : []), 'rate', ...(withState ? ['state'] : []), ...(withWork ? ['work ms'] : []), 'n',
      'total ms median (min–max)', 'downtime ms median (min–max)', 'freeze ms', 'lost/dup/dup-out',
    ],
    style: { head: [], border: [], compact: true },
  });
  for (const g of groups) {
    t.push([
      g.strategy, ...(withMechanism ? [g.mechanism] : []), fmtRate(g), ...(withState ? [fmtBytes(g.state_bytes)] : []),
      ...(withWork ? [String(g.work_ms)] : []), fmtN(g), fmtStat(g.stats.total_ms), fmtStat(g.stats.downtime_ms), medianCell(g, 'freeze_ms'),
      fmtLoss(g),
    ]);
  }
  return t.toString();
}

/**
 * The mechanisms side by side at each state size of the state-size sweep (medians, ms), or null when the
 * sweep ran fewer than two. `lazy phase`: from the restore to the last page in; it overlaps the replay,
 * and the fence waits for its end.
 */
export function mechanismComparison(summary: Summary): { head: string[]; body: string[][] } | null {
  const groups = summary.filter((g) => g.sweep === 'state');
  if (mechanismsIn(groups).length < 2) return null;
  const withStrategy = distinct(groups.map((g) => g.strategy)).length > 1;
  const head = [
    'state', ...(withStrategy ? ['strategy'] : []), 'mechanism', 'n', 'total', 'freeze', 'checkpoint', 'transfer', 'restore', 'lazy phase',
    'downtime', 'observed downtime',
  ];
  // By size first, so the mechanisms of one size and strategy stand on adjacent lines.
  const sorted = [...groups].sort(
    (a, b) =>
      a.state_bytes - b.state_bytes || STRATEGIES.indexOf(a.strategy) - STRATEGIES.indexOf(b.strategy) ||
      mechanismOrder(a.mechanism) - mechanismOrder(b.mechanism) || a.msg_rate - b.msg_rate,
  );
  const body = sorted.map((g) => [
    fmtBytes(g.state_bytes), ...(withStrategy ? [g.strategy] : []), g.mechanism, fmtN(g), medianCell(g, 'total_ms'),
    medianCell(g, 'freeze_ms'), medianCell(g, 'checkpoint_ms'), medianCell(g, 'transfer_ms'), medianCell(g, 'restore_ms'),
    g.mechanism.endsWith('lazy') ? medianCell(g, 'lazy_ms') : '–', medianCell(g, 'downtime_ms'), medianCell(g, 'observed_downtime_ms'),
  ]);
  return { head, body };
}

export const MECHANISM_COMPARISON_CAPTION =
  'Mechanisms side by side in the state-size sweep (medians, ms; lazy phase: from the restore to the last page in, beside the replay; ' +
  'with stream the pages travel inside the checkpoint phase)';

export function formatSummaryTable(summary: Summary, ratioRows: readonly RatioRow[]): string {
  const parts: string[] = [];
  const rate = summary.filter((g) => g.sweep === 'rate');
  const state = summary.filter((g) => g.sweep === 'state');
  const work = (gs: readonly SummaryGroup[]): string => distinct(gs.map((g) => g.work_ms)).map((w) => `${w}`).join(', ');
  // One mechanism is said in the caption; several get a column.
  const one = oneMechanism(summary);
  const withMechanism = !one;
  const mechanism = one ? `, ${one}` : '';
  if (rate.length) {
    const sizes = distinct(rate.map((g) => g.state_bytes)).map(fmtBytes).join(', ');
    parts.push(`Rate sweep: state ${sizes}, work ${work(rate)} ms/msg${mechanism}; rate in msg/s, * = above capacity`, groupTable(rate, false, withMechanism));
  }
  if (state.length) parts.push(`State-size sweep: work ${work(state)} ms/msg${mechanism}`, groupTable(state, true, withMechanism));
  if (ratioRows.length) {
    const withWork = distinct(ratioRows.map((r) => r.work_ms)).length > 1;
    const t = new Table({
      head: [
        ...(withMechanism ? ['mechanism'] : []), 'rate', ...(withWork ? ['work ms'] : []), 'total shadow / s&c', 'total change',
        'downtime shadow / s&c', 'downtime change',
      ],
      style: { head: [], border: [], compact: true },
    });
    for (const r of ratioRows) {
      t.push([
        ...(withMechanism ? [r.mechanism] : []), fmtRate(r), ...(withWork ? [String(r.work_ms)] : []),
        `${fmtMs(r.total.shadow)} / ${fmtMs(r.total.stopAndCopy)} = ${fmtRatio(r.total.ratio)}`, fmtChange(r.total.reductionPct),
        `${fmtMs(r.downtime.shadow)} / ${fmtMs(r.downtime.stopAndCopy)} = ${fmtRatio(r.downtime.ratio)}`, fmtChange(r.downtime.reductionPct),
      ]);
    }
    parts.push(`Shadow vs stop-and-copy (medians, ms; change = shadow / stop-and-copy − 1${withMechanism ? '; each mechanism against its own stop-and-copy' : ''})`, t.toString());
  }
  const cmp = mechanismComparison(summary);
  if (cmp) {
    const t = new Table({ head: cmp.head, style: { head: [], border: [], compact: true } });
    for (const row of cmp.body) t.push(row);
    parts.push(MECHANISM_COMPARISON_CAPTION, t.toString());
  }
  return parts.join('\n');
}
