/** `ms2m rebalance`: the input its options make, the plan and the moves it prints, the exit status. */
import { describe, expect, it, vi } from 'vitest';
import { registerRebalance } from '../../../cli/commands/rebalance';
import type { MoveOutcome, RebalanceInput, RebalanceResult } from '../../../sdk';
import { Ms2mClient } from '../../../sdk';
import { invalidArgument, run, sdk } from './harness';

const plan = { at: 0, meanLoad: 40, upperLoad: 48, nodes: [{ node: 'node-a', schedulable: true, load: 70, instances: 2, capacity: 10 }], moves: [], kept: [] };
const moved: MoveOutcome = { service: 'game', from: 'node-a', to: 'node-b', workflowId: 'rebalance-x-game', outcome: 'completed', totalMs: 900, downtimeMs: 40 };

async function rebalance(args: string[], result: RebalanceResult = { dryRun: false, plan, outcomes: [moved] }) {
  const client = {
    startRebalance: vi.fn(async (_input: RebalanceInput) => ({ workflowId: 'rebalance-x', result: async () => result })),
    listMigrations: vi.fn(async () => []),
  };
  const deps = sdk(client);
  return { ...(await run((p) => registerRebalance(p, deps as never), ['rebalance', ...args])), deps, input: client.startRebalance.mock.calls[0]?.[0] };
}

describe('ms2m rebalance', () => {
  it('leaves unset options to the workflow, prints the plan and the outcomes, exits 0 when every move completed', async () => {
    const { input, deps } = await rebalance([]);
    expect(input).toEqual({});
    expect(deps.outLines[0]).toBe('[ms2m] rebalance rebalance-x started; measuring load…');
    expect(deps.outLines[1]).toMatch(/^mean load 40 %, overloaded above 48 %\n/);
    expect(deps.outLines[2]).toMatch(/^outcomes:\n.*game.*node-a.*node-b.*completed.*900.*40/s);
    expect(deps.exits).toEqual([0]);
  });

  it('passes every option on as the input field it names', async () => {
    const { input, deps } = await rebalance(['--dry-run', '--band', '0.5', '--min-excess', '10', '--max-migrations', '2', '--concurrency', '2', '--cooldown-ms', '0', '--sample-ms', '500', '--strategy', 'stop-and-copy']);
    expect(input).toEqual({ dryRun: true, band: 0.5, minExcessPercent: 10, maxMigrations: 2, concurrency: 2, cooldownMs: 0, sampleMs: 500, strategy: 'stop-and-copy' });
    expect(deps.outLines[0]).toBe('[ms2m] rebalance rebalance-x started (dry run); measuring load…');
  });

  it('with --json: the human lines go to stderr, the result alone to stdout; a failed move exits 1', async () => {
    const failed = { dryRun: false, plan, outcomes: [{ ...moved, outcome: 'rolled-back' as const, error: 'RestoreFailed' }] };
    const { deps } = await rebalance(['--json'], failed);
    expect(deps.outLines.map((l) => JSON.parse(l))).toEqual([failed]);
    expect(deps.errLines[0]).toBe('[ms2m] rebalance rebalance-x started; measuring load…');
    expect(deps.exits).toEqual([1]);
  });

  it('refuses values that are not numbers; the ranges are the input schema\'s, refused by the SDK', async () => {
    const r = await rebalance(['--band', 'wide']);
    expect(r.error?.message).toBe(invalidArgument('--band <fraction>', 'wide', '--band must be a number, e.g. 0.2'));
    expect(r.input).toBeUndefined();
    expect((await rebalance(['--strategy', 'fast'])).error?.message).toBe("error: option '--strategy <name>' argument 'fast' is invalid. Allowed choices are stop-and-copy, shadow, sequential, shadow-swap.");
    const deps = sdk(new Ms2mClient({ workflow: { start: vi.fn() } } as never, { taskQueue: 'q' }));
    await expect(run((p) => registerRebalance(p, deps), ['rebalance', '--band', '9'])).rejects.toThrow('invalid rebalance input: band: band must be ≤ 5, got 9');
  });
});
