/** `ms2m demo`: its options, their defaults and refusals, and the migration it asks the scenario for. */
import { describe, expect, it, vi } from 'vitest';
import { demoScenario, registerDemo, runDemo, type DemoOptions } from '../../../cli/commands/demo';
import { fakeIo, invalidArgument, run } from './harness';

async function demo(args: string[]) {
  const ran = vi.fn(async (_o: DemoOptions) => undefined);
  const parsed = await run((p) => registerDemo(p, { run: ran }), ['demo', ...args]);
  return { ...parsed, options: ran.mock.calls[0]?.[0] };
}

describe('ms2m demo', () => {
  it('runs with the documented defaults', async () => {
    const { options, error } = await demo([]);
    expect(error).toBeUndefined();
    expect(options).toEqual({
      strategy: 'shadow',
      transfer: 'files',
      runtime: process.env.MS2M_RUNTIME || 'local',
      rate: 50,
      service: 'game',
      stateMb: 8,
      workMs: 0,
      threshold: 10,
      cutoffMs: 120_000,
      stallMs: 3_000,
    });
  });

  it('parses every option, numbers as numbers', async () => {
    const { options } = await demo([
      '--strategy', 'stop-and-copy', '--transfer', 'stream', '--lazy', '--runtime', 'kubernetes', '--rate', '120.5', '--service', 'ledger', '--producers', '3',
      '--state-mb', '0', '--work-ms', '2', '--threshold', '0', '--cutoff-ms', '5000', '--stall-ms', '0', '--json', '--keep', '--observe',
    ]);
    expect(options).toEqual({
      strategy: 'stop-and-copy', transfer: 'stream', lazy: true, runtime: 'kubernetes', rate: 120.5, service: 'ledger', producers: 3,
      stateMb: 0, workMs: 2, threshold: 0, cutoffMs: 5000, stallMs: 0, json: true, keep: true, observe: true,
    });
  });

  it('takes the runtime default from MS2M_RUNTIME', async () => {
    vi.stubEnv('MS2M_RUNTIME', 'kubernetes');
    try {
      expect((await demo([])).options?.runtime).toBe('kubernetes');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it.each([
    [['--rate', '0'], invalidArgument('--rate <msgs>', '0', '--rate must be a positive number, e.g. 50')],
    [['--producers', '2.5'], invalidArgument('--producers <n>', '2.5', '--producers must be a positive integer, e.g. 4')],
    [['--state-mb', 'lots'], invalidArgument('--state-mb <mb>', 'lots', '--state-mb must be a whole number ≥ 0, e.g. 8')],
    [['--cutoff-ms', '-1'], invalidArgument('--cutoff-ms <ms>', '-1', '--cutoff-ms must be a whole number ≥ 0, e.g. 120000')],
    [['--service', 'chess'], "error: option '--service <name>' argument 'chess' is invalid. Allowed choices are game, ledger."],
    [['--strategy', 'teleport'], "error: option '--strategy <name>' argument 'teleport' is invalid. Allowed choices are stop-and-copy, shadow, sequential, shadow-swap."],
    [['--runtime', 'docker'], "error: option '--runtime <name>' argument 'docker' is invalid. Allowed choices are local, kubernetes."],
  ])('refuses %j, naming the option and what it takes', async (args, message) => {
    const { error, options, stderr } = await demo(args);
    expect(error?.message).toBe(message);
    expect(error?.exitCode).toBe(1);
    expect(stderr).toContain(message);
    expect(stderr).toContain('Usage: ms2m demo [options]'); // the command's help follows the error
    expect(options).toBeUndefined();
  });

  it('asks the scenario for the migration the options describe', () => {
    const say = vi.fn();
    const s = demoScenario({ strategy: 'shadow', transfer: 'stream', lazy: true, runtime: 'local', rate: 80, service: 'ledger', producers: 3, stateMb: 8, workMs: 1, threshold: 5, cutoffMs: 9000, stallMs: 0 }, say);
    expect(s).toMatchObject({
      service: 'ledger', workload: 'ledger', from: 'node-a', to: 'node-b', strategy: 'shadow', rate: 80, producers: 3, stateBytes: 8 * 1024 * 1024,
      workMs: 1, threshold: 5, cutoffMs: 9000, stallMs: 0, mechanisms: { transfer: 'stream', lazy: true },
    });
    s.log!('deploying');
    expect(say).toHaveBeenCalledWith('[ms2m] deploying');
  });

  it('refuses --observe on kubernetes before starting anything', async () => {
    const io = fakeIo();
    await expect(runDemo({ observe: true, runtime: 'kubernetes' } as DemoOptions, io)).rejects.toThrow(/^--observe: the demo's Prometheus scrapes local workers; .* or run --runtime local$/);
    expect(io.outLines).toEqual([]);
  });
});
