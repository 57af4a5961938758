/** `ms2m chaos`: how many rounds, which faults, services and mechanisms, and the exit status from the verdict. */
import { describe, expect, it, vi } from 'vitest';
import { registerChaos } from '../../../cli/commands/chaos';
import type { ChaosOptions } from '../../../chaos/run';
import { FAULTS } from '../../../chaos/faults';
import { fakeIo, invalidArgument, run } from './harness';

async function chaos(args: string[], clean = true) {
  const io = fakeIo();
  const codes: number[] = [];
  const runChaos = vi.fn(async (_o: ChaosOptions) => ({ clean }));
  const parsed = await run((p) => registerChaos(p, { out: io.out, runChaos, setExitCode: (c) => void codes.push(c) }), ['chaos', ...args]);
  return { ...parsed, io, codes, options: runChaos.mock.calls[0]?.[0] };
}

describe('ms2m chaos', () => {
  it('runs 20 rounds over every service and mechanism by default, and exits 0 when every round was clean', async () => {
    const { options, codes, io } = await chaos([]);
    expect(options).toMatchObject({ rounds: 20, rate: 40, faults: undefined, workloads: ['game', 'ledger'], mechanisms: ['files', 'stream', 'lazy', 'stream+lazy'] });
    expect(options!.seed).toBeGreaterThanOrEqual(0);
    expect(options!.out).toMatch(/^chaos-results\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d$/);
    expect(io.outLines[0]).toBe(`[chaos] 20 rounds, seed ${options!.seed}, 40 msg/s, services game, ledger, mechanisms files, stream, lazy, stream+lazy`);
    options!.log('round 1');
    expect(io.outLines[1]).toBe('round 1');
    expect(codes).toEqual([0]);
  });

  it('parses the lists and numbers it is given; a round that was not clean makes the exit status 1', async () => {
    const fault = FAULTS[0].name;
    const { options, codes } = await chaos(['--rounds', '3', '--seed', '7', '--rate', '25', '--faults', `${fault}, ${FAULTS[1].name}`, '--services', 'ledger', '--mechanisms', 'stream,lazy', '--out', '/tmp/x'], false);
    expect(options).toMatchObject({ rounds: 3, seed: 7, rate: 25, faults: [fault, FAULTS[1].name], workloads: ['ledger'], mechanisms: ['stream', 'lazy'], out: '/tmp/x' });
    expect(codes).toEqual([1]);
  });

  it('refuses unknown faults, services and mechanisms with the choices, and bad numbers', async () => {
    const fault = await chaos(['--faults', 'gremlins']);
    expect(fault.error?.message).toBe(invalidArgument('--faults <names>', 'gremlins', `unknown fault(s) gremlins; choose from ${FAULTS.map((f) => f.name).join(', ')}`));
    expect(fault.options).toBeUndefined();
    expect((await chaos(['--services', 'chess'])).error?.message).toBe(invalidArgument('--services <names>', 'chess', 'unknown service(s) chess; choose from game, ledger'));
    expect((await chaos(['--mechanisms', 'teleport'])).error?.message).toBe(
      invalidArgument('--mechanisms <list>', 'teleport', '--mechanisms: unknown teleport; choose from files, stream, lazy, stream+lazy'),
    );
    expect((await chaos(['--rounds', '1.5'])).error?.message).toBe(invalidArgument('--rounds <n>', '1.5', '--rounds must be a positive integer, e.g. 20'));
    expect((await chaos(['--seed', '-3'])).error?.message).toBe(invalidArgument('--seed <n>', '-3', '--seed must be a whole number ≥ 0, e.g. 42'));
  });
});
