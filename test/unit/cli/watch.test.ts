/**
 * `ms2m watch`: which migrations it finds (visibility's running ones, by run), how it follows them (their
 * `progress` query each poll), what it prints (plain lines off a terminal, the live view on one), and
 * when it ends: --once, --until-done, Ctrl-C.
 */
import { describe, expect, it, vi } from 'vitest';
import { registerWatch, type WatchClient, type WatchDeps } from '../../../cli/commands/watch';
import type { MigrationFilter, MigrationProgress, MigrationReport, MigrationSummary } from '../../../sdk';
import { invalidArgument, run, sdk } from './harness';
import { progress, report } from './fixtures';

interface Script {
  workflowId: string;
  runId: string;
  /** Listed as running from this poll (0: the first) until before `listedUntil`. */
  listedFrom?: number;
  listedUntil: number;
  /** Its progress at each poll; the last one holds after; an Error: the query fails. */
  progress: Array<MigrationProgress | Error>;
  report?: MigrationReport;
}

/** A client whose migrations follow scripts, one step per poll (a poll starts with listMigrations). */
function scripted(scripts: Script[], o: { onPoll?: (poll: number) => void; listFails?: number[] } = {}) {
  let poll = -1;
  const filters: MigrationFilter[] = [];
  const client: WatchClient = {
    taskQueue: 'ms2m-test',
    listMigrations: async (f) => {
      poll++;
      filters.push(f);
      o.onPoll?.(poll);
      if (o.listFails?.includes(poll)) throw new Error('visibility unavailable');
      return scripts
        .filter((s) => poll >= (s.listedFrom ?? 0) && poll < s.listedUntil)
        .map((s) => ({ workflowId: s.workflowId, runId: s.runId, status: 'RUNNING', startTime: new Date(0) }) as MigrationSummary);
    },
    getMigration: (workflowId, runId) => {
      const s = scripts.find((x) => x.workflowId === workflowId && x.runId === runId)!;
      return {
        progress: async () => {
          const p = s.progress[Math.min(poll - (s.listedFrom ?? 0), s.progress.length - 1)];
          if (p instanceof Error) throw p;
          return p;
        },
        report: async () => s.report ?? report(),
      };
    },
  };
  return { client, filters, polls: () => poll + 1 };
}

async function watch(args: string[], client: WatchClient, o: { tty?: boolean; interrupt?: (stop: () => void) => void } = {}) {
  const interrupts: Array<() => void> = [];
  const deps: WatchDeps & ReturnType<typeof sdk<WatchClient>> = {
    ...sdk(client, { tty: o.tty }),
    onInterrupt: (stop) => {
      interrupts.push(stop);
      o.interrupt?.(stop);
      return () => interrupts.splice(interrupts.indexOf(stop), 1);
    },
    now: () => new Date(2030, 0, 1, 12, 0, 0),
  };
  const parsed = await run((p) => registerWatch(p, deps), ['watch', ...args]);
  return { ...parsed, deps, interrupts };
}

/** Plain lines without their elapsed-time prefix. */
const plain = (text: string) => text.trimEnd().split('\n').map((l) => l.replace(/^\[ *\d+\.\d\d s\] /, ''));

