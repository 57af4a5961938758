/**
 * PNG plots of a benchmark: vega-lite specs compiled to vega, rendered to SVG without a browser or canvas,
 * then rasterised by resvg with fonts from disk, so the same pictures come out on any Linux host.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TopLevelSpec } from 'vega-lite' with { 'resolution-mode': 'import' };
import { MECHANISM_LABELS } from '../lib/migration';
import { fmtBytes, fmtNum, mechanismOrder, mechanismsIn, PHASES, STRATEGIES, summarize, type Mechanism, type Metric, type SummaryGroup } from './summary';
import type { BenchRow } from './types';

const FONT = 'DejaVu Sans';
const FONT_DIR = '/usr/share/fonts/truetype/dejavu';
const STRATEGY_COLORS = ['#e45756', '#4c78a8'];
/** vega-lite's width/height are the plot area; this leaves room for axes, title and legend in about 900 × 500. */
const PLOT_W = 660;
const PLOT_H = 340;
/** Rasterise at twice the SVG size so text stays sharp when the PNG is scaled down for viewing. */
const ZOOM = 2;

const CONFIG = {
  font: FONT,
  background: 'white',
  padding: 16,
  title: { fontSize: 18, subtitleFontSize: 13, subtitleColor: '#444', anchor: 'start', offset: 12 },
  axis: { labelFontSize: 13, titleFontSize: 14, titlePadding: 10, gridColor: '#e6e6e6' },
  // Limits wide enough for a series such as "stop-and-copy, stream+lazy" (vega cuts labels at 160 px).
  legend: { labelFontSize: 13, titleFontSize: 14, symbolSize: 120, symbolOpacity: 1, labelLimit: 300, titleLimit: 300 },
  header: { labelFontSize: 14, titleFontSize: 14 },
} as const;

const PHASE_LABEL: Record<(typeof PHASES)[number], string> = {
  validate_ms: 'validate', prepare_ms: 'prepare', checkpoint_ms: 'checkpoint', transfer_ms: 'transfer',
  restore_ms: 'restore', replay_ms: 'replay', fence_ms: 'fence', finalize_ms: 'finalize',
};

interface Unit {
  div: number;
  name: string;
}
/** Seconds once values reach ten thousand ms: long tick labels in ms are harder to read than a unit change. */
const unitFor = (maxMs: number): Unit => (maxMs >= 10_000 ? { div: 1000, name: 's' } : { div: 1, name: 'ms' });

/** A log axis only when the values span more than `decades` decades and none is zero (log(0) has no place). */
function wantsLog(values: number[], decades = 1.3): boolean {
  const pos = values.filter((v) => v > 0);
  return pos.length === values.length && pos.length > 1 && Math.log10(Math.max(...pos) / Math.min(...pos)) > decades;
}

/**
 * A log scale hugging the data: vega's default rounds out to whole decades, which can leave most of the
 * plot empty (0.1 … 1,000 s for data between 0.8 and 120 s).
 */
function logScale(values: number[]) {
  return { type: 'log', nice: false, domain: [Math.min(...values) / 1.25, Math.max(...values) * 1.25] } as const;
}

/** One line per strategy, and per mechanism and processing cost when the grid had more than one. */
function seriesOf(groups: readonly SummaryGroup[]): (g: SummaryGroup) => string {
  const severalWork = new Set(groups.map((g) => g.work_ms)).size > 1;
  const severalMechanisms = mechanismsIn(groups).length > 1;
  return (g) => [g.strategy, ...(severalMechanisms ? [g.mechanism] : []), ...(severalWork ? [`${g.work_ms} ms/msg`] : [])].join(', ');
}

/** The legend's title, naming what the series tell apart. */
function seriesTitle(groups: readonly SummaryGroup[]): string {
  return mechanismsIn(groups).length > 1 ? 'strategy, mechanism' : 'strategy';
}

/** Fixed colours per mechanism, in MECHANISM_LABELS order (files, stream, lazy, stream+lazy). */
const MECHANISM_COLORS = ['#4c78a8', '#f58518', '#54a24b', '#b279a2'];

const PALETTE = ['#f58518', '#54a24b', '#b279a2', '#9d755d', '#72b7b2', '#eeca3b', '#ff9da6', '#bab0ac'];

