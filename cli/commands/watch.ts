/**
 * `ms2m watch`: the running migrations, live. It finds them in Temporal's visibility store (the SDK's
 * listMigrations, running ones of this task queue) and polls each one's `progress` query, drawing them
 * with the view of cli/watch-view.ts: bars redrawn in place on a terminal, plain lines otherwise.
 *
 * It watches until Ctrl-C; `--until-done` ends once every migration it showed has ended (with --service:
 * that service's), waiting for one to start if none runs yet; `--once` prints one snapshot. It exits 0
 * whatever the migrations' outcomes (`ms2m migrations` and the reports tell those).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { MigrationFilter, MigrationHandle, MigrationProgress, MigrationSummary } from '../../sdk';
import { duration } from '../options';
import { WatchView, blockLines, isEnded, plainLine } from '../watch-view';
import { sdkDeps, type SdkDeps } from './context';

export interface WatchOptions {
  service?: string;
  once?: boolean;
  untilDone?: boolean;
  /** Between polls, ms. */
  interval: number;
}

/** What watch asks of the SDK client (Ms2mClient has it). */
export interface WatchClient {
  readonly taskQueue: string;
  listMigrations(filter: MigrationFilter): Promise<MigrationSummary[]>;
  getMigration(workflowId: string, runId?: string): Pick<MigrationHandle, 'progress' | 'report'>;
}

export interface WatchDeps extends SdkDeps<WatchClient> {
  /** Calls `stop` on Ctrl-C (SIGINT) and SIGTERM; returns what removes the handlers. */
  onInterrupt(stop: () => void): () => void;
  /** The wall clock shown on the status line. */
  now(): Date;
}

/** A second Ctrl-C ends at once, in case the first one's last polls hang. */
function interruptHandlers(stop: () => void): () => void {
  let asked = false;
  const handler = () => {
    if (asked) process.exit(130);
    asked = true;
    stop();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

const defaults: WatchDeps = { ...sdkDeps, onInterrupt: interruptHandlers, now: () => new Date() };

/** How many running migrations a poll lists at most. */
const LIST_LIMIT = 100;

export function registerWatch(program: Command, deps: WatchDeps = defaults): Command {
  return program
    .command('watch')
    .description('show the running migrations live: a bar per phase, the replay lag and the elapsed time, redrawn in place (plain lines when stdout is not a terminal)')
    .option('--service <name>', 'only the migrations of this service')
    .option('--once', 'print what runs now, once, and exit')
    .option('--until-done', 'exit once the migrations shown have ended (with --service: that service\'s); waits for one to start if none runs')
    .option('--interval <duration>', 'how often to poll, e.g. 500ms, 2s', duration('--interval', { min: 100, max: 60_000, example: '500ms' }), 500)
    .action((o: WatchOptions) => watch(o, deps));
}

interface Tracked {
  handle: Pick<MigrationHandle, 'progress' | 'report'>;
  last?: MigrationProgress;
  ended: boolean;
}

/** A migration is one run of its workflow: `migrate-<service>` is reused by the service's next migration. */
const keyOf = (m: Pick<MigrationSummary, 'workflowId' | 'runId'>) => `${m.workflowId}/${m.runId}`;

/** A query can race the workflow's first task, or its end: then there is nothing to show this time. */
const progressOf = (t: Pick<Tracked, 'handle'>) => t.handle.progress().catch(() => null);

export async function watch(o: WatchOptions, deps: WatchDeps): Promise<void> {
  const ms2m = await deps.connect();
  const what = `${o.service ? `migrations of ${o.service}` : 'migrations'} on task queue ${ms2m.taskQueue}`;
  const filter: MigrationFilter = { running: true, service: o.service, limit: LIST_LIMIT };
  if (o.once) return once(ms2m, filter, what, deps);

  const view = new WatchView({ stream: deps.stdout });
  const tracked = new Map<string, Tracked>();
  const stopper = new AbortController();
  const off = deps.onInterrupt(() => stopper.abort());
  const until = o.untilDone ? 'until they end' : 'Ctrl-C to stop';
  const status = (running: number | null) => {
    const now = running === null ? 'looking for them' : running ? `${running} running` : 'none running, waiting for one';
    view.status(`ms2m watch · ${what} · ${now} · ${deps.now().toTimeString().slice(0, 8)} · ${until}`, `watching ${what} (${until})`);
  };
  // First, so that it stays the top line.
  status(null);
  try {
    while (!stopper.signal.aborted) {
      // Visibility trails the workflows by a second or so; a failed listing is tried again next time.
      const listed = await ms2m.listMigrations(filter).catch(() => null);
      for (const m of listed ?? []) if (!tracked.has(keyOf(m))) tracked.set(keyOf(m), { handle: ms2m.getMigration(m.workflowId, m.runId), ended: false });
      const running = listed && new Set(listed.map(keyOf));
      await Promise.all(
        [...tracked].filter(([, t]) => !t.ended).map(async ([key, t]) => {
          const p = await progressOf(t);
          if (p) t.last = p;
          // Ended: by its own account, or its workflow left the running ones without saying so.
          const closed = running !== null && !running.has(key);
          if (p && !isEnded(p.stage) && !closed) return view.update(key, p);
          if (!p && !closed) return;
          t.ended = true;
          const report = await t.handle.report().catch(() => null);
          if (t.last) view.end(key, t.last, report);
        }),
      );
      const now = [...tracked.values()].filter((t) => !t.ended).length;
      status(now);
      if (o.untilDone && tracked.size > 0 && now === 0) break;
      await sleep(o.interval, undefined, { signal: stopper.signal }).catch(() => undefined);
    }
  } finally {
    off();
    view.stop();
  }
  return deps.exit(0);
}

/** `--once`: what runs now, drawn once (plain lines when stdout is not a terminal). */
async function once(ms2m: WatchClient, filter: MigrationFilter, what: string, deps: WatchDeps): Promise<void> {
  const listed = await ms2m.listMigrations(filter);
  const shown = (await Promise.all(listed.map((m) => progressOf({ handle: ms2m.getMigration(m.workflowId, m.runId) })))).filter((p): p is MigrationProgress => p !== null);
  if (!shown.length) deps.out(`no running ${what}`);
  else if (deps.stdout.isTTY) deps.out(shown.map((p) => blockLines(p).join('\n')).join('\n\n'));
  else for (const p of shown) deps.out(plainLine(p));
  return deps.exit(0);
}
