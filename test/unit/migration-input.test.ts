import { describe, expect, it } from 'vitest';
import { DeployInputSchema, MigrateInputSchema, describeInputError } from '../../lib/migration';

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
      replay: { threshold: 10, cutoffMs: 120_000, stallMs: 5_000 },
    });
  });
  it('names the field and the fix for each mistake', () => {
    expect(errorOf({ targetNode: 'node-b' })).toMatch(/service: service is required, e.g. "game"/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', strategy: 'warp' })).toMatch(/strategy: strategy must be one of stop-and-copy, shadow/);
    expect(errorOf({ service: 'Game!', targetNode: 'node-b' })).toMatch(/service: service must be 1-40 lowercase/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', replay: { threshold: 'ten' } })).toMatch(/replay.threshold: replay.threshold must be a number/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', replay: { cutoffMs: -1 } })).toMatch(/replay.cutoffMs/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', target: 'x' })).toMatch(/unknown field\(s\) target; remove them/);
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
