/** The view of cli/watch-view.ts: a migration's phases as bars, its header, its plain lines, and the view's in-place drawing. */
import { describe, expect, it } from 'vitest';
import { WatchView, elapsedMs, headerLine, phaseRows, plainLine } from '../../../cli/watch-view';
import { fakeStream, screenOf } from './harness';
import { T0, progress, report } from './fixtures';

describe('phaseRows', () => {
  it('done phases full with their time, the running one with its own, the rest pending', () => {
    const rows = phaseRows(progress('transfer', { ms: 150, elapsedMs: 500 }), { now: T0 + 700 });
    expect(rows.map((r) => [r.phase, r.state, r.fraction, r.note])).toEqual([
      ['validate', 'done', 1, '150 ms'],
      ['prepare', 'done', 1, '150 ms'],
      ['checkpoint', 'done', 1, '150 ms'],
      // Its time runs from the end of checkpoint (450 ms in) to the wall clock's 700 ms.
      ['transfer', 'running', 0, 'running 0.3 s'],
      ['restore', 'pending', 0, ''],
      ['replay', 'pending', 0, ''],
      ['fence', 'pending', 0, ''],
      ['finalize', 'pending', 0, ''],
    ]);
  });

  it('replay fills as its lag falls from the highest seen, with the estimate when there is one', () => {
    const p = progress('replay', { lag: 25, estimate: { slopePerSec: -10, applyRatePerSec: 200, etaMs: 1500 } });
    expect(phaseRows(p, { peakLag: 100 })[5]).toMatchObject({ state: 'running', fraction: 0.75, note: expect.stringMatching(/^lag 25, ~1\.5 s to go · \d+\.\d s$/) });
    expect(phaseRows({ ...p, lag: 0, estimate: undefined }, { peakLag: 100 })[5]).toMatchObject({ fraction: 1, note: expect.stringMatching(/^lag 0 · /) });
    expect(phaseRows({ ...p, lag: null, estimate: undefined }, {})[5]).toMatchObject({ fraction: 0, note: expect.stringMatching(/^lag \? · /) });
  });

  it('a phase the strategy skipped shows a dash; an ended migration has nothing pending; the failed phase says so', () => {
    const stopAndCopy = progress('fence');
    stopAndCopy.phases = stopAndCopy.phases.filter((x) => x.phase !== 'replay');
    expect(phaseRows(stopAndCopy)[5]).toMatchObject({ phase: 'replay', state: 'skipped', note: '—' });
    const rolledBack = progress('rolled-back');
    rolledBack.phases = progress('restore').phases.concat({ phase: 'restore', startedAt: T0 + 400, ms: 80 });
    const rows = phaseRows(rolledBack, { report: report({ outcome: 'rolled-back', failure: { phase: 'restore', type: 'RestoreFailed', message: 'no' } }) });
    expect(rows.map((r) => r.state)).toEqual(['done', 'done', 'done', 'done', 'failed', 'skipped', 'skipped', 'skipped']);
    expect(rows[4].note).toBe('FAILED after 80 ms');
  });
});

describe('the header and the plain line', () => {
  it('name the service, the nodes, the strategy, the stage, the time and the lag', () => {
    const p = progress('replay', { lag: 17, elapsedMs: 2345 });
    expect(headerLine(p, { now: T0 })).toBe('game  node-a → node-b  shadow  replay  2.3 s  lag 17');
    expect(plainLine(p, { now: T0 })).toBe('[  2.35 s] game node-a → node-b (shadow): replay (lag 17)');
    expect(headerLine(progress('rollback', { elapsedMs: 900 }), { now: T0 })).toBe('game  node-a → node-b  shadow  rolling back  0.9 s');
  });

  it('say how it ended', () => {
    expect(headerLine(progress('done'), { report: report() })).toBe('game  node-a → node-b  shadow  DONE in 1.2 s, downtime 56 ms');
    const failed = report({ outcome: 'rolled-back', totalMs: 3000, failure: { phase: 'transfer', type: 'ImageMissing', message: 'gone' } });
    expect(headerLine(progress('rolled-back'), { report: failed })).toBe('game  node-a → node-b  shadow  ROLLED BACK after 3.0 s: failed in transfer: [ImageMissing] gone');
    expect(plainLine(progress('rolled-back'), { report: failed })).toBe('[  3.00 s] game node-a → node-b (shadow): rolled back: failed in transfer: [ImageMissing] gone');
    expect(headerLine(progress('validate', { elapsedMs: 300 }), { ended: true })).toBe('game  node-a → node-b  shadow  ENDED in validate after 0.3 s (its workflow closed)');
  });

  it('the elapsed time runs on the wall clock while the query answers from the workflow\'s last task', () => {
    const p = progress('checkpoint', { elapsedMs: 400 });
    expect(elapsedMs(p, { now: T0 + 2500 })).toBe(2500);
    expect(elapsedMs(p, { now: T0 - 60_000 })).toBe(400); // a clock behind the worker's: the query's own figure
    expect(elapsedMs(progress('done', { elapsedMs: 999 }), { now: T0 + 5000 })).toBe(999);
    expect(elapsedMs(progress('done'), { now: T0 + 5000, report: report() })).toBe(1234);
  });
});

