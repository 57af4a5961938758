import { describe, expect, it } from 'vitest';
import { initialReport, type MigrationReport } from '../../lib/migration';
import { planGrid, rowOf, type RunPlan, type SavedPlan } from '../../bench/rows';

const grid = (o: Partial<Parameters<typeof planGrid>[0]> = {}) =>
  planGrid({
    strategies: ['stop-and-copy', 'shadow'],
    rates: [20, 60],
    capacity: null,
    repetitions: 2,
    stateBytes: 10 * 2 ** 20,
    workMs: [2],
    stateSweep: [],
    stateRate: 60,
    stateRepetitions: 1,
    ...o,
  });

const cells = (plans: RunPlan[]) => plans.map((p) => `${p.sweep} ${p.repetition} ${p.rate} ${p.stateBytes / 2 ** 20} ${p.strategy} ${p.mechanism}`);

describe('planGrid', () => {
  it('keeps the order of the grid before the mechanisms when there is one', () => {
    expect(cells(grid())).toEqual([
      'rate 1 20 10 shadow files', 'rate 1 20 10 stop-and-copy files', 'rate 1 60 10 shadow files', 'rate 1 60 10 stop-and-copy files',
      'rate 2 20 10 stop-and-copy files', 'rate 2 20 10 shadow files', 'rate 2 60 10 stop-and-copy files', 'rate 2 60 10 shadow files',
    ]);
    expect(grid().map((p) => p.run)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('runs every cell once per mechanism, back to back, their order reversed every other repetition', () => {
    const plans = grid({ strategies: ['shadow'], rates: [60], mechanisms: ['files', 'stream', 'lazy'], repetitions: 2 });
    expect(cells(plans)).toEqual([
      'rate 1 60 10 shadow lazy', 'rate 1 60 10 shadow stream', 'rate 1 60 10 shadow files',
      'rate 2 60 10 shadow files', 'rate 2 60 10 shadow stream', 'rate 2 60 10 shadow lazy',
    ]);
  });

  it('keeps the mechanisms of one strategy together, and both orders alternate', () => {
    const plans = grid({ rates: [60], mechanisms: ['files', 'stream'], repetitions: 2 });
    expect(cells(plans)).toEqual([
      'rate 1 60 10 shadow stream', 'rate 1 60 10 shadow files', 'rate 1 60 10 stop-and-copy stream', 'rate 1 60 10 stop-and-copy files',
      'rate 2 60 10 stop-and-copy files', 'rate 2 60 10 stop-and-copy stream', 'rate 2 60 10 shadow files', 'rate 2 60 10 shadow stream',
    ]);
  });

  it('gives each mechanism every position equally often over two repetitions', () => {
    const mechanisms = ['files', 'stream', 'lazy', 'stream+lazy'] as const;
    const plans = grid({ strategies: ['shadow'], rates: [60], mechanisms: [...mechanisms], repetitions: 2 });
    for (const m of mechanisms) {
      const positions = [1, 2].map((rep) => plans.filter((p) => p.repetition === rep).findIndex((p) => p.mechanism === m));
      // Reversed order: positions i and n−1−i, so every mechanism's mean position is the middle.
      expect(positions[0] + positions[1]).toBe(mechanisms.length - 1);
    }
  });

  it('runs the state-size sweep once per mechanism too, and the rate above capacity', () => {
    const plans = grid({
      strategies: ['shadow'], rates: [60], repetitions: 1, mechanisms: ['files', 'stream+lazy'], capacity: new Map([[2, 400]]),
      stateSweep: [32 * 2 ** 20, 256 * 2 ** 20], stateRepetitions: 1,
    });
    expect(cells(plans)).toEqual([
      'rate 1 60 10 shadow stream+lazy', 'rate 1 60 10 shadow files', 'rate 1 500 10 shadow stream+lazy', 'rate 1 500 10 shadow files',
      'state 1 60 32 shadow stream+lazy', 'state 1 60 32 shadow files', 'state 1 60 256 shadow stream+lazy', 'state 1 60 256 shadow files',
    ]);
    expect(plans.filter((p) => p.aboveCapacity).map((p) => p.mechanism)).toEqual(['stream+lazy', 'files']);
  });
});

describe('rowOf', () => {
  const plan: RunPlan = { run: 3, repetition: 1, sweep: 'state', strategy: 'shadow', mechanism: 'stream+lazy', rate: 60, aboveCapacity: false, stateBytes: 2 ** 28, workMs: 2 };
  const report = (o: Partial<MigrationReport> = {}): MigrationReport => ({
    ...initialReport({ service: 'bench', strategy: 'shadow', targetNode: 'node-b' }, 'migrate-bench', 'm1', 0),
    ...o,
  });

  it('takes the mechanism and its figures from the plan and the report', () => {
    const r = rowOf(plan, report({
      mechanisms: { transfer: 'stream', lazy: true }, checkpointBytes: 300e6, streamedBytes: 290e6, freezeMs: 900,
      tools: { dumpMs: 1100, transferMs: 40, restoreMs: 90 }, lazy: { bytesLeft: 250e6, ms: 1700, pages: 61_000 },
    }));
    expect(r).toMatchObject({
      mechanism: 'stream+lazy', checkpoint_bytes: 300e6, streamed_bytes: 290e6, freeze_ms: 900, lazy_bytes: 250e6, lazy_ms: 1700,
      dump_ms: 1100, transfer_tool_ms: 40, restore_tool_ms: 90,
    });
  });

  it('counts a run from before the mechanisms as files, with zeros', () => {
    const { mechanism: _, ...old } = plan;
    const bare = report();
    // What reports.jsonl of 2026-11-21 holds: no mechanisms, tools, streamedBytes or lazy.
    const legacy = { ...bare } as Partial<MigrationReport>;
    delete legacy.mechanisms;
    delete legacy.tools;
    const r = rowOf(old as SavedPlan, legacy as MigrationReport);
    expect(r).toMatchObject({ mechanism: 'files', streamed_bytes: 0, lazy_bytes: 0, lazy_ms: 0, dump_ms: 0, transfer_tool_ms: 0, restore_tool_ms: 0 });
  });

  it('takes the mechanism from the report when the plan has none, and from the plan when the run failed', () => {
    const { mechanism: _, ...old } = plan;
    expect(rowOf(old, report({ mechanisms: { transfer: 'files', lazy: true } })).mechanism).toBe('lazy');
    expect(rowOf(plan, null)).toMatchObject({ mechanism: 'stream+lazy', outcome: 'error', lazy_ms: 0, dump_ms: 0 });
    expect(rowOf(old, null).mechanism).toBe('files');
  });
});
