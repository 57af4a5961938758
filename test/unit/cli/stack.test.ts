/** `ms2m stack`: brings the stack up and prints its coordinates, one NAME=value a line. */
import { describe, expect, it, vi } from 'vitest';
import { registerStack } from '../../../cli/commands/stack';
import { fakeIo, run } from './harness';

describe('ms2m stack', () => {
  it('prints what the stack reports', async () => {
    const io = fakeIo();
    const ensureStack = vi.fn(async () => ({ MS2M_TEMPORAL_ADDRESS: '127.0.0.1:7233', MS2M_AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672' }));
    const { error } = await run((p) => registerStack(p, { out: io.out, ensureStack }), ['stack']);
    expect(error).toBeUndefined();
    expect(ensureStack).toHaveBeenCalledOnce();
    expect(io.outLines).toEqual(['MS2M_TEMPORAL_ADDRESS=127.0.0.1:7233', 'MS2M_AMQP_URL=amqp://guest:guest@127.0.0.1:5672']);
  });

  it('takes no options', async () => {
    const ensureStack = vi.fn(async () => ({}));
    const { error } = await run((p) => registerStack(p, { out: () => undefined, ensureStack }), ['stack', '--observe']);
    expect(error?.message).toBe("error: unknown option '--observe'");
    expect(ensureStack).not.toHaveBeenCalled();
  });
});
