/** `ms2m agent`: the node agent of one node, with where it listens and its capacity. */
import { describe, expect, it, vi } from 'vitest';
import { registerAgent } from '../../../cli/commands/agent';
import { invalidArgument, run } from './harness';

async function agent(args: string[]) {
  const runNodeAgent = vi.fn(async () => undefined);
  const parsed = await run((p) => registerAgent(p, { runNodeAgent }), ['agent', ...args]);
  return { ...parsed, started: runNodeAgent.mock.calls.map((c) => (c as unknown[])[0]) };
}

describe('ms2m agent', () => {
  it('starts the node agent of --node, the runtime choosing where it listens and its capacity', async () => {
    const { started, error } = await agent(['--node', 'node-a']);
    expect(error).toBeUndefined();
    expect(started).toEqual([{ node: 'node-a', capacity: undefined, listen: undefined }]);
  });

  it('--port is short for --listen 127.0.0.1:<port>; --listen wins', async () => {
    expect((await agent(['--node', 'node-b', '--port', '7301', '--capacity', '4'])).started).toEqual([{ node: 'node-b', capacity: 4, listen: '127.0.0.1:7301' }]);
    expect((await agent(['--node', 'node-b', '--port', '7301', '--listen', '0.0.0.0:7400'])).started).toEqual([{ node: 'node-b', capacity: undefined, listen: '0.0.0.0:7400' }]);
  });

  it('refuses a missing --node, a bad port and a capacity that is not a whole number', async () => {
    expect((await agent([])).error?.message).toBe("error: required option '--node <name>' not specified");
    expect((await agent(['--node', 'node-a', '--port', 'http'])).error?.message).toBe(invalidArgument('--port <port>', 'http', '--port must be a whole number ≥ 0, e.g. 7301'));
    const bad = await agent(['--node', 'node-a', '--capacity', '0']);
    expect(bad.error?.message).toBe(invalidArgument('--capacity <n>', '0', '--capacity must be a positive integer, e.g. 10'));
    expect(bad.started).toEqual([]);
  });
});