describe('ms2m watch --once', () => {
  it('says so when nothing runs, and exits 0', async () => {
    const { client, filters } = scripted([]);
    const { deps } = await watch(['--once', '--service', 'game'], client);
    expect(filters).toEqual([{ running: true, service: 'game', limit: 100 }]);
    expect(deps.outLines).toEqual(['no running migrations of game on task queue ms2m-test']);
    expect(deps.exits).toEqual([0]);
  });

  it('prints a plain line per running migration when stdout is not a terminal', async () => {
    const { client } = scripted([
      { workflowId: 'migrate-game', runId: 'r1', listedUntil: 9, progress: [progress('replay', { lag: 7 })] },
      { workflowId: 'migrate-ledger', runId: 'r1', listedUntil: 9, progress: [progress('checkpoint', { service: 'ledger' })] },
    ]);
    const { deps } = await watch(['--once'], client);
    expect(deps.outLines.map(plain).flat()).toEqual(['game node-a → node-b (shadow): replay (lag 7)', 'ledger node-a → node-b (shadow): checkpoint']);
    expect(deps.exits).toEqual([0]);
  });

  it('draws each migration once, a bar per phase, on a terminal', async () => {
    const { client } = scripted([{ workflowId: 'migrate-game', runId: 'r1', listedUntil: 9, progress: [progress('transfer', { ms: 120 })] }]);
    const { deps } = await watch(['--once'], client, { tty: true });
    const lines = deps.outLines.join('\n').split('\n');
    expect(lines[0]).toMatch(/^game {2}node-a → node-b {2}shadow {2}transfer {2}\d+\.\d s$/);
    expect(lines.slice(1)).toEqual([
      `  validate   ${'█'.repeat(24)} 120 ms`,
      `  prepare    ${'█'.repeat(24)} 120 ms`,
      `  checkpoint ${'█'.repeat(24)} 120 ms`,
      expect.stringMatching(new RegExp(`^  transfer   ${'░'.repeat(24)} running \\d+\\.\\d s$`)),
      `  restore    ${'░'.repeat(24)}`,
      `  replay     ${'░'.repeat(24)}`,
      `  fence      ${'░'.repeat(24)}`,
      `  finalize   ${'░'.repeat(24)}`,
    ]);
  });
});

