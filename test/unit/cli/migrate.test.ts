/** `ms2m migrate`: the input it starts, the live view on stderr, the report on stdout, the exit status. */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { registerMigrate } from '../../../cli/commands/migrate';
import type { MigrateInput, MigrationProgress, MigrationReport } from '../../../sdk';
import { Ms2mInputError } from '../../../sdk';
import { invalidArgument, run, sdk } from './harness';
import { progress, report } from './fixtures';

function fakeSdk(o: { final?: MigrationReport; steps?: MigrationProgress[]; refuse?: Error; delayMs?: number } = {}) {
  const steps = o.steps ?? [progress('validate'), progress('checkpoint'), progress('replay', { lag: 40 }), progress('replay', { lag: 12 }), progress('done')];
  const startMigration = vi.fn(async (_input: MigrateInput) => {
    if (o.refuse) throw o.refuse;
    return {
      workflowId: 'migrate-game',
      result: async ({ onProgress }: { onProgress?: (p: MigrationProgress) => void } = {}) => {
        for (const p of steps) {
          onProgress?.(p);
          if (o.delayMs) await sleep(o.delayMs);
        }
        return o.final ?? report();
      },
    };
  });
  return { startMigration };
}

async function migrate(args: string[], o: Parameters<typeof fakeSdk>[0] & { tty?: boolean } = {}) {
  const client = fakeSdk(o);
  const deps = sdk(client as never, { tty: o.tty });
  const parsed = await run((p) => registerMigrate(p, deps), ['migrate', ...args]).catch((err: Error) => ({ thrown: err, stdout: '', stderr: '', error: undefined }));
  return { ...parsed, deps, input: client.startMigration.mock.calls[0]?.[0] };
}

describe('ms2m migrate', () => {
  it('starts the migration with the defaults, shows a plain line per stage on stderr, the report on stdout, exits 0', async () => {
    const { input, deps } = await migrate(['--service', 'game', '--to', 'node-b']);
    expect(input).toEqual({
      service: 'game',
      targetNode: 'node-b',
      strategy: 'shadow',
      replay: { threshold: 10, cutoffMs: 120_000, stallMs: 3_000 },
      mechanisms: { transfer: 'files', lazy: false },
    });
    expect(deps.stderr.text.split('\n').filter(Boolean).map((l) => l.replace(/^\[ *[\d.]+ s\] /, ''))).toEqual([
      'game node-a → node-b (shadow): validate',
      'game node-a → node-b (shadow): checkpoint',
      'game node-a → node-b (shadow): replay (lag 40)',
      'game node-a → node-b (shadow): done in 1234 ms, downtime 56 ms',
    ]);
    expect(deps.stderr.text).not.toMatch(/\x1b/);
    expect(deps.outLines).toHaveLength(1);
    expect(deps.outLines[0]).toMatch(/Migration m-1: game node-a → node-b \(shadow\) — COMPLETED/);
    expect(deps.exits).toEqual([0]);
  });

  it('passes every option on, and prints the report as JSON with --json', async () => {
    const { input, deps } = await migrate(['--service', 'ledger', '--to', 'node-c', '--strategy', 'stop-and-copy', '--transfer', 'stream', '--lazy', '--threshold', '0', '--cutoff-ms', '5000', '--stall-ms', '0', '--json']);
    expect(input).toEqual({
      service: 'ledger',
      targetNode: 'node-c',
      strategy: 'stop-and-copy',
      replay: { threshold: 0, cutoffMs: 5000, stallMs: 0 },
      mechanisms: { transfer: 'stream', lazy: true },
    });
    expect(JSON.parse(deps.outLines[0])).toEqual(report());
  });

  it('exits 1 when the migration rolled back', async () => {
    const final = report({ outcome: 'rolled-back', failure: { phase: 'restore', type: 'RestoreFailed', message: 'criu said no' } });
    const { deps } = await migrate(['--service', 'game', '--to', 'node-b'], { final, steps: [progress('restore'), progress('rollback'), progress('rolled-back')] });
    expect(deps.stderr.text).toMatch(/game node-a → node-b \(shadow\): rolled back: failed in restore: \[RestoreFailed\] criu said no\n$/);
    expect(deps.exits).toEqual([1]);
  });

  it('on a terminal, draws the view in place (cursor movements, a bar per phase) on stderr', async () => {
    // Progress arrives slower than the view redraws (10 times a second).
    const { deps } = await migrate(['--service', 'game', '--to', 'node-b'], { tty: true, delayMs: 150 });
    const drawn = deps.stderr.text;
    expect(drawn.match(/\x1b\[8A/g)?.length).toBeGreaterThanOrEqual(4); // up to the header, eight rows above, to redraw
    expect(drawn).toMatch(/game {2}node-a → node-b {2}shadow {2}replay {2}\d+\.\d s {2}lag 40/);
    expect(drawn).toMatch(/ {2}replay +\u2591{24} lag 40 · \d+\.\d s/);
    expect(drawn).toMatch(/ {2}replay +\u2588{17}\u2591{7} lag 12 · \d+\.\d s/); // 1 - 12/40 of the bar
    expect(drawn).toMatch(/game {2}node-a → node-b {2}shadow {2}DONE in 1\.2 s, downtime 56 ms/);
    for (const phase of ['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'replay', 'fence', 'finalize']) expect(drawn).toMatch(new RegExp(`  ${phase} +\u2588{24} 100 ms`));
    expect(drawn).toContain('\x1b[?25h'); // the cursor given back
    expect(deps.exits).toEqual([0]);
  });

  it('refuses missing and bad options, naming them', async () => {
    expect((await migrate(['--service', 'game'])).error?.message).toBe("error: required option '--to <node>' not specified");
    expect((await migrate(['--service', 'game', '--to', 'node-b', '--threshold', '-1'])).error?.message).toBe(invalidArgument('--threshold <msgs>', '-1', '--threshold must be a whole number ≥ 0, e.g. 10'));
    expect((await migrate(['--service', 'game', '--to', 'node-b', '--transfer', 'rsync'])).error?.message).toBe(
      "error: option '--transfer <mode>' argument 'rsync' is invalid. Allowed choices are files, stream.",
    );
    const r = await migrate(['--service', 'game', '--to', 'node-b', '--stall-ms', '3s']);
    expect(r.error?.message).toBe(invalidArgument('--stall-ms <ms>', '3s', '--stall-ms must be a whole number ≥ 0, e.g. 3000'));
    expect(r.input).toBeUndefined();
  });

  it("passes the SDK's refusal on (the CLI prints it and exits 1)", async () => {
    const refuse = new Ms2mInputError('invalid migrateService input: replay.cutoffMs: replay.cutoffMs must be at most 3600000 ms, got 9999999');
    const r = await migrate(['--service', 'game', '--to', 'node-b', '--cutoff-ms', '9999999'], { refuse });
    expect((r as { thrown?: Error }).thrown).toBe(refuse);
    expect(r.deps.exits).toEqual([]);
  });
});
