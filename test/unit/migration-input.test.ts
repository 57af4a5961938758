import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { DeployInputSchema, MigrateInputSchema, UndeployInputSchema, describeInputError, lagTrend } from '../../lib/migration';

function refusalOf(schema: z.ZodTypeAny, what: string, input: unknown): string {
  const r = schema.safeParse(input);
  if (r.success) throw new Error('expected the input to be rejected');
  return describeInputError(what, r.error, input);
}
const errorOf = (input: unknown) => refusalOf(MigrateInputSchema, 'migrateService', input);
const deployErrorOf = (input: unknown) => refusalOf(DeployInputSchema, 'deployService', input);
const spec = { command: ['node', 'dist/examples/game/service.js'], primaryQueue: 'game.primary' };

describe('migrateService input', () => {
  it('fills in defaults', () => {
    expect(MigrateInputSchema.parse({ service: 'game', targetNode: 'node-b' })).toEqual({
      service: 'game',
      targetNode: 'node-b',
      strategy: 'shadow',
      replay: { threshold: 10, cutoffMs: 120_000, stallMs: 3_000 },
      mechanisms: { transfer: 'files', lazy: false },
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
  it('names the field, the rule in its terms and the value received', () => {
    expect(errorOf({ targetNode: 'node-b' })).toBe('invalid migrateService input: service: service is required, e.g. "game"');
    expect(errorOf({ service: 'game', targetNode: 'node-b', strategy: 'warp' })).toBe(
      'invalid migrateService input: strategy: strategy must be one of stop-and-copy, shadow, sequential, shadow-swap, got "warp"',
    );
    expect(errorOf({ service: 'Game!', targetNode: 'node-b' })).toBe(
      'invalid migrateService input: service: service must be 1-40 lowercase letters, digits or dashes starting with a letter, e.g. "game", got "Game!"',
    );
    expect(errorOf({ service: 'game', targetNode: 'node-b', replay: { threshold: 2.5 } })).toBe(
      'invalid migrateService input: replay.threshold: replay.threshold must be a whole number ≥ 0, got 2.5',
    );
    expect(errorOf({ service: 'game', targetNode: 'node-b', replay: { threshold: -5 } })).toMatch(/replay.threshold: replay.threshold must be a whole number ≥ 0, got -5$/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', replay: { threshold: 2_000_000 } })).toMatch(/replay.threshold must be at most 1000000, got 2000000$/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', replay: { threshold: 'ten' } })).toMatch(/replay.threshold: replay.threshold must be a number of messages, got "ten"$/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', replay: { cutoffMs: -1 } })).toMatch(/replay.cutoffMs: replay.cutoffMs must be at least 0 ms, got -1$/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', replay: 10 })).toMatch(/replay: replay must be a JSON object, e.g. \{"threshold": 10, "cutoffMs": 120000\}, got 10$/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', target: 'x' })).toMatch(/: unknown field\(s\) target; remove them$/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', timeouts: { heartbeatMs: 5 } })).toBe(
      'invalid migrateService input: timeouts.heartbeatMs: timeouts.heartbeatMs must be at least 1000 ms, got 5',
    );
    expect(errorOf({ service: 'game', targetNode: 'node-b', timeouts: { copyReadyMs: 1500.5 } })).toMatch(/timeouts.copyReadyMs must be a whole number of milliseconds, got 1500.5$/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', timeouts: { catchUpMs: 'soon' } })).toMatch(/timeouts.catchUpMs: timeouts.catchUpMs must be a number of milliseconds, got "soon"$/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', timeouts: { nodeTimeout: 1 } })).toMatch(/timeouts: unknown field\(s\) nodeTimeout; remove them$/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', mechanisms: { transfer: 'ftp' } })).toBe(
      'invalid migrateService input: mechanisms.transfer: mechanisms.transfer must be one of files, stream, got "ftp"',
    );
    expect(errorOf({ service: 'game', targetNode: 'node-b', mechanisms: { lazy: 'yes' } })).toBe('invalid migrateService input: mechanisms.lazy: mechanisms.lazy must be true or false, got "yes"');
    expect(errorOf({ service: 'game', targetNode: 'node-b', mechanisms: { precopy: 3 } })).toMatch(/mechanisms: unknown field\(s\) precopy; remove them$/);
    expect(errorOf({ service: 'game', targetNode: 'node-b', mechanisms: 'lazy' })).toMatch(/mechanisms: mechanisms must be a JSON object, e.g. \{"transfer": "stream", "lazy": true\}, got "lazy"$/);
  });
  it('gives one line per mistake', () => {
    expect(errorOf({ service: 'game', targetNode: 'node-b', strategy: 'warp', replay: { threshold: -5 } })).toBe(
      'invalid migrateService input: strategy: strategy must be one of stop-and-copy, shadow, sequential, shadow-swap, got "warp"; replay.threshold: replay.threshold must be a whole number ≥ 0, got -5',
    );
  });
  it('refuses a non-object, showing what came', () => {
    expect(errorOf('game')).toBe('invalid migrateService input: (input): the input must be a JSON object, e.g. {"service": "game", "targetNode": "node-b"}, got "game"');
    expect(errorOf(undefined)).toBe('invalid migrateService input: (input): the input is required, e.g. {"service": "game", "targetNode": "node-b"}');
  });
  it('cuts a long value short', () => {
    const text = errorOf({ service: 'game', targetNode: 'node-b', strategy: 'x'.repeat(500) });
    expect(text).toMatch(/, got "x{78}…$/);
  });
  it('names the value without the raw input (as before)', () => {
    const r = MigrateInputSchema.safeParse({ service: 'game', targetNode: 'node-b', replay: { threshold: 2.5 } });
    expect(r.success).toBe(false);
    if (!r.success) expect(describeInputError('migrateService', r.error)).toBe('invalid migrateService input: replay.threshold: replay.threshold must be a whole number ≥ 0');
  });
});

