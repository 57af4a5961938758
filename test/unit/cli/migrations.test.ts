/** `ms2m migrations`: the filter its options make, the table or the JSON it prints. */
import { describe, expect, it, vi } from 'vitest';
import { registerMigrations } from '../../../cli/commands/migrations';
import type { MigrationFilter, MigrationSummary } from '../../../sdk';
import { invalidArgument, run, sdk } from './harness';

const found: MigrationSummary = {
  workflowId: 'migrate-game',
  runId: 'r1',
  status: 'COMPLETED',
  startTime: new Date('2030-01-01T10:00:00Z'),
  closeTime: new Date('2030-01-01T10:00:02Z'),
  service: 'game',
  sourceNode: 'node-a',
  targetNode: 'node-b',
  strategy: 'shadow',
  phase: 'done',
};

async function migrations(args: string[], list: MigrationSummary[] = [found]) {
  const client = { listMigrations: vi.fn(async (_f: MigrationFilter) => list) };
  const deps = sdk(client);
  return { ...(await run((p) => registerMigrations(p, deps), ['migrations', ...args])), deps, filter: client.listMigrations.mock.calls[0]?.[0] };
}

describe('ms2m migrations', () => {
  it('lists the latest 50 as a table', async () => {
    const { filter, deps } = await migrations([]);
    expect(filter).toEqual({ service: undefined, node: undefined, phase: undefined, running: undefined, limit: 50 });
    expect(deps.outLines[0]).toMatch(/migrate-game.*game.*node-a.*node-b.*shadow.*done.*COMPLETED.*2030-01-01 10:00:00.*2030-01-01 10:00:02/s);
    expect(deps.exits).toEqual([0]);
  });

  it('filters by service, node, stage, running; --json prints the list', async () => {
    const { filter, deps } = await migrations(['--service', 'game', '--node', 'node-a', '--phase', 'replay', '--running', '--limit', '5', '--json']);
    expect(filter).toEqual({ service: 'game', node: 'node-a', phase: 'replay', running: true, limit: 5 });
    expect(JSON.parse(deps.outLines[0])).toEqual([{ ...found, startTime: '2030-01-01T10:00:00.000Z', closeTime: '2030-01-01T10:00:02.000Z' }]);
  });

  it('says when there are none', async () => {
    expect((await migrations([], [])).deps.outLines).toEqual(['no migrations found']);
  });

  it('refuses a limit that is not a positive whole number', async () => {
    const r = await migrations(['--limit', '0']);
    expect(r.error?.message).toBe(invalidArgument('--limit <n>', '0', '--limit must be a positive integer, e.g. 20'));
    expect(r.filter).toBeUndefined();
  });
});
