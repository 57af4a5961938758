/** `ms2m cordon` and `ms2m uncordon`: one node's schedulability. */
import { describe, expect, it, vi } from 'vitest';
import { registerCordon } from '../../../cli/commands/cordon';
import { run, sdk } from './harness';

async function cordon(args: string[]) {
  const client = { setNodeSchedulable: vi.fn(async (_node: string, _schedulable: boolean) => undefined) };
  const deps = sdk(client);
  return { ...(await run((p) => registerCordon(p, deps), args)), deps, calls: client.setNodeSchedulable.mock.calls };
}

describe('ms2m cordon / uncordon', () => {
  it('cordon marks the node unschedulable', async () => {
    const { calls, deps } = await cordon(['cordon', '--node', 'node-a']);
    expect(calls).toEqual([['node-a', false]]);
    expect(deps.outLines).toEqual(['[ms2m] node-a is cordoned']);
    expect(deps.exits).toEqual([0]);
  });

  it('uncordon marks it schedulable again', async () => {
    const { calls, deps } = await cordon(['uncordon', '--node', 'node-b']);
    expect(calls).toEqual([['node-b', true]]);
    expect(deps.outLines).toEqual(['[ms2m] node-b is schedulable']);
  });

  it('both need --node', async () => {
    for (const name of ['cordon', 'uncordon']) {
      const { error, calls } = await cordon([name]);
      expect(error?.message).toBe("error: required option '--node <name>' not specified");
      expect(calls).toEqual([]);
    }
  });
});
