/**
 * The live view of migrations, drawn by `ms2m watch` for every running migration and by `ms2m migrate`
 * for its own: per migration a header (service, nodes, strategy, stage, elapsed time, replay lag) and a
 * bar per phase (validate … finalize), redrawn in place on a terminal by cli-progress's MultiBar. On
 * anything else (a pipe, a file, CI logs) it prints plain lines instead: one per stage change, and one
 * when the migration ends.
 */
import { Format, MultiBar, type Options, type Params, type SingleBar } from 'cli-progress';
import { PHASES, type MigrationProgress, type MigrationReport, type Phase, type Stage } from '../lib/migration';
import type { OutStream } from './commands/context';

const ENDED: readonly Stage[] = ['done', 'rolled-back'];
export const isEnded = (stage: Stage): boolean => ENDED.includes(stage);

/** The bars' look: cli-progress's shades (the strings are what Format.BarFormat cuts; MultiBar makes its own from the chars). */
const BAR = {
  barsize: 24,
  barCompleteChar: '\u2588',
  barIncompleteChar: '\u2591',
  barCompleteString: '\u2588'.repeat(25),
  barIncompleteString: '\u2591'.repeat(25),
  barGlue: '',
} satisfies Options;
const PHASE_WIDTH = Math.max(...PHASES.map((p) => p.length));
/** Ended migrations kept on the screen below the running ones; older ones make room. */
const KEEP_ENDED = 3;

export const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

export interface PhaseRow {
  phase: Phase;
  state: 'done' | 'running' | 'pending' | 'skipped' | 'failed';
  /** How full its bar is, 0..1: done phases are full, replay fills as its lag falls, the others show their time. */
  fraction: number;
  note: string;
}

/** What is known of a migration besides its progress. */
export interface Seen {
  /** The highest replay lag seen in this replay: the replay bar's scale. */
  peakLag?: number;
  /** Its report, once it ended. */
  report?: MigrationReport | null;
  /** It ended, though its progress may not say so (a workflow that closed in validate, or was terminated). */
  ended?: boolean;
  /** The time now (default: the clock's). */
  now?: number;
}

/**
 * How long the migration has run. The query's own `elapsedMs` is measured at the workflow's last task (a
 * workflow's clock stands still between tasks), so while it runs the wall clock since its start is used.
 */
export function elapsedMs(p: MigrationProgress, o: Seen = {}): number {
  if (o.report && (o.ended || isEnded(p.stage))) return o.report.totalMs;
  if (o.ended || isEnded(p.stage)) return p.elapsedMs;
  return Math.max(p.elapsedMs, (o.now ?? Date.now()) - p.startedAt);
}

/** Where a migration is, phase by phase. */
export function phaseRows(p: MigrationProgress, o: Seen = {}): PhaseRow[] {
  const ended = o.ended || isEnded(p.stage);
  const current = (PHASES as readonly string[]).indexOf(p.stage);
  const failedIn = o.report?.failure?.phase;
  // The running phase began when the last recorded one ended (phases are recorded as they end).
  const since = p.phases.reduce((t, x) => Math.max(t, x.startedAt + x.ms), p.startedAt);
  const inPhaseMs = Math.max(0, p.startedAt + elapsedMs(p, o) - since);
  return PHASES.map((phase, i): PhaseRow => {
    const timings = p.phases.filter((x) => x.phase === phase);
    const ms = timings.reduce((a, x) => a + x.ms, 0);
    if (!ended && p.stage === phase) {
      if (phase === 'replay') {
        const peak = Math.max(o.peakLag ?? 0, p.lag ?? 0);
        const fraction = p.lag === null ? 0 : peak > 0 ? 1 - p.lag / peak : 1;
        const eta = p.estimate?.etaMs;
        return { phase, state: 'running', fraction, note: `${p.lag === null ? 'lag ?' : `lag ${p.lag}`}${eta != null ? `, ~${secs(eta)} to go` : ''} · ${secs(inPhaseMs)}` };
      }
      return { phase, state: 'running', fraction: 0, note: `running ${secs(inPhaseMs)}` };
    }
    if (failedIn === phase) return { phase, state: 'failed', fraction: 0, note: `FAILED${timings.length ? ` after ${ms} ms` : ''}` };
    if (timings.length) return { phase, state: 'done', fraction: 1, note: `${ms} ms` };
    if (ended || current < 0 || i < current) return { phase, state: 'skipped', fraction: 0, note: '—' };
    return { phase, state: 'pending', fraction: 0, note: '' };
  });
}