describe('WatchView', () => {
  it('off a terminal: a line per stage change (not per lag change), the end once, nothing after stop', () => {
    const stream = fakeStream(false);
    const view = new WatchView({ stream });
    view.status('ms2m watch · 12:00:01', 'watching');
    view.status('ms2m watch · 12:00:02', 'watching');
    for (const p of [progress('validate'), progress('prepare'), progress('replay', { lag: 30 }), progress('replay', { lag: 20 }), progress('done')]) view.update('m1', p);
    view.end('m1', progress('done'), report());
    view.end('m1', progress('done'), report());
    view.stop();
    view.update('m2', progress('validate'));
    expect(stream.text.trimEnd().split('\n').map((l) => l.replace(/^\[ *[\d.]+ s\] /, ''))).toEqual([
      'watching',
      'game node-a → node-b (shadow): validate',
      'game node-a → node-b (shadow): prepare',
      'game node-a → node-b (shadow): replay (lag 30)',
      'game node-a → node-b (shadow): done in 1234 ms, downtime 56 ms',
    ]);
  });

  it('on a terminal: keeps the three latest ended migrations, the running ones and the status line on screen', async () => {
    const stream = fakeStream(true);
    const view = new WatchView({ stream });
    view.status('status');
    for (let i = 1; i <= 5; i++) {
      view.update(`m${i}`, progress('fence', { service: `svc${i}` }));
      view.end(`m${i}`, progress('done', { service: `svc${i}` }), report());
    }
    view.update('m6', progress('replay', { service: 'svc6' }));
    view.stop(); // draws the final frame
    const screen = screenOf(stream.text);
    expect(screen[0]).toBe('status');
    // The three latest ended ones and the running one, nine rows each, nothing left below them.
    expect(screen.filter((l) => /^svc\d/.test(l)).map((l) => l.split('  ')[0])).toEqual(['svc3', 'svc4', 'svc5', 'svc6']);
    expect(screen).toHaveLength(1 + 4 * 9);
    expect(screen[1]).toBe('svc3  node-a → node-b  shadow  DONE in 1.2 s, downtime 56 ms');
    expect(screen[28]).toMatch(/^svc6 {2}node-a → node-b {2}shadow {2}replay {2}\d+\.\d s {2}lag 40$/);
    expect(screen.filter((l) => l.startsWith('  finalize '))).toHaveLength(4);
  });

  it('on a short terminal, fewer ended migrations stay: the screen is never taller than the terminal', () => {
    const stream = fakeStream(true);
    stream.rows = 25;
    const view = new WatchView({ stream });
    view.status('status');
    for (let i = 1; i <= 3; i++) {
      view.update(`m${i}`, progress('fence', { service: `svc${i}` }));
      view.end(`m${i}`, progress('done', { service: `svc${i}` }), report());
    }
    view.update('m4', progress('replay', { service: 'svc4' }));
    view.stop();
    const screen = screenOf(stream.text);
    expect(screen.filter((l) => /^svc\d/.test(l)).map((l) => l.split('  ')[0])).toEqual(['svc3', 'svc4']);
    expect(screen).toHaveLength(1 + 2 * 9);
  });
});