/**
 * Fixed colours per strategy keep the plots consistent with each other; extra series (a work grid, or
 * several mechanisms) get others, each its own as long as there are colours, the strategy's among them
 * when no series is a strategy alone. Ordered by strategy, then mechanism (baseline first).
 */
function strategyScale(series: string[]) {
  const parts = (s: string) => s.split(', ');
  const rank = (s: string) => STRATEGIES.findIndex((st) => parts(s)[0] === st);
  const mechanismRank = (s: string) => {
    const m = parts(s).find((p) => (MECHANISM_LABELS as readonly string[]).includes(p));
    return m ? mechanismOrder(m as Mechanism) : -1;
  };
  const domain = [...new Set(series)].sort((a, b) => rank(a) - rank(b) || mechanismRank(a) - mechanismRank(b) || a.localeCompare(b));
  // One strategy in several mechanisms: the mechanisms' own colours, as in the plots by mechanism.
  const oneStrategy = new Set(domain.map((d) => parts(d)[0])).size === 1;
  const byMechanism = new Set(domain.map(mechanismRank));
  if (oneStrategy && !byMechanism.has(-1) && byMechanism.size === domain.length) {
    return { domain, range: domain.map((d) => MECHANISM_COLORS[mechanismRank(d)]) };
  }
  const alone = domain.some((d) => (STRATEGIES as readonly string[]).includes(d));
  const others = alone ? PALETTE : [...STRATEGY_COLORS, ...PALETTE];
  let next = 0;
  const range = domain.map((d) => {
    const exact = (STRATEGIES as readonly string[]).indexOf(d);
    return (exact >= 0 ? STRATEGY_COLORS[exact] : undefined) ?? others[next++ % others.length];
  });
  return { domain, range };
}

/** Median with min–max whiskers against the message rate, one coloured series per strategy. */
function vsRateSpec(groups: readonly SummaryGroup[], metric: Metric, title: string, what: string): TopLevelSpec | null {
  const series = seriesOf(groups);
  const withData = groups.filter((g) => g.stats[metric]);
  if (!withData.length) return null;
  const unit = unitFor(Math.max(...withData.map((g) => g.stats[metric]!.max)));
  const rates = [...new Set(withData.map((g) => g.msg_rate))].sort((a, b) => a - b);
  const label = (r: number) => `${r}${withData.some((g) => g.msg_rate === r && g.above_capacity) ? '*' : ''}`;
  const values = withData.map((g) => {
    const s = g.stats[metric]!;
    return { series: series(g), rate: label(g.msg_rate), median: s.median / unit.div, min: s.min / unit.div, max: s.max / unit.div };
  });
  const log = wantsLog(values.flatMap((v) => [v.min, v.max]));
  const aboveCapacity = withData.some((g) => g.above_capacity);
  const subtitle = [
    `median of completed runs, whiskers min–max${log ? '; log scale' : ''}`,
    ...(aboveCapacity ? ['* rate above the service\'s processing capacity'] : []),
  ];
  // Rates as evenly spaced categories: the grid is uneven (10, 20, 40 …) and the overload rate lies far to the right.
  const x = {
    field: 'rate', type: 'ordinal', sort: rates.map(label), title: 'message rate (msg/s)',
    axis: { labelAngle: 0 }, scale: { paddingInner: 0.6, paddingOuter: 0.3 },
  } as const;
  const y = {
    type: 'quantitative', title: `${what} (${unit.name})`,
    scale: log ? logScale(values.flatMap((v) => [v.min, v.max])) : { zero: true },
  } as const;
  const color = { field: 'series', type: 'nominal', title: seriesTitle(withData), scale: strategyScale(values.map((v) => v.series)) } as const;
  // Both strategies sit at the same rates: shift them slightly apart so their whiskers do not hide each other.
  const xOffset = { field: 'series', type: 'nominal', scale: { paddingInner: 0.3 } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle },
    width: PLOT_W,
    height: PLOT_H,
    config: CONFIG,
    data: { values },
    encoding: { x, color },
    layer: [
      ...whiskers(xOffset, y),
      { mark: { type: 'line', strokeWidth: 2.5 }, encoding: { xOffset, y: { ...y, field: 'median' } } },
      { mark: { type: 'point', filled: true, size: 70, opacity: 1 }, encoding: { xOffset, y: { ...y, field: 'median' } } },
    ],
  } as TopLevelSpec;
}