/** The migration's line: service, nodes, strategy, stage (with the outcome once it ended), elapsed time, replay lag. */
export function headerLine(p: MigrationProgress, o: Seen = {}): string {
  const { report } = o;
  const where = `${p.service}  ${p.sourceNode ?? '?'} → ${p.targetNode}  ${p.strategy}`;
  if (p.stage === 'done') {
    return `${where}  DONE in ${secs(elapsedMs(p, o))}${report ? `, downtime ${report.downtimeMs} ms` : ''}`;
  }
  if (p.stage === 'rolled-back') {
    const f = report?.failure;
    return `${where}  ROLLED BACK after ${secs(elapsedMs(p, o))}${f ? `: failed in ${f.phase}: [${f.type}] ${f.message}` : ''}`;
  }
  if (o.ended) return `${where}  ENDED in ${p.stage} after ${secs(elapsedMs(p, o))} (its workflow closed)`;
  const stage = p.stage === 'rollback' ? 'rolling back' : p.stage;
  return `${where}  ${stage}  ${secs(elapsedMs(p, o))}${p.stage === 'replay' && p.lag !== null ? `  lag ${p.lag}` : ''}`;
}

export function phaseLine(row: Pick<PhaseRow, 'phase' | 'note'>, fraction: number, barOptions: Options = BAR): string {
  return `  ${row.phase.padEnd(PHASE_WIDTH)} ${Format.BarFormat(Math.min(1, Math.max(0, fraction)), barOptions)} ${row.note}`.trimEnd();
}

/** A migration as lines: its header and a bar per phase (what the terminal view shows, drawn once). */
export function blockLines(p: MigrationProgress, o: Seen = {}): string[] {
  return [headerLine(p, o), ...phaseRows(p, o).map((r) => phaseLine(r, r.fraction))];
}

/** The plain line for a stage change or an end. */
export function plainLine(p: MigrationProgress, o: Seen = {}): string {
  const { report } = o;
  const at = `[${(elapsedMs(p, o) / 1000).toFixed(2).padStart(6)} s]`;
  const who = `${p.service} ${p.sourceNode ?? '?'} → ${p.targetNode} (${p.strategy})`;
  let what: string = p.stage;
  if (p.stage === 'replay' && p.lag !== null) what = `replay (lag ${p.lag})`;
  if (p.stage === 'done') what = `done${report ? ` in ${report.totalMs} ms, downtime ${report.downtimeMs} ms` : ''}`;
  if (p.stage === 'rolled-back') {
    const f = report?.failure;
    what = `rolled back${f ? `: failed in ${f.phase}: [${f.type}] ${f.message}` : ''}`;
  }
  if (o.ended && !isEnded(p.stage)) what = `ended in ${p.stage} (its workflow closed)`;
  return `${at} ${who}: ${what}`;
}

interface Shown {
  progress: MigrationProgress;
  peakLag: number;
  report?: MigrationReport | null;
  ended: boolean;
  /** The stage of the last plain line. */
  printed?: Stage;
  /** Terminal: the header's bar and the phases' bars. */
  bars?: SingleBar[];
}

type Payload = { kind: 'text'; text: string } | { kind: 'phase'; phase: Phase; note: string };

/** What MultiBar draws for each of its bars: a text line (header, status) or a phase with its bar. */
function render(options: Options, params: Params, payload: Payload): string {
  return payload.kind === 'text' ? payload.text : phaseLine(payload, params.progress, options);
}

export interface WatchViewOptions {
  stream: OutStream;
  /** Draw in place (default: whether the stream is a terminal). */
  tty?: boolean;
}

export class WatchView {
  private readonly shown = new Map<string, Shown>();
  private readonly tty: boolean;
  private multibar: MultiBar | null = null;
  private statusBar: SingleBar | null = null;
  private lastStatus = '';
  private stopped = false;

