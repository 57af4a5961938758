/** `ms2m schedule …`: creating, listing, describing and changing rebalance schedules. */
import { describe, expect, it, vi } from 'vitest';
import { registerSchedule } from '../../../cli/commands/schedule';
import type { RebalanceScheduleOptions, ScheduleDetails } from '../../../sdk';
import { invalidArgument, run, sdk } from './harness';

const details: ScheduleDetails = {
  scheduleId: 'nightly',
  paused: false,
  everyMs: 600_000,
  recentActions: [],
  nextActionTimes: [new Date('2030-01-01T00:10:00Z')],
  input: { maxMigrations: 2 },
  taskQueue: 'ms2m',
  runningWorkflowIds: [],
  numActionsTaken: 3,
  numActionsSkippedOverlap: 1,
  createdAt: new Date('2030-01-01T00:00:00Z'),
};

function client() {
  return {
    createRebalanceSchedule: vi.fn(async (_o: RebalanceScheduleOptions) => details),
    listSchedules: vi.fn(async () => [details]),
    describeSchedule: vi.fn(async (_id: string) => details),
    pauseSchedule: vi.fn(async (_id: string, _note?: string) => undefined),
    unpauseSchedule: vi.fn(async (_id: string, _note?: string) => undefined),
    triggerSchedule: vi.fn(async (_id: string) => undefined),
    deleteSchedule: vi.fn(async (_id: string) => undefined),
  };
}

async function schedule(args: string[], c = client()) {
  const deps = sdk(c);
  return { ...(await run((p) => registerSchedule(p, deps), ['schedule', ...args])), deps, c };
}

describe('ms2m schedule', () => {
  it('create: the interval read as a duration, the rebalance options as its input', async () => {
    const { c, deps } = await schedule(['create', '--id', 'nightly', '--every', '10m', '--max-migrations', '2', '--paused']);
    expect(c.createRebalanceSchedule).toHaveBeenCalledWith({ scheduleId: 'nightly', every: 600_000, input: { maxMigrations: 2 }, paused: true });
    expect(deps.outLines[0]).toMatch(/^nightly: every 600 s\n {2}input \{"maxMigrations":2\} on task queue ms2m; 3 runs, 1 skipped \(overlap\)/);
    expect(deps.exits).toEqual([0]);
  });

  it('create: refuses an interval without a unit or under a second, and a missing id', async () => {
    const bad = await schedule(['create', '--id', 'x', '--every', '600000']);
    expect(bad.error?.message).toBe(invalidArgument('--every <duration>', '600000', '--every must be a duration of at least 1 s, e.g. 10m, 90s, 1h (a number and a unit: ms, s, m, h or d)'));
    expect(bad.c.createRebalanceSchedule).not.toHaveBeenCalled();
    expect((await schedule(['create', '--id', 'x', '--every', '500ms'])).error?.message).toBe(invalidArgument('--every <duration>', '500ms', '--every must be a duration of at least 1 s, e.g. 10m, 90s, 1h'));
    expect((await schedule(['create', '--every', '1h'])).error?.message).toBe("error: required option '--id <id>' not specified");
  });

  it('list and describe', async () => {
    const listed = await schedule(['list']);
    expect(listed.deps.outLines[0]).toMatch(/^nightly: every 600 s/);
    const empty = client();
    empty.listSchedules.mockResolvedValue([]);
    expect((await schedule(['list'], empty)).deps.outLines).toEqual(['no rebalance schedules']);
    const described = await schedule(['describe', 'nightly', '--json']);
    expect(described.c.describeSchedule).toHaveBeenCalledWith('nightly');
    expect(JSON.parse(described.deps.outLines[0])).toMatchObject({ scheduleId: 'nightly', everyMs: 600_000 });
    expect((await schedule(['describe'])).error?.message).toBe("error: missing required argument 'id'");
  });

  it.each([
    [['pause', 'nightly', '--note', 'maintenance'], 'pauseSchedule', ['nightly', 'maintenance'], '[ms2m] schedule nightly: paused'],
    [['unpause', 'nightly'], 'unpauseSchedule', ['nightly', undefined], '[ms2m] schedule nightly: unpaused'],
    [['trigger', 'nightly'], 'triggerSchedule', ['nightly'], '[ms2m] schedule nightly: triggered'],
    [['delete', 'nightly'], 'deleteSchedule', ['nightly'], '[ms2m] schedule nightly: deleted'],
  ] as const)('%j', async (args, method, called, said) => {
    const { c, deps } = await schedule([...args]);
    expect(c[method]).toHaveBeenCalledWith(...called);
    expect(deps.outLines).toEqual([said]);
    expect(deps.exits).toEqual([0]);
  });

  it('only pause and unpause take a note', async () => {
    expect((await schedule(['trigger', 'nightly', '--note', 'x'])).error?.message).toBe("error: unknown option '--note'");
  });
});