/** The rate of the phase breakdown: 60 msg/s, or the measured rate closest to it. */
export function phaseRate(groups: readonly SummaryGroup[], target = 60): number | null {
  const rates = [...new Set(groups.filter((g) => g.n > 0).map((g) => g.msg_rate))];
  if (!rates.length) return null;
  return rates.sort((a, b) => Math.abs(a - target) - Math.abs(b - target) || a - b)[0];
}

function phasesSpec(groups: readonly SummaryGroup[]): TopLevelSpec | null {
  const rate = phaseRate(groups);
  if (rate === null) return null;
  const at = groups.filter((g) => g.msg_rate === rate && g.n > 0);
  const series = seriesOf(at);
  const sums = at.map((g) => PHASES.reduce((a, p) => a + (g.stats[p]?.median ?? 0), 0));
  const unit = unitFor(Math.max(...sums));
  const values = at.flatMap((g) =>
    PHASES.map((p, order) => ({ series: series(g), phase: PHASE_LABEL[p], order, ms: (g.stats[p]?.median ?? 0) / unit.div })),
  );
  const totals = at.map((g, i) => ({
    series: series(g),
    sum: sums[i] / unit.div,
    label: ` ${fmtNum(sums[i] / unit.div, unit.div === 1 ? 0 : 1)} ${unit.name} (n=${g.n})`,
  }));
  // Room for a label such as "stop-and-copy, stream+lazy", which vega would cut at 180 px.
  const y = { field: 'series', type: 'nominal', title: null, sort: totals.map((t) => t.series), axis: { labelFontSize: 14, labelLimit: 300 } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `Where the migration time goes at ${rate} msg/s`,
      subtitle: 'median of each phase over completed runs, stacked in the order the phases run; label: sum of the medians',
    },
    width: PLOT_W - 120,
    height: Math.max(140, 90 * at.length),
    config: CONFIG,
    layer: [
      {
        data: { values },
        mark: { type: 'bar', stroke: 'white', strokeWidth: 0.5 },
        encoding: {
          y,
          // Headroom past the longest bar for its label, which would otherwise run into the legend.
          x: {
            field: 'ms', type: 'quantitative', stack: 'zero', title: `time (${unit.name})`,
            scale: { domain: [0, (Math.max(...sums) / unit.div) * 1.25] },
          },
          color: { field: 'phase', type: 'nominal', title: 'phase', sort: PHASES.map((p) => PHASE_LABEL[p]), scale: { scheme: 'tableau10' } },
          order: { field: 'order', type: 'quantitative' },
        },
      },
      {
        data: { values: totals },
        mark: { type: 'text', align: 'left', baseline: 'middle', fontSize: 13, dx: 4 },
        encoding: { y, x: { field: 'sum', type: 'quantitative' }, text: { field: 'label' } },
      },
    ],
  } as TopLevelSpec;
}

const STATE_METRICS = [
  ['checkpoint_ms', 'checkpoint'],
  ['transfer_ms', 'transfer'],
  ['restore_ms', 'restore'],
] as const;