  constructor(private readonly o: WatchViewOptions) {
    this.tty = o.tty ?? o.stream.isTTY === true;
  }

  private bars(): MultiBar {
    this.multibar ??= new MultiBar({
      ...BAR,
      stream: this.o.stream as NodeJS.WritableStream,
      format: render,
      hideCursor: true,
      // Long lines are cut at the terminal's edge rather than wrapped, which would break the redraw.
      linewrap: false,
      clearOnComplete: false,
      // Every frame redraws every line: a bar redrawn only when its own text changes would stay at its old
      // row after the ones above it were removed.
      forceRedraw: true,
      stopOnComplete: false,
      gracefulExit: false,
      fps: 10,
    });
    return this.multibar;
  }

  /**
   * A status line above the migrations (e.g. what is watched, how many run, the time). Plain output prints
   * it when `plain` (the status without the clock) changes.
   */
  status(text: string, plain = text): void {
    if (this.stopped) return;
    if (!this.tty) {
      if (plain !== this.lastStatus) this.o.stream.write(`${plain}\n`);
      this.lastStatus = plain;
      return;
    }
    if (!this.statusBar) this.statusBar = this.bars().create(1, 0, { kind: 'text', text });
    else this.statusBar.update({ text });
  }

  /** The migration's latest progress. */
  update(id: string, p: MigrationProgress): void {
    if (this.stopped) return;
    const s = this.shown.get(id) ?? { progress: p, peakLag: 0, ended: false };
    this.shown.set(id, s);
    if (s.ended) return;
    // A replay's lag can only be judged against where it started; another stage starts over.
    s.peakLag = p.stage === 'replay' ? Math.max(s.progress.stage === 'replay' ? s.peakLag : 0, p.lag ?? 0) : 0;
    s.progress = p;
    // An end is shown by end(), with its report.
    if (isEnded(p.stage)) return this.redraw(s);
    if (!this.tty && s.printed !== p.stage) {
      this.o.stream.write(`${plainLine(p)}\n`);
      s.printed = p.stage;
    }
    this.redraw(s);
  }

  /** The migration ended: its final progress and, when known, its report (outcome, failure, downtime). */
  end(id: string, p: MigrationProgress | null, report?: MigrationReport | null): void {
    if (this.stopped) return;
    const s = this.shown.get(id);
    const progress = p ?? s?.progress;
    if (!progress || s?.ended) return;
    const shown: Shown = s ?? { progress, peakLag: 0, ended: false };
    this.shown.set(id, shown);
    Object.assign(shown, { progress, report, ended: true });
    if (!this.tty) this.o.stream.write(`${plainLine(progress, shown)}\n`);
    this.redraw(shown);
    if (this.tty) this.makeRoom();
  }

  /** Draws the final state and gives the terminal back (cursor shown, line wrapping on). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.multibar?.stop();
  }

  private redraw(s: Shown): void {
    if (!this.tty) return;
    const rows = phaseRows(s.progress, s);
    const header: Payload = { kind: 'text', text: headerLine(s.progress, s) };
    if (!s.bars) {
      const mb = this.bars();
      s.bars = [mb.create(1, 0, header), ...rows.map((r) => mb.create(1, r.fraction, { kind: 'phase', phase: r.phase, note: r.note } satisfies Payload))];
      return this.makeRoom();
    }
    s.bars[0].update(header);
    rows.forEach((r, i) => s.bars![i + 1].update(r.fraction, { note: r.note }));
  }

  /**
   * Keeps the screen to the running migrations and the last few that ended, fewer if the terminal is not
   * tall enough for them: the oldest ended ones make room. (More running migrations than the terminal
   * has rows for are not made to fit.)
   */
  private makeRoom(): void {
    const drawn = () => [...this.shown.values()].filter((s) => s.bars);
    const lines = () => (this.statusBar ? 1 : 0) + drawn().length * (PHASES.length + 1);
    const ended = drawn().filter((s) => s.ended);
    const rows = this.o.stream.rows;
    ended.forEach((s, i) => {
      if (ended.length - i <= KEEP_ENDED && (!rows || lines() < rows)) return;
      for (const bar of s.bars!) this.multibar!.remove(bar);
      s.bars = undefined;
    });
  }
}
