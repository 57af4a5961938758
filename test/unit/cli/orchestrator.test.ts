/** `ms2m orchestrator`: runs the orchestrator worker. */
import { describe, expect, it, vi } from 'vitest';
import { registerOrchestrator } from '../../../cli/commands/orchestrator';
import { run } from './harness';

describe('ms2m orchestrator', () => {
  it('runs the worker until it ends', async () => {
    const runOrchestrator = vi.fn(async () => undefined);
    const { error } = await run((p) => registerOrchestrator(p, { runOrchestrator }), ['orchestrator']);
    expect(error).toBeUndefined();
    expect(runOrchestrator).toHaveBeenCalledOnce();
  });

  it('refuses arguments it does not take', async () => {
    const runOrchestrator = vi.fn(async () => undefined);
    const { error } = await run((p) => registerOrchestrator(p, { runOrchestrator }), ['orchestrator', '--node', 'node-a']);
    expect(error?.message).toBe("error: unknown option '--node'");
    expect(runOrchestrator).not.toHaveBeenCalled();
  });
});