function stateSpec(groups: readonly SummaryGroup[]): TopLevelSpec | null {
  const withData = groups.filter((g) => g.n > 0);
  if (!withData.length) return null;
  const series = seriesOf(withData);
  const unit = unitFor(Math.max(...withData.flatMap((g) => STATE_METRICS.map(([m]) => g.stats[m]?.max ?? 0))));
  const values = withData.flatMap((g) =>
    STATE_METRICS.map(([m, phase]) => ({
      series: series(g),
      phase,
      mib: g.state_bytes / 2 ** 20,
      median: (g.stats[m]?.median ?? 0) / unit.div,
      min: (g.stats[m]?.min ?? 0) / unit.div,
      max: (g.stats[m]?.max ?? 0) / unit.div,
    })),
  );
  const sizes = [...new Set(values.map((v) => v.mib))].sort((a, b) => a - b);
  const logX = wantsLog(sizes, 0.9);
  // Times scale with the size, so when the sizes span decades so do the times: log–log keeps the small sizes visible.
  const logY = logX && wantsLog(values.flatMap((v) => [v.min, v.max]), 0.9);
  const rates = [...new Set(withData.map((g) => g.msg_rate))].join(', ');
  const x = {
    field: 'mib', type: 'quantitative', title: 'state size (MiB)',
    // Room past the largest size so its point and whisker are not cut in half by the plot's edge.
    scale: logX ? logScale(sizes) : { domain: [0, Math.max(...sizes) * 1.08], nice: false },
    axis: { values: sizes, labelFlush: false },
  } as const;
  // Per-facet log domains come from vega itself (independent scales), so only nice is turned off here.
  const y = { type: 'quantitative', title: `time (${unit.name})`, scale: logY ? { type: 'log', nice: false, padding: 8 } : { zero: true } } as const;
  const color = { field: 'series', type: 'nominal', title: seriesTitle(withData), scale: strategyScale(values.map((v) => v.series)) } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Checkpoint, transfer and restore time vs state size',
      subtitle: `at ${rates} msg/s; median of completed runs, whiskers min–max${logY ? '; log–log axes' : logX ? '; log x-axis' : ''}`,
    },
    config: CONFIG,
    data: { values },
    facet: { column: { field: 'phase', type: 'nominal', title: null, sort: STATE_METRICS.map(([, p]) => p) } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 200,
      height: 300,
      encoding: { x, color },
      layer: [
        { mark: { type: 'rule', strokeWidth: 2 }, encoding: { y: { ...y, field: 'min' }, y2: { field: 'max' } } },
        { mark: { type: 'line', strokeWidth: 2.5 }, encoding: { y: { ...y, field: 'median' } } },
        { mark: { type: 'point', filled: true, size: 70, opacity: 1 }, encoding: { y: { ...y, field: 'median' } } },
      ],
    },
  } as TopLevelSpec;
}

/**
 * One metric of the state-size sweep, one line per mechanism (dashed per strategy when several ran), with
 * min–max whiskers. Null unless the sweep has completed runs of at least two mechanisms: with one, the
 * state-size plot says it all. The sizes are evenly spaced categories, as the rates are, so the
 * mechanisms can stand side by side at each size without their whiskers hiding each other.
 */
function mechanismsVsStateSpec(groups: readonly SummaryGroup[], metric: Metric, title: string, what: string): TopLevelSpec | null {
  const withData = groups.filter((g) => g.n > 0 && g.stats[metric]);
  const mechanisms = mechanismsIn(withData);
  if (mechanisms.length < 2) return null;
  const severalStrategies = new Set(withData.map((g) => g.strategy)).size > 1;
  const unit = unitFor(Math.max(...withData.map((g) => g.stats[metric]!.max)));
  const sizes = [...new Set(withData.map((g) => g.state_bytes))].sort((a, b) => a - b);
  const values = withData.map((g) => {
    const st = g.stats[metric]!;
    return {
      mechanism: g.mechanism,
      strategy: g.strategy,
      series: `${g.strategy}, ${g.mechanism}`,
      size: fmtBytes(g.state_bytes),
      median: st.median / unit.div,
      min: st.min / unit.div,
      max: st.max / unit.div,
    };
  });
  const log = wantsLog(values.flatMap((v) => [v.min, v.max]));
  const rates = [...new Set(withData.map((g) => g.msg_rate))].join(', ');
  const x = {
    field: 'size', type: 'ordinal', sort: sizes.map(fmtBytes), title: 'state size',
    axis: { labelAngle: 0 }, scale: { paddingInner: 0.6, paddingOuter: 0.3 },
  } as const;
  const y = {
    type: 'quantitative', title: `${what} (${unit.name})`,
    scale: log ? logScale(values.flatMap((v) => [v.min, v.max])) : { zero: true },
  } as const;
  const byOrder = [...mechanisms].sort((a, b) => mechanismOrder(a) - mechanismOrder(b));
  const color = {
    field: 'mechanism', type: 'nominal', title: 'mechanism',
    scale: { domain: byOrder, range: byOrder.map((m) => MECHANISM_COLORS[mechanismOrder(m)] ?? PALETTE[0]) },
  } as const;
  const xOffset = { field: 'series', type: 'nominal', scale: { paddingInner: 0.3 } } as const;
  const strategies = STRATEGIES.filter((st) => withData.some((g) => g.strategy === st));
  const dash = severalStrategies ? { strokeDash: { field: 'strategy', type: 'nominal', title: 'strategy', sort: strategies } } : {};
  const shape = severalStrategies ? { shape: { field: 'strategy', type: 'nominal', title: 'strategy', sort: strategies } } : {};
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: `at ${rates} msg/s; median of completed runs, whiskers min–max${log ? '; log scale' : ''}` },
    width: PLOT_W,
    height: PLOT_H,
    config: CONFIG,
    data: { values },
    encoding: { x, color },
    layer: [
      ...whiskers(xOffset, y),
      // One line per series: the detail channel keeps strategies of one mechanism apart when they share a colour.
      { mark: { type: 'line', strokeWidth: 2.5 }, encoding: { xOffset, y: { ...y, field: 'median' }, detail: { field: 'series', type: 'nominal' }, ...dash } },
      { mark: { type: 'point', filled: true, size: 70, opacity: 1 }, encoding: { xOffset, y: { ...y, field: 'median' }, ...shape } },
    ],
  } as TopLevelSpec;
}

