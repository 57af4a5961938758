import { describe, expect, it } from 'vitest';
import { DeployInputSchema, MigrateInputSchema, describeInputError, lagTrend } from '../../lib/migration';

function errorOf(input: unknown): string {
  const r = MigrateInputSchema.safeParse(input);
  if (r.success) throw new Error('expected the input to be rejected');
  return describeInputError('migrateService', r.error);
}

describe('migrateService input', () => {
  it('fills in defaults', () => {
    expect(MigrateInputSchema.parse({ service: 'game', targetNode: 'node-b' })).toEqual({
      service: 'game',
      targetNode: 'node-b',
      strategy: 'shadow',
      replay: { threshold: 10, cutoffMs: 120_000, stallMs: 3_000 },
      timeouts: {
        nodeScheduleToStartMs: 15_000,
        heartbeatMs: 10_000,
        nodeActivityMs: 300_000,
        controlReplyMs: 5_000,
        copyReadyMs: 30_000,
        catchUpMs: 120_000,
        unreachableMs: 60_000,
      },
    });
  });
  it('names the field and the fix for each mistake', () => {
    expect(errorOf({ targetNode: 'node-b' })).toMatch(/service: service is required, e.g. "game"/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', strategy: 'warp' })).toMatch(/strategy: strategy must be one of stop-and-copy, shadow/);
    expect(errorOf({ service: 'Game!', targetNode: 'node-b' })).toMatch(/service: service must be 1-40 lowercase/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', replay: { threshold: 'ten' } })).toMatch(/replay.threshold: replay.threshold must be a number/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', replay: { cutoffMs: -1 } })).toMatch(/replay.cutoffMs/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', target: 'x' })).toMatch(/unknown field\(s\) target; remove them/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', timeouts: { heartbeatMs: 10 } })).toMatch(/timeouts.heartbeatMs: timeouts.heartbeatMs must be at least 1000 ms/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', timeouts: { catchUpMs: 'soon' } })).toMatch(/timeouts.catchUpMs: timeouts.catchUpMs must be a number of milliseconds/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', timeouts: { nodeTimeout: 1 } })).toMatch(/timeouts: unknown field\(s\) nodeTimeout; remove them/);
  });
  it('rejects a non-object', () => {
    expect(errorOf('game')).toMatch(/invalid migrateService input/);
  });
});

describe('deployService input', () => {
  it('requires a command and a primary queue', () => {
    const r = DeployInputSchema.safeParse({ service: 'game', node: 'node-a', spec: { command: [], primaryQueue: '' } });
    expect(r.success).toBe(false);
    if (!r.success) {
      const text = describeInputError('deployService', r.error);
      expect(text).toMatch(/spec.command: spec.command needs at least the program/);
      expect(text).toMatch(/spec.primaryQueue: spec.primaryQueue is required/);
    }
  });
});

describe('lag trend', () => {
  const at = (sec: number, lag: number, applied: number) => ({ at: sec * 1000, lag, applied });
  it('sees a converging copy and predicts when it reaches the threshold', () => {
    const t = lagTrend([at(0, 100, 0), at(1, 80, 60), at(2, 60, 120), at(3, 40, 180)], 10);
    expect(t.slopePerSec).toBeCloseTo(-20);
    expect(t.applyRatePerSec).toBeCloseTo(60);
    expect(t.etaMs).toBeCloseTo(1500);
  });
  it('sees a copy that does not converge', () => {
    const t = lagTrend([at(0, 50, 0), at(1, 70, 80), at(2, 90, 160)], 10);
    expect(t.slopePerSec).toBeCloseTo(20);
    expect(t.etaMs).toBeNull();
  });
  it('needs two samples over some time', () => {
    expect(lagTrend([at(0, 5, 0)], 1).slopePerSec).toBeNull();
    expect(lagTrend([at(1, 5, 0), at(1, 6, 1)], 1).slopePerSec).toBeNull();
  });
});
