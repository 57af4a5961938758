/** `ms2m drain`: the node it drains, how, the per-service report, and the exit status. */
import { describe, expect, it, vi } from 'vitest';
import { registerDrain } from '../../../cli/commands/drain';
import type { DrainInput, DrainReport } from '../../../sdk';
import { invalidArgument, run, sdk } from './harness';

const report = (o: Partial<DrainReport> = {}): DrainReport => ({
  node: 'node-a',
  startedAt: 1000,
  endedAt: 3500,
  services: [{ service: 'game', from: 'node-a', to: 'node-b', workflowId: 'drain-node-a-game', outcome: 'completed', totalMs: 900, downtimeMs: 40 }],
  stranded: [],
  schedulable: false,
  ...o,
});

async function drain(args: string[], result = report()) {
  const client = {
    startDrain: vi.fn(async (_input: DrainInput) => ({ workflowId: 'drain-node-a', result: async () => result })),
    listMigrations: vi.fn(async () => []),
  };
  const deps = sdk(client);
  return { ...(await run((p) => registerDrain(p, deps as never), ['drain', ...args])), deps, input: client.startDrain.mock.calls[0]?.[0] };
}

describe('ms2m drain', () => {
  it('drains the node, prints each service\'s outcome and how to take the node back, exits 0', async () => {
    const { input, deps } = await drain(['--node', 'node-a']);
    expect(input).toEqual({ node: 'node-a' });
    expect(deps.outLines[0]).toBe('[ms2m] drain drain-node-a started');
    expect(deps.outLines[1]).toMatch(/game.*node-a.*node-b.*completed/);
    expect(deps.outLines[2]).toBe('node-a stays cordoned; `ms2m uncordon --node node-a` takes it back (2.5 s)');
    expect(deps.exits).toEqual([0]);
  });

  it('passes --concurrency and --strategy; stranded services exit 1', async () => {
    const { input, deps } = await drain(['--node', 'node-a', '--concurrency', '3', '--strategy', 'stop-and-copy'], report({ services: [], stranded: ['ledger'] }));
    expect(input).toEqual({ node: 'node-a', concurrency: 3, strategy: 'stop-and-copy' });
    expect(deps.outLines).toContain('nothing moved off node-a');
    expect(deps.outLines).toContain('stranded (no schedulable node with room; still on node-a): ledger');
    expect(deps.exits).toEqual([1]);
  });

  it('prints only the report on stdout with --json', async () => {
    const { deps } = await drain(['--node', 'node-a', '--json']);
    expect(deps.outLines.map((l) => JSON.parse(l))).toEqual([report()]);
    expect(deps.errLines).toEqual(['[ms2m] drain drain-node-a started']);
  });

  it('refuses a missing node, a concurrency that is not a number, an unknown strategy', async () => {
    expect((await drain([])).error?.message).toBe("error: required option '--node <name>' not specified");
    expect((await drain(['--node', 'node-a', '--concurrency', 'all'])).error?.message).toBe(invalidArgument('--concurrency <n>', 'all', '--concurrency must be a number, e.g. 2'));
    const r = await drain(['--node', 'node-a', '--strategy', 'yolo']);
    expect(r.error?.message).toBe("error: option '--strategy <name>' argument 'yolo' is invalid. Allowed choices are stop-and-copy, shadow, sequential, shadow-swap.");
    expect(r.input).toBeUndefined();
  });
});