/** The min–max whisker of every point: a rule between two ticks. */
function whiskers(xOffset: object, y: object): object[] {
  return [
    { mark: { type: 'rule', strokeWidth: 2 }, encoding: { xOffset, y: { ...y, field: 'min' }, y2: { field: 'max' } } },
    { mark: { type: 'tick', thickness: 2, size: 12 }, encoding: { xOffset, y: { ...y, field: 'min' } } },
    { mark: { type: 'tick', thickness: 2, size: 12 }, encoding: { xOffset, y: { ...y, field: 'max' } } },
  ];
}

/** The specs that the rows support, by file name; a plot without data is left out rather than drawn empty. */
export function plotSpecs(rows: readonly BenchRow[]): Array<{ file: string; spec: TopLevelSpec }> {
  const summary = summarize(rows);
  const rate = summary.filter((g) => g.sweep === 'rate');
  const state = summary.filter((g) => g.sweep === 'state');
  const specs: Array<{ file: string; spec: TopLevelSpec | null }> = [
    { file: 'total-vs-rate.png', spec: vsRateSpec(rate, 'total_ms', 'Total migration time vs message rate', 'total time') },
    { file: 'downtime-vs-rate.png', spec: vsRateSpec(rate, 'downtime_ms', 'Downtime vs message rate', 'downtime') },
    { file: 'phases-at-60.png', spec: phasesSpec(rate) },
    { file: 'state-size.png', spec: stateSpec(state) },
    { file: 'freeze-vs-state.png', spec: mechanismsVsStateSpec(state, 'freeze_ms', 'Freeze time vs state size, by mechanism', 'source frozen') },
    { file: 'total-vs-state.png', spec: mechanismsVsStateSpec(state, 'total_ms', 'Total migration time vs state size, by mechanism', 'total time') },
  ];
  return specs.filter((s): s is { file: string; spec: TopLevelSpec } => s.spec !== null);
}

export async function renderPng(spec: TopLevelSpec): Promise<Buffer> {
  // vega and vega-lite ship only as ES modules; a dynamic import() is how CommonJS code loads them.
  const [vega, vl, { Resvg }] = await Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]);
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const fontDirs = fs.existsSync(FONT_DIR) ? [FONT_DIR] : [];
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: ZOOM },
    // System fonts only when DejaVu is missing: scanning them all is slower and the look would vary by host.
    font: { loadSystemFonts: fontDirs.length === 0, fontDirs, defaultFontFamily: FONT, sansSerifFamily: FONT },
  });
  return resvg.render().asPng();
}

/** Writes the plots that the rows support into `dir` and returns their paths. */
export async function writePlots(dir: string, rows: readonly BenchRow[]): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const { file, spec } of plotSpecs(rows)) {
    const out = path.join(dir, file);
    fs.writeFileSync(out, await renderPng(spec));
    written.push(out);
  }
  return written;
}