describe('deployService input', () => {
  it('fills in defaults', () => {
    expect(DeployInputSchema.parse({ service: 'game', node: 'node-a', spec })).toEqual({ service: 'game', node: 'node-a', spec: { runtime: 'local', ...spec, env: {} }, readyMs: 20_000 });
  });
  it('tells the runtimes\' specs apart by spec.runtime (absent: local)', () => {
    const kube = { runtime: 'kubernetes', namespace: 'shop', kind: 'Deployment', name: 'orders', container: 'app', primaryQueue: 'orders.primary' };
    expect(DeployInputSchema.parse({ service: 'orders', node: 'node-a', spec: kube }).spec).toEqual(kube);
    expect(deployErrorOf({ service: 'game', node: 'node-a', spec: { ...spec, runtime: 'docker' } })).toMatch(/spec.runtime: spec.runtime must be one of local, kubernetes \(leave it out for local\), got "docker"/);
    expect(deployErrorOf({ service: 'o', node: 'node-a', spec: { ...kube, kind: 'Job' } })).toMatch(/spec.kind: spec.kind must be one of Deployment, StatefulSet, Pod, got "Job"/);
    expect(deployErrorOf({ service: 'o', node: 'node-a', spec: { ...kube, container: undefined } })).toMatch(/spec.container: spec.container is required/);
    // A field of the other runtime is named, not silently dropped.
    expect(deployErrorOf({ service: 'o', node: 'node-a', spec: { ...kube, command: ['x'] } })).toMatch(/spec: unknown field\(s\) command; remove them/);
  });
  it('requires a command and a primary queue', () => {
    const text = deployErrorOf({ service: 'game', node: 'node-a', spec: { command: [], primaryQueue: '' } });
    expect(text).toMatch(/spec.command: spec.command needs at least the program, e.g. \["node", "dist\/examples\/game\/service.js"\], got \[\]/);
    expect(text).toMatch(/spec.primaryQueue: spec.primaryQueue must name the queue the service consumes, e.g. "game.primary", got ""/);
    expect(deployErrorOf({ service: 'game', node: 'node-a' })).toMatch(/^invalid deployService input: spec: spec is required, e.g. \{"command": \["node"/);
    expect(deployErrorOf({ service: 'game', node: 'node-a', spec: { ...spec, command: 'node service.js' } })).toMatch(
      /spec.command: spec.command must be a list of strings, e.g. \["node", "dist\/examples\/game\/service.js"\], got "node service.js"$/,
    );
    expect(deployErrorOf({ service: 'game', node: 'node-a', spec: { ...spec, command: ['node', ''] } })).toMatch(/spec.command.1: spec.command must hold no empty strings, got ""$/);
    expect(deployErrorOf({ service: 'game', node: 'node-a', spec: { ...spec, env: { PORT: 80 } } })).toMatch(/spec.env.PORT: spec.env values must be strings, e.g. \{"LOG_LEVEL": "info"\}, got 80$/);
  });
  it('bounds readyMs', () => {
    expect(deployErrorOf({ service: 'game', node: 'node-a', spec, readyMs: 5 })).toBe('invalid deployService input: readyMs: readyMs must be at least 1000 ms, got 5');
    expect(deployErrorOf({ service: 'game', node: 'node-a', spec, readyMs: 'soon' })).toBe('invalid deployService input: readyMs: readyMs must be a number of milliseconds, got "soon"');
  });
  it('undeploy names the service', () => {
    expect(refusalOf(UndeployInputSchema, 'undeployService', {})).toBe('invalid undeployService input: service: service is required, e.g. "game"');
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
