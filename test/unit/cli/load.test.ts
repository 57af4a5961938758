/** `ms2m load`: the load generator it starts, how long it runs, and the log it writes. */
import { describe, expect, it, vi } from 'vitest';
import { registerLoad, type Load } from '../../../cli/commands/load';
import type { LoadOptions } from '../../../examples/loadgen';
import { fakeIo, invalidArgument, run } from './harness';

async function load(args: string[]) {
  const io = fakeIo();
  const calls: string[] = [];
  const written: Array<[string, string]> = [];
  const fake: Load = {
    published: [
      { producer: 'p1', seq: 1, at: 1 },
      { producer: 'p1', seq: 2, at: 2 },
    ] as unknown as Load['published'],
    publishFailures: 1,
    start: async () => void calls.push('start'),
    finished: async () => void calls.push('finished'),
    stop: async () => void calls.push('stop'),
  };
  const makeLoad = vi.fn(async (_o: LoadOptions) => fake);
  const parsed = await run((p) => registerLoad(p, { out: io.out, makeLoad, writeFile: (f, t) => void written.push([f, t]) }), ['load', ...args]);
  return { ...parsed, io, calls, written, options: makeLoad.mock.calls[0]?.[0] };
}

describe('ms2m load', () => {
  it("publishes to the service's exchange for the duration, then says how much went out", async () => {
    const { options, calls, io, written } = await load(['--service', 'game']);
    expect(options).toMatchObject({ exchange: 'game.events', rate: 50, producers: 4, durationMs: 30_000 });
    expect(options!.producerPrefix).toMatch(/^game-load-[0-9a-z]+$/);
    expect(calls).toEqual(['start', 'finished', 'stop']);
    expect(io.outLines).toEqual(['[ms2m] published 2 messages (1 failed) in 30000 ms']);
    expect(written).toEqual([]);
  });

  it('writes every confirmed publish to --log as JSON lines', async () => {
    const { options, written } = await load(['--service', 'orders', '--rate', '200', '--duration-ms', '5000', '--producers', '2', '--log', '/tmp/published.jsonl']);
    expect(options).toMatchObject({ exchange: 'orders.events', rate: 200, producers: 2, durationMs: 5000 });
    expect(written).toEqual([['/tmp/published.jsonl', '{"producer":"p1","seq":1,"at":1}\n{"producer":"p1","seq":2,"at":2}\n']]);
  });

  it('refuses a missing service and bad numbers', async () => {
    expect((await load([])).error?.message).toBe("error: required option '--service <name>' not specified");
    const bad = await load(['--service', 'game', '--duration-ms', '30s']);
    expect(bad.error?.message).toBe(invalidArgument('--duration-ms <ms>', '30s', '--duration-ms must be a positive integer, e.g. 30000'));
    expect(bad.calls).toEqual([]);
    expect((await load(['--service', 'game', '--rate', '-5'])).error?.message).toBe(invalidArgument('--rate <msgs>', '-5', '--rate must be a positive number, e.g. 50'));
  });
});