describe('ms2m watch', () => {
  it('follows a migration a line per stage change until it ends, with --until-done', async () => {
    const steps = [progress('validate'), progress('validate'), progress('checkpoint'), progress('replay', { lag: 30 }), progress('replay', { lag: 12 }), progress('fence'), progress('done')];
    const { client, polls } = scripted([{ workflowId: 'migrate-game', runId: 'r1', listedFrom: 2, listedUntil: 9, progress: steps }]);
    const { deps, error } = await watch(['--until-done', '--interval', '100ms'], client);
    expect(error).toBeUndefined();
    expect(plain(deps.stdout.text)).toEqual([
      'watching migrations on task queue ms2m-test (until they end)',
      'game node-a → node-b (shadow): validate',
      'game node-a → node-b (shadow): checkpoint',
      'game node-a → node-b (shadow): replay (lag 30)',
      'game node-a → node-b (shadow): fence',
      'game node-a → node-b (shadow): done in 1234 ms, downtime 56 ms',
    ]);
    expect(polls()).toBe(9); // two waiting for it, seven following it; it ended on the last
    expect(deps.exits).toEqual([0]);
  });

  it('keeps watching after a migration ended, until Ctrl-C, then exits 0', async () => {
    let stop = () => undefined as void;
    const { client } = scripted([{ workflowId: 'migrate-game', runId: 'r1', listedUntil: 2, progress: [progress('fence'), progress('done')] }], {
      onPoll: (poll) => poll === 5 && stop(),
    });
    const { deps, interrupts } = await watch(['--interval', '100ms'], client, { interrupt: (s) => (stop = s) });
    expect(plain(deps.stdout.text)).toEqual([
      'watching migrations on task queue ms2m-test (Ctrl-C to stop)',
      'game node-a → node-b (shadow): fence',
      'game node-a → node-b (shadow): done in 1234 ms, downtime 56 ms',
    ]);
    expect(deps.exits).toEqual([0]);
    expect(interrupts).toEqual([]); // its handlers removed
  });

  it('tells runs of one workflow id apart, skips a failing query or listing, and ends a run that closed without saying so', async () => {
    const { client } = scripted(
      [
        { workflowId: 'migrate-game', runId: 'r1', listedUntil: 3, progress: [progress('validate'), new Error('query raced the first task'), progress('validate')] },
        { workflowId: 'migrate-game', runId: 'r2', listedFrom: 4, listedUntil: 7, progress: [progress('prepare'), progress('rollback'), progress('rolled-back')], report: report({ outcome: 'rolled-back', failure: { phase: 'prepare', type: 'PrepareTimeout', message: 'the source did not confirm' } }) },
      ],
      { listFails: [1] },
    );
    const { deps } = await watch(['--until-done', '--interval', '100ms', '--service', 'game'], client);
    expect(plain(deps.stdout.text)).toEqual([
      'watching migrations of game on task queue ms2m-test (until they end)',
      'game node-a → node-b (shadow): validate',
      'game node-a → node-b (shadow): ended in validate (its workflow closed)',
    ]);
    // Two runs of migrate-game, as visibility can list them while one ends and the next starts: each its own.
    const again = scripted([
      { workflowId: 'migrate-game', runId: 'r1', listedUntil: 2, progress: [progress('done')] },
      { workflowId: 'migrate-game', runId: 'r2', listedUntil: 5, progress: [progress('prepare'), progress('rollback'), progress('rolled-back')], report: report({ outcome: 'rolled-back', failure: { phase: 'prepare', type: 'PrepareTimeout', message: 'the source did not confirm' } }) },
    ]);
    const both = await watch(['--until-done', '--interval', '100ms'], again.client);
    expect(plain(both.deps.stdout.text)).toEqual([
      'watching migrations on task queue ms2m-test (until they end)',
      'game node-a → node-b (shadow): prepare',
      'game node-a → node-b (shadow): done in 1234 ms, downtime 56 ms', // r1's end waits for its report
      'game node-a → node-b (shadow): rollback',
      'game node-a → node-b (shadow): rolled back: failed in prepare: [PrepareTimeout] the source did not confirm',
    ]);
  });

  it('on a terminal: a status line and the migration, redrawn in place, and the terminal given back', async () => {
    const steps = [progress('checkpoint'), progress('replay', { lag: 40 }), progress('replay', { lag: 10 }), progress('done')];
    const { client } = scripted([{ workflowId: 'migrate-game', runId: 'r1', listedUntil: 9, progress: steps }]);
    const { deps } = await watch(['--until-done', '--interval', '150ms'], client, { tty: true });
    const drawn = deps.stdout.text;
    expect(drawn).toContain('ms2m watch · migrations on task queue ms2m-test · 1 running · 12:00:00 · until they end');
    expect(drawn.match(/\x1b\[9A/g)?.length).toBeGreaterThanOrEqual(2); // back up over the status line and the migration's nine
    expect(drawn).toMatch(/ {2}replay +\u2588{18}\u2591{6} lag 10 · \d+\.\d s/); // 1 - 10/40 of the bar
    expect(drawn).toMatch(/game {2}node-a → node-b {2}shadow {2}DONE in 1\.2 s, downtime 56 ms/);
    expect(drawn.endsWith('\n')).toBe(true);
    expect(drawn).toContain('\x1b[?25h'); // cursor shown again
    expect(drawn).toContain('\x1b[?7h'); // line wrapping on again
    expect(deps.exits).toEqual([0]);
  });

  it('refuses an interval without its unit, or out of range, naming the option', async () => {
    const { client, polls } = scripted([]);
    expect((await watch(['--interval', '500'], client)).error?.message).toBe(
      invalidArgument('--interval <duration>', '500', '--interval must be a duration of at least 100 ms and at most 60 s, e.g. 500ms (a number and a unit: ms, s, m, h or d)'),
    );
    expect((await watch(['--interval', '10ms'], client)).error?.message).toBe(invalidArgument('--interval <duration>', '10ms', '--interval must be a duration of at least 100 ms and at most 60 s, e.g. 500ms'));
    expect(polls()).toBe(0);
  });

  it('passes a failure to connect on (the CLI prints it and exits 1)', async () => {
    const deps = { ...sdk({} as WatchClient), connect: vi.fn(async () => Promise.reject(new Error('cannot reach Temporal at 127.0.0.1:7233'))), onInterrupt: () => () => undefined, now: () => new Date() };
    await expect(run((p) => registerWatch(p, deps), ['watch'])).rejects.toThrow('cannot reach Temporal at 127.0.0.1:7233');
  });
});
